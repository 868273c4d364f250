// Pod attribution end to end: gpu-autoscaler-node-agent as a real process
// against the embedded API server (a process too), the fake NVML playing a
// GPU held by one pod (its utilisation and memory replayed from the GenTD26
// traces) and a time-sliced GPU shared by two pods, a fake /proc tree with
// the processes' cgroups (systemd and cgroupfs drivers), and the fake
// kubelet PodResources server on a unix socket. Checks the pod, namespace
// and container labels on /metrics, then an absent socket and a hung kubelet:
// the agent keeps serving and says why attribution is unavailable.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent_process_support.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/fake_pod_resources/fake_pod_resources.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;

constexpr const char* kNode = "gpu-node-1";
constexpr const char* kGpu0 = "GPU-00000000-0000-4000-8000-000000000000";
constexpr const char* kGpu1 = "GPU-00000000-0000-4000-8000-000000000001";
// The GenTD26 pod whose duty cycle and GPU memory GPU 0 replays.
constexpr const char* kTracePod = "23b8eba99c14e73d454503a55ae96989";

class AttributionProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (!server_->supports_faults()) GTEST_SKIP() << "needs the embedded API server";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    dir_ = testing::MakeTempDir("gpa-attr");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", kNode}}}};
    ASSERT_TRUE(client_->Create({kube::resources::kNodes, "", "", ""}, node).ok());
    ns_ = server_->CreateTestNamespace("attr");
    for (const char* name : {"train-0", "infer-1", "infer-2"}) {
      json pod = {{"apiVersion", "v1"},
                  {"kind", "Pod"},
                  {"metadata", {{"name", name}, {"namespace", ns_}}},
                  {"spec",
                   {{"nodeName", kNode},
                    {"containers", json::array({{{"name", "server"}, {"image", "x"}}})}}}};
      auto created = client_->Create({kube::resources::kPods, ns_}, pod);
      ASSERT_TRUE(created.ok()) << created.error().ToString();
      uids_[name] = (*created)["metadata"].value("uid", "");
      ASSERT_EQ(uids_[name].size(), 36u) << uids_[name];
    }
    // The processes' cgroups: infer-1 under the systemd driver (cgroup v2),
    // infer-2 under cgroupfs (cgroup v1), train-0 not visible at all (its GPU
    // is its own, so no /proc read is needed).
    std::string u1 = uids_["infer-1"];
    std::replace(u1.begin(), u1.end(), '-', '_');
    WriteCgroup(2001, "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u1 +
                          ".slice/cri-containerd-" + std::string(64, 'a') + ".scope\n");
    WriteCgroup(2002, "12:memory:/kubepods/besteffort/pod" + uids_["infer-2"] + "/" +
                          std::string(64, 'b') + "\n1:name=systemd:/kubepods/besteffort/pod" +
                          uids_["infer-2"] + "/" + std::string(64, 'b') + "\n");
    WriteCgroup(9999, "0::/system.slice/sshd.service\n");

    // GPU 0 replays the GenTD26 pod's duty cycle and GPU memory, one sample per poll.
    json util = json::array(), mem = json::array();
    for (double v : testing::GenTdSeries("gpu_util.csv", kTracePod, 100))
      util.push_back(std::lround(v));
    for (double v : testing::GenTdSeries("gpu_memory.csv", kTracePod, 1e15))
      mem.push_back(std::llround(v / (1 << 20)));
    ASSERT_EQ(util.size(), 43u);
    trace_peak_ = 0;
    for (const auto& v : util)
      trace_peak_ = std::max<long>(trace_peak_, v.get<long>());
    json scenario = {
        {"gpus",
         {{{"name", "NVIDIA H100 80GB HBM3"},
           {"memoryMiB", 81559},
           {"utilSeries", util},
           {"usedMiBSeries", mem},
           {"processes",
            {{{"pid", 1001}, {"usedMiB", 1000}, {"smUtilSeries", util}, {"usedMiBSeries", mem}}}}},
          {{"name", "NVIDIA H100 80GB HBM3"},
           {"memoryMiB", 81559},
           {"util", 60},
           {"processes",
            {{{"pid", 2001}, {"usedMiB", 3000}, {"smUtil", 35}},
             {{"pid", 2002}, {"usedMiB", 5000}, {"smUtil", 20}},
             {{"pid", 9999}, {"usedMiB", 10}, {"smUtil", 1}}}}}}}};
    scenario_ = scenario.dump();
    auto pods = testing::ParsePodResourcesJson(
        json({{"pods",
               {{{"namespace", ns_},
                 {"name", "train-0"},
                 {"containers",
                  {{{"name", "server"},
                    {"devices", {{{"resource", "nvidia.com/gpu"}, {"ids", {kGpu0}}}}}}}}},
                {{"namespace", ns_},
                 {"name", "infer-1"},
                 {"containers",
                  {{{"name", "server"},
                    {"devices",
                     {{{"resource", "nvidia.com/gpu"},
                       {"ids", {std::string(kGpu1) + "::0", std::string(kGpu1) + "::2"}}}}}}}}},
                {{"namespace", ns_},
                 {"name", "infer-2"},
                 {"containers",
                  {{{"name", "server"},
                    {"devices",
                     {{{"resource", "nvidia.com/gpu"},
                       {"ids", {std::string(kGpu1) + "::1"}}}}}}}}}}},
              {"allocatable",
               {{{"resource", "nvidia.com/gpu"},
                 {"ids",
                  {kGpu0, std::string(kGpu1) + "::0", std::string(kGpu1) + "::1",
                   std::string(kGpu1) + "::2", std::string(kGpu1) + "::3"}}}}}})
            .dump());
    ASSERT_TRUE(pods.ok()) << pods.error().ToString();
    pods_ = std::move(pods).value();
  }
  void TearDown() override {
    if (agent_.running()) agent_.Kill(SIGTERM);
    kubelet_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void WriteCgroup(uint32_t pid, const std::string& text) {
    const std::string d = dir_ + "/proc/" + std::to_string(pid);
    std::filesystem::create_directories(d);
    std::ofstream(d + "/cgroup") << text;
  }
  void StartKubelet() {
    auto kubelet = testing::FakePodResourcesServer::Start(socket());
    ASSERT_TRUE(kubelet.ok()) << kubelet.error().ToString();
    kubelet_ = std::move(kubelet).value();
    kubelet_->Set(pods_);
  }
  std::string socket() const { return dir_ + "/kubelet.sock"; }
  void StartAgent() {
    const std::string path = dir_ + "/scenario.json";
    std::ofstream(path) << scenario_;
    setenv("GPA_FAKE_NVML_SCENARIO", path.c_str(), 1);
    ASSERT_TRUE(agent_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-node-agent"), "--node-name=" + std::string(kNode),
         "--kubeconfig=" + kubeconfig_,
         "--nvml-library=" + testing::BinaryPath("libgpa-fake-nvml.so"), "--poll-interval=200ms",
         "--report-interval=1s", "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
         "--health-probe-bind-address=127.0.0.1:0", "--sysfs-root=" + dir_ + "/sys",
         "--proc-root=" + dir_ + "/proc", "--pod-resources-socket=" + socket(),
         "--pod-resources-interval=200ms", "--pod-resources-timeout=300ms"},
        dir_ + "/agent.log"));
    ASSERT_TRUE(WaitFor([&] { return agent_.PortFromLog("metrics_port") > 0; })) << agent_.Log();
  }
  std::string Get(const std::string& port_key, const std::string& path) {
    return testing::AgentGet(agent_, port_key, path);
  }
  std::string Metrics() { return Get("metrics_port", "/metrics"); }
  bool MetricsHave(const std::string& line, std::string* last) {
    *last = Metrics();
    return last->find(line) != std::string::npos;
  }
  std::string ProcessLine(int gpu, const char* uuid, int pid, const std::string& pod) {
    return "gpu_autoscaler_node_gpu_process_memory_used_bytes{Hostname=\"gpu-node-1\",UUID=\"" +
           std::string(uuid) + "\",container=\"server\",gpu=\"" + std::to_string(gpu) +
           "\",namespace=\"" + ns_ + "\",pid=\"" + std::to_string(pid) + "\",pod=\"" + pod + "\"}";
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::unique_ptr<testing::FakePodResourcesServer> kubelet_;
  ChildProcess agent_;
  std::string dir_, kubeconfig_, ns_, scenario_;
  std::map<std::string, std::string> uids_;
  testing::FakePodResourcesData pods_;
  long trace_peak_ = 0;
};

