// `gpu-autoscaler fleet` end to end: the embedded API server and the fleet as
// processes. A fake node (kwok.x-k8s.io/node=fake) gets a heartbeat Lease that
// is renewed and a Ready heartbeat; a pod bound to it goes Running; /metrics
// serves cAdvisor's two series for its container; a pod on another node is
// never touched; a deleted pod goes at once; the Lease of a deleted node goes.
// Then a real Prometheus scrapes the fleet and the ServiceProfile controller's
// own queries (controllers/profile_usage_source.h) return the pod's usage.
#include <signal.h>

#include <filesystem>
#include <regex>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "controllers/profile_usage_source.h"
#include "cost/utilization.h"
#include "kube/error.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/prometheus_fixture.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::WaitFor;

constexpr char kNode[] = "kwok-gpu-1";
constexpr char kCpuSeries[] = "container_cpu_usage_seconds_total{container=\"server\",namespace=\"";
constexpr char kMemSeries[] =
    "container_memory_working_set_bytes{container=\"server\",namespace=\"";

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (server_->is_real_cluster()) GTEST_SKIP() << "creates cluster-wide fake Nodes";
    dir_ = testing::MakeTempDir("gpa-fleet");
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("fleet");
    ASSERT_TRUE(fleet_.Spawn(
        {testing::BinaryPath("gpu-autoscaler"), "fleet", "--kubeconfig",
         testing::WriteKubeconfig(server_->config(), dir_), "--metrics-bind-address", "127.0.0.1:0",
         "--lease-interval", "1s", "--node-status-interval", "2s", "--memory-trace",
         testing::SourcePath("tests/data/genai/recommend_slice/memory.csv"), "--trace-step", "1h"},
        dir_ + "/fleet.log"));
    ASSERT_TRUE(WaitFor([&] { return (port_ = fleet_.PortFromLog("metrics_port")) > 0; }))
        << fleet_.Log();
  }
  void TearDown() override {
    if (fleet_.running()) fleet_.Kill(SIGTERM);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void CreateNode(const std::string& name, bool fake) {
    json node = {
        {"apiVersion", "v1"},
        {"kind", "Node"},
        {"metadata", {{"name", name}}},
        {"status",
         {{"capacity", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}},
          {"allocatable", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}}}}};
    if (fake) node["metadata"]["annotations"] = {{"kwok.x-k8s.io/node", "fake"}};
    auto r = client_->Create({kube::resources::kNodes, "", name, ""}, node);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }

  void CreatePod(const std::string& name, const std::string& node, const std::string& usage,
                 const std::string& memory_limit = "") {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", ns_}}},
                {"spec",
                 {{"nodeName", node},
                  {"containers", {{{"name", "server"}, {"image", "registry.example/chat:1"}}}}}}};
    if (!usage.empty()) pod["metadata"]["annotations"] = {{"gpuautoscaler.io/fleet-usage", usage}};
    if (!memory_limit.empty())
      pod["spec"]["containers"][0]["resources"] = {{"limits", {{"memory", memory_limit}}}};
    auto r = client_->Create({kube::resources::kPods, ns_, name, ""}, pod);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }

  json Get(const kube::GroupVersionResource& gvr, const std::string& ns, const std::string& name) {
    auto r = client_->Get({gvr, ns, name, ""});
    return r.ok() ? *r : json::object();  // empty: not there (yet)
  }

  std::string Metrics() {
    testing::CommandResult r = testing::RunCommand(
        {"/usr/bin/curl", "-sf", "http://127.0.0.1:" + std::to_string(port_) + "/metrics"});
    return r.exit_code == 0 ? r.out : "";
  }

  // The value of the series line starting with `prefix` + ns + "\",node=...,pod=..."; -1 if none.
  double Sample(const std::string& text, const std::string& series, const std::string& pod) {
    const std::string line = series + ns_ + "\",node=\"" + kNode + "\",pod=\"" + pod + "\"} ";
    const size_t at = text.find(line);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + line.size()));
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  testing::ChildProcess fleet_;
  std::string dir_;
  std::string ns_;
  int port_ = -1;
};

