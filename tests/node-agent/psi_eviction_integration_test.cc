// PSI eviction in gpu-autoscaler-node-agent as a real process, against the
// embedded API server (a separate process too), with a fake /proc/pressure
// and cgroup v2 tree that the test rewrites, and pods of each QoS class. One
// agent runs through the whole story, so the configuration changes are
// applied without a restart:
//   1. a spike shorter than the window (30 s) evicts nothing;
//   2. a bad ConfigMap gets an InvalidConfig Event and the last good one stays
//      (pressure above 25% still arms the trigger);
//   3. a good change (window 1 s) applies, and pressure held above the
//      threshold evicts exactly one pod, the reclaimed_cores one, with its
//      Event; the cool-down then holds the next.
// The test waits on what the agent reports (metrics, Events, log lines),
// never on time, except that a spike must stay shorter than the 30 s window.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/wait.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "agent_process_support.h"
#include "kube/object_codec.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "node-agent/cgroup_writer.h"
#include "node-agent/local_pods.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;
using testing::WaitFor;
constexpr const char* kNode = "psi-node-1";
constexpr int64_t kGiB = 1024 * 1024 * 1024;

std::string ConfigYaml(const std::string& memory) {
  return "apiVersion: gpuautoscaler.io/v1alpha1\n"
         "kind: NodeAgentConfig\n"
         "pressureEviction:\n"
         "  interval: 100ms\n"
         "  maxEvictions: 1\n"
         "  rateWindow: 10m\n"
         "  coolDown: 1m\n"
         "  cpu: {enabled: false}\n"
         "  io: {enabled: false}\n"
         "  memory: " +
         memory + "\n";
}

class PsiEvictionProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (!server_->supports_faults()) GTEST_SKIP() << "needs the embedded API server";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    ns_ = server_->CreateTestNamespace("psi");
    dir_ = testing::MakeTempDir("gpa-psi-agent");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", kNode}}}};
    ASSERT_TRUE(client_->Create({kube::resources::kNodes}, node).ok());
    // A cgroup v2 root, the kubelet's cgroupfs layout beneath.
    Write("cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
    Write("proc/pressure/cpu", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    Write("proc/pressure/io", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    SetMemoryPressure(0);
  }
  void TearDown() override {
    if (agent_.running()) agent_.Kill(SIGTERM);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Write(const std::string& rel, const std::string& text) {
    testing::WriteFile(dir_ + "/" + rel, text);
  }
  void SetMemoryPressure(double avg10) { Write("proc/pressure/memory", testing::PsiText(avg10)); }

  // A pod of `qos_level` whose cgroup (where the kubelet would put it) uses
  // `memory` bytes.
  void AddPod(const std::string& name, const std::string& qos_level, json resources,
              int64_t memory) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata",
                 {{"name", name},
                  {"namespace", ns_},
                  {"annotations", {{"katalyst.kubewharf.io/qos_level", qos_level}}}}},
                {"spec",
                 {{"nodeName", kNode},
                  {"containers",
                   json::array({{{"name", "c"}, {"image", "x"}, {"resources", resources}}})}}}};
    auto created = client_->Create({kube::resources::kPods, ns_}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    json running = {{"status", {{"phase", "Running"}}}};
    ASSERT_TRUE(client_
                    ->Patch({kube::resources::kPods, ns_, name, "status"}, kube::PatchType::kMerge,
                            running.dump())
                    .ok());
    auto view = kube::DecodePod(created->dump());
    ASSERT_TRUE(view.ok());
    const std::string cgroup =
        "cgroup/" + PodCgroupPath(CgroupDriver::kCgroupfs, ComputeKubeQosClass(*view),
                                  (*created)["metadata"]["uid"].get<std::string>());
    Write(cgroup + "/memory.current", std::to_string(memory) + "\n");
    Write(cgroup + "/memory.pressure", "some avg10=12.00 avg60=0 avg300=0 total=5\n");
  }

  void PutConfig(const std::string& yaml) {
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", "agent-config"}, {"namespace", ns_}}},
               {"data", {{"config.yaml", yaml}}}};
    auto existing = client_->Get({kube::resources::kConfigMaps, ns_, "agent-config"});
    if (existing.ok()) {
      ASSERT_TRUE(client_->Replace({kube::resources::kConfigMaps, ns_, "agent-config"}, cm).ok());
    } else {
      ASSERT_TRUE(client_->Create({kube::resources::kConfigMaps, ns_}, cm).ok());
    }
  }

  void StartAgent(bool wait_for_port = true) {
    std::vector<std::string> args = {testing::BinaryPath("gpu-autoscaler-node-agent"),
                                     "--node-name=" + std::string(kNode),
                                     "--kubeconfig=" + kubeconfig_,
                                     "--nvml-library=" + dir_ + "/no-nvml/libnvidia-ml.so.1",
                                     "--report-interval=1s",
                                     "--metrics-bind-address=127.0.0.1:0",
                                     "--metrics-secure=false",
                                     "--health-probe-bind-address=127.0.0.1:0",
                                     "--proc-root=" + dir_ + "/proc",
                                     "--cgroup-root=" + dir_ + "/cgroup",
                                     "--cgroup-version=none",
                                     "--config-map=" + ns_ + "/agent-config"};
    ASSERT_TRUE(agent_.Spawn(args, dir_ + "/agent.log"));
    if (!wait_for_port) return;
    ASSERT_TRUE(WaitFor([&] { return agent_.PortFromLog("metrics_port") > 0; })) << agent_.Log();
  }

  std::string Metrics() { return testing::AgentGet(agent_, "metrics_port", "/metrics"); }
  bool MetricsHave(const std::string& series) {
    return Metrics().find(series) != std::string::npos;
  }
  std::set<std::string> PodsLeft() {
    std::set<std::string> out;
    auto list = client_->List({kube::resources::kPods, ns_});
    EXPECT_TRUE(list.ok());
    for (const json& p : (*list)["items"])
      if (!p["metadata"].contains("deletionTimestamp")) out.insert(p["metadata"]["name"]);
    return out;
  }
  std::vector<std::string> Events(const std::string& kind, const std::string& name) {
    return testing::EventsAbout(*client_, ns_, kind, name);
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  testing::ChildProcess agent_;
  std::string ns_;
  std::string dir_;
  std::string kubeconfig_;
};

