#include "support/fake_cloud_server.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "net/self_signed_cert.h"

namespace gpu_autoscaler::testing {

LoopbackTls::~LoopbackTls() {
  std::error_code ec;
  if (!dir.empty()) std::filesystem::remove_all(dir, ec);
}

void WriteLoopbackCertificate(LoopbackTls* out) {
  char tmpl[] = "/tmp/gpa-cloud-fake-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  out->dir = tmpl;
  net::SelfSignedRequest req;
  req.dns_names = {"localhost"};
  req.ip_addresses = {"127.0.0.1"};
  auto certs = net::GenerateSelfSignedCertificates(req);
  ASSERT_TRUE(certs.ok()) << certs.error().ToString();
  out->cert_file = out->dir + "/tls.crt";
  out->key_file = out->dir + "/tls.key";
  out->ca_pem = certs->ca_cert_pem;
  std::ofstream(out->cert_file) << certs->serving_cert_pem;
  std::ofstream(out->key_file) << certs->serving_key_pem;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::strtol(std::string(s.substr(i + 1, 2)).c_str(), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseForm(std::string_view body) {
  std::map<std::string, std::string> out;
  while (!body.empty()) {
    size_t amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    size_t eq = pair.find('=');
    std::string name = PercentDecode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    out.emplace(std::move(name), std::move(value));
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
  }
  return out;
}

void HangUntilReleased(net::ResponseWriter& w, const std::atomic<bool>& hung) {
  // Polling is fine here: this is the fake peer, not the logic under test.
  while (hung.load() && !w.Cancelled()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!w.Cancelled()) w.Respond(503, "text/plain", "released");
}

}  // namespace gpu_autoscaler::testing
