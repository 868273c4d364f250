// File: tests/webhooks/webhook_integration_client.h
//
// Client side of the admission server's integration tests: HTTPS requests
// through libcurl (HTTP/2 or HTTP/1.1, verifying the server against a CA),
// raw OpenSSL handshakes (protocol versions, the served certificate's
// serial), certificates written to a temporary directory, and the recorded
// AdmissionReview bodies.
//
//   TempDir dir;
//   auto certs = WriteServingCertificate(dir, "a");   // tls.crt/tls.key for 127.0.0.1
//   HttpsResult r = Https(url + "/mutate-pods", "POST", GoldenReview(1), certs.ca_pem);
//   EXPECT_EQ(r.http_version, CURL_HTTP_VERSION_2_0);
//
// Thread-safety: each call is independent; TempDir belongs to one test.
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "net/self_signed_cert.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::webhooks::testing {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/gpa-webhook-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& text) {
  // Write-then-rename, as kubelet's atomic writer does, so a reader never
  // sees half a file.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    ASSERT_TRUE(out.good()) << "cannot write " << tmp;
  }
  std::filesystem::rename(tmp, path);
}

struct ServingFiles {
  std::string cert_file, key_file, ca_pem, serial_hex;
};

// A fresh CA and serving certificate for 127.0.0.1, written as
// dir/<prefix>tls.crt and dir/<prefix>tls.key (or to explicit paths).
inline ServingFiles WriteServingCertificate(const TempDir& dir, const std::string& cert_file,
                                            const std::string& key_file) {
  net::SelfSignedRequest req;
  req.dns_names = {"localhost"};
  req.ip_addresses = {"127.0.0.1"};
  auto certs = net::GenerateSelfSignedCertificates(req);
  EXPECT_TRUE(certs.ok()) << certs.error().ToString();
  if (!certs.ok()) return {};
  ServingFiles out{dir.File(cert_file), dir.File(key_file), certs->ca_cert_pem, ""};
  WriteFile(out.cert_file, certs->serving_cert_pem);
  WriteFile(out.key_file, certs->serving_key_pem);
  return out;
}

// The request object of a recorded AdmissionReview (tests/golden), as sent.
inline std::string GoldenReview(int n) {
  std::string path = gpu_autoscaler::testing::SourcePath(
      "tests/golden/admission/admission-review-" + std::to_string(n) + ".json");
  auto doc = nlohmann::json::parse(gpu_autoscaler::testing::ReadFileOrDie(path));
  return doc.at("review").dump();
}

inline std::string GoldenUid(int n) {
  return nlohmann::json::parse(GoldenReview(n)).at("request").at("uid").get<std::string>();
}

struct HttpsResult {
  long status = 0;
  std::string body;
  long http_version = 0;  // CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_2_0
  std::string error;      // transport failure, "" on success
};

inline size_t AppendToString(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct HttpsOptions {
  long http_version = CURL_HTTP_VERSION_2TLS;
  std::string content_type = "application/json";
  long timeout_ms = 30'000;
};

inline HttpsResult Https(const std::string& url, const std::string& method, const std::string& body,
                         const std::string& ca_pem, const HttpsOptions& opts = {}) {
  static const bool curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  HttpsResult result;
  CURL* curl = curl_ready ? curl_easy_init() : nullptr;
  if (curl == nullptr) {
    result.error = "curl init failed";
    return result;
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, opts.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, opts.http_version);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_blob ca{const_cast<char*>(ca_pem.data()), ca_pem.size(), CURL_BLOB_COPY};
  curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca);
  curl_slist* headers = nullptr;
  std::string type = "Content-Type: " + opts.content_type;
  if (method == "POST") {
    headers = curl_slist_append(headers, type.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    result.error = curl_easy_strerror(rc);
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
    curl_easy_getinfo(curl, CURLINFO_HTTP_VERSION, &result.http_version);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return result;
}

// A TCP connection to 127.0.0.1:port; -1 on failure.
inline int ConnectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True once the peer has closed `fd` (read returns 0 or an error), polling
// for up to `deadline`.
inline bool WaitForPeerClose(int fd, std::chrono::milliseconds deadline = 30s) {
  auto until = std::chrono::steady_clock::now() + deadline;
  char buf[4096];
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return true;  // EOF or reset; discard TLS alerts and 408s otherwise
    }
  }
  return false;
}

// A raw TLS client: one handshake, optionally pinned to one protocol version.
class TlsClient {
 public:
  // `alpn`: protocols to offer, in wire format ("\x02h2"); none when empty.
  TlsClient(int port, int min_version, int max_version, std::string_view alpn = {}) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(ctx_, 0);  // let the client really offer old versions
    SSL_CTX_set_min_proto_version(ctx_, min_version);
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    if (!alpn.empty()) {
      SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(alpn.data()),
                              static_cast<unsigned>(alpn.size()));
    }
    fd_ = ConnectLoopback(port);
    if (fd_ < 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    handshake_ok_ = SSL_connect(ssl_) == 1;
    if (!handshake_ok_) {
      char buf[256] = "";
      ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
      error_ = buf;
      ERR_clear_error();
    }
  }
  ~TlsClient() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool handshake_ok() const { return handshake_ok_; }
  const std::string& error() const { return error_; }
  int fd() const { return fd_; }
  std::string version() const { return handshake_ok_ ? SSL_get_version(ssl_) : ""; }

  std::string PeerSerialHex() const {
    if (!handshake_ok_) return "";
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return "";
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
    char* hex = BN_bn2hex(bn);
    std::string out = hex;
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(cert);
    return out;
  }

  bool Write(std::string_view data) {
    return handshake_ok_ && SSL_write(ssl_, data.data(), static_cast<int>(data.size())) > 0;
  }

  // Reads what arrives within `wait`: "" on timeout, std::nullopt once the
  // peer has closed the connection.
  std::optional<std::string> ReadSome(std::chrono::milliseconds wait) {
    if (!handshake_ok_) return std::nullopt;
    if (SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return std::string();
    }
    char buf[16384];
    int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }

  std::string alpn() const {
    const unsigned char* proto = nullptr;
    unsigned len = 0;
    if (handshake_ok_) SSL_get0_alpn_selected(ssl_, &proto, &len);
    return std::string(reinterpret_cast<const char*>(proto), len);
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool handshake_ok_ = false;
  std::string error_;
};

inline std::string ServedSerial(int port) {
  TlsClient client(port, TLS1_2_VERSION, TLS1_3_VERSION);
  EXPECT_TRUE(client.handshake_ok()) << client.error();
  return client.PeerSerialHex();
}

// The value of one sample line of a Prometheus text exposition ("name{labels}"),
// or -1 when absent.
inline double MetricValue(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      return std::strtod(text.c_str() + at + series.size() + 1, nullptr);
    }
    at += series.size();
  }
  return -1;
}

}  // namespace gpu_autoscaler::webhooks::testing
