// The PSI evictor's apply layer against the repository's API server (a real
// process), with a fake /proc/pressure and fake pod cgroups that the test
// rewrites and a FakeClock for the windows: which pod is evicted, its Event,
// the rate limit, a PodDisruptionBudget's refusal, and the metrics. Also the
// ConfigMap watch: a good version applies, a bad one gets an Event and the
// last good one stays.
#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "kube/event_recorder.h"
#include "kube/object_codec.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "node-agent/agent_config_watch.h"
#include "node-agent/pressure_evictor.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
constexpr const char* kNode = "psi-node-1";
constexpr int64_t kGiB = 1024 * 1024 * 1024;

class PressureEvictorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // policy/v1 PodDisruptionBudgets, as every supported cluster serves them (1.21+).
    server_ = testing::TestApiServer::Start({.extra_args = {"--emulated-version=1.21"}});
    ASSERT_TRUE(server_) << "api server did not start";
    if (!server_->supports_faults()) GTEST_SKIP() << "needs the embedded API server";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    ns_ = server_->CreateTestNamespace("psi");
    dir_ = testing::MakeTempDir("gpa-psi-evictor");
    sink_ = kube::NewRestEventSink(*client_);
    recorder_ = std::make_unique<kube::EventRecorder>(
        *sink_, kube::EventRecorderOptions{.component = "gpu-autoscaler-node-agent"});
    SetNodeMemoryPressure(0);
    Write("proc/pressure/cpu", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    Write("proc/pressure/io",
          "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
          "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(dir_ + "/" + rel).parent_path());
    std::ofstream(dir_ + "/" + rel) << text;
  }
  void SetNodeMemoryPressure(double avg10) {
    Write("proc/pressure/memory", "some avg10=" + std::to_string(avg10) +
                                      " avg60=0.00 avg300=0.00 total=100\n"
                                      "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  }

  // A running pod with a cgroup using `memory` bytes.
  EvictablePod AddPod(const std::string& name, EvictionTier tier, int64_t memory,
                      int64_t request = 0, json labels = json::object()) {
    json pod = {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", {{"name", name}, {"namespace", ns_}, {"labels", labels}}},
        {"spec",
         {{"nodeName", kNode}, {"containers", json::array({{{"name", "c"}, {"image", "x"}}})}}}};
    auto created = client_->Create({kube::resources::kPods, ns_}, pod);
    EXPECT_TRUE(created.ok()) << created.error().ToString();
    const std::string cgroup = "cgroup/pod-" + name;
    Write(cgroup + "/memory.current", std::to_string(memory) + "\n");
    Write(cgroup + "/memory.pressure", "some avg10=12.00 avg60=0 avg300=0 total=5\n");
    return {.ns = ns_,
            .name = name,
            .uid = created.ok() ? (*created)["metadata"].value("uid", "") : "",
            .tier = tier,
            .memory_request_bytes = request,
            .cpu_request_millis = 0,
            .cgroup_dir = dir_ + "/" + cgroup,
            .terminating = false};
  }

  std::set<std::string> PodsLeft() {
    std::set<std::string> out;
    auto list = client_->List({kube::resources::kPods, ns_});
    EXPECT_TRUE(list.ok());
    for (const json& p : (*list)["items"]) {
      if (!p["metadata"].contains("deletionTimestamp")) out.insert(p["metadata"]["name"]);
    }
    return out;
  }
  // "reason: message" of the Events about `kind`/`name`.
  std::vector<std::string> Events(const std::string& kind, const std::string& name) {
    EXPECT_TRUE(recorder_->Flush(10s));
    std::vector<std::string> out;
    auto list = client_->List({kube::resources::kEvents, ns_});
    EXPECT_TRUE(list.ok());
    for (const json& e : (*list)["items"]) {
      if (e["involvedObject"].value("kind", "") == kind &&
          e["involvedObject"].value("name", "") == name)
        out.push_back(e.value("reason", "") + ": " + e.value("message", ""));
    }
    return out;
  }
  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

  PressureEvictionConfig MemoryOnly() {
    PressureEvictionConfig c;
    c.triggers[static_cast<size_t>(PressureResource::kCpu)].enabled = false;
    c.triggers[static_cast<size_t>(PressureResource::kIo)].enabled = false;
    return c;  // memory: 25% / 10%, 60 s; one eviction per 5 min, 60 s cool-down
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::unique_ptr<kube::EventSink> sink_;
  std::unique_ptr<kube::EventRecorder> recorder_;
  prometheus::Registry registry_;
  FakeClock clock_;
  std::string ns_;
  std::string dir_;
};

TEST_F(PressureEvictorTest, SustainedMemoryPressureEvictsTheReclaimedPodOnceWithAnEvent) {
  std::vector<EvictablePod> pods = {AddPod("dedicated", EvictionTier::kProtected, 60 * kGiB),
                                    AddPod("system", EvictionTier::kProtected, 8 * kGiB),
                                    AddPod("web", EvictionTier::kShared, 3 * kGiB, 1 * kGiB),
                                    AddPod("batch", EvictionTier::kReclaimed, 2 * kGiB)};
  PressureEvictor evictor(
      *client_, recorder_.get(), registry_,
      {.proc_root = dir_ + "/proc", .pods = [&] { return pods; }, .clock = &clock_}, MemoryOnly());
  SetNodeMemoryPressure(41.2);
  EXPECT_TRUE(evictor.Tick().evictions.empty());  // arms
  clock_.Step(30s);
  EXPECT_TRUE(evictor.Tick().evictions.empty());
  clock_.Step(30s);
  EvictionPlan plan = evictor.Tick();
  ASSERT_EQ(plan.evictions.size(), 1u);
  EXPECT_EQ(plan.evictions[0].name, "batch");
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"dedicated", "system", "web"}));
  EXPECT_EQ(Events("Pod", "batch"),
            std::vector<std::string>{
                "PressureEviction: memory pressure some avg10 41.2% above 25% for 60s; "
                "reclaimed_cores pod using 2.0 GiB of memory (request 0 B); the pod itself "
                "stalled 12.0% (memory some avg10)"});
  // Still high: the cool-down, then the rate limit (one per 5 minutes) hold.
  pods[3].terminating = true;
  for (int i = 0; i < 4; ++i) {
    clock_.Step(60s);
    EXPECT_TRUE(evictor.Tick().evictions.empty()) << i;
  }
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"dedicated", "system", "web"}));
  const std::string metrics = Metrics();
  EXPECT_NE(metrics.find("gpu_autoscaler_node_pressure_evictions_total{resource=\"memory\","
                         "result=\"evicted\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("gpu_autoscaler_node_pressure_percent{resource=\"memory\"} 41.2"),
            std::string::npos);
  EXPECT_NE(metrics.find("gpu_autoscaler_node_pressure_high{resource=\"memory\"} 1"),
            std::string::npos);
}

