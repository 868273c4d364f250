#include "support/secure_metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>

#include "kube/resource.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::testing {
namespace {

using nlohmann::json;

const kube::GroupVersionResource kClusterRoles{"rbac.authorization.k8s.io", "v1", "clusterroles",
                                               false};
const kube::GroupVersionResource kClusterRoleBindings{"rbac.authorization.k8s.io", "v1",
                                                      "clusterrolebindings", false};

}  // namespace

void WriteMetricsTokenFile(const std::string& path) {
  std::ofstream(path) << "# token,user,uid,groups\n"
                      << kPrometheusToken
                      << ",system:serviceaccount:monitoring:prometheus,uid-p,"
                         "\"system:serviceaccounts,system:serviceaccounts:monitoring\"\n"
                      << kUnprivilegedToken << ",bob,uid-b\n";
}

Status GrantMetricsReader(kube::RestClient& client) {
  json role = {{"apiVersion", "rbac.authorization.k8s.io/v1"},
               {"kind", "ClusterRole"},
               {"metadata", {{"name", "gpu-autoscaler-metrics-reader"}}},
               {"rules", {{{"nonResourceURLs", {"/metrics"}}, {"verbs", {"get"}}}}}};
  if (auto r = client.Create({kClusterRoles}, role); !r.ok()) return r.error().ToStatus();
  json binding = {
      {"apiVersion", "rbac.authorization.k8s.io/v1"},
      {"kind", "ClusterRoleBinding"},
      {"metadata", {{"name", "prometheus-metrics"}}},
      {"roleRef",
       {{"apiGroup", "rbac.authorization.k8s.io"},
        {"kind", "ClusterRole"},
        {"name", "gpu-autoscaler-metrics-reader"}}},
      {"subjects",
       {{{"kind", "ServiceAccount"}, {"name", "prometheus"}, {"namespace", "monitoring"}}}}};
  if (auto r = client.Create({kClusterRoleBindings}, binding); !r.ok()) return r.error().ToStatus();
  return Status::Ok();
}

kube::HttpResponse ScrapeMetrics(const std::string& scheme, int port, const std::string& ca_pem,
                                 const std::string& token, const std::string& path) {
  kube::ClientConfig cfg;
  cfg.server = scheme + "://127.0.0.1:" + std::to_string(port);
  cfg.ca_pem = ca_pem;
  cfg.insecure_skip_tls_verify = ca_pem.empty();
  auto transport = kube::NewCurlTransport(cfg);
  EXPECT_TRUE(transport.ok()) << transport.error().ToString();
  if (!transport.ok()) return {};
  kube::HttpRequest req{"GET", cfg.server + path, {}, "", std::chrono::seconds(10)};
  if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
  auto reply = (*transport)->Do(req);
  EXPECT_TRUE(reply.ok()) << (reply.ok() ? "" : reply.error().ToString());
  return reply.ok() ? *reply : kube::HttpResponse{};
}

}  // namespace gpu_autoscaler::testing
