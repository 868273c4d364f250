// Every panel of every Grafana dashboard the chart ships has data, against
// Debian's real Prometheus scraping the real programs:
//   gpu-autoscaler-apiserver   the embedded API server;
//   gpu-autoscaler-webhook     registered through config/webhook (Service and
//                              Endpoints to 127.0.0.1, --self-signed), so pods
//                              created through the API are reviewed; its
//                              /metrics on their own port, --metrics-secure=false;
//   gpu-autoscaler-manager     every controller, cost metering into SQLite,
//                              --metrics-secure=false;
//   gpu-autoscaler-scheduler   standalone, binding the team pods;
//   gpu-autoscaler-node-agent  on the fake NVML (a busy GPU with a process and
//                              a MIG GPU), fake /proc/pressure, sysfs and
//                              cgroup trees, PSI triggers from a ConfigMap.
// The objects: GPU nodes (one time-sliced), a GPUSharingPolicy, team pods, a
// Budget whose threshold alerts reach a loopback receiver, a GPUNodePool on
// the AWS fake with a pod only it can serve (a scale-up) and one whose
// credentials Secret is missing (a provider error).
// Prometheus scrapes each program every second under the job names the
// chart's ServiceMonitors and PodMonitor give. Each dashboard's $job variable
// is resolved as Grafana would (label_values(up{job=~...}, job)), every
// target's expression is run through /api/v1/query ($__rate_interval = 5s),
// and a query without a series fails the test naming the dashboard, panel
// and query. Nothing is timed: the test polls until every query has data or
// a deadline passes.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/resources.h"
#include "apiserver/yaml_json.h"
#include "common/base64.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "net/http_server.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/fake_aws.h"
#include "support/loopback_port.h"
#include "support/prometheus_fixture.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;
using namespace std::chrono_literals;

// Job names as the chart's ServiceMonitors and PodMonitor produce them for
// release "gpa" in namespace "gpa-system".
constexpr char kManagerJob[] = "gpa-gpu-autoscaler-manager-metrics";
constexpr char kSchedulerJob[] = "gpa-gpu-autoscaler-scheduler";
constexpr char kWebhookJob[] = "gpa-gpu-autoscaler-webhook";
constexpr char kAgentJob[] = "gpa-system/gpa-gpu-autoscaler-node-agent";
constexpr char kAgentNode[] = "h100-od-1";
constexpr char kTeamNs[] = "team-nlp";
const kube::GroupVersionResource kEndpoints{"", "v1", "endpoints", true};
const kube::GroupVersionResource kServices{"", "v1", "services", true};
const kube::GroupVersionResource kMutatingWebhooks{"admissionregistration.k8s.io", "v1",
                                                   "mutatingwebhookconfigurations", false};
const kube::GroupVersionResource kValidatingWebhooks{"admissionregistration.k8s.io", "v1",
                                                     "validatingwebhookconfigurations", false};

// The node agent's PSI triggers: 1 s windows, memory armed above 25%.
constexpr char kAgentConfig[] =
    "apiVersion: gpuautoscaler.io/v1alpha1\n"
    "kind: NodeAgentConfig\n"
    "pressureEviction:\n"
    "  interval: 100ms\n"
    "  cpu: {threshold: 90, disarmBelow: 70, window: 1s}\n"
    "  io: {threshold: 90, disarmBelow: 70, window: 1s}\n"
    "  memory: {threshold: 25, disarmBelow: 10, window: 1s}\n";

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::string Psi(double some_avg10) {
  return "some avg10=" + std::to_string(some_avg10) +
         " avg60=0.00 avg300=0.00 total=100\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
}

// One Prometheus query's outcome: its series, or why it failed.
struct QueryResult {
  int series = 0;
  std::string error{};
};

class DashboardsEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prometheus_binary_ = "/usr/bin/prometheus";
    if (!fs::exists(prometheus_binary_))
      GTEST_SKIP() << "/usr/bin/prometheus is missing (Debian's prometheus package, "
                      "hack/install-deps.sh)";
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (server_->is_real_cluster()) GTEST_SKIP() << "registers Nodes and webhooks";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    dir_ = testing::MakeTempDir("gpa-dashboards");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
  }

  void TearDown() override {
    for (ChildProcess* p : {&agent_, &scheduler_, &manager_, &webhook_})
      if (p->running()) p->Kill(SIGTERM);
    if (receiver_) receiver_->Stop();
    if (HasFailure()) {
      std::cout << "--- logs kept in " << dir_ << " ---\n";
      if (prometheus_) std::cout << "--- prometheus ---\n" << prometheus_->LogTail() << "\n";
    } else if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }

  std::string Logs() {
    std::string out;
    for (auto [name, p] : {std::pair<const char*, ChildProcess*>{"manager", &manager_},
                           {"scheduler", &scheduler_},
                           {"webhook", &webhook_},
                           {"agent", &agent_}}) {
      const std::string log = p->Log();
      out += std::string("--- ") + name + " (last lines) ---\n" +
             log.substr(log.size() > 3000 ? log.size() - 3000 : 0) + "\n";
    }
    return out;
  }

  void Create(const kube::GroupVersionResource& gvr, const json& obj) {
    const std::string ns = obj["metadata"].value("namespace", "");
    auto created = client_->Create({gvr, ns, obj["metadata"].value("name", "")}, obj);
    ASSERT_TRUE(created.ok()) << obj["metadata"].dump() << ": " << created.error().ToString();
  }

  // The webhook's own manifests, its Endpoints on 127.0.0.1 and the program.
  void StartWebhook() {
    Create(kube::resources::kNamespaces, {{"apiVersion", "v1"},
                                          {"kind", "Namespace"},
                                          {"metadata", {{"name", "gpu-autoscaler-system"}}}});
    auto docs = apiserver::YamlDocumentsToJson(
        testing::ReadFileOrDie(testing::SourcePath("config/webhook/webhook-configurations.yaml")));
    ASSERT_TRUE(docs.ok()) << docs.error().ToString();
    for (const json& doc : *docs) {
      const std::string kind = doc.value("kind", "");
      if (kind == "MutatingWebhookConfiguration") Create(kMutatingWebhooks, doc);
      if (kind == "ValidatingWebhookConfiguration") Create(kValidatingWebhooks, doc);
      if (kind == "Service") Create(kServices, doc);
    }
    Create(
        kEndpoints,
        {{"apiVersion", "v1"},
         {"kind", "Endpoints"},
         {"metadata", {{"name", "gpu-autoscaler-webhook"}, {"namespace", "gpu-autoscaler-system"}}},
         {"subsets",
          {{{"addresses", {{{"ip", "127.0.0.1"}}}},
            {"ports", {{{"name", "https"}, {"port", webhook_port_}}}}}}}});
    ASSERT_TRUE(webhook_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-webhook"), "--bind-address", "127.0.0.1", "--port",
         std::to_string(webhook_port_), "--kubeconfig", kubeconfig_, "--self-signed",
         "--metrics-bind-address=127.0.0.1:" + std::to_string(webhook_metrics_port_),
         "--metrics-secure=false"},
        dir_ + "/webhook.log"));
    // Serving, and the caBundle patched in, before any pod goes through it.
    ASSERT_TRUE(WaitFor([&] {
      auto v = client_->Get({kValidatingWebhooks, "", "gpu-autoscaler-webhook"});
      if (!v.ok()) return false;
      const json ca = v->value("/webhooks/0/clientConfig/caBundle"_json_pointer, json());
      return ca.is_string() && !ca.get<std::string>().empty() &&
             webhook_.Log().find("listening on") != std::string::npos;
    })) << webhook_.Log();
  }

  void StartManager() {
    const std::string config = dir_ + "/manager.yaml";
    // GPU utilisation (usage cost, idle allocated GPUs) from the same
    // Prometheus, out of the node agent's DCGM series.
    std::ofstream(config) << "apiVersion: gpuautoscaler.io/v1alpha1\n"
                             "kind: ManagerConfig\n"
                             "cost:\n  prometheusURL: "
                          << prometheus_->url() << "\n  prometheusSelector: 'job=\"" << kAgentJob
                          << "\"'\n"
                             "budgets:\n  evaluationPeriod: 1s\n"
                             "sharingPolicies:\n  resync: 1s\n";
    ASSERT_TRUE(manager_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig_,
         "--controllers=*", "--config=" + config, "--cost-db=" + dir_ + "/cost.db",
         "--metrics-bind-address=127.0.0.1:" + std::to_string(manager_port_),
         "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0"},
        dir_ + "/manager.log"));
    ASSERT_TRUE(WaitFor([&] { return manager_.PortFromLog("metrics_port") > 0; }))
        << manager_.Log();
  }

  void StartScheduler() {
    ASSERT_TRUE(scheduler_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-scheduler"), "--kubeconfig=" + kubeconfig_,
         "--mode=standalone", "--metrics-bind-address=127.0.0.1:" + std::to_string(scheduler_port_),
         "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0"},
        dir_ + "/scheduler.log"));
    ASSERT_TRUE(WaitFor([&] { return scheduler_.PortFromLog("metrics_port") > 0; }))
        << scheduler_.Log();
  }

  // The node agent on kAgentNode: two H100s on the fake NVML (one busy with
  // a process, one in MIG mode), two NUMA nodes, a cgroup v2 root, PSI.
  void StartAgent() {
    const std::string scenario = dir_ + "/nvml.json";
    std::ofstream(scenario) << R"({"gpus": [
      {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "usedMiB": 20480, "util": 63,
       "processes": [{"pid": 4242, "usedMiB": 20000, "smUtil": 58}]},
      {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559,
       "mig": {"enabled": true, "devices": [{"profile": "1g.10gb", "gi": 9}]}}]})";
    setenv("GPA_FAKE_NVML_SCENARIO", scenario.c_str(), 1);
    for (int n = 0; n < 2; ++n) {
      const fs::path d = fs::path(dir_) / "sys/devices/system/node" / ("node" + std::to_string(n));
      WriteFile(d / "cpulist", n == 0 ? "0-7\n" : "8-15\n");
      WriteFile(d / "meminfo", "Node " + std::to_string(n) + " MemTotal: 16777216 kB\n");
    }
    WriteFile(fs::path(dir_) / "cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
    WriteFile(fs::path(dir_) / "proc/pressure/cpu", Psi(3.5));
    WriteFile(fs::path(dir_) / "proc/pressure/io", Psi(1.25));
    WriteFile(fs::path(dir_) / "proc/pressure/memory", Psi(12));
    Create(kube::resources::kConfigMaps,
           {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", "agent-config"}, {"namespace", "gpu-autoscaler-system"}}},
            {"data", {{"config.yaml", kAgentConfig}}}});
    ASSERT_TRUE(agent_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-node-agent"), "--node-name=" + std::string(kAgentNode),
         "--kubeconfig=" + kubeconfig_,
         "--nvml-library=" + testing::BinaryPath("libgpa-fake-nvml.so"), "--poll-interval=200ms",
         "--report-interval=1s", "--metrics-bind-address=127.0.0.1:" + std::to_string(agent_port_),
         "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0",
         "--sysfs-root=" + dir_ + "/sys", "--proc-root=" + dir_ + "/proc",
         "--cgroup-root=" + dir_ + "/cgroup", "--cgroup-driver=systemd", "--cgroup-version=v2",
         "--reserved-cpus=0-1", "--reserved-memory=2Gi", "--qos-resync-interval=200ms",
         "--config-map=gpu-autoscaler-system/agent-config"},
        dir_ + "/agent.log"));
    ASSERT_TRUE(WaitFor([&] { return agent_.PortFromLog("metrics_port") > 0; })) << agent_.Log();
  }

  // A Ready GPU node as KWOK makes one; `shared` advertises time-sliced replicas.
  void AddNode(const std::string& name, const std::string& type, const std::string& model,
               const std::string& tier, bool shared) {
    json labels = {{"kubernetes.io/hostname", name},
                   {"node.kubernetes.io/instance-type", type},
                   {"nvidia.com/gpu.product", model},
                   {"karpenter.sh/capacity-type", tier}};
    json resources = {{"cpu", "96"}, {"memory", "1152Gi"}, {"pods", "110"}};
    if (shared) {
      labels["nvidia.com/gpu.sharing-strategy"] = "time-slicing";
      labels["nvidia.com/gpu.replicas"] = "4";
      resources["nvidia.com/gpu.shared"] = "32";
    } else {
      resources["nvidia.com/gpu"] = "8";
    }
    json node = {{"apiVersion", "v1"},
                 {"kind", "Node"},
                 {"metadata", {{"name", name}, {"labels", labels}}},
                 {"status",
                  {{"capacity", resources},
                   {"allocatable", resources},
                   {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
    auto created = client_->Create({kube::resources::kNodes, "", name}, node);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    (*created)["status"] = node["status"];
    ASSERT_TRUE(client_->Replace({kube::resources::kNodes, "", name, "status"}, *created).ok());
  }

  json TeamPod(const std::string& ns, const std::string& name, int gpus,
               const std::string& workload) {
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata",
             {{"name", name},
              {"namespace", ns},
              {"labels", {{"team", "nlp"}, {"project", "chat"}, {"workload", workload}}}}},
            {"spec",
             {{"schedulerName", "gpu-autoscaler"},
              {"containers",
               {{{"name", "main"},
                 {"image", "registry.example/" + workload + ":1"},
                 {"resources",
                  {{"requests",
                    {{"cpu", "8"}, {"memory", "64Gi"}, {"nvidia.com/gpu", std::to_string(gpus)}}},
                   {"limits", {{"nvidia.com/gpu", std::to_string(gpus)}}}}}}}}}}};
  }

  // Bound by the scheduler, then Running as a kubelet (KWOK) would report.
  void RunPod(const std::string& ns, const std::string& name) {
    std::string node;
    ASSERT_TRUE(WaitFor([&] {
      auto p = client_->Get({kube::resources::kPods, ns, name});
      if (p.ok()) node = (*p)["spec"].value("nodeName", "");
      return !node.empty();
    })) << name
        << "\n"
        << Logs();
    auto patched =
        client_->Patch({kube::resources::kPods, ns, name, "status"}, kube::PatchType::kMerge,
                       json{{"status", {{"phase", "Running"}}}}.dump());
    ASSERT_TRUE(patched.ok()) << patched.error().ToString();
  }

  QueryResult Query(const std::string& expr) {
    testing::CommandResult r =
        testing::RunCommand({"/usr/bin/curl", "-sS", "-G", prometheus_->url() + "/api/v1/query",
                             "--data-urlencode", "query=" + expr});
    if (r.exit_code != 0) return {.error = "curl: " + r.err};
    const json body = json::parse(r.out, nullptr, false);
    if (body.is_discarded()) return {.error = "not JSON: " + r.out};
    if (body.value("status", "") != "success")
      return {.error = body.value("errorType", "") + ": " + body.value("error", "")};
    const json& result = body["data"]["result"];
    if (body["data"].value("resultType", "") == "scalar") return {.series = 1};
    return {.series = static_cast<int>(result.size())};
  }

  // Grafana's label_values(up{job=~R}, job): the jobs the variable offers, as
  // the regex alternation "All" expands to.
  std::string JobVariable(const std::string& variable_query) {
    static const std::regex kLabelValues(R"(label_values\((.*),\s*job\))");
    std::smatch m;
    if (!std::regex_match(variable_query, m, kLabelValues)) return "";
    testing::CommandResult r =
        testing::RunCommand({"/usr/bin/curl", "-sS", "-G", prometheus_->url() + "/api/v1/query",
                             "--data-urlencode", "query=" + m[1].str()});
    const json body = json::parse(r.out, nullptr, false);
    if (body.is_discarded() || body.value("status", "") != "success") return "";
    std::set<std::string> jobs;
    for (const json& s : body["data"]["result"])
      jobs.insert(s["metric"].value("job", ""));
    std::string out;
    for (const std::string& j : jobs)
      out += (out.empty() ? "" : "|") + j;
    return out;
  }

  std::string prometheus_binary_;
  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::unique_ptr<testing::FakeAws> aws_;
  std::unique_ptr<net::HttpServer> receiver_;
  std::unique_ptr<testing::TestPrometheus> prometheus_;
  std::string dir_, kubeconfig_;
  int webhook_port_ = 0, webhook_metrics_port_ = 0, manager_port_ = 0, scheduler_port_ = 0,
      agent_port_ = 0;
  ChildProcess webhook_, manager_, scheduler_, agent_;
};

TEST_F(DashboardsEndToEndTest, EveryPanelQueryHasData) {
  // The loopback receiver the Budget's alerts go to.
  std::mutex alerts_mu;
  int alerts = 0;
  auto receiver =
      net::HttpServer::Start({}, [&](const net::ServerRequest&, net::ResponseWriter& w) {
        std::lock_guard<std::mutex> lock(alerts_mu);
        ++alerts;
        w.Respond(200, "text/plain", "ok");
      });
  ASSERT_TRUE(receiver.ok()) << receiver.error().ToString();
  receiver_ = std::move(*receiver);
  auto aws = testing::FakeAws::Start({});
  ASSERT_TRUE(aws.ok()) << aws.error().ToString();
  aws_ = std::move(*aws);
  aws_->AddGroup(
      {.name = "gpu-spot", .min = 0, .max = 4, .instance_type = "g5.xlarge", .all_spot = true});
  aws_->AddGroup({.name = "gpu-od", .min = 0, .max = 4, .instance_type = "g5.xlarge"});

  // Prometheus scrapes the four programs every second, on ports chosen now
  // (a target not up yet is retried at the next scrape).
  for (int* port :
       {&webhook_port_, &webhook_metrics_port_, &manager_port_, &scheduler_port_, &agent_port_}) {
    auto free = testing::FreeLoopbackPort();
    ASSERT_TRUE(free.ok()) << free.error().ToString();
    *port = *free;
  }
  auto target = [](int port) { return "127.0.0.1:" + std::to_string(port); };
  auto prometheus = testing::TestPrometheus::Start(
      prometheus_binary_,
      std::vector<testing::ScrapeJob>{
          {.name = kManagerJob, .targets = {target(manager_port_)}},
          {.name = kSchedulerJob, .targets = {target(scheduler_port_)}},
          {.name = kWebhookJob, .targets = {target(webhook_metrics_port_)}},
          {.name = kAgentJob, .targets = {target(agent_port_)}, .labels = {{"node", kAgentNode}}}});
  ASSERT_TRUE(prometheus.ok()) << prometheus.error().ToString();
  prometheus_ = std::move(*prometheus);

  StartWebhook();
  if (HasFatalFailure()) return;
  StartManager();
  if (HasFatalFailure()) return;
  StartScheduler();
  if (HasFatalFailure()) return;

  // The fleet: a time-sliced A100 node and an H100 node, where the agent runs.
  AddNode("a100-spot-1", "p4d.24xlarge", "NVIDIA-A100-SXM4-40GB", "spot", true);
  AddNode(kAgentNode, "p5.48xlarge", "NVIDIA-H100-80GB-HBM3", "on-demand", false);
  if (HasFatalFailure()) return;
  StartAgent();
  if (HasFatalFailure()) return;

  // A team namespace that opts into sharing, a GPUSharingPolicy, a Budget.
  Create(kube::resources::kNamespaces,
         {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata",
           {{"name", kTeamNs},
            {"labels", {{"team", "nlp"}, {"gpuautoscaler.io/gpu-sharing", "enabled"}}}}}});
  auto policy = apiserver::YamlDocumentsToJson(testing::ReadFileOrDie(
      testing::SourcePath("docs/examples/gpusharingpolicy-timeslicing.yaml")));
  ASSERT_TRUE(policy.ok() && policy->size() == 1u);
  Create(api::kGpuSharingPolicies, (*policy)[0]);
  Create(kube::resources::kSecrets,
         {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "budget-alerts"}, {"namespace", kTeamNs}}},
          {"data",
           {{"webhook-url",
             Base64Encode("http://127.0.0.1:" + std::to_string(receiver_->port()) + "/hook")}}}});
  Create(api::kBudgets, json::parse(R"({"apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "Budget",
           "metadata": {"name": "nlp-gpus", "namespace": "team-nlp"},
           "spec": {"scope": {"namespaces": ["team-nlp"]}, "amount": 0.01, "currency": "USD",
                    "period": "monthly", "thresholds": [50, 100], "enforcement": "alert",
                    "notifications": [{"type": "webhook",
                                       "secretRef": {"name": "budget-alerts",
                                                     "key": "webhook-url"}}]}})"));
  if (HasFatalFailure()) return;

  // Team pods through the webhook and the scheduler: a shared notebook and a
  // training job on two of the H100 node's eight GPUs (six stay idle).
  Create(kube::resources::kPods, TeamPod(kTeamNs, "notebook-0", 1, "notebook"));
  Create(kube::resources::kPods, TeamPod(kTeamNs, "train-0", 2, "training"));
  if (HasFatalFailure()) return;
  RunPod(kTeamNs, "notebook-0");
  RunPod(kTeamNs, "train-0");
  if (HasFatalFailure()) return;

  // GPUNodePools on the AWS fake: one with a pod only it can serve, one whose
  // credentials Secret does not exist.
  Create(kube::resources::kNamespaces,
         {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "ml"}}}});
  Create(kube::resources::kSecrets,
         {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "aws-credentials"}, {"namespace", "ml"}}},
          {"data",
           {{"aws_access_key_id", Base64Encode(testing::FakeAwsOptions{}.access_key_id)},
            {"aws_secret_access_key", Base64Encode(testing::FakeAwsOptions{}.secret_access_key)},
            {"endpoint", Base64Encode(aws_->endpoint())},
            {"ca.crt", Base64Encode(aws_->ca_pem())}}}});
  for (const char* name : {"a10g", "broken"}) {
    json pool = json::parse(R"({
      "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
      "spec": {
        "provider": {"type": "aws-asg", "region": "us-east-1",
                     "groups": {"spot": "gpu-spot", "onDemand": "gpu-od"}},
        "instanceTypes": [{"name": "g5.xlarge", "gpuModel": "NVIDIA-A10G", "gpuCount": 1,
                           "cpu": "4", "memory": "16Gi",
                           "price": {"spot": 0.4523, "onDemand": 1.006}}],
        "maxNodes": 4,
        "tiers": {"spot": {"weight": 1, "maxNodes": 4}, "onDemand": {"weight": 1}},
        "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "1m"}
      }})");
    pool["metadata"]["name"] = name;
    pool["spec"]["provider"]["credentialsSecretRef"] = {
        {"namespace", "ml"},
        {"name", std::string(name) == "a10g" ? "aws-credentials" : "missing-credentials"}};
    Create(api::kGpuNodePools, pool);
  }
  json pending = TeamPod("ml", "train-a10g", 1, "training");
  pending["metadata"]["labels"] = {{"team", "ml"}, {"project", "vision"}};
  pending["spec"]["nodeSelector"] = {{"node.kubernetes.io/instance-type", "g5.xlarge"}};
  pending["spec"]["containers"][0]["resources"]["requests"] = {
      {"cpu", "1"}, {"memory", "2Gi"}, {"nvidia.com/gpu", "1"}};  // fits a g5.xlarge
  Create(kube::resources::kPods, pending);
  if (HasFatalFailure()) return;

  // The story's milestones, as the objects report them.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto pool = client_->Get({api::kGpuNodePools, "", "a10g"});
        if (!pool.ok()) return false;
        for (const json& a : pool->value("/status/recentActions"_json_pointer, json::array()))
          if (a.value("action", "") == "ScaleUp") return true;
        return false;
      },
      45s))
      << client_->Get({api::kGpuNodePools, "", "a10g"})->dump(2) << "\n"
      << client_->Get({kube::resources::kPods, "ml", "train-a10g"})->dump(2) << "\n"
      << Logs();
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(alerts_mu);
        return alerts > 0;
      },
      45s))
      << Logs();

  // Every target of every panel of every dashboard the chart ships.
  struct Target {
    std::string board, panel, expr;
  };
  std::vector<Target> targets;
  std::map<std::string, std::string> job_queries;  // board -> variable query
  int boards = 0;
  for (const auto& entry :
       fs::directory_iterator(testing::SourcePath("charts/gpu-autoscaler/dashboards"))) {
    if (entry.path().extension() != ".json") continue;
    ++boards;
    const json board = json::parse(testing::ReadFileOrDie(entry.path().string()));
    const std::string name = entry.path().filename().string();
    for (const json& var : board["templating"]["list"])
      if (var.value("name", "") == "job") job_queries[name] = var["query"].value("query", "");
    for (const json& panel : board["panels"])
      for (const json& target : panel["targets"])
        targets.push_back({name, panel.value("title", ""), target.value("expr", "")});
  }
  EXPECT_EQ(boards, 5);  // cluster, cost, autoscaler, webhook, node agent

  auto expand = [](std::string expr, const std::string& jobs) {
    for (auto [from, to] : {std::pair<std::string, std::string>{"$__rate_interval", "5s"},
                            {"${datasource}", ""},
                            {"$job", jobs}}) {
      for (size_t at = expr.find(from); at != std::string::npos; at = expr.find(from, at)) {
        expr.replace(at, from.size(), to);
        at += to.size();
      }
    }
    return expr;
  };
  std::vector<std::string> missing;
  std::map<std::string, std::string> jobs;
  // Polls until every query has data (each scrape adds series): a query still
  // empty at the deadline is a panel without data.
  WaitFor(
      [&] {
        missing.clear();
        for (const auto& [board, query] : job_queries) {
          jobs[board] = JobVariable(query);
          if (jobs[board].empty()) missing.push_back(board + ": the $job variable has no value");
        }
        for (const Target& t : targets) {
          const std::string expr = expand(t.expr, jobs[t.board]);
          const QueryResult r = Query(expr);
          if (!r.error.empty()) {
            missing.push_back(t.board + " / " + t.panel + " / " + expr + ": " + r.error);
          } else if (r.series == 0) {
            missing.push_back(t.board + " / " + t.panel + " / " + expr + ": no series");
          }
        }
        if (!missing.empty()) std::this_thread::sleep_for(500ms);  // the next scrape
        return missing.empty();
      },
      40s);
  for (const std::string& m : missing)
    ADD_FAILURE() << "panel without data: " << m;
  if (!missing.empty()) {
    std::cout << Logs();
  } else {
    std::cout << "--- " << targets.size() << " panel queries on " << boards
              << " dashboards, every one with data ---\n";
  }
}

}  // namespace
}  // namespace gpu_autoscaler