// The Node's record of earlier evictions is outside input (anyone who may
// edit the Node may edit it). Entries of the wrong shape are skipped without
// stopping the agent: a far-past `at` once overflowed the age subtraction and
// a `pod` that is not a string threw out of Tick. The well-formed recent entry
// still counts against the rate limit.
TEST_F(PressureEvictorTest, MalformedEvictionRecordsOnTheNodeAreSkippedAndTheGoodOneCounts) {
  const int64_t now_unix =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.WallNow().time_since_epoch()).count();
  const json records = json::array(
      {{{"uid", "recent"}, {"pod", ns_ + "/gone"}, {"resource", "memory"}, {"at", now_unix - 30}},
       {{"uid", "far-past"}, {"at", INT64_MIN}},
       {{"uid", "future"}, {"at", now_unix + 3600}},
       {{"uid", "float-at"}, {"at", 1e300}},
       {{"uid", 7}, {"at", now_unix - 10}},
       {{"uid", "pod-object"}, {"pod", {{"name", "x"}}}, {"resource", 3}, {"at", now_unix - 20}},
       "not an object"});
  json node = {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata",
       {{"name", kNode},
        {"annotations", {{std::string(api::kPressureEvictionsAnnotation), records.dump()}}}}}};
  ASSERT_TRUE(client_->Create({kube::resources::kNodes, ""}, node).ok());
  std::vector<EvictablePod> pods = {AddPod("batch", EvictionTier::kReclaimed, 2 * kGiB)};
  PressureEvictor evictor(*client_, recorder_.get(), registry_,
                          {.proc_root = dir_ + "/proc",
                           .node_name = kNode,
                           .pods = [&] { return pods; },
                           .clock = &clock_},
                          MemoryOnly());
  SetNodeMemoryPressure(41.2);
  for (int i = 0; i < 3; ++i) {  // arms, then sustained for 60 s
    EXPECT_TRUE(evictor.Tick().evictions.empty()) << i;
    clock_.Step(30s);
  }
  // Without the recent record the pod would go now (see the first test).
  EXPECT_EQ(PodsLeft(), std::set<std::string>{"batch"});
  clock_.Step(5min);  // the recent record leaves the 5-minute rate window
  EXPECT_EQ(evictor.Tick().evictions.size(), 1u);
  EXPECT_TRUE(PodsLeft().empty());
}

