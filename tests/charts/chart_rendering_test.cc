// The Helm chart's rendering, checked object by object against what the programs
// do: RBAC rules equal to the calls they make, monitors over HTTPS with a token,
// the values schema, the PodDisruptionBudget version, a server-side dry run that
// refuses an invalid rendering, the Prometheus rules under promtool, the webhook
// registrations against the demo's manifests, the dashboards' queries and the
// custom-metrics option. The install scenarios are chart_integration_test.cc.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/yaml_json.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

#include "charts/chart_rendering.h"

namespace gpu_autoscaler {
namespace {

// Rendering, json, BinaryPath, RunCommand...: the chart tests' shared vocabulary.
using namespace chart_testing;  // NOLINT

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
         // preemption: victims deleted, PodDisruptionBudgets read
         "|pods|delete", "policy|poddisruptionbudgets|list", "policy|poddisruptionbudgets|watch",
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
  // kube-scheduler evicts; the extender's preemptVerb reads the budgets.
  EXPECT_EQ(sched->dump().find("\"delete\""), std::string::npos);
  EXPECT_NE(sched->dump().find("poddisruptionbudgets"), std::string::npos);
  Rendering no_preemption = Render(
      "gpa-system", {"--set", "scheduler.mode=extender", "--set", "scheduler.preemption=false"});
  ASSERT_EQ(no_preemption.exit_code, 0) << no_preemption.error;
  sched = Find(no_preemption.objects, "ClusterRole", "gpa-gpu-autoscaler-scheduler");
  ASSERT_NE(sched, nullptr);
  EXPECT_EQ(sched->dump().find("poddisruptionbudgets"), std::string::npos);
}

// scheduler.extender.kubeScheduler: a kube-scheduler whose one profile is the
// scheduler's name and whose extender is the chart's scheduler Service, with
// no managedResources (every pod is sent), trusting the extender's CA, with the
// RBAC of Kubernetes' "Configure Multiple Schedulers" and its own Lease.
TEST(ChartKubeSchedulerTest, SendsTheExtenderEveryPodOfItsProfile) {
  for (const std::vector<std::string>& off :
       {std::vector<std::string>{},
        std::vector<std::string>{"--set", "scheduler.extender.kubeScheduler.enabled=true"}}) {
    Rendering r = Render("gpa-system", off);  // not asked for, or standalone mode
    ASSERT_EQ(r.exit_code, 0) << r.error;
    EXPECT_EQ(Find(r.objects, "Deployment", "gpa-gpu-autoscaler-kube-scheduler"), nullptr);
  }
  Rendering r = Render("gpa-system", {"--set", "scheduler.mode=extender", "--set",
                                      "scheduler.extender.kubeScheduler.enabled=true",
                                      "--kube-version", "v1.30.2-eks-4f4795d"});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  const std::string name = "gpa-gpu-autoscaler-kube-scheduler";
  const json* config_map = Find(r.objects, "ConfigMap", name);
  ASSERT_NE(config_map, nullptr);
  auto config =
      apiserver::YamlDocumentsToJson((*config_map)["data"]["config.yaml"].get<std::string>());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  ASSERT_EQ(config->size(), 1u);
  const json& c = (*config)[0];
  EXPECT_EQ(c["apiVersion"], "kubescheduler.config.k8s.io/v1");
  EXPECT_EQ(c["kind"], "KubeSchedulerConfiguration");
  EXPECT_EQ(c["profiles"], json::parse(R"([{"schedulerName":"gpu-autoscaler"}])"));
  EXPECT_FALSE(c.contains("percentageOfNodesToScore"));  // kube-scheduler's default
  ASSERT_EQ(c["extenders"].size(), 1u);
  const json& extender = c["extenders"][0];
  EXPECT_FALSE(extender.contains("managedResources"));
  EXPECT_EQ(extender["weight"], 100);
  EXPECT_EQ(extender["filterVerb"], "filter");
  EXPECT_EQ(extender["prioritizeVerb"], "prioritize");
  EXPECT_EQ(extender["bindVerb"], "bind");
  EXPECT_EQ(extender["preemptVerb"], "preempt");  // victims chosen on the GPUs
  {
    Rendering off = Render("gpa-system",
                           {"--set", "scheduler.mode=extender", "--set",
                            "scheduler.extender.kubeScheduler.enabled=true", "--set",
                            "scheduler.preemption=false", "--kube-version", "v1.30.2-eks-4f4795d"});
    ASSERT_EQ(off.exit_code, 0) << off.error;
    const json* off_map = Find(off.objects, "ConfigMap", name);
    ASSERT_NE(off_map, nullptr);
    EXPECT_EQ((*off_map)["data"]["config.yaml"].get<std::string>().find("preemptVerb"),
              std::string::npos);
  }
  EXPECT_EQ(extender["nodeCacheCapable"], true);
  EXPECT_EQ(extender["ignorable"], false);
  // The urlPrefix is the scheduler's Service and extender port, over HTTPS.
  const json* service = Find(r.objects, "Service", "gpa-gpu-autoscaler-scheduler");
  ASSERT_NE(service, nullptr);
  int extender_port = 0;
  for (const json& port : (*service)["spec"]["ports"]) {
    if (port["name"] == "extender") extender_port = port["port"].get<int>();
  }
  EXPECT_EQ(extender["urlPrefix"],
            "https://gpa-gpu-autoscaler-scheduler.gpa-system.svc:" + std::to_string(extender_port));
  EXPECT_EQ(extender["enableHTTPS"], true);
  const std::string ca_file = extender["tlsConfig"]["caFile"].get<std::string>();
  // Leader election on a Lease of its own, which its Role may update.
  EXPECT_EQ(c["leaderElection"]["leaderElect"], true);
  EXPECT_EQ(c["leaderElection"]["resourceName"], name);
  EXPECT_EQ(c["leaderElection"]["resourceNamespace"], "gpa-system");
  const json* role = Find(r.objects, "Role", name);
  ASSERT_NE(role, nullptr);
  EXPECT_NE(role->dump().find("\"resourceNames\":[\"" + name + "\"]"), std::string::npos);

  const json* deployment = Find(r.objects, "Deployment", name);
  ASSERT_NE(deployment, nullptr);
  const json& pod = (*deployment)["spec"]["template"]["spec"];
  EXPECT_EQ(pod["serviceAccountName"], name);
  const json& container = pod["containers"][0];
  // The tag is the cluster's version without the vendor's suffix.
  EXPECT_EQ(container["image"], "registry.k8s.io/kube-scheduler:v1.30.2");
  EXPECT_EQ(container["command"],
            json::parse(
                R"(["/usr/local/bin/kube-scheduler","--config=/etc/kube-scheduler/config.yaml"])"));
  // The config file and the extender's CA are where the config says.
  std::map<std::string, std::string> mounted;  // volume -> mount path
  for (const json& m : container["volumeMounts"])
    mounted[m["name"]] = m["mountPath"];
  EXPECT_EQ(mounted["config"], "/etc/kube-scheduler");
  for (const json& v : pod["volumes"]) {
    if (v["name"] == "config") {
      EXPECT_EQ(v["configMap"]["name"], name);
    } else if (v["name"] == "tls") {
      EXPECT_EQ(v["secret"]["secretName"], "gpa-gpu-autoscaler-scheduler-tls");
      EXPECT_EQ(mounted["tls"] + "/" + v["secret"]["items"][0]["path"].get<std::string>(), ca_file);
    }
  }
  EXPECT_EQ(mounted.count("tls"), 1u);
  // What Kubernetes asks of a second scheduler.
  std::set<std::string> bound;
  for (const json& obj : r.objects) {
    const std::string kind = obj.value("kind", "");
    if (kind != "ClusterRoleBinding" && kind != "RoleBinding") continue;
    if (obj["subjects"][0]["name"] != name) continue;
    EXPECT_EQ(obj["subjects"][0]["namespace"], "gpa-system");
    bound.insert(kind + " " + obj["metadata"].value("namespace", "") + " " +
                 obj["roleRef"]["name"].get<std::string>());
  }
  EXPECT_EQ(bound, (std::set<std::string>{
                       "ClusterRoleBinding  system:kube-scheduler",
                       "ClusterRoleBinding  system:volume-scheduler",
                       "RoleBinding kube-system extension-apiserver-authentication-reader",
                       "RoleBinding gpa-system " + name}));
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
  EXPECT_NE(check.out.find("SUCCESS: 18 rules found"), std::string::npos) << check.out;
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
