// The Helm chart (charts/gpu-autoscaler), rendered by hack/helm-template (a `helm
// template` equivalent; Debian has no helm) with its default values and with every
// documented option, then:
//  - every object is created with server-side dry-run (dryRun=All) on the embedded API
//    server, which validates object metadata, pod templates, PodDisruptionBudgets,
//    ConfigMaps, Secrets and CRDs; kinds it does not serve are listed explicitly;
//  - the kinds the server does not serve (RBAC, NetworkPolicy, cert-manager, Prometheus
//    Operator) are checked here against the fields their schemas require;
//  - each container's flags exist in its program's --help;
//  - security contexts, webhook scoping, and RBAC rules equal to what the programs call.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <ostream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/yaml_json.h"
#include "common/base64.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::BinaryPath;
using testing::CommandResult;
using testing::RunCommand;
using testing::SourcePath;

constexpr char kRelease[] = "gpa";

struct Rendering {
  int exit_code = -1;
  std::string error;
  std::string yaml;
  std::vector<json> objects;
};

Rendering Render(const std::string& ns, const std::vector<std::string>& extra) {
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
const std::map<std::string, kube::GroupVersionResource>& Kinds() {
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

std::string KindKey(const json& obj) {
  return obj.value("apiVersion", "") + "/" + obj.value("kind", "");
}

// A documented option set: the flags given to the renderer.
struct Scenario {
  std::string name;
  std::vector<std::string> flags;
};

// Names the scenario in gtest's messages (instead of its bytes).
void PrintTo(const Scenario& s, std::ostream* os) {
  *os << s.name;
}

std::vector<Scenario> Scenarios() {
  const std::string cm = "--api-versions=cert-manager.io/v1";
  const std::string mon = "--api-versions=monitoring.coreos.com/v1";
  return {
      {"defaults", {}},
      {"cert_manager_and_prometheus_operator_present", {cm, mon}},
      {"cert_manager_with_cluster_issuer",
       {cm, "--set", "webhook.tls.certManager.issuerRef.name=ca", "--set",
        "webhook.tls.certManager.issuerRef.kind=ClusterIssuer"}},
      {"tls_helm_despite_cert_manager", {cm, "--set", "webhook.tls.mode=helm"}},
      {"tls_self_signed", {"--set", "webhook.tls.mode=selfSigned"}},
      {"tls_self_signed_with_extender",
       {"--set", "webhook.tls.mode=selfSigned", "--set", "scheduler.mode=extender"}},
      {"webhook_off_extender_on",
       {"--set", "webhook.enabled=false", "--set", "scheduler.mode=extender"}},
      {"scheduler_extender_https",
       {"--set", "scheduler.mode=extender", "--set", "scheduler.replicas=1"}},
      {"scheduler_extender_https_cert_manager", {cm, "--set", "scheduler.mode=extender"}},
      {"scheduler_extender_http",
       {"--set", "scheduler.mode=extender", "--set", "scheduler.extender.tls=false"}},
      {"monitoring_forced_on", {"--set", "monitoring.serviceMonitor=true"}},
      {"custom_metrics_for_hpa", {"--set", "customMetrics.enabled=true"}},
      {"custom_metrics_cert_manager", {cm, "--set", "customMetrics.enabled=true"}},
      {"node_agent_non_root", {"--set", "nodeAgent.runAsRoot=false"}},
      {"spot_interruption_and_cluster_api",
       {"--set", "nodeAgent.interruption.source=aws", "--set", "manager.clusterAPI=true"}},
      {"monitoring_off_despite_operator", {mon, "--set", "monitoring.serviceMonitor=false"}},
      {"node_agent_and_scheduler_off",
       {"--set", "nodeAgent.enabled=false", "--set", "scheduler.enabled=false"}},
      {"everything_optional_off",
       {"--set", "networkPolicy.enabled=false", "--set", "rbac.create=false", "--set",
        "manager.leaderElection.enabled=false", "--set", "scheduler.leaderElection.enabled=false",
        "--set", "nodeAgent.hostPID=false"}},
      {"node_agent_config",
       {"--set", "nodeAgent.config.pressureEviction.memory.threshold=30", "--set-string",
        "nodeAgent.config.pressureEviction.memory.window=90s", "--set",
        "nodeAgent.cgroupDriver=cgroupfs"}},
      {"manager_postgres_prometheus_config",
       {"--set", "manager.costDatabase.postgresSecret.name=cost-db", "--set",
        "manager.prometheusURL=http://prometheus.monitoring:9090", "--set",
        "manager.controllers=*\\,-cost", "--set-string", "manager.config.cost.interval=30s"}},
      {"overrides",
       {"--set", "fullnameOverride=gpu",
        "--set", "image.tag=dev",
        "--set", "imagePullSecrets[0].name=regcred",
        "--set", "commonLabels.team=ml",
        "--set", "logFormat=text",
        "--set", "logLevel=debug",
        "--set", "webhook.failurePolicy.validatePods=Ignore",
        "--set", "webhook.excludedNamespaces={kube-system,monitoring}",
        "--set", "nodeAgent.runtimeClassName=nvidia",
        "--set", "nodeAgent.nvmlLibrary=/usr/lib/libnvidia-ml.so.1",
        "--set", "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring",
        "--set", "monitoring.labels.release=prometheus",
        mon}},
  };
}

class ChartTest : public ::testing::TestWithParam<Scenario> {
 protected:
  static void SetUpTestSuite() {
    // No CRDs at start: the chart's CRDs are then dry-run created like the rest.
    empty_dir_ = new std::string(testing::MakeTempDir("gpa-chart-crds"));
    // 1.21: policy/v1 PodDisruptionBudgets, which the default capabilities select.
    server_ = testing::TestApiServer::Start(
                  {.extra_args = {"--crd-dir", *empty_dir_, "--emulated-version=1.21"}})
                  .release();
    ASSERT_NE(server_, nullptr) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    client_ = client->release();
    ns_ = new std::string(server_->CreateTestNamespace("gpa-system"));
  }
  static void TearDownTestSuite() {
    delete client_;
    delete server_;
    delete ns_;
    delete empty_dir_;
  }
  static bool Served(const kube::GroupVersionResource& gvr) {
    const std::string path =
        gvr.group.empty() ? "/api/" + gvr.version : "/apis/" + gvr.group + "/" + gvr.version;
    auto reply = client_->Request("GET", path);
    if (!reply.ok()) return false;
    auto list = json::parse(reply->body, nullptr, false);
    for (const auto& r : list.value("resources", json::array()))
      if (r.value("name", "") == gvr.resource) return true;
    return false;
  }

  static inline testing::TestApiServer* server_ = nullptr;
  static inline kube::RestClient* client_ = nullptr;
  static inline std::string* ns_ = nullptr;
  static inline std::string* empty_dir_ = nullptr;
};

// Kinds the embedded API server does not serve; they are checked by CheckUnservedKind
// instead. When the server learns one, this test fails so the list is kept honest.
const std::set<std::string> kUnservedKinds = {
    "networking.k8s.io/v1/NetworkPolicy",   "cert-manager.io/v1/Issuer",
    "cert-manager.io/v1/Certificate",       "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PodMonitor",  "monitoring.coreos.com/v1/PrometheusRule",
    "apiregistration.k8s.io/v1/APIService",
};
// Served (stored, for SubjectAccessReviews) but not validated by the embedded
// server: dry-run and also checked field by field.
const std::set<std::string> kServedUnvalidatedKinds = {
    "rbac.authorization.k8s.io/v1/ClusterRole", "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
    "rbac.authorization.k8s.io/v1/Role", "rbac.authorization.k8s.io/v1/RoleBinding"};

bool IsStringArray(const json& v, bool allow_empty = false) {
  if (!v.is_array() || (!allow_empty && v.empty())) return false;
  return std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); });
}