TEST_F(PsiEvictionProcessTest, SpikeBadConfigGoodChangeAndOneEviction) {
  const json guaranteed = {{"requests", {{"cpu", "1"}, {"memory", "1Gi"}}},
                           {"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}};
  AddPod("dedicated", "dedicated_cores", guaranteed, 60 * kGiB);
  AddPod("system", "system_cores", {{"requests", {{"cpu", "100m"}}}}, 8 * kGiB);
  AddPod("web", "shared_cores", {{"requests", {{"memory", "1Gi"}}}}, 3 * kGiB);
  AddPod("batch", "reclaimed_cores", json::object(), 2 * kGiB);
  PutConfig(ConfigYaml("{threshold: 25, disarmBelow: 10, window: 30s}"));
  StartAgent();
  ASSERT_TRUE(WaitFor([&] {
    return MetricsHave("gpu_autoscaler_node_config_reloads_total{result=\"applied\"} 1") &&
           MetricsHave("gpu_autoscaler_node_pressure_percent{resource=\"memory\"} 0");
  })) << agent_.Log();

  // 1. A spike: armed, then below disarmBelow well before the 30 s window.
  SetMemoryPressure(50);
  ASSERT_TRUE(WaitFor([&] {
    return MetricsHave("gpu_autoscaler_node_pressure_high{resource=\"memory\"} 1");
  })) << agent_.Log();
  SetMemoryPressure(5);
  ASSERT_TRUE(WaitFor(
      [&] { return MetricsHave("gpu_autoscaler_node_pressure_high{resource=\"memory\"} 0"); }));
  EXPECT_TRUE(MetricsHave(
      "gpu_autoscaler_node_pressure_evictions_total{resource=\"memory\",result=\"evicted\"} 0"));
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"batch", "dedicated", "system", "web"}));

  // 2. A bad version: refused with an Event; the last good one (threshold 25) stays.
  PutConfig(ConfigYaml("{threshold: 20, disarmBelow: 30, window: 1s}"));
  ASSERT_TRUE(WaitFor([&] {
    return MetricsHave("gpu_autoscaler_node_config_reloads_total{result=\"rejected\"} 1");
  })) << agent_.Log();
  ASSERT_TRUE(WaitFor([&] { return !Events("ConfigMap", "agent-config").empty(); }));
  EXPECT_EQ(Events("ConfigMap", "agent-config"),
            std::vector<std::string>{"InvalidConfig: ConfigMap " + ns_ +
                                     "/agent-config: pressureEviction.memory.disarmBelow: must "
                                     "not be above threshold (20) (the last good configuration "
                                     "stays in force)"});
  EXPECT_NE(agent_.Log().find("rejected a new configuration; the last good one stays"),
            std::string::npos);
  SetMemoryPressure(22);  // above the bad version's 20, under the good one's 25
  ASSERT_TRUE(WaitFor(
      [&] { return MetricsHave("gpu_autoscaler_node_pressure_percent{resource=\"memory\"} 22"); }));
  EXPECT_TRUE(MetricsHave("gpu_autoscaler_node_pressure_high{resource=\"memory\"} 0"));

  // 3. A good change, applied without a restart: a 1 s window. Held pressure evicts
  // exactly one pod, the reclaimed_cores one.
  PutConfig(ConfigYaml("{threshold: 25, disarmBelow: 10, window: 1s}"));
  ASSERT_TRUE(WaitFor([&] {
    return MetricsHave("gpu_autoscaler_node_config_reloads_total{result=\"applied\"} 2");
  })) << agent_.Log();
  SetMemoryPressure(41.2);
  ASSERT_TRUE(WaitFor([&] { return !Events("Pod", "batch").empty(); })) << agent_.Log();
  const std::vector<std::string> events = Events("Pod", "batch");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].rfind("PressureEviction: memory pressure some avg10 41.2% above 25% for ", 0),
            0u)
      << events[0];
  EXPECT_NE(events[0].find("; reclaimed_cores pod using 2.0 GiB of memory (request 0 B); the pod "
                           "itself stalled 12.0% (memory some avg10)"),
            std::string::npos)
      << events[0];
  // Still high: the next round is held by the cool-down, nothing else goes.
  ASSERT_TRUE(WaitFor([&] { return agent_.Log().find("memory: cool-down") != std::string::npos; }))
      << agent_.Log();
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"dedicated", "system", "web"}));
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("gpu_autoscaler_node_pressure_evictions_total{resource=\"memory\","
                         "result=\"evicted\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_TRUE(agent_.running());
}

