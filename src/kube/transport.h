// File: src/kube/transport.h
//
// The HTTP layer under RestClient, behind an interface so unit tests can script
// responses. The production implementation (curl_transport.cc) uses libcurl
// with connection reuse, HTTP/2 where offered, TLS verification and client
// certificates.
//
// Thread-safety: implementations are safe to call from many threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "kube/config.h"
#include "kube/error.h"

namespace gpu_autoscaler::kube {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method{};  // GET, POST, PUT, PATCH, DELETE
  std::string url{};     // absolute: server + path + query
  Headers headers{};
  std::string body{};
  std::chrono::milliseconds timeout{0};  // 0: none (watches)
};

struct HttpResponse {
  int status = 0;
  Headers headers{};
  std::string body{};
  // Negotiated protocol: 11 for HTTP/1.1, 20 for HTTP/2 (ALPN "h2").
  int http_version = 11;
  std::string Header(std::string_view name) const;  // case-insensitive, "" if absent
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // A complete request/response. Errors are transport-level only: an HTTP
  // error status is a successful HttpResponse.
  virtual Result<HttpResponse> Do(const HttpRequest& req) = 0;

  // Streams the body. `on_headers` gets the status and headers first; for a
  // non-2xx status the body is collected and returned in the response instead
  // of being passed to `on_data`. `on_data` returns false to stop reading.
  // Returns when the server closes the stream, on error, or when `stop` is
  // requested (then Error::Kind::kCancelled).
  virtual Result<HttpResponse> Stream(
      const HttpRequest& req, const std::function<void(int status, const Headers&)>& on_headers,
      const std::function<bool(std::string_view chunk)>& on_data, std::stop_token stop) = 0;
};

// libcurl transport configured for `cfg` (TLS, client certs, HTTP/2).
Result<std::unique_ptr<HttpTransport>> NewCurlTransport(const ClientConfig& cfg);

}  // namespace gpu_autoscaler::kube