// The required fields and types of the kinds the embedded server does not serve (from
// their API references: rbac/v1, networking/v1, cert-manager.io/v1, monitoring/v1).
void CheckUnservedKind(const json& obj, const std::string& where) {
  const std::string kind = obj.value("kind", "");
  static const std::set<std::string> kVerbs = {"get",    "list",  "watch",  "create",
                                               "update", "patch", "delete", "deletecollection"};
  if (kind == "ClusterRole" || kind == "Role") {
    ASSERT_TRUE(obj["rules"].is_array()) << where;
    for (const json& rule : obj["rules"]) {
      for (const auto& [k, v] : rule.items())
        EXPECT_TRUE(k == "apiGroups" || k == "resources" || k == "verbs" || k == "resourceNames" ||
                    k == "nonResourceURLs")
            << where << ": unknown field rules[]." << k;
      if (rule.contains("nonResourceURLs")) {
        // A non-resource rule names URLs only, and only in a ClusterRole.
        EXPECT_TRUE(IsStringArray(rule["nonResourceURLs"])) << where;
        EXPECT_EQ(kind, "ClusterRole") << where;
        EXPECT_FALSE(rule.contains("apiGroups") || rule.contains("resources")) << where;
      } else {
        EXPECT_TRUE(IsStringArray(rule["apiGroups"])) << where;
        EXPECT_TRUE(IsStringArray(rule["resources"])) << where;
      }
      ASSERT_TRUE(IsStringArray(rule["verbs"])) << where;
      for (const json& verb : rule["verbs"])
        EXPECT_TRUE(kVerbs.count(verb.get<std::string>())) << where << ": verb " << verb;
      if (rule.contains("resourceNames")) {
        EXPECT_TRUE(IsStringArray(rule["resourceNames"]));
      }
    }
  } else if (kind == "ClusterRoleBinding" || kind == "RoleBinding") {
    const json& ref = obj["roleRef"];
    EXPECT_EQ(ref.value("apiGroup", ""), "rbac.authorization.k8s.io") << where;
    EXPECT_EQ(ref.value("kind", ""), kind == "RoleBinding" ? "Role" : "ClusterRole") << where;
    EXPECT_FALSE(ref.value("name", "").empty()) << where;
    ASSERT_TRUE(obj["subjects"].is_array()) << where;
    for (const json& s : obj["subjects"]) {
      EXPECT_EQ(s.value("kind", ""), "ServiceAccount") << where;
      EXPECT_FALSE(s.value("name", "").empty()) << where;
      EXPECT_FALSE(s.value("namespace", "").empty()) << where;
    }
  } else if (kind == "NetworkPolicy") {
    const json& spec = obj["spec"];
    EXPECT_TRUE(spec["podSelector"].is_object()) << where;
    EXPECT_EQ(spec["policyTypes"], json::array({"Ingress"})) << where;
    for (const json& rule : spec["ingress"]) {
      for (const json& port : rule["ports"]) {
        EXPECT_TRUE(port["port"].is_number_integer()) << where;
        EXPECT_EQ(port.value("protocol", ""), "TCP") << where;
      }
      if (rule.contains("from")) {
        EXPECT_TRUE(rule["from"].is_array()) << where;
      }
    }
  } else if (kind == "APIService") {
    // kube-aggregator's registration: the name is "<version>.<group>" and the service
    // is a port on a Service the chart renders.
    const json& spec = obj["spec"];
    EXPECT_EQ(obj["metadata"].value("name", ""),
              spec.value("version", "") + "." + spec.value("group", ""))
        << where;
    EXPECT_TRUE(spec["groupPriorityMinimum"].is_number_integer()) << where;
    EXPECT_TRUE(spec["versionPriority"].is_number_integer()) << where;
    EXPECT_FALSE(spec["service"].value("name", "").empty()) << where;
    EXPECT_FALSE(spec["service"].value("namespace", "").empty()) << where;
    EXPECT_TRUE(spec["service"]["port"].is_number_integer()) << where;
  } else if (kind == "Issuer") {
    EXPECT_TRUE(obj["spec"]["selfSigned"].is_object()) << where;
  } else if (kind == "Certificate") {
    const json& spec = obj["spec"];
    EXPECT_FALSE(spec.value("secretName", "").empty()) << where;
    EXPECT_TRUE(IsStringArray(spec["dnsNames"])) << where;
    EXPECT_FALSE(spec["issuerRef"].value("name", "").empty()) << where;
    EXPECT_TRUE(spec["duration"].is_string()) << where;
  } else if (kind == "ServiceMonitor" || kind == "PodMonitor") {
    const json& spec = obj["spec"];
    EXPECT_TRUE(spec["selector"]["matchLabels"].is_object()) << where;
    const json& endpoints = spec[kind == "ServiceMonitor" ? "endpoints" : "podMetricsEndpoints"];
    ASSERT_TRUE(endpoints.is_array() && !endpoints.empty()) << where;
    for (const json& e : endpoints) {
      EXPECT_TRUE(e["port"].is_string()) << where;
      EXPECT_EQ(e.value("path", ""), "/metrics") << where;
    }
  } else if (kind == "PrometheusRule") {
    // The rules themselves are checked by promtool (ChartAlertsTest).
    ASSERT_TRUE(obj["spec"]["groups"].is_array()) << where;
    for (const json& group : obj["spec"]["groups"]) {
      EXPECT_FALSE(group.value("name", "").empty()) << where;
      for (const json& rule : group["rules"]) {
        EXPECT_FALSE(rule.value("alert", "").empty()) << where;
        EXPECT_FALSE(rule.value("expr", "").empty()) << where;
      }
    }
  } else {
    ADD_FAILURE() << where << ": no check for kind " << kind;
  }
}

