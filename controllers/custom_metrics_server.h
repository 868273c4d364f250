// File: controllers/custom_metrics_server.h
//
// The manager's `custom.metrics.k8s.io/v1beta2` endpoint (registered with an
// APIService, so the kube-aggregator forwards the HPA's metric reads here):
// per-pod `gpu_utilization` and `gpu_memory_used_bytes` from the utilisation
// source the cost meter uses, pods from the manager's shared pod informer.
// The answers are built by profiling/custom_metrics.h; this is the HTTPS
// shell around it.
//
//   auto server = CustomMetricsServer::Start({.bind_address = ":6443"}, pods->store(),
//                                            utilization, RealClock::Instance());
//   if (!server.ok()) ...;           // bad address, port taken, certificate
//   (*server)->port();
//
// TLS always (the aggregator speaks nothing else): tls.crt/tls.key from
// `cert_dir` (reloaded when they change), else a generated self-signed pair
// (the APIService then needs insecureSkipTLSVerify). Not authenticated: the
// aggregator proves itself with its front-proxy client certificate, which
// net::HttpServer does not verify (docs/profiling.md, "Custom metrics for HPA").
// Each metric read fetches the source once (the HPA reads every 15 s per HPA).
// No source configured or the source failing: 503 ServiceUnavailable Status.
//
// Thread-safety: the handler runs on connection threads; the store and the
// source are safe to share (kube::Store readers, UtilizationSource::Fetch).
#pragma once

#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "kube/pod_view.h"
#include "kube/store.h"

namespace gpu_autoscaler::cost {
class UtilizationSource;
}
namespace gpu_autoscaler::net {
class HttpServer;
}

namespace gpu_autoscaler::controllers {

struct CustomMetricsServerOptions {
  std::string bind_address{};  // host:port or :port
  std::string cert_dir{};      // tls.crt/tls.key; empty: generated self-signed
};

class CustomMetricsServer {
 public:
  // `pods` and `source` (may be null) must outlive the server.
  static Result<std::unique_ptr<CustomMetricsServer>> Start(
      const CustomMetricsServerOptions& options, const kube::Store<kube::PodView>& pods,
      cost::UtilizationSource* source, Clock& clock);
  ~CustomMetricsServer();
  int port() const;
  // The generated CA (PEM), "" with --custom-metrics-cert-dir.
  const std::string& generated_ca() const { return generated_ca_; }

 private:
  CustomMetricsServer() = default;
  std::unique_ptr<net::HttpServer> server_;
  std::string generated_dir_;
  std::string generated_ca_;
};

}  // namespace gpu_autoscaler::controllers