TEST_F(FleetTest, LeasesRunningPodsAndCadvisorMetrics) {
  CreateNode(kNode, true);
  CreateNode("real-1", false);
  CreatePod("chat-a", kNode, "cpu=0.5,memory=600Mi");
  CreatePod("elsewhere", "real-1", "");
  // Memory from the GenTD26 excerpt: its first sample (--trace-step 1h) times the limit.
  CreatePod("traced", kNode, "memory-trace=23b8eba99c14e73d454503a55ae96989", "8Gi");

  // The heartbeat Lease, held by the node, renewed.
  std::string first_renewal;
  ASSERT_TRUE(WaitFor([&] {
    first_renewal = Get(kube::resources::kLeases, "kube-node-lease", kNode)
                        .value("spec", json::object())
                        .value("renewTime", "");
    return !first_renewal.empty();
  })) << fleet_.Log();
  const json lease = Get(kube::resources::kLeases, "kube-node-lease", kNode);
  EXPECT_EQ(lease["spec"]["holderIdentity"], kNode);
  EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 40);
  EXPECT_EQ(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
  ASSERT_TRUE(WaitFor([&] {
    const std::string now = Get(kube::resources::kLeases, "kube-node-lease", kNode)
                                .value("spec", json::object())
                                .value("renewTime", "");
    return !now.empty() && now > first_renewal;  // RFC 3339 in UTC sorts as time
  })) << fleet_.Log();
  // The node: Ready with a heartbeat, and an InternalIP.
  ASSERT_TRUE(WaitFor([&] {
    const json node = Get(kube::resources::kNodes, "", kNode);
    for (const json& c : node.value("status", json::object()).value("conditions", json::array()))
      if (c["type"] == "Ready") return c["status"] == "True" && c.contains("lastHeartbeatTime");
    return false;
  })) << fleet_.Log();
  EXPECT_EQ(Get(kube::resources::kNodes, "", kNode)["status"]["addresses"][0]["address"],
            "10.0.0.1");

  // The pod: Running, Ready, an IP, its container running.
  ASSERT_TRUE(WaitFor([&] {
    return Get(kube::resources::kPods, ns_, "chat-a")
               .value("status", json::object())
               .value("phase", "") == "Running";
  })) << fleet_.Log();
  const json status = Get(kube::resources::kPods, ns_, "chat-a")["status"];
  EXPECT_EQ(status["podIP"], "10.244.0.1");
  EXPECT_EQ(status["hostIP"], "10.0.0.1");
  EXPECT_TRUE(status.contains("startTime"));
  std::set<std::string> true_conditions;
  for (const json& c : status["conditions"])
    if (c["status"] == "True") true_conditions.insert(c["type"].get<std::string>());
  EXPECT_EQ(true_conditions,
            (std::set<std::string>{"Initialized", "Ready", "ContainersReady", "PodScheduled"}));
  EXPECT_EQ(status["containerStatuses"][0]["name"], "server");
  EXPECT_EQ(status["containerStatuses"][0]["ready"], true);
  EXPECT_TRUE(status["containerStatuses"][0]["state"].contains("running"));

  // /metrics: both series for the pod's container; the counter grows.
  std::string text;
  ASSERT_TRUE(WaitFor([&] {
    text = Metrics();
    return Sample(text, kCpuSeries, "chat-a") >= 0;
  })) << text;
  EXPECT_EQ(Sample(text, kMemSeries, "chat-a"), 629145600);  // 600Mi
  ASSERT_TRUE(WaitFor([&] { return Sample(text = Metrics(), kMemSeries, "traced") >= 0; })) << text;
  EXPECT_EQ(Sample(text, kMemSeries, "traced"), 282161579);  // 0.0328479309876759 x 8Gi
  EXPECT_NE(text.find("# TYPE container_cpu_usage_seconds_total counter"), std::string::npos);
  EXPECT_NE(text.find("# TYPE container_memory_working_set_bytes gauge"), std::string::npos);
  EXPECT_EQ(text.find("pod=\"elsewhere\""), std::string::npos);
  const double cpu0 = Sample(text, kCpuSeries, "chat-a");
  ASSERT_TRUE(WaitFor([&] { return Sample(Metrics(), kCpuSeries, "chat-a") > cpu0; }));
  EXPECT_EQ(testing::RunCommand(
                {"/usr/bin/curl", "-sf", "http://127.0.0.1:" + std::to_string(port_) + "/healthz"})
                .out,
            "ok");

  // The pod on a node the fleet does not manage is left as it was.
  EXPECT_FALSE(Get(kube::resources::kPods, ns_, "elsewhere")["status"].contains("phase") &&
               Get(kube::resources::kPods, ns_, "elsewhere")["status"]["phase"] == "Running");
  EXPECT_TRUE(Get(kube::resources::kLeases, "kube-node-lease", "real-1").empty());

  // A graceful delete (the server marks a running pod terminating) completes at once.
  ASSERT_TRUE(client_->Delete({kube::resources::kPods, ns_, "chat-a", ""}).ok());
  ASSERT_TRUE(WaitFor([&] {
    auto r = client_->Get({kube::resources::kPods, ns_, "chat-a", ""});
    return !r.ok() && kube::IsNotFound(r.error());
  })) << fleet_.Log();
  // A deleted node's Lease goes too.
  ASSERT_TRUE(client_->Delete({kube::resources::kNodes, "", kNode, ""}).ok());
  ASSERT_TRUE(WaitFor([&] {
    auto r = client_->Get({kube::resources::kLeases, "kube-node-lease", kNode, ""});
    return !r.ok() && kube::IsNotFound(r.error());
  })) << fleet_.Log();
}

