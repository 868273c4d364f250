// File: tests/charts/chart_rendering.h
//
// What the chart tests share: rendering charts/gpu-autoscaler with
// hack/helm-template, the kinds it renders and where they are served, each
// program's --help flags, the API schema check (tests/charts/check_schemas.py)
// and the check that a query names only exported metrics. Test code, header
// only, included by chart_integration_test.cc and chart_rendering_test.cc.
//
// Thread-safety: HelpFlags caches without a lock; call from the test thread.
#pragma once

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/yaml_json.h"
#include "kube/rest_client.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::chart_testing {

using nlohmann::json;
using testing::BinaryPath;
using testing::CommandResult;
using testing::RunCommand;
using testing::SourcePath;

inline constexpr char kRelease[] = "gpa";

struct Rendering {
  int exit_code = -1;
  std::string error;
  std::string yaml;
  std::vector<json> objects;
};

inline Rendering Render(const std::string& ns, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {BinaryPath("helm-template/helm-template"), "--namespace", ns,
                                   "--include-crds"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(kRelease);
  args.push_back(SourcePath("charts/gpu-autoscaler"));
  CommandResult r = RunCommand(args);
  Rendering out;
  out.exit_code = r.exit_code;
  out.error = r.err;
  out.yaml = r.out;
  if (r.exit_code != 0) return out;
  auto docs = apiserver::YamlDocumentsToJson(r.out);
  if (!docs.ok()) {
    out.exit_code = 100;
    out.error = "rendered YAML does not parse: " + docs.error().ToString();
    return out;
  }
  out.objects = std::move(docs).value();
  return out;
}

// The kinds the chart renders and where they live.
inline const std::map<std::string, kube::GroupVersionResource>& Kinds() {
  static const auto* kinds = new std::map<std::string, kube::GroupVersionResource>{
      {"v1/ServiceAccount", {"", "v1", "serviceaccounts", true}},
      {"v1/ConfigMap", {"", "v1", "configmaps", true}},
      {"v1/Secret", {"", "v1", "secrets", true}},
      {"v1/Service", {"", "v1", "services", true}},
      {"apps/v1/Deployment", {"apps", "v1", "deployments", true}},
      {"apps/v1/DaemonSet", {"apps", "v1", "daemonsets", true}},
      {"policy/v1/PodDisruptionBudget", {"policy", "v1", "poddisruptionbudgets", true}},
      {"policy/v1beta1/PodDisruptionBudget", {"policy", "v1beta1", "poddisruptionbudgets", true}},
      {"admissionregistration.k8s.io/v1/MutatingWebhookConfiguration",
       {"admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", false}},
      {"admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration",
       {"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", false}},
      {"apiextensions.k8s.io/v1/CustomResourceDefinition",
       {"apiextensions.k8s.io", "v1", "customresourcedefinitions", false}},
      {"rbac.authorization.k8s.io/v1/ClusterRole",
       {"rbac.authorization.k8s.io", "v1", "clusterroles", false}},
      {"rbac.authorization.k8s.io/v1/ClusterRoleBinding",
       {"rbac.authorization.k8s.io", "v1", "clusterrolebindings", false}},
      {"rbac.authorization.k8s.io/v1/Role", {"rbac.authorization.k8s.io", "v1", "roles", true}},
      {"rbac.authorization.k8s.io/v1/RoleBinding",
       {"rbac.authorization.k8s.io", "v1", "rolebindings", true}},
      {"networking.k8s.io/v1/NetworkPolicy", {"networking.k8s.io", "v1", "networkpolicies", true}},
      {"apiregistration.k8s.io/v1/APIService",
       {"apiregistration.k8s.io", "v1", "apiservices", false}},
      {"cert-manager.io/v1/Issuer", {"cert-manager.io", "v1", "issuers", true}},
      {"cert-manager.io/v1/Certificate", {"cert-manager.io", "v1", "certificates", true}},
      {"monitoring.coreos.com/v1/ServiceMonitor",
       {"monitoring.coreos.com", "v1", "servicemonitors", true}},
      {"monitoring.coreos.com/v1/PodMonitor", {"monitoring.coreos.com", "v1", "podmonitors", true}},
      {"monitoring.coreos.com/v1/PrometheusRule",
       {"monitoring.coreos.com", "v1", "prometheusrules", true}},
  };
  return *kinds;
}

inline std::string KindKey(const json& obj) {
  return obj.value("apiVersion", "") + "/" + obj.value("kind", "");
}

// Flag names ("--x") a program's --help lists.
inline std::set<std::string> HelpFlags(const std::string& program) {
  static std::map<std::string, std::set<std::string>> cache;
  auto it = cache.find(program);
  if (it != cache.end()) return it->second;
  CommandResult r = RunCommand({BinaryPath(program), "--help"});
  std::set<std::string> flags;
  const std::string text = r.out + r.err;
  for (size_t i = text.find("--"); i != std::string::npos; i = text.find("--", i + 2)) {
    size_t end = i + 2;
    while (end < text.size() &&
           (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '-'))
      ++end;
    if (end > i + 2) flags.insert(text.substr(i, end - i));
  }
  cache[program] = flags;
  return flags;
}

inline std::vector<json> Containers(const json& obj) {
  std::vector<json> out;
  for (const json& c : obj["spec"]["template"]["spec"]["containers"])
    out.push_back(c);
  return out;
}

inline const json* Find(const std::vector<json>& objects, const std::string& kind,
                        const std::string& name) {
  for (const json& o : objects)
    if (o.value("kind", "") == kind && o["metadata"].value("name", "") == name) return &o;
  return nullptr;
}

// Runs tests/charts/check_schemas.py (the Kubernetes API schema from Debian's
// python3-kubernetes models) on a rendering.
inline CommandResult CheckSchemas(const std::string& yaml) {
  const std::string dir = testing::MakeTempDir("gpa-chart-schema");
  {
    std::ofstream out(dir + "/rendered.yaml");
    out << yaml;
  }
  CommandResult r = RunCommand(
      {"/usr/bin/python3", SourcePath("tests/charts/check_schemas.py"), dir + "/rendered.yaml"});
  std::filesystem::remove_all(dir);
  return r;
}

// Every metric a query names is one the programs export: its name is in their sources
// (histogram series with the _bucket suffix stripped).
inline void ExpectExportedMetrics(const std::string& expr, const std::string& where) {
  static const std::string* sources = [] {
    auto* text = new std::string;
    for (const char* f :
         {"webhooks/server_core.cc", "webhooks/webhook_main.cc", "node-agent/metrics.cc",
          "node-agent/pressure_evictor.cc", "node-agent/qos_controller.cc",
          "controllers/cost_metering.cc", "controllers/budget_controller.cc",
          "controllers/node_gpu_inventory.cc", "controllers/sharing_policy_controller.cc",
          "controllers/gpu_node_pool_controller.cc", "scheduler/metrics.cc",
          "src/reconcile/controller.cc", "src/kube/workqueue.cc"})
      *text += testing::ReadFileOrDie(SourcePath(f));
    return text;
  }();
  static const std::regex metric(
      R"((gpu_autoscaler_[a-z_]+|DCGM_FI_[A-Z_]+|controller_runtime_[a-z_]+|workqueue_[a-z_]+))");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), metric);
       it != std::sregex_iterator(); ++it) {
    std::string name = it->str();
    if (name.ends_with("_bucket")) name.resize(name.size() - 7);
    EXPECT_NE(sources->find("\"" + name + "\""), std::string::npos)
        << where << ": no program exports " << name;
  }
}

}  // namespace gpu_autoscaler::chart_testing