TEST_F(PressureEvictorTest, ABudgetThatRefusesIsReportedOnThePod) {
  std::vector<EvictablePod> pods = {
      AddPod("web", EvictionTier::kShared, 3 * kGiB, 1 * kGiB, {{"app", "web"}})};
  json pdb = {{"apiVersion", "policy/v1"},
              {"kind", "PodDisruptionBudget"},
              {"metadata", {{"name", "web"}, {"namespace", ns_}}},
              {"spec", {{"minAvailable", 1}, {"selector", {{"matchLabels", {{"app", "web"}}}}}}}};
  ASSERT_TRUE(client_->Create({kube::resources::kPodDisruptionBudgets, ns_}, pdb).ok());
  json running = {{"status",
                   {{"phase", "Running"},
                    {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
  ASSERT_TRUE(client_
                  ->Patch({kube::resources::kPods, ns_, "web", "status"}, kube::PatchType::kMerge,
                          running.dump())
                  .ok());
  PressureEvictor evictor(
      *client_, recorder_.get(), registry_,
      {.proc_root = dir_ + "/proc", .pods = [&] { return pods; }, .clock = &clock_}, MemoryOnly());
  SetNodeMemoryPressure(30);
  evictor.Tick();
  clock_.Step(60s);
  ASSERT_EQ(evictor.Tick().evictions.size(), 1u);
  EXPECT_EQ(PodsLeft(), std::set<std::string>{"web"});
  auto events = Events("Pod", "web");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].rfind("PressureEvictionFailed: memory pressure some avg10 30.0% above 25% "
                            "for 60s; shared_cores pod using 3.0 GiB of memory (request 1.0 GiB)",
                            0),
            0u)
      << events[0];
  EXPECT_NE(events[0].find("eviction refused"), std::string::npos);
  EXPECT_NE(Metrics().find("result=\"blocked_pdb\"} 1"), std::string::npos);
}

TEST_F(PressureEvictorTest, NoUsageFigureNoEviction) {
  std::vector<EvictablePod> pods = {AddPod("batch", EvictionTier::kReclaimed, kGiB)};
  pods[0].cgroup_dir = dir_ + "/cgroup/not-there";
  PressureEvictor evictor(
      *client_, recorder_.get(), registry_,
      {.proc_root = dir_ + "/proc", .pods = [&] { return pods; }, .clock = &clock_}, MemoryOnly());
  SetNodeMemoryPressure(90);
  evictor.Tick();
  clock_.Step(60s);
  EvictionPlan plan = evictor.Tick();
  EXPECT_TRUE(plan.evictions.empty());
  ASSERT_EQ(plan.held.size(), 1u);
  EXPECT_EQ(plan.held[0].second, "no candidate");
  EXPECT_EQ(PodsLeft(), std::set<std::string>{"batch"});
}

TEST_F(PressureEvictorTest, ConfigMapGoodVersionAppliesBadOneIsRefusedWithAnEvent) {
  auto watch =
      AgentConfigWatch::Create(client_.get(), recorder_.get(), registry_, ns_ + "/agent-config");
  ASSERT_TRUE(watch.ok()) << watch.error().ToString();
  std::atomic<int> changes{0};
  (*watch)->OnChange([&](const AgentConfig&) { ++changes; });
  (*watch)->Start();
  ASSERT_TRUE(testing::WaitFor([&] { return (*watch)->HasSynced(); }));
  EXPECT_EQ((*watch)->current(), AgentConfig{});  // no ConfigMap: defaults

  json cm = {
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata", {{"name", "agent-config"}, {"namespace", ns_}}},
      {"data",
       {{"config.yaml", "pressureEviction:\n  memory: {threshold: 40, disarmBelow: 20}\n"}}}};
  ASSERT_TRUE(client_->Create({kube::resources::kConfigMaps, ns_}, cm).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return changes.load() == 1; }));
  EXPECT_EQ((*watch)->current().pressure_eviction.trigger(PressureResource::kMemory).threshold, 40);

  cm["data"]["config.yaml"] = "pressureEviction:\n  memory: {threshold: 20, disarmBelow: 30}\n";
  ASSERT_TRUE(client_->Replace({kube::resources::kConfigMaps, ns_, "agent-config"}, cm).ok());
  ASSERT_TRUE(testing::WaitFor([&] {
    return Metrics().find("gpu_autoscaler_node_config_reloads_total{result=\"rejected\"} 1") !=
           std::string::npos;
  }));
  EXPECT_EQ((*watch)->current().pressure_eviction.trigger(PressureResource::kMemory).threshold, 40);
  EXPECT_EQ(changes.load(), 1);
  ASSERT_TRUE(testing::WaitFor([&] { return !Events("ConfigMap", "agent-config").empty(); }));
  EXPECT_EQ(Events("ConfigMap", "agent-config"),
            std::vector<std::string>{
                "InvalidConfig: ConfigMap " + ns_ +
                "/agent-config: pressureEviction.memory.disarmBelow: must not be above threshold "
                "(20) (the last good configuration stays in force)"});

  ASSERT_TRUE(client_->Delete({kube::resources::kConfigMaps, ns_, "agent-config"}).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return changes.load() == 2; }));
  EXPECT_EQ((*watch)->current(), AgentConfig{});
}

