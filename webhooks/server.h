// File: webhooks/server.h
//
// The admission webhook's HTTPS server. TLS 1.2+ with ALPN: HTTP/2
// (libnghttp2's server session) when the client offers "h2", HTTP/1.1
// (Boost.Beast) otherwise. It routes
//
//   POST /mutate-pods, /validate-pods, /validate-gpusharingpolicies,
//        /validate-budgets -> ReviewFunc
//   GET  /healthz, /readyz
//
// and knows nothing about pods: the review function gets the raw body and
// returns the status and body to send (webhooks/admission.h). Its metrics go
// to a registry the program serves elsewhere (webhook_main.cc: an
// authorised /metrics on its own port), never on the admission port.
//
//   AdmissionServerOptions opts;
//   opts.bind_address = "127.0.0.1";
//   opts.port = 0;  // pick a free port
//   auto server = AdmissionServer::Start(opts, certs, [&](AdmissionEndpoint e, std::string_view b)
//   {
//     return service.Review(e, b);
//   });
//   int port = (*server)->port();
//   std::string where = (*server)->listen_address();  // "127.0.0.1:8443"
//
// Model: `threads` event loops (one io_context each, no strands), each
// connection pinned to one loop; reviews run inline on the loop (they are
// pure CPU work of a few microseconds). Limits protect the loops from slow or
// hostile clients: a TLS handshake and a request's headers must arrive within
// `header_timeout`, the whole request within `request_timeout`, an idle
// keep-alive connection is closed after `idle_timeout`, bodies larger than
// `max_body_bytes` get 413 before they are read, an HTTP/2 connection may
// hold at most `max_connection_body_bytes` of unfinished request bodies
// across its streams (a stream that would exceed it gets 503), and
// connections beyond `max_connections` are closed at accept.
//
// Thread-safety: Start/Stop/port/stats are safe from any thread. The review
// and ready functions are called from the loop threads concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "webhooks/admission.h"
#include "webhooks/cert_source.h"

namespace prometheus {
class Registry;
}

namespace gpu_autoscaler::webhooks {

using ReviewFunc = std::function<AdmissionOutcome(AdmissionEndpoint, std::string_view body)>;

struct AdmissionServerOptions {
  std::string bind_address = "0.0.0.0";
  int port = 8443;  // 0: pick a free port
  int threads = 2;  // event loops
  bool enable_h2 = true;
  size_t max_body_bytes = 3 * 1024 * 1024;
  size_t max_header_bytes = 16 * 1024;
  size_t max_connections = 4096;
  uint32_t max_concurrent_streams = 128;  // per HTTP/2 connection
  // Sum of partly received request bodies one HTTP/2 connection may buffer;
  // without it, 128 streams x 3 MiB would be 384 MiB per connection.
  size_t max_connection_body_bytes = 16 * 1024 * 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds idle_timeout{90'000};
  // Registry for the server's metrics; the server makes its own when null.
  // The program serves it (with other components' metrics) on its own port.
  std::shared_ptr<prometheus::Registry> metrics;
  // /readyz answers 200 when this returns true (unset: always ready).
  std::function<bool()> ready;
  // Times reviews for the latency histogram; RealClock when null.
  Clock* clock = nullptr;
};

struct AdmissionServerStats {
  int64_t open_connections = 0;
  int64_t accepted_connections = 0;
  int64_t rejected_connections = 0;  // over max_connections
  int64_t timed_out_connections = 0;
  int64_t http2_connections = 0;
  int64_t requests = 0;
};

class AdmissionServer {
 public:
  static Result<std::unique_ptr<AdmissionServer>> Start(AdmissionServerOptions options,
                                                        std::shared_ptr<CertificateSource> certs,
                                                        ReviewFunc review);
  virtual ~AdmissionServer() = default;

  virtual int port() const = 0;
  // The socket actually bound, as ADDRESS:PORT: "0.0.0.0:8443" (every IPv4
  // interface), "127.0.0.1:8443", "[::1]:8443" (IPv6 in brackets).
  virtual std::string listen_address() const = 0;
  // Stops accepting, closes every connection and joins the loops. Idempotent.
  virtual void Stop() = 0;
  virtual AdmissionServerStats stats() const = 0;
};

// The endpoint for an admission path ("/mutate-pods"); false for other paths.
bool AdmissionEndpointForPath(std::string_view path, AdmissionEndpoint* endpoint);
std::string_view AdmissionEndpointName(AdmissionEndpoint endpoint);

}  // namespace gpu_autoscaler::webhooks
