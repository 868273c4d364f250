// The whole node agent at once: one gpu-autoscaler-node-agent process
// against the embedded API server (a process too) with
//   - the fake NVML: an NVLink pair of H100s, one held by the dedicated_cores
//     pod and replaying a GenTD26 pod's duty cycle and GPU memory, the other
//     time-sliced, and a MIG-enabled third GPU;
//   - the fake kubelet PodResources server on a unix socket;
//   - a fake /proc (the GPU processes' cgroups, /proc/pressure/*) and a fake
//     cgroup v2 tree (systemd driver) with each pod's QoS and usage files;
//   - a fake sysfs with two 8-CPU NUMA nodes;
//   - a ConfigMap with 1 s PSI windows;
//   - a pod of each Katalyst QoS level bound to the node.
// It checks the NodeResourceReport (GPUs, MIG, NVLink, NUMA, QoS pools,
// reclaimable CPU and memory), the Node's reclaimed resources, the cgroup
// files, /metrics (DCGM series with pod labels, per-process series, QoS pool
// and pressure metrics), and then that memory pressure held above the
// threshold evicts exactly one pod, the reclaimed_cores one, with its Event.
// Everything is waited for on what the agent reports; nothing is timed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "agent_process_support.h"
#include "api/resources.h"
#include "kube/object_codec.h"
#include "kube/quantity.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "node-agent/cgroup_writer.h"
#include "node-agent/local_pods.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/fake_pod_resources/fake_pod_resources.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::node_agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ReadTrimmed;
using testing::WaitFor;
using testing::WriteFile;

constexpr const char* kNode = "all-node-1";
constexpr const char* kGpu0 = "GPU-00000000-0000-4000-8000-000000000000";
constexpr const char* kGpu1 = "GPU-00000000-0000-4000-8000-000000000001";
constexpr const char* kTracePod = "23b8eba99c14e73d454503a55ae96989";  // GenTD26
constexpr int64_t kGi = 1LL << 30;
constexpr auto kDeadline = std::chrono::seconds(60);

std::string ConfigYaml() {
  return "apiVersion: gpuautoscaler.io/v1alpha1\n"
         "kind: NodeAgentConfig\n"
         "pressureEviction:\n"
         "  interval: 100ms\n"
         "  maxEvictions: 1\n"
         "  rateWindow: 10m\n"
         "  coolDown: 1m\n"
         "  cpu: {threshold: 90, disarmBelow: 70, window: 1s}\n"
         "  io: {threshold: 90, disarmBelow: 70, window: 1s}\n"
         "  memory: {threshold: 25, disarmBelow: 10, window: 1s}\n";
}

class AgentAllProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (!server_->supports_faults()) GTEST_SKIP() << "needs the embedded API server";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    dir_ = testing::MakeTempDir("gpa-all");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    ns_ = server_->CreateTestNamespace("all");
    json node = {{"apiVersion", "v1"},
                 {"kind", "Node"},
                 {"metadata",
                  {{"name", kNode},
                   {"labels",
                    {{"nvidia.com/gpu.sharing-strategy", "time-slicing"},
                     {"nvidia.com/gpu.replicas", "4"}}}}},
                 {"status", {{"capacity", {{"cpu", "16"}}}}}};
    ASSERT_TRUE(client_->Create({kube::resources::kNodes}, node).ok());
    testing::WriteNumaSysfs(dir_ + "/sys", {"0-7", "8-15"}, 16777216);
    WriteFile(cgroot() / "cgroup.controllers", "cpuset cpu io memory pids\n");
    WriteFile(dir_ + "/proc/pressure/cpu", testing::PsiText(3.5));
    WriteFile(dir_ + "/proc/pressure/io", testing::PsiText(1.25));
    WriteFile(dir_ + "/proc/pressure/memory", testing::PsiText(0));
  }
  void TearDown() override {
    if (agent_.running()) agent_.Kill(SIGTERM);
    kubelet_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path cgroot() const { return fs::path(dir_) / "cgroup"; }

  // Creates a Running pod of `level` and, as the kubelet would, its cgroup
  // with the kernel's v2 files; `memory` is what memory.current says.
  fs::path AddPod(const std::string& name, const std::string& level, json resources, int64_t memory,
                  json annotations = json::object()) {
    annotations[std::string(kQosLevelAnnotation)] = level;
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"namespace", ns_}, {"name", name}, {"annotations", annotations}}},
                {"spec",
                 {{"nodeName", kNode},
                  {"containers", {{{"name", "main"}, {"image", "x"}, {"resources", resources}}}}}}};
    auto created = client_->Create({kube::resources::kPods, ns_}, pod);
    EXPECT_TRUE(created.ok()) << created.error().ToString();
    if (!created.ok()) return {};
    EXPECT_TRUE(client_
                    ->Patch({kube::resources::kPods, ns_, name, "status"}, kube::PatchType::kMerge,
                            json{{"status", {{"phase", "Running"}}}}.dump())
                    .ok());
    auto view = kube::DecodePod(created->dump());
    EXPECT_TRUE(view.ok());
    const std::string uid = (*created)["metadata"]["uid"];
    cgroup_rel_[name] = PodCgroupPath(CgroupDriver::kSystemd, ComputeKubeQosClass(*view), uid);
    const fs::path d = cgroot() / cgroup_rel_[name];
    for (const auto& [file, value] :
         std::map<std::string, std::string>{{"cpuset.cpus", ""},
                                            {"cpuset.mems", ""},
                                            {"cpu.max", "max 100000"},
                                            {"cpu.weight", "100"},
                                            {"memory.high", "max"},
                                            {"memory.min", "0"},
                                            {"memory.current", std::to_string(memory)},
                                            {"cpu.stat", "usage_usec 1000000\nuser_usec 900000\n"},
                                            {"io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1\n"},
                                            {"cpu.pressure", testing::PsiText(0)},
                                            {"io.pressure", testing::PsiText(0)},
                                            {"memory.pressure", testing::PsiText(12)}}) {
      WriteFile(d / file, value + "\n");
    }
    return d;
  }
  // A GPU process of `pod`, in its container's cgroup.
  void AddProcess(uint32_t pid, const std::string& pod) {
    WriteFile(dir_ + "/proc/" + std::to_string(pid) + "/cgroup",
              "0::/" + cgroup_rel_[pod] + "/cri-containerd-" + std::string(64, 'a') + ".scope\n");
  }

  void StartAgent(const std::string& scenario) {
    const std::string path = dir_ + "/scenario.json";
    WriteFile(path, scenario);
    setenv("GPA_FAKE_NVML_SCENARIO", path.c_str(), 1);
    ASSERT_TRUE(agent_.Spawn({testing::BinaryPath("gpu-autoscaler-node-agent"),
                              "--node-name=" + std::string(kNode),
                              "--kubeconfig=" + kubeconfig_,
                              "--nvml-library=" + testing::BinaryPath("libgpa-fake-nvml.so"),
                              "--poll-interval=200ms",
                              "--report-interval=200ms",
                              "--metrics-bind-address=127.0.0.1:0",
                              "--metrics-secure=false",
                              "--health-probe-bind-address=127.0.0.1:0",
                              "--sysfs-root=" + dir_ + "/sys",
                              "--proc-root=" + dir_ + "/proc",
                              "--pod-resources-socket=" + dir_ + "/kubelet.sock",
                              "--pod-resources-interval=200ms",
                              "--cgroup-root=" + cgroot().string(),
                              "--cgroup-driver=systemd",
                              "--cgroup-version=v2",
                              "--reserved-cpus=0-1",
                              "--reserved-memory=2Gi",
                              "--reclaim-reserve-cpu=1",
                              "--reclaim-reserve-memory=1Gi",
                              "--qos-resync-interval=200ms",
                              "--config-map=" + ns_ + "/agent-config"},
                             dir_ + "/agent.log"));
    ASSERT_TRUE(WaitFor([&] { return agent_.PortFromLog("metrics_port") > 0; }, kDeadline))
        << agent_.Log();
  }

  std::string Metrics() { return testing::AgentGet(agent_, "metrics_port", "/metrics"); }
  bool MetricsHave(const std::string& series, std::string* last) {
    *last = Metrics();
    return last->find(series) != std::string::npos;
  }
  json Report() {
    auto r = client_->Get({api::kNodeResourceReports, "", kNode});
    return r.ok() ? *r : json();
  }
  int64_t NodeQuantity(const std::string& field, const std::string& resource) {
    auto node = client_->Get({kube::resources::kNodes, "", kNode});
    if (!node.ok()) return -1;
    json values = node->value("status", json::object()).value(field, json::object());
    if (!values.contains(resource)) return -1;
    return kube::ParseQuantity(values[resource].get<std::string>()).value_or(-2);
  }
  std::set<std::string> PodsLeft() {
    std::set<std::string> out;
    auto list = client_->List({kube::resources::kPods, ns_});
    EXPECT_TRUE(list.ok());
    if (!list.ok()) return out;
    for (const json& p : (*list)["items"])
      if (!p["metadata"].contains("deletionTimestamp")) out.insert(p["metadata"]["name"]);
    return out;
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::unique_ptr<testing::FakePodResourcesServer> kubelet_;
  testing::ChildProcess agent_;
  std::string dir_, kubeconfig_, ns_;
  std::map<std::string, std::string> cgroup_rel_;
};

