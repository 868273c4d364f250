// File: webhooks/server_core.h
//
// The admission server's parts below its public interface (server.h), shared
// by its three files: server_core.cc routes a complete request to a handler
// and keeps the counters and metrics every connection shares;
// server_connection.cc speaks HTTP/1.1 or HTTP/2 over one TLS connection;
// server.cc accepts connections and runs the io_contexts. Not part of the
// interface: include server.h.
//
// Thread-safety: ServerCore is shared by every connection on every io_context
// thread; Handle, Reject and the counters are safe to call concurrently.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "webhooks/server.h"
#include "webhooks/tls_context.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace gpu_autoscaler::webhooks::server_internal {

inline constexpr std::string_view kJson = "application/json";
inline constexpr std::string_view kText = "text/plain; charset=utf-8";

// A response, independent of the protocol that carries it.
struct Reply {
  int status = 200;
  std::string_view content_type = kText;
  std::string body;
};

// A plain-text reply; the body gets a trailing newline.
Reply TextReply(int status, std::string body);

// Why a request was answered without reaching a handler.
enum class Rejection {
  kBodyTooLarge,
  kTimeout,
  kNotFound,
  kMethodNotAllowed,
  kMediaType,
  kConnectionBufferFull
};
inline constexpr std::array<const char*, 6> kRejectionNames = {
    "body_too_large",        "timeout", "not_found", "method_not_allowed", "unsupported_media_type",
    "connection_buffer_full"};

inline constexpr std::array<AdmissionEndpoint, 4> kEndpoints = {
    AdmissionEndpoint::kMutatePods, AdmissionEndpoint::kValidatePods,
    AdmissionEndpoint::kValidateGpuSharingPolicies, AdmissionEndpoint::kValidateBudgets};
// Indexed by AdmissionDenialReason (kNone is never counted).
inline constexpr std::array<const char*, kAdmissionDenialReasons> kDenialReasons = {
    "none", "budget", "invalid_object", "sharing_policy"};

// The server's Prometheus series, registered once.
struct Metrics {
  struct PerEndpoint {
    prometheus::Histogram* latency = nullptr;
    std::array<prometheus::Counter*, 4> verdicts{};  // indexed by AdmissionVerdict
  };
  std::array<PerEndpoint, kEndpoints.size()> endpoints{};
  std::array<prometheus::Counter*, kDenialReasons.size()> denials{};
  std::array<prometheus::Counter*, kRejectionNames.size()> rejections{};
  prometheus::Gauge* open_connections = nullptr;
  prometheus::Counter* http1_connections = nullptr;
  prometheus::Counter* http2_connections = nullptr;
  prometheus::Counter* refused_connections = nullptr;

  explicit Metrics(prometheus::Registry& registry);
};

// State shared by every connection of one server.
class ServerCore {
 public:
  ServerCore(AdmissionServerOptions options, std::shared_ptr<CertificateSource> certs,
             ReviewFunc review);

  // Loads the certificate into the TLS context.
  Status Init();

  const AdmissionServerOptions& options() const { return options_; }
  boost::asio::ssl::context& ssl_context() { return ssl_context_; }
  Metrics& metrics() { return metrics_; }

  // Routes one complete request. `target` may carry a query string.
  Reply Handle(std::string_view method, std::string_view target, std::string_view content_type,
               std::string_view body);

  // Counts a request answered before any handler, and the reply to send.
  Reply Reject(Rejection why, int status, std::string reason);
  void Reject(Rejection why);

  // Connection accounting; false when the server is full.
  bool TryOpenConnection();
  void CloseConnection();
  void CountTimeout();
  void CountProtocol(ApplicationProtocol p);

  AdmissionServerStats stats() const;

 private:
  Reply Review(AdmissionEndpoint endpoint, std::string_view body);

  const AdmissionServerOptions options_;
  const std::shared_ptr<CertificateSource> certs_;
  const ReviewFunc review_;
  boost::asio::ssl::context ssl_context_;
  Metrics metrics_;
  std::atomic<int64_t> open_{0}, accepted_{0}, rejected_{0}, timed_out_{0}, http2_{0}, requests_{0};
};

// Serves one accepted connection on its socket's executor until it closes;
// the connection keeps itself alive and calls core.CloseConnection() at the end.
void ServeConnection(ServerCore& core, boost::asio::ip::tcp::socket socket);

}  // namespace gpu_autoscaler::webhooks::server_internal
