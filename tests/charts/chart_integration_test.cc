// The Helm chart (charts/gpu-autoscaler), rendered by hack/helm-template (a `helm
// template` equivalent; Debian has no helm) with its default values and with every
// documented option, then, per option set:
//  - every object is created with server-side dry-run (dryRun=All) on the embedded API
//    server, which validates object metadata, pod templates, PodDisruptionBudgets,
//    ConfigMaps, Secrets and CRDs; kinds it does not serve are listed explicitly;
//  - the kinds the server does not serve (RBAC, NetworkPolicy, cert-manager, Prometheus
//    Operator) are checked here against the fields their schemas require;
//  - each container's flags exist in its program's --help;
//  - security contexts, webhook scoping and the generated certificates.
// The checks of one rendering against the programs (RBAC, monitors, values, alerts,
// dashboards) are chart_rendering_test.cc.
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

#include "charts/chart_rendering.h"

namespace gpu_autoscaler {
namespace {

// Rendering, json, BinaryPath, RunCommand...: the chart tests' shared vocabulary.
using namespace chart_testing;  // NOLINT

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
      {"scheduler_extender_behind_own_kube_scheduler",
       {"--set", "scheduler.mode=extender", "--set",
        "scheduler.extender.kubeScheduler.enabled=true"}},
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
      if (program == "kube-scheduler") {
        // Not ours (scheduler.extender.kubeScheduler): everything is in its config file.
        EXPECT_EQ(c["command"].size(), 2u) << where;
        EXPECT_FALSE(c.contains("args")) << where;
        continue;
      }
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

}  // namespace
}  // namespace gpu_autoscaler
