// The admission server's shared state: request routing, connection
// accounting and the Prometheus series (server_core.h).
#include "webhooks/server_core.h"

#include <string>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace gpu_autoscaler::webhooks {
namespace server_internal {
namespace {

namespace ssl = boost::asio::ssl;

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i], b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

}  // namespace

Reply TextReply(int status, std::string body) {
  body.push_back('\n');
  return Reply{status, kText, std::move(body)};
}

Metrics::Metrics(prometheus::Registry& registry) {
  auto& latency = prometheus::BuildHistogram()
                      .Name("gpu_autoscaler_webhook_review_duration_seconds")
                      .Help("Time to answer one admission review, by endpoint")
                      .Register(registry);
  auto& reviews = prometheus::BuildCounter()
                      .Name("gpu_autoscaler_webhook_reviews_total")
                      .Help(
                          "Admission reviews answered, by endpoint and verdict "
                          "(allowed, patched, denied, bad_request)")
                      .Register(registry);
  const prometheus::Histogram::BucketBoundaries buckets = {
      25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 1.0};
  constexpr std::array<const char*, 4> kVerdicts = {"allowed", "patched", "denied", "bad_request"};
  for (size_t i = 0; i < kEndpoints.size(); ++i) {
    std::string name(AdmissionEndpointName(kEndpoints[i]));
    endpoints[i].latency = &latency.Add({{"endpoint", name}}, buckets);
    for (size_t v = 0; v < kVerdicts.size(); ++v) {
      endpoints[i].verdicts[v] = &reviews.Add({{"endpoint", name}, {"verdict", kVerdicts[v]}});
    }
  }
  auto& denied = prometheus::BuildCounter()
                     .Name("gpu_autoscaler_webhook_denials_total")
                     .Help(
                         "Admission reviews denied, by reason (budget, invalid_object, "
                         "sharing_policy)")
                     .Register(registry);
  for (size_t r = 1; r < kDenialReasons.size(); ++r) {
    denials[r] = &denied.Add({{"reason", kDenialReasons[r]}});
  }
  auto& rejected = prometheus::BuildCounter()
                       .Name("gpu_autoscaler_webhook_rejected_requests_total")
                       .Help("Requests answered with an HTTP error before any review, by reason")
                       .Register(registry);
  for (size_t i = 0; i < kRejectionNames.size(); ++i) {
    rejections[i] = &rejected.Add({{"reason", kRejectionNames[i]}});
  }
  open_connections = &prometheus::BuildGauge()
                          .Name("gpu_autoscaler_webhook_open_connections")
                          .Help("TLS connections currently open")
                          .Register(registry)
                          .Add({});
  auto& connections = prometheus::BuildCounter()
                          .Name("gpu_autoscaler_webhook_connections_total")
                          .Help("Connections accepted, by negotiated protocol or refused")
                          .Register(registry);
  http1_connections = &connections.Add({{"protocol", "http/1.1"}});
  http2_connections = &connections.Add({{"protocol", "h2"}});
  refused_connections = &connections.Add({{"protocol", "refused"}});
}

ServerCore::ServerCore(AdmissionServerOptions options, std::shared_ptr<CertificateSource> certs,
                       ReviewFunc review)
    : options_(std::move(options)),
      certs_(std::move(certs)),
      review_(std::move(review)),
      ssl_context_(ssl::context::tls_server),
      metrics_(*options_.metrics) {}

Status ServerCore::Init() {
  return ConfigureServerTls(ssl_context_.native_handle(), certs_.get(), {options_.enable_h2});
}

Reply ServerCore::Handle(std::string_view method, std::string_view target,
                         std::string_view content_type, std::string_view body) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  std::string_view path = target.substr(0, target.find('?'));
  AdmissionEndpoint endpoint;
  if (AdmissionEndpointForPath(path, &endpoint)) {
    if (method != "POST") {
      Reject(Rejection::kMethodNotAllowed);
      return TextReply(405, "method " + std::string(method) + " not allowed on " +
                                std::string(path) + ": admission reviews are POSTed");
    }
    if (!StartsWithNoCase(content_type, kJson)) {
      Reject(Rejection::kMediaType);
      return TextReply(
          415, "Content-Type must be application/json, got \"" + std::string(content_type) + "\"");
    }
    return Review(endpoint, body);
  }
  if (path == "/healthz" || path == "/livez") return TextReply(200, "ok");
  if (path == "/readyz") {
    if (!options_.ready || options_.ready()) return TextReply(200, "ok");
    return TextReply(503, "not ready: GPUSharingPolicy cache not synced");
  }
  // No /metrics here: it has its own port (--metrics-bind-address), where
  // each scrape is authorised; the admission port serves the API server.
  Reject(Rejection::kNotFound);
  return TextReply(404, "no handler for " + std::string(path) +
                            "; endpoints: /mutate-pods /validate-pods "
                            "/validate-gpusharingpolicies /validate-budgets /healthz /readyz");
}