TEST_F(AgentAllProcessTest, OneAgentReportsIsolatesServesMetricsAndEvictsUnderPressure) {
  RecordProperty("cgroup_fs", "fake v2 tree (systemd driver)");
  // The pods, one per QoS level.
  const json guaranteed = {{"requests", {{"cpu", "4"}, {"memory", "4Gi"}}},
                           {"limits", {{"cpu", "4"}, {"memory", "4Gi"}}}};
  const fs::path ded =
      AddPod("ded", "dedicated_cores", guaranteed, 3 * kGi,
             {{std::string(kMemoryEnhancementAnnotation), R"({"numa_binding":"true"})"}});
  const fs::path web =
      AddPod("web", "shared_cores", {{"requests", {{"cpu", "2"}, {"memory", "2Gi"}}}}, 1 * kGi);
  const fs::path batch =
      AddPod("batch", "reclaimed_cores",
             {{"requests",
               {{std::string(kReclaimedMilliCpu), "2k"}, {std::string(kReclaimedMemory), "1Gi"}}},
              {"limits",
               {{std::string(kReclaimedMilliCpu), "2k"}, {std::string(kReclaimedMemory), "1Gi"}}}},
             2 * kGi);
  const fs::path sys = AddPod("sys", "system_cores",
                              {{"requests", {{"cpu", "500m"}, {"memory", "256Mi"}}}}, 8 * kGi);
  ASSERT_FALSE(HasFailure());
  AddProcess(1001, "ded");
  AddProcess(2001, "web");
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "agent-config"}, {"namespace", ns_}}},
             {"data", {{"config.yaml", ConfigYaml()}}}};
  ASSERT_TRUE(client_->Create({kube::resources::kConfigMaps, ns_}, cm).ok());

  // The kubelet: GPU 0 is ded's alone, GPU 1 time-sliced with web on one replica.
  auto assigned = testing::ParsePodResourcesJson(
      json({{"pods",
             {{{"namespace", ns_},
               {"name", "ded"},
               {"containers",
                {{{"name", "main"},
                  {"devices", {{{"resource", "nvidia.com/gpu"}, {"ids", {kGpu0}}}}}}}}},
              {{"namespace", ns_},
               {"name", "web"},
               {"containers",
                {{{"name", "main"},
                  {"devices",
                   {{{"resource", "nvidia.com/gpu"}, {"ids", {std::string(kGpu1) + "::0"}}}}}}}}}}},
            {"allocatable",
             {{{"resource", "nvidia.com/gpu"},
               {"ids",
                {kGpu0, std::string(kGpu1) + "::0", std::string(kGpu1) + "::1",
                 std::string(kGpu1) + "::2", std::string(kGpu1) + "::3"}}}}}})
          .dump());
  ASSERT_TRUE(assigned.ok()) << assigned.error().ToString();
  auto kubelet = testing::FakePodResourcesServer::Start(dir_ + "/kubelet.sock");
  ASSERT_TRUE(kubelet.ok()) << kubelet.error().ToString();
  kubelet_ = std::move(kubelet).value();
  kubelet_->Set(std::move(assigned).value());

  // GPU 0 replays the GenTD26 pod's duty cycle and GPU memory, one sample per poll.
  json util = json::array(), mem = json::array();
  for (double v : testing::GenTdSeries("gpu_util.csv", kTracePod, 100))
    util.push_back(std::lround(v));
  for (double v : testing::GenTdSeries("gpu_memory.csv", kTracePod, 1e15))
    mem.push_back(std::llround(v / (1 << 20)));
  ASSERT_EQ(util.size(), 43u);
  long trace_peak = 0;
  for (const auto& v : util)
    trace_peak = std::max<long>(trace_peak, v.get<long>());
  ASSERT_EQ(trace_peak, 95);  // 94.87 % in the trace
  const json scenario = {
      {"gpus",
       {{{"name", "NVIDIA H100 80GB HBM3"},
         {"memoryMiB", 81559},
         {"nvlinkPeers", {1}},
         {"utilSeries", util},
         {"usedMiBSeries", mem},
         {"processes",
          {{{"pid", 1001}, {"usedMiB", 1000}, {"smUtilSeries", util}, {"usedMiBSeries", mem}}}}},
        {{"name", "NVIDIA H100 80GB HBM3"},
         {"memoryMiB", 81559},
         {"nvlinkPeers", {0}},
         {"util", 60},
         {"processes", {{{"pid", 2001}, {"usedMiB", 3000}, {"smUtil", 35}}}}},
        {{"name", "NVIDIA A100-SXM4-40GB"},
         {"memoryMiB", 40960},
         {"mig",
          {{"enabled", true},
           {"devices",
            {{{"profile", "1g.5gb"}, {"gi", 7}, {"memoryMiB", 4864}, {"usedMiB", 100}}}}}}}}}};
  StartAgent(scenario.dump());

  // 1. The NodeResourceReport: inventory from NVML and sysfs, pools from the QoS controller.
  // Free after the reserved 0-1: ded (4 CPUs, numa_binding) best fits node 0 -> 2-5;
  // share 6-15 (10 CPUs) with 2000m requested; reclaim (10000 - 2000 - 1000 reserve)
  // / 1000 = 7 CPUs from the top, 9-15. Reclaimable: 10000 - 2000 - 1000 = 7000m;
  // memory: 32Gi - 2Gi reserved - (4 + 2 + 0.25)Gi requested - 1Gi reserve = 22.75Gi.
  ASSERT_TRUE(WaitFor(
      [&] {
        // The reporter and the QoS controller each apply their part of the status.
        const json r = Report();
        if (!r.is_object() || !r.contains("status")) return false;
        const json& s = r["status"];
        return s.value("gpuCount", 0) == 3 && s.value("qos", json::object())
                                                      .value("reclaimable", json::object())
                                                      .value("milliCpu", int64_t{-1}) == 7000;
      },
      kDeadline))
      << Report().dump() << agent_.Log();
  const json st = Report()["status"];
  EXPECT_EQ(st["gpus"][0]["uuid"], kGpu0);
  EXPECT_EQ(st["gpus"][0]["model"], "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(st["gpus"][1]["memoryBytes"], 81559ll << 20);
  EXPECT_EQ(st["gpus"][2]["migMode"], "Enabled");
  EXPECT_EQ(st["gpus"][2]["migDevices"][0]["profile"], "1g.5gb");
  EXPECT_EQ(st["gpus"][2]["migDevices"][0]["gpuInstanceId"], 7);
  EXPECT_EQ(st["sharing"]["strategy"], "time-slicing");
  EXPECT_EQ(st["sharing"]["replicas"], 4);
  EXPECT_EQ(st["nvlinkIslandsLabel"], "0-1");
  ASSERT_EQ(st["numaNodes"].size(), 2u);
  EXPECT_EQ(st["numaNodes"][0]["cpus"], "0-7");
  EXPECT_EQ(st["numaNodes"][1]["cpus"], "8-15");
  EXPECT_EQ(st["nvml"]["state"], "Up");
  const json& qos = st["qos"];
  EXPECT_EQ(qos["reclaimable"]["memoryBytes"], 22 * kGi + 3 * kGi / 4);
  EXPECT_EQ(qos["cgroup"]["version"], "v2");
  EXPECT_EQ(qos["cgroup"]["driver"], "systemd");
  EXPECT_EQ(qos["pods"], 4);
  json pools = json::object();
  for (const json& p : qos["pools"])
    pools[p["name"].get<std::string>()] = p;
  EXPECT_EQ(pools["dedicated"]["cpus"], "2-5");
  EXPECT_EQ(pools["share"]["cpus"], "6-15");
  EXPECT_EQ(pools["share"]["requestedMilliCpu"], 2000);
  EXPECT_EQ(pools["reclaim"]["cpus"], "9-15");
  EXPECT_EQ(pools["reclaim"]["requestedMilliCpu"], 2000);
  EXPECT_EQ(pools["system"]["cpus"], "0-1");
  EXPECT_EQ(qos.value("problems", json::array()).size(), 0u) << qos.dump();

  // 2. The Node advertises the reclaimable amount in Katalyst's names.
  ASSERT_TRUE(
      WaitFor([&] { return NodeQuantity("allocatable", std::string(kReclaimedMilliCpu)) == 7000; },
              kDeadline));
  EXPECT_EQ(NodeQuantity("capacity", std::string(kReclaimedMilliCpu)), 7000);
  EXPECT_EQ(NodeQuantity("allocatable", std::string(kReclaimedMemory)), 22 * kGi + 3 * kGi / 4);
  EXPECT_EQ(NodeQuantity("capacity", std::string(kReclaimedMemory)), 22 * kGi + 3 * kGi / 4);

  // 3. The cgroup files (the kubelet's cpu.max and cpu.weight stay where the pool has no say).
  const std::map<fs::path, std::string> want = {
      {ded / "cpuset.cpus", "2-5"},
      {ded / "cpuset.mems", "0"},
      {ded / "memory.min", std::to_string(4 * kGi)},
      {ded / "cpu.max", "max 100000"},
      {web / "cpuset.cpus", "6-15"},
      {web / "cpuset.mems", "0-1"},
      {web / "cpu.weight", "100"},
      {batch / "cpuset.cpus", "9-15"},
      {batch / "cpuset.mems", "1"},
      {batch / "cpu.max", "200000 100000"},  // its reclaimed_millicpu limit
      {batch / "cpu.weight", "1"},
      {batch / "memory.high", std::to_string(kGi)},
      {batch / "memory.current", std::to_string(2 * kGi)},  // read, never written
      {sys / "cpuset.cpus", "0-1"},
      {sys / "cpuset.mems", "0"}};
  std::string differ;
  ASSERT_TRUE(WaitFor(
      [&] {
        differ.clear();
        for (const auto& [path, value] : want)
          if (ReadTrimmed(path) != value)
            differ += path.string() + ": \"" + ReadTrimmed(path) + "\" != \"" + value + "\"\n";
        return differ.empty();
      },
      kDeadline))
      << differ << agent_.Log();

  // 4. /metrics. GPU 0 is ded's alone: its DCGM series carry the pod, as dcgm-exporter's do.
  std::string m;
  const std::string gpu0 = "{Hostname=\"" + std::string(kNode) + "\",UUID=\"" + kGpu0 +
                           "\",container=\"main\",device=\"nvidia0\",gpu=\"0\",modelName="
                           "\"NVIDIA H100 80GB HBM3\",namespace=\"" +
                           ns_ + "\",pci_bus_id=\"00000000:10:00.0\",pod=\"ded\"}";
  ASSERT_TRUE(WaitFor([&] { return MetricsHave("DCGM_FI_DEV_FB_USED" + gpu0, &m); }, kDeadline))
      << m << agent_.Log();
  auto process_line = [&](int gpu, const char* uuid, int pid, const std::string& pod) {
    return "gpu_autoscaler_node_gpu_process_memory_used_bytes{Hostname=\"" + std::string(kNode) +
           "\",UUID=\"" + uuid + "\",container=\"main\",gpu=\"" + std::to_string(gpu) +
           "\",namespace=\"" + ns_ + "\",pid=\"" + std::to_string(pid) + "\",pod=\"" + pod + "\"}";
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        return MetricsHave(process_line(1, kGpu1, 2001, "web") + " 3145728000", &m) &&
               m.find("gpu_autoscaler_node_pressure_percent{resource=\"io\"} 1.25") !=
                   std::string::npos;
      },
      kDeadline))
      << m;
  EXPECT_NE(m.find(process_line(0, kGpu0, 1001, "ded")), std::string::npos) << m;
  EXPECT_NE(m.find("gpu_autoscaler_node_pod_gpu_sm_utilization{Hostname=\"" + std::string(kNode) +
                   "\",namespace=\"" + ns_ + "\",pod=\"web\"} 35"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("DCGM_FI_DEV_FB_USED{GPU_I_ID=\"7\",GPU_I_PROFILE=\"1g.5gb\""),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("gpu_autoscaler_node_pod_resources_up 1"), std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_reclaimable_millicpu 7000"), std::string::npos) << m;
  EXPECT_NE(m.find("gpu_autoscaler_node_qos_pool_cpus{pool=\"share\"} 10"), std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_qos_pool_cpus{pool=\"reclaim\"} 7"), std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_qos_pod_problems 0"), std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_pressure_percent{resource=\"cpu\"} 3.5"),
            std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_pressure_percent{resource=\"memory\"} 0"),
            std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_pressure_high{resource=\"memory\"} 0"), std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_config_reloads_total{result=\"applied\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("gpu_autoscaler_node_pressure_evictions_total{resource=\"memory\","
                   "result=\"evicted\"} 0"),
            std::string::npos);
  // GPU 0 replays the GenTD26 pod's duty cycle: its peak comes round.
  ASSERT_TRUE(WaitFor(
      [&] {
        return MetricsHave("DCGM_FI_DEV_GPU_UTIL" + gpu0 + " " + std::to_string(trace_peak), &m);
      },
      kDeadline))
      << m;

  // 5. Memory pressure held above the ConfigMap's 25% for its 1 s window
  // evicts exactly one pod, the reclaimed_cores one, with an Event.
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"batch", "ded", "sys", "web"}));
  WriteFile(dir_ + "/proc/pressure/memory", testing::PsiText(41.2));
  ASSERT_TRUE(WaitFor([&] { return !testing::EventsAbout(*client_, ns_, "Pod", "batch").empty(); },
                      kDeadline))
      << agent_.Log();
  const std::vector<std::string> events = testing::EventsAbout(*client_, ns_, "Pod", "batch");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(std::regex_match(
      events[0],
      std::regex("PressureEviction: memory pressure some avg10 41\\.2% above 25% for "
                 "[0-9.]+m?s; reclaimed_cores pod using 2\\.0 GiB of memory \\(request "
                 "1\\.0 GiB\\); the pod itself stalled 12\\.0% \\(memory some avg10\\)")))
      << events[0];
  // Still high: the cool-down holds the next round; nothing else goes.
  ASSERT_TRUE(WaitFor([&] { return agent_.Log().find("memory: cool-down") != std::string::npos; },
                      kDeadline))
      << agent_.Log();
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"ded", "sys", "web"}));
  for (const char* pod : {"ded", "sys", "web"})
    EXPECT_TRUE(testing::EventsAbout(*client_, ns_, "Pod", pod).empty()) << pod;
  m = Metrics();
  EXPECT_NE(m.find("gpu_autoscaler_node_pressure_evictions_total{resource=\"memory\","
                   "result=\"evicted\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("gpu_autoscaler_node_pressure_high{resource=\"memory\"} 1"), std::string::npos);
  // No failed eviction (the failed series are exported at 0).
  EXPECT_FALSE(std::regex_search(m, std::regex(R"(result="failed"\} [1-9])"))) << m;
  EXPECT_EQ(m.find("gpu_autoscaler_node_cgroup_writes_total{result=\"error\"} 1"),
            std::string::npos);
  EXPECT_EQ(testing::AgentGet(agent_, "health_port", "/healthz"), "ok");
  agent_.Signal(SIGTERM);
  std::optional<int> status;
  ASSERT_TRUE(WaitFor([&] { return (status = agent_.TryWait()).has_value(); }, kDeadline))
      << agent_.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << agent_.Log();
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