// Flag names ("--x") a program's --help lists.
std::set<std::string> HelpFlags(const std::string& program) {
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

std::vector<json> Containers(const json& obj) {
  std::vector<json> out;
  for (const json& c : obj["spec"]["template"]["spec"]["containers"])
    out.push_back(c);
  return out;
}

const json* Find(const std::vector<json>& objects, const std::string& kind,
                 const std::string& name) {
  for (const json& o : objects)
    if (o.value("kind", "") == kind && o["metadata"].value("name", "") == name) return &o;
  return nullptr;
}

// Runs tests/charts/check_schemas.py (the Kubernetes API schema from Debian's
// python3-kubernetes models) on a rendering.
CommandResult CheckSchemas(const std::string& yaml) {
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
void ExpectExportedMetrics(const std::string& expr, const std::string& where) {
  static const std::string* sources = [] {
    auto* text = new std::string;
    for (const char* f :
         {"webhooks/server.cc", "webhooks/webhook_main.cc", "node-agent/metrics.cc",
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

TEST_P(ChartTest, EveryBuiltInObjectMatchesTheApiSchema) {
  Rendering r = Render(*ns_, GetParam().flags);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  CommandResult check = CheckSchemas(r.yaml);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("checked "), std::string::npos) << check.out << check.err;
}

TEST_P(ChartTest, RendersAndEveryObjectIsAccepted) {
  const Scenario& scenario = GetParam();
  Rendering r = Render(*ns_, scenario.flags);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  ASSERT_FALSE(r.objects.empty());

  std::set<std::string> seen;
  int applied = 0;
  for (const json& obj : r.objects) {
    const std::string key = KindKey(obj);
    const std::string name = obj["metadata"].value("name", "");
    const std::string where = scenario.name + ": " + key + " " + name;
    ASSERT_TRUE(Kinds().count(key)) << where << ": a kind this test does not know";
    ASSERT_FALSE(name.empty()) << where;
    const kube::GroupVersionResource& gvr = Kinds().at(key);
    // The one object outside the release namespace: an aggregated API server's
    // permission to read kube-system/extension-apiserver-authentication.
    const bool auth_reader =
        key == "rbac.authorization.k8s.io/v1/RoleBinding" &&
        obj["roleRef"].value("name", "") == "extension-apiserver-authentication-reader";
    const std::string object_ns = auth_reader ? "kube-system" : *ns_;
    if (gvr.namespaced) {
      EXPECT_EQ(obj["metadata"].value("namespace", ""), object_ns) << where;
    } else {
      EXPECT_FALSE(obj["metadata"].contains("namespace")) << where;
    }
    seen.insert(key);
    if (kUnservedKinds.count(key)) {
      EXPECT_FALSE(Served(gvr)) << key << " is served now: apply it instead of checking here";
      CheckUnservedKind(obj, where);
      continue;
    }
    ASSERT_TRUE(Served(gvr)) << where << ": the embedded API server does not serve it";
    if (kServedUnvalidatedKinds.count(key)) CheckUnservedKind(obj, where);
    auto created = client_->Create(kube::ObjectRef{gvr, gvr.namespaced ? object_ns : ""}, obj,
                                   kube::WriteOptions{.dry_run = true});
    EXPECT_TRUE(created.ok()) << where << ": " << created.error().ToString();
    ++applied;
  }
  // Dry run: nothing was stored.
  auto deployments = client_->List(kube::ObjectRef{{"apps", "v1", "deployments", true}, *ns_});
  ASSERT_TRUE(deployments.ok());
  EXPECT_TRUE((*deployments)["items"].empty());
  EXPECT_GT(applied, 0);
  // Every scenario installs the CRDs, and at least the manager and the webhook.
  EXPECT_TRUE(seen.count("apiextensions.k8s.io/v1/CustomResourceDefinition"));
  EXPECT_TRUE(seen.count("apps/v1/Deployment"));
}

TEST_P(ChartTest, EveryCrdInTheRepositoryIsInstalled) {
  Rendering r = Render(*ns_, GetParam().flags);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  std::set<std::string> rendered;
  for (const json& obj : r.objects)
    if (obj.value("kind", "") == "CustomResourceDefinition")
      rendered.insert(obj["metadata"].value("name", ""));
  // Every CRD file in crds/, as the chart's crds/ link picks them up.
  std::set<std::string> in_repo;
  for (const auto& entry : std::filesystem::directory_iterator(SourcePath("crds"))) {
    if (entry.path().extension() != ".yaml") continue;
    auto docs = apiserver::YamlDocumentsToJson(testing::ReadFileOrDie(entry.path().string()));
    ASSERT_TRUE(docs.ok()) << entry.path();
    for (const json& d : *docs)
      if (d.value("kind", "") == "CustomResourceDefinition")
        in_repo.insert(d["metadata"].value("name", ""));
  }
  EXPECT_FALSE(in_repo.empty());
  EXPECT_EQ(rendered, in_repo);
}

TEST_P(ChartTest, ContainersSetOnlyRealFlagsAndRunRestricted) {
  Rendering r = Render(*ns_, GetParam().flags);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  for (const json& obj : r.objects) {
    const std::string kind = obj.value("kind", "");
    if (kind != "Deployment" && kind != "DaemonSet") continue;
    const json& pod = obj["spec"]["template"]["spec"];
    const std::string where = kind + " " + obj["metadata"].value("name", "");
    EXPECT_EQ(pod["securityContext"].value("runAsNonRoot", false), true) << where;
    EXPECT_EQ(pod["securityContext"]["seccompProfile"].value("type", ""), "RuntimeDefault");
    EXPECT_FALSE(pod.value("hostNetwork", false)) << where;
    EXPECT_NE(Find(r.objects, "ServiceAccount", pod.value("serviceAccountName", "")), nullptr)
        << where << " runs as a ServiceAccount the chart does not create";
    EXPECT_FALSE(pod.contains("hostIPC")) << where;
    for (const json& volume : pod.value("volumes", json::array())) {
      if (volume.contains("secret")) {
        // Every Secret a pod mounts is rendered, or issued by a rendered Certificate.
        const std::string secret = volume["secret"].value("secretName", "");
        bool issued = Find(r.objects, "Secret", secret) != nullptr;
        for (const json& o : r.objects)
          issued = issued || (o.value("kind", "") == "Certificate" &&
                              o["spec"].value("secretName", "") == secret);
        EXPECT_TRUE(issued) << where << " mounts Secret " << secret << ", which nothing creates";
      }
      if (volume.contains("hostPath")) {
        // Only the node agent reads host paths, read-only (docs/node-agent.md): sysfs
        // (NUMA), procfs (PSI), the cgroup tree (pods' usage and PSI) and the kubelet's
        // pod-resources socket.
        EXPECT_EQ(kind, "DaemonSet") << where;
        const std::set<std::string> allowed = {"/sys", "/proc", "/sys/fs/cgroup",
                                               "/var/lib/kubelet/pod-resources"};
        EXPECT_EQ(allowed.count(volume["hostPath"].value("path", "")), 1u)
            << where << " mounts " << volume["hostPath"].dump();
      }
    }
    for (const json& c : Containers(obj)) {
      const json& sc = c["securityContext"];
      EXPECT_EQ(sc.value("allowPrivilegeEscalation", true), false) << where;
      EXPECT_EQ(sc.value("readOnlyRootFilesystem", false), true) << where;
      if (kind == "DaemonSet" && sc.value("runAsUser", -1) == 0) {
        // The node agent, as user 0 for the kubelet's pod-resources socket
        // (nodeAgent.runAsRoot, on by default): the only container that may.
        EXPECT_EQ(obj["metadata"]["labels"].value("app.kubernetes.io/component", ""), "node-agent")
            << where;
        EXPECT_EQ(sc.value("runAsNonRoot", true), false) << where;
      } else {
        EXPECT_EQ(sc.value("runAsNonRoot", false), true) << where;
      }
      EXPECT_FALSE(sc.value("privileged", false)) << where;
      EXPECT_EQ(sc["capabilities"]["drop"], json::array({"ALL"})) << where;
      EXPECT_FALSE(sc["capabilities"].contains("add")) << where;
      EXPECT_EQ(sc["seccompProfile"].value("type", ""), "RuntimeDefault") << where;
      for (const json& m : c.value("volumeMounts", json::array())) {
        const std::string path = m.value("mountPath", "");
        if (path.starts_with("/host/") || path == "/var/lib/kubelet/pod-resources") {
          EXPECT_TRUE(m.value("readOnly", false)) << where << " " << path;
        }
      }

      const std::string command = c["command"][0].get<std::string>();
      const std::string program = command.substr(command.rfind('/') + 1);
      const std::set<std::string> known = HelpFlags(program);
      ASSERT_GT(known.size(), 5u) << program << " --help listed no flags";
      for (const json& arg : c["args"]) {
        std::string flag = arg.get<std::string>();
        flag = flag.substr(0, flag.find('='));
        EXPECT_TRUE(known.count(flag)) << where << ": " << program << " has no flag " << flag;
      }
    }
    if (kind == "DaemonSet") {
      // GPU nodes only.
      EXPECT_TRUE(pod.contains("nodeSelector") || pod.contains("affinity")) << where;
    }
  }
}

TEST_P(ChartTest, WebhooksLeaveSystemAndOwnNamespacesOut) {
  Rendering r = Render(*ns_, GetParam().flags);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  int hooks = 0;
  for (const json& obj : r.objects) {
    const std::string kind = obj.value("kind", "");
    if (kind != "MutatingWebhookConfiguration" && kind != "ValidatingWebhookConfiguration")
      continue;
    for (const json& hook : obj["webhooks"]) {
      ++hooks;
      const std::string where = kind + " " + hook.value("name", "");
      const std::string policy = hook.value("failurePolicy", "");
      EXPECT_TRUE(policy == "Ignore" || policy == "Fail") << where;
      bool excluded = false;
      for (const json& e : hook["namespaceSelector"]["matchExpressions"]) {
        if (e.value("key", "") != "kubernetes.io/metadata.name") continue;
        EXPECT_EQ(e.value("operator", ""), "NotIn") << where;
        std::set<std::string> values = e["values"].get<std::set<std::string>>();
        excluded = values.count("kube-system") && values.count(*ns_);
      }
      EXPECT_TRUE(excluded) << where << " does not leave kube-system and " << *ns_ << " out";
      const json& svc = hook["clientConfig"]["service"];
      EXPECT_EQ(svc.value("namespace", ""), *ns_) << where;
      ASSERT_NE(Find(r.objects, "Service", svc.value("name", "")), nullptr) << where;
      // The CA comes from somewhere: the chart, cert-manager's injector, or --self-signed.
      const bool injected =
          obj["metadata"].contains("annotations") &&
          obj["metadata"]["annotations"].contains("cert-manager.io/inject-ca-from");
      const bool self_signed = hook["clientConfig"].value("caBundle", "").empty() && !injected;
      if (self_signed) {
        const json* deploy = Find(r.objects, "Deployment", svc.value("name", ""));
        ASSERT_NE(deploy, nullptr);
        EXPECT_EQ(Containers(*deploy)[0]["args"].dump().find("--self-signed") != std::string::npos,
                  true)
            << where << " has no caBundle source";
        // The replicas share one CA through --self-signed-secret, so all of them run.
        const std::string args = Containers(*deploy)[0]["args"].dump();
        EXPECT_NE(args.find("--self-signed-secret=" + *ns_ + "/" + svc.value("name", "") +
                            "-self-signed-tls"),
                  std::string::npos)
            << where << ": " << args;
        EXPECT_EQ((*deploy)["spec"].value("replicas", 0), 2) << where;
        EXPECT_NE(Find(r.objects, "PodDisruptionBudget", svc.value("name", "")), nullptr) << where;
      }
    }
  }
  if (hooks > 0) {
    EXPECT_EQ(hooks, 5);  // one mutating, four validating
  }
}

// What a chart-generated TLS Secret holds: the certificate's DNS subjectAltNames and
// whether it chains to the Secret's own ca.crt (as a server certificate).
struct SecretCertificate {
  std::string error;  // empty when the Secret's three keys decode and parse
  std::set<std::string> dns_names;
  bool verifies_with_ca = false;
  std::string ca_crt_base64;
};

SecretCertificate InspectTlsSecret(const json& secret) {
  SecretCertificate out;
  const json& data = secret["data"];
  for (const char* key : {"tls.crt", "tls.key", "ca.crt"}) {
    if (!data.contains(key)) {
      out.error = std::string("no ") + key;
      return out;
    }
  }
  out.ca_crt_base64 = data["ca.crt"].get<std::string>();
  auto cert_pem = Base64Decode(data["tls.crt"].get<std::string>());
  auto ca_pem = Base64Decode(out.ca_crt_base64);
  if (!cert_pem || !ca_pem) {
    out.error = "not base64";
    return out;
  }
  auto read = [](const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return cert;
  };
  X509* cert = read(*cert_pem);
  X509* ca = read(*ca_pem);
  if (cert == nullptr || ca == nullptr) {
    X509_free(cert);
    X509_free(ca);
    out.error = "PEM does not parse";
    return out;
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    out.dns_names.emplace(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                          static_cast<size_t>(ASN1_STRING_length(dns)));
  }
  GENERAL_NAMES_free(sans);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  out.verifies_with_ca = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(cert);
  X509_free(ca);
  return out;
}

// "svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local": what kube-apiserver dials.
std::set<std::string> ServiceDnsNames(const std::string& svc, const std::string& ns) {
  return {svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"};
}

// Wherever the chart issues a certificate itself, the registration that trusts it
// carries that Secret's CA and the certificate names the Service the caller dials.
TEST_P(ChartTest, GeneratedCertificatesMatchTheirCaBundleAndService) {
  Rendering r = Render(*ns_, GetParam().flags);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  int checked = 0;
  for (const json& obj : r.objects) {
    if (obj.value("kind", "") != "Secret" || obj.value("type", "") != "kubernetes.io/tls") continue;
    const std::string name = obj["metadata"].value("name", "");
    ASSERT_TRUE(name.size() > 4 && name.substr(name.size() - 4) == "-tls") << name;
    const std::string svc = name.substr(0, name.size() - 4);
    ASSERT_NE(Find(r.objects, "Service", svc), nullptr) << name << ": no Service " << svc;
    const SecretCertificate cert = InspectTlsSecret(obj);
    ASSERT_EQ(cert.error, "") << name;
    EXPECT_TRUE(cert.verifies_with_ca) << name << ": tls.crt does not chain to ca.crt";
    for (const std::string& dns : ServiceDnsNames(svc, *ns_))
      EXPECT_EQ(cert.dns_names.count(dns), 1u) << name << " lacks " << dns;
    if (svc == std::string(kRelease) + "-gpu-autoscaler-webhook") {
      for (const char* kind : {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}) {
        const json* config = Find(r.objects, kind, svc);
        ASSERT_NE(config, nullptr) << kind;
        for (const json& hook : (*config)["webhooks"])
          EXPECT_EQ(hook["clientConfig"].value("caBundle", ""), cert.ca_crt_base64)
              << kind << " " << hook.value("name", "");
      }
    }
    if (svc == std::string(kRelease) + "-gpu-autoscaler-custom-metrics") {
      const json* api = Find(r.objects, "APIService", "v1beta2.custom.metrics.k8s.io");
      ASSERT_NE(api, nullptr);
      EXPECT_EQ((*api)["spec"].value("caBundle", ""), cert.ca_crt_base64);
      EXPECT_EQ((*api)["spec"].value("insecureSkipTLSVerify", true), false);
    }
    ++checked;
  }
  // cert-manager issues instead: its Certificates name the same Services, and its
  // cainjector fills each registration's caBundle from the annotated Certificate.
  for (const json& obj : r.objects) {
    if (obj.value("kind", "") != "Certificate") continue;
    const std::string svc = obj["metadata"].value("name", "");
    EXPECT_EQ(obj["spec"].value("secretName", ""), svc + "-tls");
    EXPECT_EQ(obj["spec"]["dnsNames"].get<std::set<std::string>>(), ServiceDnsNames(svc, *ns_));
    ++checked;
  }
  const json* api = Find(r.objects, "APIService", "v1beta2.custom.metrics.k8s.io");
  if (api != nullptr) {
    EXPECT_EQ((*api)["spec"].value("insecureSkipTLSVerify", true), false);
    const bool injected =
        (*api)["metadata"].contains("annotations") &&
        (*api)["metadata"]["annotations"].value("cert-manager.io/inject-ca-from", "") ==
            *ns_ + "/" + kRelease + "-gpu-autoscaler-custom-metrics";
    EXPECT_TRUE(injected || !(*api)["spec"].value("caBundle", "").empty()) << api->dump(2);
  }
  if (GetParam().name == "defaults" || GetParam().name.starts_with("custom_metrics")) {
    EXPECT_GT(checked, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Values, ChartTest, ::testing::ValuesIn(Scenarios()),
                         [](const auto& info) { return info.param.name; });

// RBAC equals what the programs call (docs/install.md has the same table with the code
// that makes each call): no rule more, none less.
TEST(ChartRbacTest, RulesAreWhatTheProgramsCall) {
  Rendering r = Render("gpa-system", {"--api-versions=cert-manager.io/v1"});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  // "kind name" -> the set of "group|resource|verb[|resourceName]" it grants.
  std::map<std::string, std::set<std::string>> grants;
  for (const json& obj : r.objects) {
    const std::string kind = obj.value("kind", "");
    if (kind != "ClusterRole" && kind != "Role") continue;
    auto& set = grants[kind + " " + obj["metadata"].value("name", "")];
    for (const json& rule : obj["rules"])
      for (const json& g : rule["apiGroups"])
        for (const json& res : rule["resources"])
          for (const json& verb : rule["verbs"]) {
            std::string entry =
                g.get<std::string>() + "|" + res.get<std::string>() + "|" + verb.get<std::string>();
            if (rule.contains("resourceNames")) {
              for (const json& n : rule["resourceNames"])
                set.insert(entry + "|" + n.get<std::string>());
            } else {
              set.insert(entry);
            }
          }
  }
  using S = std::set<std::string>;
  std::map<std::string, S> want = {
      {"ClusterRole gpa-gpu-autoscaler-manager",
       S{"|nodes|list",
         "|nodes|watch",
         "|pods|list",
         "|pods|watch",
         "gpuautoscaler.io|gpusharingpolicies|list",
         "gpuautoscaler.io|gpusharingpolicies|watch",
         "gpuautoscaler.io|budgets|list",
         "gpuautoscaler.io|budgets|watch",
         "gpuautoscaler.io|clusterbudgets|list",
         "gpuautoscaler.io|clusterbudgets|watch",
         "gpuautoscaler.io|gpusharingpolicies/status|update",
         "gpuautoscaler.io|budgets/status|update",
         "gpuautoscaler.io|clusterbudgets/status|update",
         "|namespaces|list",
         "|namespaces|watch",
         "|secrets|get",
         "|events|create",
         "|events|patch",
         "gpuautoscaler.io|gpunodepools|list",
         "gpuautoscaler.io|gpunodepools|watch",
         "gpuautoscaler.io|gpunodepools/status|update",
         "|nodes|get",
         "|nodes|update",
         "|nodes|create",
         "|nodes|delete",
         "|pods/eviction|create",
         "gpuautoscaler.io|reschedulepolicies|get",
         "gpuautoscaler.io|reschedulepolicies|list",
         "gpuautoscaler.io|reschedulepolicies|watch",
         "gpuautoscaler.io|reschedulepolicies/status|update",
         "|pods|delete",
         "gpuautoscaler.io|serviceprofiles|list",
         "gpuautoscaler.io|serviceprofiles|watch",
         "gpuautoscaler.io|serviceprofiles/status|update",
         "apps|deployments|get",
         "apps|statefulsets|get",
         "apps|replicasets|get",
         "batch|jobs|get",
         "*|*/scale|get",
         "|configmaps|get",
         "|configmaps|create",
         "|configmaps|update",
         "authentication.k8s.io|tokenreviews|create",
         "authorization.k8s.io|subjectaccessreviews|create"}},
      {"Role gpa-gpu-autoscaler-manager",
       S{"coordination.k8s.io|leases|get", "coordination.k8s.io|leases|create",
         "coordination.k8s.io|leases|update", "|configmaps|list|gpa-gpu-autoscaler-manager-config",
         "|configmaps|watch|gpa-gpu-autoscaler-manager-config"}},
      {"ClusterRole gpa-gpu-autoscaler-webhook",
       S{"gpuautoscaler.io|gpusharingpolicies|list", "gpuautoscaler.io|gpusharingpolicies|watch",
         "gpuautoscaler.io|budgets|list", "gpuautoscaler.io|budgets|watch",
         "gpuautoscaler.io|clusterbudgets|list", "gpuautoscaler.io|clusterbudgets|watch",
         "gpuautoscaler.io|serviceprofiles|list", "gpuautoscaler.io|serviceprofiles|watch",
         "|namespaces|list", "|namespaces|watch", "authentication.k8s.io|tokenreviews|create",
         "authorization.k8s.io|subjectaccessreviews|create"}},
      {"ClusterRole gpa-gpu-autoscaler-scheduler",
       S{"|pods|get", "|pods|list", "|pods|watch", "|nodes|list", "|nodes|watch",
         "|pods/binding|create", "|pods/status|patch", "|events|create", "|events|patch",
         "authentication.k8s.io|tokenreviews|create",
         "authorization.k8s.io|subjectaccessreviews|create"}},
      {"Role gpa-gpu-autoscaler-scheduler",
       S{"coordination.k8s.io|leases|get", "coordination.k8s.io|leases|create",
         "coordination.k8s.io|leases|update"}},
      {"ClusterRole gpa-gpu-autoscaler-node-agent",
       S{"|nodes|get", "|nodes|patch", "|nodes/status|patch",
         "gpuautoscaler.io|noderesourcereports|create",
         "gpuautoscaler.io|noderesourcereports|patch",
         "gpuautoscaler.io|noderesourcereports/status|patch", "|pods|list", "|pods|watch",
         "|pods/eviction|create", "|events|create", "|events|patch",
         "authentication.k8s.io|tokenreviews|create",
         "authorization.k8s.io|subjectaccessreviews|create"}},
      {"Role gpa-gpu-autoscaler-node-agent",
       S{"|configmaps|list|gpa-gpu-autoscaler-node-agent-config",
         "|configmaps|watch|gpa-gpu-autoscaler-node-agent-config"}},
  };
  EXPECT_EQ(grants, want);

  // --self-signed adds exactly the caBundle patcher's rule.
  Rendering self = Render("gpa-system", {"--set", "webhook.tls.mode=selfSigned"});
  ASSERT_EQ(self.exit_code, 0) << self.error;
  const json* role = Find(self.objects, "ClusterRole", "gpa-gpu-autoscaler-webhook");
  ASSERT_NE(role, nullptr);
  EXPECT_EQ(role->at("rules").back(), json::parse(R"({"apiGroups":["admissionregistration.k8s.io"],
              "resources":["mutatingwebhookconfigurations","validatingwebhookconfigurations"],
              "resourceNames":["gpa-gpu-autoscaler-webhook"],"verbs":["get","patch"]})"));
  // ... and the shared Secret's Role: get/update by name, create by namespace (RBAC
  // cannot restrict create by name), bound to the webhook's ServiceAccount.
  const json* secret_role = Find(self.objects, "Role", "gpa-gpu-autoscaler-webhook-tls");
  ASSERT_NE(secret_role, nullptr);
  EXPECT_EQ(secret_role->at("metadata").value("namespace", ""), "gpa-system");
  EXPECT_EQ(secret_role->at("rules"), json::parse(R"([
      {"apiGroups":[""],"resources":["secrets"],
       "resourceNames":["gpa-gpu-autoscaler-webhook-self-signed-tls"],"verbs":["get","update"]},
      {"apiGroups":[""],"resources":["secrets"],"verbs":["create"]}])"));
  const json* secret_binding = Find(self.objects, "RoleBinding", "gpa-gpu-autoscaler-webhook-tls");
  ASSERT_NE(secret_binding, nullptr);
  EXPECT_EQ(secret_binding->at("roleRef").value("name", ""), "gpa-gpu-autoscaler-webhook-tls");
  const json* webhook_deploy = Find(self.objects, "Deployment", "gpa-gpu-autoscaler-webhook");
  ASSERT_NE(webhook_deploy, nullptr);
  EXPECT_EQ(secret_binding->at("subjects")[0].value("name", ""),
            (*webhook_deploy)["spec"]["template"]["spec"].value("serviceAccountName", "?"));
  // The other modes have no such Role.
  EXPECT_EQ(Find(r.objects, "Role", "gpa-gpu-autoscaler-webhook-tls"), nullptr);
  // manager.clusterAPI adds exactly what src/cloud/cluster_api.cc calls.
  Rendering capi = Render("gpa-system", {"--set", "manager.clusterAPI=true"});
  ASSERT_EQ(capi.exit_code, 0) << capi.error;
  const json* manager = Find(capi.objects, "ClusterRole", "gpa-gpu-autoscaler-manager");
  ASSERT_NE(manager, nullptr);
  std::set<std::string> capi_grants;
  for (const json& rule : manager->at("rules")) {
    if (rule.at("apiGroups")[0] != "cluster.x-k8s.io") continue;
    for (const json& resource : rule.at("resources"))
      for (const json& verb : rule.at("verbs"))
        capi_grants.insert(resource.get<std::string>() + "|" + verb.get<std::string>());
  }
  EXPECT_EQ(capi_grants,
            (std::set<std::string>{"machinedeployments|get", "machinesets|get",
                                   "machinedeployments/scale|get", "machinedeployments/scale|patch",
                                   "machinesets/scale|get", "machinesets/scale|patch",
                                   "machines|list", "machines|patch", "machines|delete"}));
  // The extender does not write pod status; without leader election there is no Lease.
  Rendering ext = Render("gpa-system", {"--set", "scheduler.mode=extender"});
  ASSERT_EQ(ext.exit_code, 0) << ext.error;
  EXPECT_EQ(Find(ext.objects, "Role", "gpa-gpu-autoscaler-scheduler"), nullptr);
  const json* sched = Find(ext.objects, "ClusterRole", "gpa-gpu-autoscaler-scheduler");
  ASSERT_NE(sched, nullptr);
  EXPECT_EQ(sched->dump().find("pods/status"), std::string::npos);
}

// Every program's /metrics is HTTPS with TokenReview/SubjectAccessReview
// (--metrics-secure defaults to true): each monitor scrapes with a bearer
// token, and the PodMonitor's token is a ServiceAccount's allowed only /metrics.
TEST(ChartMonitoringTest, EveryMonitorScrapesOverHttpsWithABearerToken) {
  Rendering r = Render("gpa-system", {"--api-versions=monitoring.coreos.com/v1"});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  for (const std::string c : {"manager", "scheduler", "webhook"}) {
    const json* monitor = Find(r.objects, "ServiceMonitor", "gpa-gpu-autoscaler-" + c);
    ASSERT_NE(monitor, nullptr) << c;
    const json& e = (*monitor)["spec"]["endpoints"][0];
    EXPECT_EQ(e.value("scheme", ""), "https") << c;
    EXPECT_EQ(e.value("bearerTokenFile", ""), "/var/run/secrets/kubernetes.io/serviceaccount/token")
        << c;
    const json* deploy = Find(r.objects, "Deployment", "gpa-gpu-autoscaler-" + c);
    ASSERT_NE(deploy, nullptr) << c;
    EXPECT_EQ(Containers(*deploy)[0]["args"].dump().find("--metrics-secure=false"),
              std::string::npos)
        << c;
  }
  // The webhook's /metrics is not on its admission port: the monitor's port is
  // the Service's "metrics", the container port --metrics-bind-address binds.
  const json* webhook_service = Find(r.objects, "Service", "gpa-gpu-autoscaler-webhook");
  ASSERT_NE(webhook_service, nullptr);
  EXPECT_EQ(Find(r.objects, "ServiceMonitor", "gpa-gpu-autoscaler-webhook")
                ->at("spec")["endpoints"][0]
                .value("port", ""),
            "metrics");
  EXPECT_EQ(
      webhook_service->at("spec")["ports"][1],
      json::parse(R"({"name":"metrics","port":8080,"targetPort":"metrics","protocol":"TCP"})"));
  const json webhook_container =
      Containers(*Find(r.objects, "Deployment", "gpa-gpu-autoscaler-webhook"))[0];
  EXPECT_EQ(webhook_container["ports"][1],
            json::parse(R"({"name":"metrics","containerPort":8080,"protocol":"TCP"})"));
  EXPECT_NE(webhook_container["args"].dump().find(R"("--metrics-bind-address=:8080")"),
            std::string::npos)
      << webhook_container["args"].dump();
  const json* pod_monitor = Find(r.objects, "PodMonitor", "gpa-gpu-autoscaler-node-agent");
  ASSERT_NE(pod_monitor, nullptr);
  const json& e = (*pod_monitor)["spec"]["podMetricsEndpoints"][0];
  EXPECT_EQ(e.value("scheme", ""), "https");
  const std::string secret_name = e["bearerTokenSecret"].value("name", "");
  EXPECT_EQ(e["bearerTokenSecret"].value("key", ""), "token");
  const json* secret = Find(r.objects, "Secret", secret_name);
  ASSERT_NE(secret, nullptr) << secret_name;
  EXPECT_EQ(secret->value("type", ""), "kubernetes.io/service-account-token");
  const std::string account =
      (*secret)["metadata"]["annotations"].value("kubernetes.io/service-account.name", "");
  EXPECT_NE(Find(r.objects, "ServiceAccount", account), nullptr) << account;
  const json* role = Find(r.objects, "ClusterRole", "gpa-gpu-autoscaler-metrics-scraper");
  ASSERT_NE(role, nullptr);
  EXPECT_EQ((*role)["rules"], json::parse(R"([{"nonResourceURLs":["/metrics"],"verbs":["get"]}])"));
  const json* binding = Find(r.objects, "ClusterRoleBinding", "gpa-gpu-autoscaler-metrics-scraper");
  ASSERT_NE(binding, nullptr);
  EXPECT_EQ((*binding)["subjects"][0].value("name", ""), account);
}

TEST(ChartValuesTest, SchemaRejectsBadValuesWithTheirPath) {
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--set", "scheduler.mode=kube"}, "scheduler.mode: must be one of the following"},
      {{"--set", "webhook.tls.mode=none"}, "webhook.tls.mode: must be one of the following"},
      {{"--set", "manager.replica=2"}, "manager: Additional property replica is not allowed"},
      {{"--set", "nodeAgent.pollInterval=1"},
       "nodeAgent.pollInterval: Invalid type. Expected: string, given: integer"},
      {{"--set", "webhook.failurePolicy.mutatePods=fail"},
       "webhook.failurePolicy.mutatePods: must be one of the following"},
      {{"--set", "webhook.port=70000"}, "webhook.port: must be less than or equal to 65535"},
      {{"--set", "nodeAgent.cgroupDriver=docker"},
       "nodeAgent.cgroupDriver: must be one of the following"},
      {{"--set", "manager.prometheusURL=prometheus:9090"},
       "manager.prometheusURL: Does not match pattern"},
  };
  for (const Case& c : cases) {
    Rendering r = Render("gpa-system", c.flags);
    EXPECT_EQ(r.exit_code, 1) << c.flags[1];
    EXPECT_NE(r.error.find(c.message), std::string::npos) << c.flags[1] << ": " << r.error;
  }
}

TEST(ChartValuesTest, DocumentedDefaultsRender) {
  Rendering r = Render("gpa-system", {});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  const json* manager = Find(r.objects, "Deployment", "gpa-gpu-autoscaler-manager");
  ASSERT_NE(manager, nullptr);
  EXPECT_EQ((*manager)["spec"]["replicas"], 2);
  const json args = Containers(*manager)[0]["args"];
  EXPECT_NE(std::find(args.begin(), args.end(), "--leader-elect=true"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(), "--leader-election-namespace=gpa-system"),
            args.end());
  const json* webhook = Find(r.objects, "Deployment", "gpa-gpu-autoscaler-webhook");
  ASSERT_NE(webhook, nullptr);
  EXPECT_EQ((*webhook)["spec"]["replicas"], 2);
  const json* pdb = Find(r.objects, "PodDisruptionBudget", "gpa-gpu-autoscaler-webhook");
  ASSERT_NE(pdb, nullptr);
  EXPECT_EQ((*pdb)["spec"]["minAvailable"], 1);
  // Without cert-manager the chart generates the CA: the Secret's ca.crt is every
  // webhook's caBundle.
  const json* secret = Find(r.objects, "Secret", "gpa-gpu-autoscaler-webhook-tls");
  ASSERT_NE(secret, nullptr);
  const json* mutating =
      Find(r.objects, "MutatingWebhookConfiguration", "gpa-gpu-autoscaler-webhook");
  ASSERT_NE(mutating, nullptr);
  EXPECT_EQ((*mutating)["webhooks"][0]["clientConfig"]["caBundle"], (*secret)["data"]["ca.crt"]);
  const json* agent = Find(r.objects, "DaemonSet", "gpa-gpu-autoscaler-node-agent");
  ASSERT_NE(agent, nullptr);
  EXPECT_EQ((*agent)["spec"]["template"]["spec"]["nodeSelector"],
            json::parse(R"({"nvidia.com/gpu.present":"true"})"));
  // By default the QoS pools are planned and reported, not written to cgroups;
  // nodeAgent.qos.writeCgroups mounts the host's cgroup tree read-write and runs as root.
  const json& agent_args = (*agent)["spec"]["template"]["spec"]["containers"][0]["args"];
  EXPECT_NE(std::find(agent_args.begin(), agent_args.end(), "--cgroup-version=none"),
            agent_args.end());
  Rendering qos = Render("gpa-system", {"--set", "nodeAgent.qos.writeCgroups=true", "--set",
                                        "nodeAgent.qos.reservedCpus=0-1"});
  ASSERT_EQ(qos.exit_code, 0) << qos.error;
  const json* writer = Find(qos.objects, "DaemonSet", "gpa-gpu-autoscaler-node-agent");
  ASSERT_NE(writer, nullptr);
  const json& pod = (*writer)["spec"]["template"]["spec"];
  const json& container = pod["containers"][0];
  for (const char* arg :
       {"--cgroup-root=/host/cgroup", "--cgroup-driver=systemd", "--reserved-cpus=0-1"}) {
    EXPECT_NE(std::find(container["args"].begin(), container["args"].end(), arg),
              container["args"].end())
        << arg;
  }
  // The same cgroup volume (sysfs, procfs, cgroup tree, pod-resources), mounted read-write.
  EXPECT_EQ(pod["volumes"][2], json::parse(R"({"name":"cgroup",
              "hostPath":{"path":"/sys/fs/cgroup","type":"Directory"}})"));
  EXPECT_EQ(container["volumeMounts"][2], json::parse(R"({"name":"cgroup",
              "mountPath":"/host/cgroup"})"));
  const json& default_mounts =
      (*agent)["spec"]["template"]["spec"]["containers"][0]["volumeMounts"];
  EXPECT_EQ(default_mounts[2], json::parse(R"({"name":"cgroup","mountPath":"/host/cgroup",
              "readOnly":true})"));
  EXPECT_EQ(container["securityContext"]["runAsUser"], 0);
  EXPECT_EQ(container["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(container["securityContext"]["capabilities"]["drop"], json::array({"ALL"}));
  // No monitoring objects without the Prometheus Operator's API.
  for (const json& obj : r.objects)
    EXPECT_NE(obj.value("apiVersion", ""), "monitoring.coreos.com/v1");
}

}  // namespace
}  // namespace gpu_autoscaler

namespace gpu_autoscaler {
namespace {

// The schema check is a real check: an unknown field, a wrong type and a missing
// required field are each reported with their path.
TEST(ChartSchemaTest, TheSchemaCheckFindsErrors) {
  CommandResult check = CheckSchemas(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: x}
spec:
  replicas: "2"
  template:
    spec:
      containers:
        - {name: web, image: nginx, readinesProbe: {}}
)");
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  EXPECT_NE(check.out.find("Deployment/web.spec.replicas: want an integer, got '2'"),
            std::string::npos)
      << check.out;
  EXPECT_NE(check.out.find("Deployment/web.spec.template.spec.containers[0]: unknown field "
                           "\"readinesProbe\" in V1Container"),
            std::string::npos)
      << check.out;
  EXPECT_NE(check.out.find("Deployment/web.spec: Invalid value for `selector`, must not be "
                           "`None`"),
            std::string::npos)
      << check.out;
}

// The webhook's PodDisruptionBudget takes the version the cluster serves, as
// helm install reads it from discovery: policy/v1 where
// "policy/v1/PodDisruptionBudget" is available (1.21+, and helm template's
// defaults), policy/v1beta1 on 1.20, whose API server refuses policy/v1.
TEST(ChartPdbTest, ThePdbTakesTheVersionTheClusterServes) {
  const std::string empty_dir = testing::MakeTempDir("gpa-chart-crds");
  auto server = testing::TestApiServer::Start({.extra_args = {"--crd-dir", empty_dir}});
  ASSERT_NE(server, nullptr);
  if (server->is_real_cluster()) GTEST_SKIP() << "needs the embedded server at 1.20";
  auto client = kube::RestClient::Create(server->config());
  ASSERT_TRUE(client.ok());
  const std::string ns = server->CreateTestNamespace("gpa-system");
  auto pdb_of = [](const Rendering& r) {
    const json* pdb = nullptr;
    for (const json& obj : r.objects)
      if (obj.value("kind", "") == "PodDisruptionBudget") pdb = &obj;
    return pdb;
  };
  auto dry_run = [&](const json& pdb) {
    return (*client)->Create(kube::ObjectRef{Kinds().at(KindKey(pdb)), ns}, pdb,
                             kube::WriteOptions{.dry_run = true});
  };

  Rendering current = Render(ns, {});
  ASSERT_EQ(current.exit_code, 0) << current.error;
  const json* v1 = pdb_of(current);
  ASSERT_NE(v1, nullptr);
  EXPECT_EQ(v1->value("apiVersion", ""), "policy/v1");
  auto refused = dry_run(*v1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), 404) << refused.error().ToString();

  // What a 1.20 cluster's discovery lists (the groups the chart uses).
  std::vector<std::string> v120 = {"--no-default-api-versions"};
  for (const char* gv :
       {"v1", "apps/v1", "policy/v1beta1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1",
        "admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "coordination.k8s.io/v1",
        "policy/v1beta1/PodDisruptionBudget"}) {
    v120.push_back("--api-versions");
    v120.push_back(gv);
  }
  Rendering old = Render(ns, v120);
  ASSERT_EQ(old.exit_code, 0) << old.error;
  const json* beta = pdb_of(old);
  ASSERT_NE(beta, nullptr);
  EXPECT_EQ(beta->value("apiVersion", ""), "policy/v1beta1");
  auto accepted = dry_run(*beta);
  EXPECT_TRUE(accepted.ok()) << accepted.error().ToString();
  // Only the version differs.
  json same = *beta;
  same["apiVersion"] = "policy/v1";
  EXPECT_EQ(same, *v1);
}

// The dry run is a real check: a rendering the server must refuse is refused (a
// label key that is not a qualified name, which the values schema lets through).
// (The embedded server does not validate a pod template's own metadata.)
TEST(ChartDryRunTest, TheServerRefusesAnInvalidRendering) {
  const std::string empty_dir = testing::MakeTempDir("gpa-chart-crds");
  auto server = testing::TestApiServer::Start({.extra_args = {"--crd-dir", empty_dir}});
  ASSERT_NE(server, nullptr);
  auto client = kube::RestClient::Create(server->config());
  ASSERT_TRUE(client.ok());
  const std::string ns = server->CreateTestNamespace("gpa-system");
  Rendering r = Render(ns, {"--set", "commonLabels.not\\ a\\ key=x"});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  const json* manager = Find(r.objects, "Deployment", "gpa-gpu-autoscaler-manager");
  ASSERT_NE(manager, nullptr);
  auto created = (*client)->Create(kube::ObjectRef{{"apps", "v1", "deployments", true}, ns},
                                   *manager, kube::WriteOptions{.dry_run = true});
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code(), 422) << created.error().ToString();
  EXPECT_NE(created.error().ToString().find("not a key"), std::string::npos)
      << created.error().ToString();
}

}  // namespace
}  // namespace gpu_autoscaler

namespace gpu_autoscaler {
namespace {

// The PrometheusRule's alerts: `promtool check rules` accepts them and
// tests/charts/prometheus_rules_test.yaml (one case per alert, firing and not) passes.
TEST(ChartAlertsTest, PromtoolChecksAndUnitTestsTheRules) {
  constexpr char kPromtool[] = "/usr/bin/promtool";  // Debian's prometheus package
  ASSERT_TRUE(std::filesystem::exists(kPromtool)) << "run hack/install-deps.sh";
  Rendering r = Render("gpa-system", {"--api-versions=monitoring.coreos.com/v1"});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  const json* rule = Find(r.objects, "PrometheusRule", "gpa-gpu-autoscaler");
  ASSERT_NE(rule, nullptr);
  const std::string dir = testing::MakeTempDir("gpa-chart-rules");
  {
    std::ofstream out(dir + "/rules.yaml");
    out << (*rule)["spec"].dump(2);  // JSON is YAML
  }
  std::filesystem::copy_file(SourcePath("tests/charts/prometheus_rules_test.yaml"),
                             dir + "/prometheus_rules_test.yaml");
  CommandResult check = RunCommand({kPromtool, "check", "rules", dir + "/rules.yaml"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("SUCCESS: 15 rules found"), std::string::npos) << check.out;
  CommandResult test =
      RunCommand({kPromtool, "test", "rules", dir + "/prometheus_rules_test.yaml"});
  EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
  // Every alert the chart defines has a unit test.
  const std::string tests = testing::ReadFileOrDie(dir + "/prometheus_rules_test.yaml");
  for (const json& group : (*rule)["spec"]["groups"]) {
    for (const json& alert : group["rules"]) {
      EXPECT_NE(tests.find("alertname: " + alert.value("alert", "")), std::string::npos)
          << alert.value("alert", "") << " has no promtool test";
      ExpectExportedMetrics(alert.value("expr", ""), alert.value("alert", ""));
    }
  }
  std::filesystem::remove_all(dir);

  // Off when asked, and without the Prometheus Operator's API.
  Rendering off = Render("gpa-system", {"--api-versions=monitoring.coreos.com/v1", "--set",
                                        "monitoring.prometheusRule=false"});
  ASSERT_EQ(off.exit_code, 0) << off.error;
  EXPECT_EQ(Find(off.objects, "PrometheusRule", "gpa-gpu-autoscaler"), nullptr);
  Rendering none = Render("gpa-system", {});
  ASSERT_EQ(none.exit_code, 0) << none.error;
  EXPECT_EQ(Find(none.objects, "PrometheusRule", "gpa-gpu-autoscaler"), nullptr);
}

}  // namespace
}  // namespace gpu_autoscaler

namespace gpu_autoscaler {
namespace {

// The chart supersedes config/webhook/webhook-configurations.yaml (the demo's plain
// manifests): with the same release namespace, both register the same webhooks with the
// same rules, paths, failure policies and selectors.
TEST(ChartWebhookTest, RegistrationsMatchTheDemosManifests) {
  auto manifests = apiserver::YamlDocumentsToJson(
      testing::ReadFileOrDie(SourcePath("config/webhook/webhook-configurations.yaml")));
  ASSERT_TRUE(manifests.ok());
  Rendering r = Render("gpu-autoscaler-system", {});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  int compared = 0;
  for (const json& plain : *manifests) {
    const std::string kind = plain.value("kind", "");
    if (kind != "MutatingWebhookConfiguration" && kind != "ValidatingWebhookConfiguration")
      continue;
    const json* chart = Find(r.objects, kind, "gpa-gpu-autoscaler-webhook");
    ASSERT_NE(chart, nullptr) << kind;
    ASSERT_EQ(plain["webhooks"].size(), (*chart)["webhooks"].size()) << kind;
    for (size_t i = 0; i < plain["webhooks"].size(); ++i) {
      json want = plain["webhooks"][i];
      json got = (*chart)["webhooks"][i];
      // Names of the Service and CA differ by release; the rest is the contract.
      want["clientConfig"]["service"].erase("name");
      got["clientConfig"]["service"].erase("name");
      got["clientConfig"].erase("caBundle");
      EXPECT_EQ(got, want) << kind << " webhook " << i;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 5);
}

}  // namespace
}  // namespace gpu_autoscaler

namespace gpu_autoscaler {
namespace {

// The Grafana dashboards (charts/gpu-autoscaler/dashboards, from hack/make-dashboards.py):
// ConfigMaps labelled for the sidecar, and every panel's query valid PromQL (promtool
// checks each as a recording rule, with the $job variable expanded).
TEST(ChartDashboardsTest, ConfigMapsForTheSidecarWithValidQueries) {
  Rendering r = Render("gpa-system", {"--set", "grafana.dashboards.namespace=monitoring", "--set",
                                      "grafana.dashboards.annotations.grafana_folder=GPUs"});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  std::string rules = "groups:\n  - name: dashboards\n    rules:\n";
  std::set<std::string> uids;
  int dashboards = 0, queries = 0;
  for (const json& obj : r.objects) {
    if (obj.value("kind", "") != "ConfigMap" ||
        obj["metadata"].value("name", "").find("-dashboard-") == std::string::npos)
      continue;
    ++dashboards;
    const std::string where = obj["metadata"].value("name", "");
    EXPECT_EQ(obj["metadata"]["labels"].value("grafana_dashboard", ""), "1") << where;
    EXPECT_EQ(obj["metadata"].value("namespace", ""), "monitoring") << where;
    EXPECT_EQ(obj["metadata"]["annotations"].value("grafana_folder", ""), "GPUs") << where;
    ASSERT_EQ(obj["data"].size(), 1u) << where;
    const json board = json::parse(obj["data"].begin()->get<std::string>(), nullptr, false);
    ASSERT_FALSE(board.is_discarded()) << where << ": not JSON";
    EXPECT_TRUE(uids.insert(board.value("uid", "")).second) << where << ": uid reused";
    ASSERT_FALSE(board["panels"].empty()) << where;
    for (const json& panel : board["panels"]) {
      EXPECT_FALSE(panel.value("title", "").empty()) << where;
      EXPECT_EQ(panel["datasource"].value("uid", ""), "${datasource}") << where;
      ASSERT_FALSE(panel["targets"].empty()) << where << " " << panel.value("title", "");
      for (const json& target : panel["targets"]) {
        std::string expr = target.value("expr", "");
        ExpectExportedMetrics(expr, where);
        for (size_t at = expr.find("$job"); at != std::string::npos; at = expr.find("$job"))
          expr.replace(at, 4, ".*");
        for (size_t at = expr.find("$__rate_interval"); at != std::string::npos;
             at = expr.find("$__rate_interval"))
          expr.replace(at, 16, "5m");
        rules += "      - record: dashboard_query_" + std::to_string(++queries) +
                 "\n        expr: " + json(expr).dump() + "\n";
      }
    }
  }
  EXPECT_EQ(dashboards, 5);  // cluster, cost, autoscaler, webhook, node agent
  const std::string dir = testing::MakeTempDir("gpa-chart-dashboards");
  {
    std::ofstream out(dir + "/queries.yaml");
    out << rules;
  }
  CommandResult check = RunCommand({"/usr/bin/promtool", "check", "rules", dir + "/queries.yaml"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err << rules;
  EXPECT_NE(check.out.find("SUCCESS: " + std::to_string(queries) + " rules found"),
            std::string::npos)
      << check.out;
  std::filesystem::remove_all(dir);

  Rendering off = Render("gpa-system", {"--set", "grafana.dashboards.enabled=false"});
  ASSERT_EQ(off.exit_code, 0) << off.error;
  for (const json& obj : off.objects)
    EXPECT_EQ(obj["metadata"].value("name", "").find("-dashboard-"), std::string::npos);
}

// customMetrics.enabled registers the manager's custom.metrics.k8s.io port with the
// aggregator; off (the default) renders none of it.
TEST(ChartCustomMetricsTest, OffByDefaultAndOnRegistersTheManagerPort) {
  Rendering off = Render("gpa-system", {});
  ASSERT_EQ(off.exit_code, 0) << off.error;
  EXPECT_EQ(Find(off.objects, "APIService", "v1beta2.custom.metrics.k8s.io"), nullptr);
  EXPECT_EQ(Find(off.objects, "Service", "gpa-gpu-autoscaler-custom-metrics"), nullptr);

  Rendering on = Render(
      "gpa-system", {"--set", "customMetrics.enabled=true", "--set", "customMetrics.port=7443"});
  ASSERT_EQ(on.exit_code, 0) << on.error;
  const json* api = Find(on.objects, "APIService", "v1beta2.custom.metrics.k8s.io");
  ASSERT_NE(api, nullptr);
  EXPECT_EQ((*api)["spec"]["group"], "custom.metrics.k8s.io");
  EXPECT_EQ((*api)["spec"]["version"], "v1beta2");
  EXPECT_EQ((*api)["spec"]["groupPriorityMinimum"], 100);
  EXPECT_EQ((*api)["spec"]["versionPriority"], 100);
  EXPECT_EQ((*api)["spec"]["service"], json({{"name", "gpa-gpu-autoscaler-custom-metrics"},
                                             {"namespace", "gpa-system"},
                                             {"port", 443}}));
  const json* service = Find(on.objects, "Service", "gpa-gpu-autoscaler-custom-metrics");
  ASSERT_NE(service, nullptr);
  EXPECT_EQ((*service)["spec"]["ports"][0]["port"], 443);
  EXPECT_EQ((*service)["spec"]["ports"][0]["targetPort"], "custom-metrics");
  const json* manager = Find(on.objects, "Deployment", "gpa-gpu-autoscaler-manager");
  ASSERT_NE(manager, nullptr);
  const json container = Containers(*manager)[0];
  const std::vector<std::string> args = container["args"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(args.begin(), args.end(), "--custom-metrics-bind-address=:7443"), args.end());
  bool port_named = false;
  for (const json& p : container["ports"])
    port_named = port_named || (p["name"] == "custom-metrics" && p["containerPort"] == 7443);
  EXPECT_TRUE(port_named) << container.dump(2);
  // The aggregator (in kube-apiserver) may reach the port through the NetworkPolicy.
  const json* policy = Find(on.objects, "NetworkPolicy", "gpa-gpu-autoscaler-manager");
  ASSERT_NE(policy, nullptr);
  EXPECT_NE(policy->dump().find("\"port\":7443"), std::string::npos) << policy->dump(2);
  // It serves the chart's certificate (the APIService verifies it: see
  // GeneratedCertificatesMatchTheirCaBundleAndService), mounted from its Secret.
  EXPECT_NE(std::find(args.begin(), args.end(), "--custom-metrics-cert-dir=/tls/custom-metrics"),
            args.end());
  EXPECT_NE(manager->dump().find(R"({"secretName":"gpa-gpu-autoscaler-custom-metrics-tls"})"),
            std::string::npos);
  // An aggregated API server's two bindings: delegated authn/authz, and reading the
  // front proxy's CA from kube-system; neither without customMetrics.
  const json* delegator =
      Find(on.objects, "ClusterRoleBinding", "gpa-gpu-autoscaler-manager-auth-delegator");
  ASSERT_NE(delegator, nullptr);
  EXPECT_EQ((*delegator)["roleRef"]["name"], "system:auth-delegator");
  EXPECT_EQ((*delegator)["subjects"][0]["namespace"], "gpa-system");
  const json* reader = Find(on.objects, "RoleBinding", "gpa-gpu-autoscaler-manager-auth-reader");
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ((*reader)["metadata"]["namespace"], "kube-system");
  EXPECT_EQ((*reader)["roleRef"], json({{"apiGroup", "rbac.authorization.k8s.io"},
                                        {"kind", "Role"},
                                        {"name", "extension-apiserver-authentication-reader"}}));
  EXPECT_EQ(Find(off.objects, "RoleBinding", "gpa-gpu-autoscaler-manager-auth-reader"), nullptr);
  EXPECT_EQ(Find(off.objects, "ClusterRoleBinding", "gpa-gpu-autoscaler-manager-auth-delegator"),
            nullptr);
}

}  // namespace
}  // namespace gpu_autoscaler
