// Tests of net::HttpServer over real loopback sockets, with a small raw-socket
// HTTP client (and an OpenSSL client for TLS).
#include "net/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace gpu_autoscaler::net {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 30s;

// A blocking TCP connection to 127.0.0.1 with a receive deadline.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Appends whatever arrives to buffer_; false on EOF/error/deadline.
  bool ReadMore() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kDeadline).count())) <= 0) {
      return false;
    }
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }

  // True when the peer closes the connection (EOF or reset) before the deadline.
  bool WaitForClose() {
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kDeadline).count())) <= 0) {
        return false;
      }
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return true;
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

  struct Response {
    int status = 0;
    std::string headers;  // raw header block
    std::string body;     // de-chunked
  };

  // Reads one complete response (Content-Length or chunked).
  bool ReadResponse(Response* out) {
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore()) return false;
    }
    out->headers = buffer_.substr(0, header_end);
    out->status = std::atoi(out->headers.c_str() + 9);
    buffer_.erase(0, header_end + 4);
    std::string lower = out->headers;
    for (char& c : lower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("transfer-encoding: chunked") != std::string::npos) {
      for (;;) {
        size_t line_end;
        while ((line_end = buffer_.find("\r\n")) == std::string::npos) {
          if (!ReadMore()) return false;
        }
        size_t size = std::strtoul(buffer_.substr(0, line_end).c_str(), nullptr, 16);
        while (buffer_.size() < line_end + 2 + size + 2) {
          if (!ReadMore()) return false;
        }
        out->body += buffer_.substr(line_end + 2, size);
        buffer_.erase(0, line_end + 2 + size + 2);
        if (size == 0) return true;
      }
    }
    size_t length = 0;
    auto pos = lower.find("content-length: ");
    if (pos != std::string::npos) length = std::strtoul(lower.c_str() + pos + 16, nullptr, 10);
    while (buffer_.size() < length) {
      if (!ReadMore()) return false;
    }
    out->body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return true;
  }

  const std::string& buffered() const { return buffer_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

std::unique_ptr<HttpServer> StartOrDie(Handler handler, HttpServerOptions opts = {}) {
  auto server = HttpServer::Start(opts, std::move(handler));
  if (!server.ok()) {
    ADD_FAILURE() << server.error().ToString();
    return nullptr;
  }
  return std::move(server).value();
}

TEST(HttpServerTest, ServesRequestsOnKeepAliveConnection) {
  std::atomic<int> calls{0};
  auto server = StartOrDie([&](const ServerRequest& r, ResponseWriter& w) {
    ++calls;
    w.Respond(200, "text/plain",
              r.method + " " + r.path + " q=" + r.QueryParam("labelSelector") +
                  " h=" + std::string(r.Header("x-test")) + " body=" + r.body,
              {{"X-Reply", "yes"}});
  });
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->port(), 0);
  RawClient client(server->port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(
      client.Send("GET /api/v1/name%20spaces?labelSelector=app%20in%20(a,b)&x=1 HTTP/1.1\r\n"
                  "Host: localhost\r\nX-Test: hello\r\n\r\n"));
  RawClient::Response first;
  ASSERT_TRUE(client.ReadResponse(&first));
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "GET /api/v1/name spaces q=app in (a,b) h=hello body=");
  EXPECT_NE(first.headers.find("X-Reply: yes"), std::string::npos);

  ASSERT_TRUE(client.Send("POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"));
  RawClient::Response second;
  ASSERT_TRUE(client.ReadResponse(&second));
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "POST /x q= h= body=hello");
  EXPECT_EQ(calls.load(), 2);
}

TEST(HttpServerTest, QueryParamDecodingAndPresence) {
  ServerRequest r;
  r.query = "a=1&b=x%2By+z&flag&empty=&a=2";
  EXPECT_EQ(r.QueryParam("a"), "1");
  EXPECT_EQ(r.QueryParam("b"), "x+y z");
  EXPECT_TRUE(r.HasQueryParam("flag"));
  EXPECT_TRUE(r.HasQueryParam("empty"));
  EXPECT_FALSE(r.HasQueryParam("missing"));
  EXPECT_EQ(r.QueryParam("missing"), "");
  r.headers = {{"Content-Type", "application/json"}};
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("accept"), "");
}

