// File: tests/support/fake_cloud_server.h
//
// What the loopback cloud fakes (fake_gcp, fake_azure) share: a serving
// certificate for 127.0.0.1 written to a temporary directory (the client
// trusts `ca_pem`), form-body decoding, and a hung handler.
//
//   auto tls = WriteLoopbackCertificate();          // asserts on failure
//   opts.tls_cert_file = tls.cert_file;  opts.tls_key_file = tls.key_file;
//
// Thread-safety: pure functions; a LoopbackTls removes its directory when
// destroyed.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <string_view>

#include "net/http_server.h"

namespace gpu_autoscaler::testing {

struct LoopbackTls {
  LoopbackTls() = default;
  LoopbackTls(const LoopbackTls&) = delete;
  LoopbackTls& operator=(const LoopbackTls&) = delete;
  ~LoopbackTls();
  std::string dir, cert_file, key_file, ca_pem;
};

// A fresh CA and a serving certificate for 127.0.0.1 (net/self_signed_cert.h).
void WriteLoopbackCertificate(LoopbackTls* out);

std::string PercentDecode(std::string_view s);
// application/x-www-form-urlencoded; a repeated name keeps the first value.
std::map<std::string, std::string> ParseForm(std::string_view body);

// Holds the request open, answering nothing, until the server stops or the
// client goes away (the client's timeout) or `hung` is cleared.
void HangUntilReleased(net::ResponseWriter& w, const std::atomic<bool>& hung);

}  // namespace gpu_autoscaler::testing