TEST_F(FleetTest, PrometheusScrapesTheFleetForTheServiceProfileQueries) {
  const std::string binary = testing::TestPrometheus::FindBinary();
  if (binary.empty()) GTEST_SKIP() << "prometheus is not installed";
  CreateNode(kNode, true);
  CreatePod("chat-a", kNode, "cpu=0.5,memory=600Mi");
  CreatePod("chat-b", kNode, "server:cpu=250m,memory=1Gi");
  auto prom = testing::TestPrometheus::Start(binary, {"127.0.0.1:" + std::to_string(port_)});
  ASSERT_TRUE(prom.ok()) << prom.error().ToString();
  const cost::PrometheusDcgmOptions options{.url = (*prom)->url()};

  // rate() needs two scrapes of the counter after the pods run.
  auto pod_samples = [&](std::string_view query) {
    std::map<std::string, cost::PromSample> out;
    auto r = cost::QueryPrometheusVector(options, query);
    if (!r.ok()) return out;
    for (const cost::PromSample& s : *r)
      if (s.labels.count("namespace") && s.labels.at("namespace") == ns_)
        out[s.labels.at("pod")] = s;
    return out;
  };
  std::map<std::string, cost::PromSample> cpu, memory;
  ASSERT_TRUE(WaitFor(
      [&] {
        cpu = pod_samples(controllers::kCpuUsageQuery);
        memory = pod_samples(controllers::kMemoryUsageQuery);
        return cpu.size() == 2 && memory.size() == 2;
      },
      std::chrono::seconds(60)))
      << (*prom)->LogTail() << fleet_.Log();
  EXPECT_EQ(cpu["chat-a"].labels,
            (std::map<std::string, std::string>{
                {"namespace", ns_}, {"pod", "chat-a"}, {"container", "server"}}));
  EXPECT_EQ(memory["chat-b"].labels,
            (std::map<std::string, std::string>{
                {"namespace", ns_}, {"pod", "chat-b"}, {"container", "server"}}));
  EXPECT_EQ(memory["chat-a"].value, 629145600);
  EXPECT_EQ(memory["chat-b"].value, 1073741824);
  // What Prometheus stored of each counter grows at the pod's rate: 0.5 (0.25)
  // CPU seconds a second, within the lag between a scrape's timestamp and the
  // fleet's reading.
  for (const auto& [pod, cores] :
       {std::pair<std::string, double>{"chat-a", 0.5}, {"chat-b", 0.25}}) {
    double slope = -1;
    ASSERT_TRUE(WaitFor(
        [&] {
          testing::CommandResult r = testing::RunCommand(
              {"/usr/bin/curl", "-sS", "-G", (*prom)->url() + "/api/v1/query", "--data-urlencode",
               "query=container_cpu_usage_seconds_total{namespace=\"" + ns_ + "\",pod=\"" + pod +
                   "\"}[5m]"});
          const json doc = json::parse(r.out, nullptr, false);
          if (doc.is_discarded() || doc["data"]["result"].size() != 1) return false;
          const json& v = doc["data"]["result"][0]["values"];
          if (v.size() < 4) return false;
          const double dt = v.back()[0].get<double>() - v.front()[0].get<double>();
          const double dv = std::stod(v.back()[1].get<std::string>()) -
                            std::stod(v.front()[1].get<std::string>());
          slope = dv / dt;
          return true;
        },
        std::chrono::seconds(60)))
        << pod;
    EXPECT_NEAR(slope, cores, cores * 0.05) << pod;
    // The profile's query, rate over 5m, under-reads a series younger than
    // 5 minutes (Prometheus divides by the whole range): above 0, not above.
    const double rate = pod_samples(controllers::kCpuUsageQuery)[pod].value;
    EXPECT_GT(rate, 0) << pod;
    EXPECT_LE(rate, cores * 1.05) << pod;
  }

  // The ServiceProfile controller's source reads the same, as samples.
  controllers::PrometheusProfileUsageSource source(options, RealClock::Instance(),
                                                   std::chrono::seconds(0));
  auto usage = source.Fetch();
  ASSERT_TRUE(usage.ok()) << usage.error().ToString();
  int seen = 0;
  for (const controllers::ContainerUsageSample& s : **usage) {
    if (s.ns != ns_ || s.pod != "chat-b" || s.container != "server") continue;
    ++seen;
    if (s.resource == profiling::Resource::kMemory) {
      EXPECT_EQ(s.value, 1073741824);
    } else {
      EXPECT_EQ(s.resource, profiling::Resource::kCpu);
      EXPECT_GT(s.value, 0);
      EXPECT_LE(s.value, 0.25 * 1.05);
    }
  }
  EXPECT_EQ(seen, 2);
}