TEST(HttpServerTest, RejectsOversizedBodyWith413) {
  HttpServerOptions opts;
  opts.max_body_bytes = 16;
  std::atomic<int> calls{0};
  auto server = StartOrDie(
      [&](const ServerRequest&, ResponseWriter& w) {
        ++calls;
        w.Respond(200, "text/plain", "ok");
      },
      opts);
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 64\r\n\r\n" +
                          std::string(64, 'x')));
  RawClient::Response res;
  ASSERT_TRUE(client.ReadResponse(&res));
  EXPECT_EQ(res.status, 413);
  EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServerTest, StreamsChunkedBody) {
  auto server = StartOrDie([](const ServerRequest&, ResponseWriter& w) {
    ASSERT_TRUE(w.StartStream(200, "application/json"));
    EXPECT_TRUE(w.Write("{\"n\":1}\n"));
    EXPECT_TRUE(w.Write("{\"n\":2}\n"));
    EXPECT_TRUE(w.Write("{\"n\":3}\n"));
    w.End();
  });
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET /watch HTTP/1.1\r\nHost: h\r\n\r\n"));
  RawClient::Response res;
  ASSERT_TRUE(client.ReadResponse(&res));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
  // The connection stays usable after a finished stream.
  ASSERT_TRUE(client.Send("GET /again HTTP/1.1\r\nHost: h\r\n\r\n"));
  RawClient::Response again;
  ASSERT_TRUE(client.ReadResponse(&again));
  EXPECT_EQ(again.body, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
}

// A handler that streams until the server cancels it, signalling when started.
struct EndlessStream {
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  int finished = 0;

  Handler handler() {
    return [this](const ServerRequest&, ResponseWriter& w) {
      if (!w.StartStream(200, "application/json")) return;
      w.Write("{\"type\":\"ADDED\"}\n");
      {
        std::lock_guard<std::mutex> lock(mu);
        ++started;
      }
      cv.notify_all();
      while (!w.Cancelled())
        std::this_thread::sleep_for(5ms);
      EXPECT_FALSE(w.Write("late\n"));
      std::lock_guard<std::mutex> lock(mu);
      ++finished;
      cv.notify_all();
    };
  }
  bool WaitStarted(int n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kDeadline, [&] { return started >= n; });
  }
};