Reply ServerCore::Reject(Rejection why, int status, std::string reason) {
  Reject(why);
  return TextReply(status, std::move(reason));
}

void ServerCore::Reject(Rejection why) {
  metrics_.rejections[static_cast<size_t>(why)]->Increment();
}

bool ServerCore::TryOpenConnection() {
  int64_t open = open_.fetch_add(1, std::memory_order_relaxed);
  if (open >= static_cast<int64_t>(options_.max_connections)) {
    open_.fetch_sub(1, std::memory_order_relaxed);
    rejected_.fetch_add(1, std::memory_order_relaxed);
    metrics_.refused_connections->Increment();
    return false;
  }
  accepted_.fetch_add(1, std::memory_order_relaxed);
  metrics_.open_connections->Increment();
  return true;
}

void ServerCore::CloseConnection() {
  open_.fetch_sub(1, std::memory_order_relaxed);
  metrics_.open_connections->Decrement();
}

void ServerCore::CountTimeout() {
  timed_out_.fetch_add(1, std::memory_order_relaxed);
}

void ServerCore::CountProtocol(ApplicationProtocol p) {
  if (p == ApplicationProtocol::kHttp2) {
    http2_.fetch_add(1, std::memory_order_relaxed);
    metrics_.http2_connections->Increment();
  } else {
    metrics_.http1_connections->Increment();
  }
}

AdmissionServerStats ServerCore::stats() const {
  AdmissionServerStats s;
  s.open_connections = open_.load();
  s.accepted_connections = accepted_.load();
  s.rejected_connections = rejected_.load();
  s.timed_out_connections = timed_out_.load();
  s.http2_connections = http2_.load();
  s.requests = requests_.load();
  return s;
}

Reply ServerCore::Review(AdmissionEndpoint endpoint, std::string_view body) {
  Clock& clock = *options_.clock;
  Clock::TimePoint start = clock.Now();
  AdmissionOutcome outcome;
  try {
    outcome = review_(endpoint, body);
  } catch (const std::exception& e) {
    outcome = {500, std::string("admission review failed: ") + e.what() + "\n",
               AdmissionVerdict::kBadRequest};
  }
  auto& m = metrics_.endpoints[static_cast<size_t>(endpoint)];
  m.latency->Observe(std::chrono::duration<double>(clock.Now() - start).count());
  m.verdicts[static_cast<size_t>(outcome.verdict)]->Increment();
  if (auto r = static_cast<size_t>(outcome.denial_reason);
      outcome.verdict == AdmissionVerdict::kDenied && r > 0 && r < metrics_.denials.size()) {
    metrics_.denials[r]->Increment();
  }
  std::string_view type = outcome.verdict == AdmissionVerdict::kBadRequest ? kText : kJson;
  return Reply{outcome.http_status, type, std::move(outcome.body)};
}

}  // namespace server_internal

using server_internal::kEndpoints;

bool AdmissionEndpointForPath(std::string_view path, AdmissionEndpoint* endpoint) {
  for (AdmissionEndpoint e : kEndpoints) {
    if (path.size() > 1 && path.substr(1) == AdmissionEndpointName(e)) {
      *endpoint = e;
      return true;
    }
  }
  return false;
}

std::string_view AdmissionEndpointName(AdmissionEndpoint endpoint) {
  switch (endpoint) {
    case AdmissionEndpoint::kMutatePods:
      return "mutate-pods";
    case AdmissionEndpoint::kValidatePods:
      return "validate-pods";
    case AdmissionEndpoint::kValidateGpuSharingPolicies:
      return "validate-gpusharingpolicies";
    case AdmissionEndpoint::kValidateBudgets:
      return "validate-budgets";
  }
  return "unknown";
}

}  // namespace gpu_autoscaler::webhooks
