// File: controllers/custom_metrics_server.h
//
// The manager's `custom.metrics.k8s.io/v1beta2` endpoint (registered with an
// APIService, so the kube-aggregator forwards the HPA's metric reads here):
// per-pod `gpu_utilization` and `gpu_memory_used_bytes` from the utilisation
// source the cost meter uses, pods from the manager's shared pod informer.
// The answers are built by profiling/custom_metrics.h; this is the HTTPS
// shell around it.
//
//   GPU_ASSIGN_OR_RETURN(auto authn, ResolveCustomMetricsAuthentication(flags, client));
//   auto server = CustomMetricsServer::Start(
//       {.bind_address = ":6443", .authentication = authn, .client = &client},
//       pods->store(), utilization, RealClock::Instance());
//   if (!server.ok()) ...;           // bad address, port taken, certificate
//   (*server)->port();
//
// TLS always (the aggregator speaks nothing else): tls.crt/tls.key from
// `cert_dir` (reloaded when they change), else a generated self-signed pair
// (for tests; the chart always gives a pair). Every request is
// authenticated as an aggregated API server does (front-proxy client
// certificate + X-Remote-User, x509 client certificate, or bearer token:
// reconcile/aggregated_api_auth.h), then authorised by a SubjectAccessReview
// for the attributes kube-apiserver's request-info resolver gives the path
// (CustomMetricsAccessAttributes); 401/403 are metav1.Status bodies
// (docs/profiling.md, "Custom metrics for HPA").
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
#include "reconcile/aggregated_api_auth.h"
#include "reconcile/request_auth.h"

namespace gpu_autoscaler::cost {
class UtilizationSource;
}
namespace gpu_autoscaler::net {
class HttpServer;
}
namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::controllers {

struct CustomMetricsServerOptions {
  std::string bind_address{};  // host:port or :port
  std::string cert_dir{};      // tls.crt/tls.key; empty: generated self-signed
  // Who may call: kube-system/extension-apiserver-authentication or flags.
  reconcile::DelegatedAuthConfig authentication{};
  // TokenReview and SubjectAccessReview; required, must outlive the server.
  kube::RestClient* client = nullptr;
  reconcile::RequestAuthorizerOptions authorizer{};
};

// The SubjectAccessReview attributes of a request path, as kube-apiserver's
// request-info resolver derives them: under /apis/custom.metrics.k8s.io/v1beta2/
// "namespaces/NS/pods/NAME/METRIC" is resource "pods", subresource METRIC,
// name NAME ("*" for a selector read), namespace NS, verb get (list without a
// name); discovery paths are non-resource URLs with verb get.
reconcile::AccessAttributes CustomMetricsAccessAttributes(std::string_view path);

// The manager's --requestheader-client-ca-file, --requestheader-allowed-names
// (comma-separated) and --client-ca-file.
struct CustomMetricsAuthFlags {
  std::string requestheader_client_ca_file{};
  std::string requestheader_allowed_names{};
  bool requestheader_allowed_names_set = false;
  std::string client_ca_file{};
};

// The callers' authentication: from the flags when
// --requestheader-client-ca-file is given (default headers X-Remote-User,
// X-Remote-Group, X-Remote-Extra-), else from ConfigMap
// kube-system/extension-apiserver-authentication, the other two flags
// overriding it. Errors say what is missing (the ConfigMap, a file).
Result<reconcile::DelegatedAuthConfig> ResolveCustomMetricsAuthentication(
    const CustomMetricsAuthFlags& flags, kube::RestClient& client);

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
  std::unique_ptr<reconcile::RequestAuthorizer> authorizer_;
  std::unique_ptr<reconcile::AggregatedApiAuthenticator> authenticator_;
  std::unique_ptr<net::HttpServer> server_;
  std::string generated_dir_;
  std::string generated_ca_;
};

}  // namespace gpu_autoscaler::controllers