TEST(HttpServerTest, StopCancelsStreamsAndJoins) {
  EndlessStream stream;
  auto server = StartOrDie(stream.handler());
  ASSERT_NE(server, nullptr);
  RawClient a(server->port());
  RawClient b(server->port());
  ASSERT_TRUE(a.Send("GET /w HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(b.Send("GET /w HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(stream.WaitStarted(2));
  server->Stop();  // returns only after both handlers have returned
  EXPECT_EQ(stream.finished, 2);
  EXPECT_TRUE(a.WaitForClose());
  EXPECT_TRUE(b.WaitForClose());
  RawClient refused(server->port());
  EXPECT_FALSE(refused.connected() && refused.Send("GET / HTTP/1.1\r\n\r\n") && refused.ReadMore());
}

TEST(HttpServerTest, CloseAllConnectionsDropsStreamsButKeepsServing) {
  EndlessStream stream;
  std::atomic<bool> plain{false};
  auto handler = stream.handler();
  auto server = StartOrDie([&](const ServerRequest& r, ResponseWriter& w) {
    if (r.path == "/plain") {
      plain = true;
      w.Respond(200, "text/plain", "still here");
      return;
    }
    handler(r, w);
  });
  ASSERT_NE(server, nullptr);
  RawClient watcher(server->port());
  ASSERT_TRUE(watcher.Send("GET /w HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(stream.WaitStarted(1));
  server->CloseAllConnections();
  EXPECT_TRUE(watcher.WaitForClose());
  RawClient next(server->port());
  ASSERT_TRUE(next.Send("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n"));
  RawClient::Response res;
  ASSERT_TRUE(next.ReadResponse(&res));
  EXPECT_EQ(res.body, "still here");
}

TEST(HttpServerTest, DropsClientsThatSendNothing) {
  HttpServerOptions opts;
  opts.read_timeout = 100ms;
  auto server =
      StartOrDie([](const ServerRequest&, ResponseWriter& w) { w.Respond(200, "", ""); }, opts);
  ASSERT_NE(server, nullptr);
  RawClient slow(server->port());
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(slow.Send("GET / HTTP/1.1\r\n"));  // never finishes the header
  EXPECT_TRUE(slow.WaitForClose());
  EXPECT_EQ(slow.buffered(), "");
}

TEST(HttpServerTest, ConnectionCloseHeaderEndsConnection) {
  auto server = StartOrDie([](const ServerRequest&, ResponseWriter& w) { w.Respond(204, "", ""); });
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  ASSERT_TRUE(client.Send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  RawClient::Response res;
  ASSERT_TRUE(client.ReadResponse(&res));
  EXPECT_EQ(res.status, 204);
  EXPECT_TRUE(client.WaitForClose());
}

TEST(HttpServerTest, BadOptionsAreErrors) {
  auto handler = [](const ServerRequest&, ResponseWriter& w) { w.Respond(200, "", ""); };
  HttpServerOptions bad_address;
  bad_address.bind_address = "not-an-ip";
  EXPECT_FALSE(HttpServer::Start(bad_address, handler).ok());
  HttpServerOptions missing_key;
  missing_key.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_FALSE(HttpServer::Start(missing_key, handler).ok());
  HttpServerOptions unreadable;
  unreadable.tls_cert_file = "/nonexistent/cert.pem";
  unreadable.tls_key_file = "/nonexistent/key.pem";
  auto r = HttpServer::Start(unreadable, handler);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("/nonexistent/cert.pem"), std::string::npos);
  EXPECT_FALSE(HttpServer::Start({}, nullptr).ok());
}

// Writes a self-signed certificate for 127.0.0.1 and its private key.
void WriteSelfSignedCert(const std::string& cert_path, const std::string& key_path) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, const_cast<char*>("IP:127.0.0.1"));
  X509_add_ext(cert, san, -1);
  X509_EXTENSION_free(san);
  X509_sign(cert, key, EVP_sha256());
  FILE* f = std::fopen(cert_path.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
}

// A temporary directory holding tls.crt and tls.key, removed at the end.
struct TlsFiles {
  TlsFiles() {
    char dir_template[] = "/tmp/http_server_test_XXXXXX";
    char* made = ::mkdtemp(dir_template);
    EXPECT_NE(made, nullptr);
    dir = made ? made : "/tmp";
    cert = dir + "/tls.crt";
    key = dir + "/tls.key";
    WriteSelfSignedCert(cert, key);
  }
  ~TlsFiles() {
    std::remove(cert.c_str());
    std::remove(key.c_str());
    ::rmdir(dir.c_str());
  }
  HttpServerOptions Options() const {
    HttpServerOptions opts;
    opts.tls_cert_file = cert;
    opts.tls_key_file = key;
    return opts;
  }
  std::string dir, cert, key;
};

TEST(HttpServerTest, ServesTls) {
  TlsFiles files;
  const std::string& cert = files.cert;
  HttpServerOptions opts = files.Options();
  auto server = StartOrDie(
      [](const ServerRequest& r, ResponseWriter& w) { w.Respond(200, "text/plain", r.path); },
      opts);
  ASSERT_NE(server, nullptr);

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx, cert.c_str(), nullptr), 1);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
  ASSERT_EQ(SSL_connect(ssl), 1) << ERR_error_string(ERR_get_error(), nullptr);
  std::string request = "GET /secure HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(SSL_write(ssl, request.data(), static_cast<int>(request.size())),
            static_cast<int>(request.size()));
  std::string response;
  char buf[4096];
  int n;
  while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
    response.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
  EXPECT_NE(response.find("\r\n\r\n/secure"), std::string::npos) << response;
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  server->Stop();
}

// A TLS GET of `path` (no server verification), presenting `client_cert`/`client_key`
// when given; the whole response.
std::string TlsGet(int port, const std::string& path, const std::string& client_cert = "",
                   const std::string& client_key = "") {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!client_cert.empty()) {
    EXPECT_EQ(SSL_CTX_use_certificate_file(ctx, client_cert.c_str(), SSL_FILETYPE_PEM), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx, client_key.c_str(), SSL_FILETYPE_PEM), 1);
  }
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
      const std::string request =
          "GET " + path + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, request.data(), static_cast<int>(request.size()));
      char buf[4096];
      int n;
      while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
        response.append(buf, static_cast<size_t>(n));
    }
    SSL_free(ssl);
  }
  ::close(fd);
  SSL_CTX_free(ctx);
  return response;
}

std::string FileDer(const std::string& pem_path) {
  FILE* f = std::fopen(pem_path.c_str(), "r");
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  X509_free(cert);
  return out;
}

