// File: tests/support/secure_metrics.h
//
// What the secure-/metrics process tests share (manager, scheduler, node
// agent): a static token file for the embedded API server with an allowed
// and a forbidden user, the RBAC a chart grants Prometheus (get on the
// non-resource URL /metrics), and one scrape over HTTPS or plain HTTP.
//
//   WriteMetricsTokenFile(dir + "/tokens.csv");
//   server = TestApiServer::Start({.extra_args = {"--token-auth-file=" + dir + "/tokens.csv"}});
//   ASSERT_TRUE(GrantMetricsReader(*client).ok());
//   kube::HttpResponse r = ScrapeMetrics("https", port, "", kPrometheusToken);
//
// Thread-safety: plain functions; use from the test's main thread.
#pragma once

#include <string>

#include "common/status.h"
#include "kube/transport.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::testing {

// system:serviceaccount:monitoring:prometheus: allowed once GrantMetricsReader ran.
inline constexpr const char* kPrometheusToken = "prometheus-token";
// "bob": authenticated, never granted.
inline constexpr const char* kUnprivilegedToken = "bob-token";

// kube-apiserver's --token-auth-file format (token,user,uid,"groups").
void WriteMetricsTokenFile(const std::string& path);

// ClusterRole gpu-autoscaler-metrics-reader (nonResourceURLs /metrics, get)
// bound to the ServiceAccount monitoring/prometheus.
Status GrantMetricsReader(kube::RestClient& client);

// GET <scheme>://127.0.0.1:<port><path>; `ca_pem` empty: the certificate is
// not verified. `token` empty: no Authorization header. A transport failure
// is a failed expectation and an empty response (status 0).
kube::HttpResponse ScrapeMetrics(const std::string& scheme, int port, const std::string& ca_pem,
                                 const std::string& token, const std::string& path = "/metrics");

}  // namespace gpu_autoscaler::testing