// Crash point (docs/reliability.md): an agent killed right after an eviction
// (GPA_FAILPOINTS, before its Event) counts it against maxEvictions (1 per
// 10m) once restarted: with the pressure still high, the next pod stays.
TEST_F(PsiEvictionProcessTest, KilledAfterAnEvictionTheRestartedAgentKeepsTheRateLimit) {
  AddPod("batch", "reclaimed_cores", json::object(), 2 * kGiB);
  AddPod("batch-small", "reclaimed_cores", json::object(), 1 * kGiB);
  AddPod("web", "shared_cores", {{"requests", {{"memory", "1Gi"}}}}, 3 * kGiB);
  PutConfig(ConfigYaml("{threshold: 25, disarmBelow: 10, window: 1s}"));
  SetMemoryPressure(50);
  setenv("GPA_FAILPOINTS", "node_agent.pressure_eviction.after_evict=kill", 1);
  StartAgent(/*wait_for_port=*/false);
  unsetenv("GPA_FAILPOINTS");
  if (HasFatalFailure()) return;
  std::optional<int> died;
  ASSERT_TRUE(WaitFor([&] { return (died = agent_.TryWait()).has_value(); })) << agent_.Log();
  ASSERT_TRUE(WIFSIGNALED(*died) && WTERMSIG(*died) == SIGKILL) << *died << agent_.Log();
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"batch-small", "web"}));
  auto node = client_->Get({kube::resources::kNodes, "", kNode});
  ASSERT_TRUE(node.ok());
  const std::string record =
      (*node)["metadata"]["annotations"].value("gpuautoscaler.io/pressure-evictions", "");
  EXPECT_NE(record.find("\"pod\":\"" + ns_ + "/batch\""), std::string::npos) << record;

  StartAgent();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitFor([&] {
    return agent_.Log().find("pressure is high but nothing is evicted") != std::string::npos;
  })) << agent_.Log();
  EXPECT_NE(agent_.Log().find("PSI evictions of an earlier run count against the limits"),
            std::string::npos);
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"batch-small", "web"}));
  EXPECT_TRUE(Events("Pod", "batch-small").empty());
}

// Crash point: killed after recording an eviction on the Node and before the
// Eviction call. The restarted agent completes it, once, and evicts nothing
// more within maxEvictions.
TEST_F(PsiEvictionProcessTest, KilledBeforeTheEvictionCallTheRestartedAgentCompletesItOnce) {
  AddPod("batch", "reclaimed_cores", json::object(), 2 * kGiB);
  AddPod("batch-small", "reclaimed_cores", json::object(), 1 * kGiB);
  AddPod("web", "shared_cores", {{"requests", {{"memory", "1Gi"}}}}, 3 * kGiB);
  PutConfig(ConfigYaml("{threshold: 25, disarmBelow: 10, window: 1s}"));
  SetMemoryPressure(50);
  setenv("GPA_FAILPOINTS", "node_agent.pressure_eviction.before_evict=kill", 1);
  StartAgent(/*wait_for_port=*/false);
  unsetenv("GPA_FAILPOINTS");
  if (HasFatalFailure()) return;
  std::optional<int> died;
  ASSERT_TRUE(WaitFor([&] { return (died = agent_.TryWait()).has_value(); })) << agent_.Log();
  ASSERT_TRUE(WIFSIGNALED(*died) && WTERMSIG(*died) == SIGKILL) << *died << agent_.Log();
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"batch", "batch-small", "web"}));
  auto node = client_->Get({kube::resources::kNodes, "", kNode});
  ASSERT_TRUE(node.ok());
  EXPECT_NE((*node)["metadata"]["annotations"]
                .value("gpuautoscaler.io/pressure-evictions", "")
                .find("\"pod\":\"" + ns_ + "/batch\""),
            std::string::npos);

  StartAgent();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitFor([&] {
    return PodsLeft() == std::set<std::string>{"batch-small", "web"} &&
           agent_.Log().find("pressure is high but nothing is evicted") != std::string::npos;
  })) << agent_.Log();
  EXPECT_NE(agent_.Log().find("completing a memory pressure eviction recorded before the agent "
                              "restarted"),
            std::string::npos);
  ASSERT_TRUE(WaitFor([&] { return !Events("Pod", "batch").empty(); }));
  EXPECT_EQ(Events("Pod", "batch").size(), 1u);
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"batch-small", "web"}));
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