// request_client_certificate asks for a certificate without requiring one, accepts any
// issuer, and hands the chain (DER, leaf first) to the handler, which decides whom it
// trusts; off (the default), a client's certificate is never asked for.
TEST(HttpServerTest, HandsTheClientCertificateToTheHandlerWhenAsked) {
  TlsFiles server_files, client_files;
  const std::string client_der = FileDer(client_files.cert);
  for (const bool request_client_certificate : {true, false}) {
    HttpServerOptions opts = server_files.Options();
    opts.request_client_certificate = request_client_certificate;
    auto server = StartOrDie(
        [&](const ServerRequest& r, ResponseWriter& w) {
          std::string body = std::to_string(r.peer_certificates_der.size());
          if (!r.peer_certificates_der.empty() && r.peer_certificates_der[0] == client_der) {
            body += " client";
          }
          w.Respond(200, "text/plain", body);
        },
        opts);
    ASSERT_NE(server, nullptr);
    const std::string with = TlsGet(server->port(), "/", client_files.cert, client_files.key);
    const std::string without = TlsGet(server->port(), "/");
    EXPECT_NE(with.find(request_client_certificate ? "\r\n\r\n1 client" : "\r\n\r\n0"),
              std::string::npos)
        << with;
    EXPECT_NE(without.find("\r\n\r\n0"), std::string::npos) << without;
    server->Stop();
  }
}

// The TLS policy (net/tls_policy.h): TLS 1.2 at least, and for TLS 1.2 only
// forward-secret AEAD suites.
TEST(HttpServerTest, TlsRefusesOldVersionsAndWeakSuites) {
  TlsFiles files;
  HttpServerOptions opts = files.Options();
  auto server = StartOrDie(
      [](const ServerRequest&, ResponseWriter& w) { w.Respond(200, "text/plain", "ok"); }, opts);
  ASSERT_NE(server, nullptr);
  // Handshakes with a client limited to `max_version` and, for TLS 1.2, `ciphers`.
  auto handshake = [&](int max_version, const char* ciphers) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_set_security_level(ctx, 0);  // let the client offer what the server must refuse
    if (ciphers != nullptr) SSL_CTX_set_cipher_list(ctx, ciphers);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    ok = ok && SSL_connect(ssl) == 1;
    ERR_clear_error();
    SSL_free(ssl);
    ::close(fd);
    SSL_CTX_free(ctx);
    return ok;
  };
  EXPECT_TRUE(handshake(TLS1_3_VERSION, nullptr));
  EXPECT_TRUE(
      handshake(TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"));
  EXPECT_FALSE(handshake(TLS1_1_VERSION, nullptr));
  EXPECT_FALSE(handshake(TLS1_2_VERSION, "AES128-GCM-SHA256"));  // RSA key exchange: no FS
  EXPECT_FALSE(handshake(TLS1_2_VERSION, "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA"));  // CBC
  server->Stop();
}

// SHA-256 of the certificate the server at `port` presents ("" when the
// handshake fails). The client does not verify: it only looks.
std::string ServedCertificateDigest(int port) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string digest;
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      SSL_connect(ssl) == 1) {
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      X509_digest(peer, EVP_sha256(), md, &len);
      digest.assign(reinterpret_cast<const char*>(md), len);
      X509_free(peer);
    }
  }
  ERR_clear_error();
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  return digest;
}

// Certificates rotate without a restart: new connections get the new pair;
// a pair that does not load (a rotation caught half-written) leaves the last
// good one serving.
TEST(HttpServerTest, ReloadsTheCertificateWhenItsFilesChange) {
  TlsFiles files;
  auto server = StartOrDie(
      [](const ServerRequest&, ResponseWriter& w) { w.Respond(200, "text/plain", "ok"); },
      files.Options());
  ASSERT_NE(server, nullptr);
  const std::string first = ServedCertificateDigest(server->port());
  ASSERT_FALSE(first.empty());

  // Written beside and renamed into place, as a projected volume swaps files.
  WriteSelfSignedCert(files.dir + "/new.crt", files.dir + "/new.key");
  ASSERT_EQ(std::rename((files.dir + "/new.key").c_str(), files.key.c_str()), 0);
  ASSERT_EQ(std::rename((files.dir + "/new.crt").c_str(), files.cert.c_str()), 0);
  std::string second;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    second = ServedCertificateDigest(server->port());
    if (!second.empty() && second != first) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(second, first);
  EXPECT_FALSE(second.empty());
  EXPECT_EQ(server->certificate_reloads(), 1);

  // A broken certificate file: the server keeps the last good pair.
  std::ofstream(files.cert, std::ios::trunc) << "-----BEGIN CERTIFICATE-----\ngarbage\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past one check interval
  EXPECT_EQ(ServedCertificateDigest(server->port()), second);
  EXPECT_EQ(server->certificate_reloads(), 1);
  server->Stop();
}

}  // namespace
}  // namespace gpu_autoscaler::net