TEST(FleetCliTest, HelpAndBadFlags) {
  const std::string cli = testing::BinaryPath("gpu-autoscaler");
  testing::CommandResult help = testing::RunCommand({cli, "fleet", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Usage: gpu-autoscaler fleet"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("--memory-trace FILE"), std::string::npos);
  struct Case {
    std::vector<std::string> args;
    std::string error;
  } cases[] = {
      {{"--pod-cidr", "10.0.0.0/40"}, "pod CIDR \"10.0.0.0/40\""},
      {{"--default-usage", "gpu=1"}, "--default-usage: usage entry \"gpu=1\": unknown key"},
      {{"--lease-interval", "soon"}, "--lease-interval: want a duration"},
      {{"--metrics-bind-address", "10247"}, "--metrics-bind-address: want HOST:PORT"},
      {{"--bogus"}, "--bogus"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {cli, "fleet"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    testing::CommandResult r = testing::RunCommand(args);
    EXPECT_EQ(r.exit_code, 2) << c.args[0];
    EXPECT_NE(r.err.find(c.error), std::string::npos) << r.err;
  }
  // A trace that does not parse is an error before anything starts.
  testing::CommandResult bad = testing::RunCommand(
      {cli, "fleet", "--memory-trace", testing::SourcePath("tests/data/genai/README.md")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--memory-trace: "), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace gpu_autoscaler
