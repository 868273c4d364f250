// File: src/net/http_server.h
//
// A small embedded HTTP/1.1 server (Boost.Beast), optionally TLS, used by the
// embedded/test API server, the manager's /metrics /healthz /readyz, and the
// node agent. Handlers may answer at once or stream a chunked body (watches).
//
//   HttpServerOptions o;  o.bind_address = "127.0.0.1";  o.port = 0;
//   auto server = HttpServer::Start(o, [](const ServerRequest& r, ResponseWriter& w) {
//     w.Respond(200, "text/plain", "ok");
//   });
//   int port = (*server)->port();
//
// Model: one thread per connection, keep-alive. A handler runs on its
// connection's thread and may block (a watch streams until the client leaves
// or the server stops).
//
// Thread-safety: Start/Stop/port/CloseAllConnections are thread-safe. A
// ResponseWriter belongs to one handler invocation.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::net {

struct ServerRequest {
  std::string method;
  std::string target;  // path + query, raw
  std::string path;    // decoded path without query
  std::string query;   // raw query, without '?'
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_address;
  // The client's certificate chain as the TLS handshake received it (DER,
  // leaf first), when the server requests one; not verified here: the
  // handler decides which CA it trusts (front-proxy vs client certificates).
  std::vector<std::string> peer_certificates_der;

  std::string_view Header(std::string_view name) const;  // case-insensitive, "" if absent
  // Decoded value of the first `name=` query parameter; "" if absent.
  std::string QueryParam(std::string_view name) const;
  bool HasQueryParam(std::string_view name) const;
};

class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // A complete response.
  virtual void Respond(int status, std::string_view content_type, std::string body,
                       const std::vector<std::pair<std::string, std::string>>& headers = {}) = 0;
  // Starts a chunked response; then Write() chunks and End().
  virtual bool StartStream(int status, std::string_view content_type) = 0;
  // Sends one chunk and flushes. False when the client has gone or the
  // server is stopping: the handler should return.
  virtual bool Write(std::string_view chunk) = 0;
  virtual void End() = 0;
  // True once the server is stopping or the connection is being dropped.
  virtual bool Cancelled() const = 0;
};

using Handler = std::function<void(const ServerRequest&, ResponseWriter&)>;

struct HttpServerOptions {
  std::string bind_address = "127.0.0.1";
  int port = 0;  // 0: pick a free port
  // TLS when both are set (PEM file paths). The files are watched: when
  // either changes, new connections get the new certificate (checked at most
  // once a second; a pair that fails to load leaves the old one serving).
  std::string tls_cert_file;
  std::string tls_key_file;
  // Asks TLS clients for a certificate (optional, any issuer accepted: see
  // ServerRequest::peer_certificates_der), as Go's tls.RequestClientCert.
  bool request_client_certificate = false;
  size_t max_body_bytes = 3 * 1024 * 1024;  // larger bodies get 413
  // The 413 answer's content type and body, given the limit (e.g. a Kubernetes
  // Status for the API server). Unset: "request body too large" as text/plain.
  std::function<std::pair<std::string, std::string>(size_t limit)> body_too_large = nullptr;
  std::chrono::milliseconds read_timeout{30'000};  // slow clients are dropped
};

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& opts, Handler handler);
  virtual ~HttpServer() = default;
  virtual int port() const = 0;
  // Stops accepting, cancels streams, joins connection threads.
  virtual void Stop() = 0;
  // Drops every open connection (fault injection: "dropped watches").
  virtual void CloseAllConnections() = 0;
  // How many times the TLS certificate was reloaded after its files changed.
  virtual int64_t certificate_reloads() const = 0;
};

}  // namespace gpu_autoscaler::net