TEST(EvictablePodsTest, QosLevelsMapToTiers) {
  EXPECT_EQ(EvictionTierOf(QosLevel::kReclaimed), EvictionTier::kReclaimed);
  EXPECT_EQ(EvictionTierOf(QosLevel::kShared), EvictionTier::kShared);
  EXPECT_EQ(EvictionTierOf(QosLevel::kDedicated), EvictionTier::kProtected);
  EXPECT_EQ(EvictionTierOf(QosLevel::kSystem), EvictionTier::kProtected);
  EXPECT_EQ(EvictionTierOf(QosLevel::kUnknown), EvictionTier::kProtected);
  LocalPodSnapshot snap;
  LocalPod a;
  a.ns = "ns";
  a.name = "a";
  a.uid = "u-a";
  a.qos_level = QosLevel::kReclaimed;
  a.phase = kube::PodPhase::kRunning;
  a.requests.memory_bytes = 5;
  a.requests.cpu_millis = 250;
  a.requests.reclaimed_memory_bytes = 1 << 20;
  a.requests.reclaimed_millicpu = 2000;
  LocalPod done = a;
  done.name = "done";
  done.phase = kube::PodPhase::kSucceeded;
  snap.pods = {a, done};
  auto pods = EvictablePodsOf(snap, [](const LocalPod& p) { return "/cg/" + p.uid; });
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].tier, EvictionTier::kReclaimed);
  EXPECT_EQ(pods[0].memory_request_bytes, 5 + (1 << 20));  // memory + reclaimed_memory
  EXPECT_EQ(pods[0].cpu_request_millis, 2250);
  EXPECT_EQ(pods[0].cgroup_dir, "/cg/u-a");
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