TEST_F(AttributionProcessTest, MetricsCarryPodNamespaceAndContainer) {
  StartKubelet();
  StartAgent();
  std::string m;
  ASSERT_TRUE(WaitFor([&] { return MetricsHave("gpu_autoscaler_node_pod_resources_up 1", &m); }))
      << m << agent_.Log();
  // GPU 0 is train-0's alone: its DCGM series carry the pod, as dcgm-exporter's do.
  const std::string gpu0 = "{Hostname=\"gpu-node-1\",UUID=\"" + std::string(kGpu0) +
                           "\",container=\"server\",device=\"nvidia0\",gpu=\"0\",modelName="
                           "\"NVIDIA H100 80GB HBM3\",namespace=\"" +
                           ns_ + "\",pci_bus_id=\"00000000:10:00.0\",pod=\"train-0\"}";
  ASSERT_TRUE(WaitFor([&] { return MetricsHave("DCGM_FI_DEV_FB_USED" + gpu0, &m); })) << m;
  // Time-sliced GPU 1: no single owner, so no pod labels on its GPU series;
  // its processes are told apart by their cgroups.
  EXPECT_NE(m.find("DCGM_FI_DEV_GPU_UTIL{Hostname=\"gpu-node-1\",UUID=\"" + std::string(kGpu1) +
                   "\",device=\"nvidia1\",gpu=\"1\",modelName=\"NVIDIA H100 80GB HBM3\","
                   "pci_bus_id=\"00000000:11:00.0\"} 60"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(ProcessLine(1, kGpu1, 2001, "infer-1") + " 3145728000"), std::string::npos) << m;
  EXPECT_NE(m.find(ProcessLine(1, kGpu1, 2002, "infer-2") + " 5242880000"), std::string::npos) << m;
  EXPECT_NE(m.find(ProcessLine(0, kGpu0, 1001, "train-0")), std::string::npos) << m;
  // A system process on the GPU stays unattributed.
  EXPECT_NE(m.find("gpu_autoscaler_node_gpu_process_memory_used_bytes{Hostname=\"gpu-node-1\","
                   "UUID=\"" +
                   std::string(kGpu1) + "\",gpu=\"1\",pid=\"9999\"} 10485760"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("gpu_autoscaler_node_gpu_processes_unattributed 1"), std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_pod_gpu_sm_utilization{Hostname=\"gpu-node-1\","
                   "namespace=\"" +
                   ns_ + "\",pod=\"infer-1\"} 35"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("gpu_autoscaler_node_gpu_device_holders{Hostname=\"gpu-node-1\",UUID=\"" +
                   std::string(kGpu1) + "\",gpu=\"1\"} 2"),
            std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_pod_resources_devices{kind=\"allocatable\","
                   "resource=\"nvidia.com/gpu\"} 5"),
            std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_pod_resources_devices{kind=\"assigned\","
                   "resource=\"nvidia.com/gpu\"} 4"),
            std::string::npos);
  // GPU 0 replays the GenTD26 pod's duty cycle: its peak comes round.
  ASSERT_TRUE(WaitFor([&] {
    return MetricsHave("DCGM_FI_DEV_GPU_UTIL" + gpu0 + " " + std::to_string(trace_peak_), &m);
  })) << m;
  EXPECT_EQ(trace_peak_, 95);  // 94.87 % in the trace
  EXPECT_GE(kubelet_->list_calls(), 1);
}

TEST_F(AttributionProcessTest, WithoutTheSocketTheAgentServesAndSaysSo) {
  StartAgent();  // no kubelet socket
  std::string m;
  ASSERT_TRUE(WaitFor([&] {
    return MetricsHave("gpu_autoscaler_node_pod_resources_state{state=\"NoSocket\"} 1", &m);
  })) << m
      << agent_.Log();
  EXPECT_NE(m.find("gpu_autoscaler_node_pod_resources_up 0"), std::string::npos);
  EXPECT_NE(m.find("gpu_autoscaler_node_nvml_up 1"), std::string::npos);
  // The cgroups still name the time-sliced pods (the container is unknown without
  // the kubelet's assignments or container statuses); GPU 0's process is not visible.
  ASSERT_TRUE(WaitFor([&] {
    return MetricsHave(
        "gpu_autoscaler_node_gpu_process_memory_used_bytes{Hostname=\"gpu-node-1\","
        "UUID=\"" +
            std::string(kGpu1) + "\",container=\"\",gpu=\"1\",namespace=\"" + ns_ +
            "\",pid=\"2001\",pod=\"infer-1\"}",
        &m);
  })) << m;
  EXPECT_EQ(m.find("pod=\"train-0\""), std::string::npos);
  EXPECT_EQ(Get("health_port", "/healthz"), "ok");
  EXPECT_NE(agent_.Log().find("PodResources unavailable"), std::string::npos);
  EXPECT_NE(agent_.Log().find("not found"), std::string::npos);
}

TEST_F(AttributionProcessTest, AHungKubeletTimesOutAndTheAgentKeepsServing) {
  StartKubelet();
  StartAgent();
  std::string m;
  ASSERT_TRUE(WaitFor([&] { return MetricsHave("pod=\"train-0\"", &m); })) << m << agent_.Log();
  kubelet_->SetHang(true);
  ASSERT_TRUE(WaitFor([&] {
    return MetricsHave("gpu_autoscaler_node_pod_resources_state{state=\"TimedOut\"} 1", &m);
  })) << m
      << agent_.Log();
  // The exclusive GPU's labels go with the assignments (no stale labels);
  // NVML polling and /healthz go on.
  EXPECT_EQ(m.find("pod=\"train-0\""), std::string::npos) << m;
  EXPECT_NE(m.find("gpu_autoscaler_node_nvml_up 1"), std::string::npos);
  EXPECT_EQ(Get("health_port", "/healthz"), "ok");
  EXPECT_NE(agent_.Log().find("did not answer within 300ms"), std::string::npos) << agent_.Log();
  kubelet_->SetHang(false);
  ASSERT_TRUE(WaitFor([&] { return MetricsHave("gpu_autoscaler_node_pod_resources_up 1", &m); }))
      << m;
  agent_.Signal(SIGTERM);
  std::optional<int> status;
  ASSERT_TRUE(
      WaitFor([&] { return (status = agent_.TryWait()).has_value(); }, std::chrono::seconds(15)))
      << agent_.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << agent_.Log();
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
