// gpu-autoscaler-node-agent as a real process, with the fake NVML, against
// the embedded API server (a separate process too): the NodeResourceReport
// it applies, the Node's NVLink-islands label, /metrics, the NVMLAvailable
// condition without a library, and a hung NVML call that flips nvml_up to 0
// while /healthz keeps answering.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent_process_support.h"
#include "api/resources.h"
#include "kube/conditions.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/fake_aws.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;

constexpr const char* kNode = "gpu-node-1";

class AgentProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (!server_->supports_faults()) GTEST_SKIP() << "needs the embedded API server";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    dir_ = testing::MakeTempDir("gpa-agent");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    json node = {{"apiVersion", "v1"},
                 {"kind", "Node"},
                 {"metadata",
                  {{"name", kNode},
                   {"labels",
                    {{"nvidia.com/gpu.sharing-strategy", "time-slicing"},
                     {"nvidia.com/gpu.replicas", "4"}}}}}};
    auto created = client_->Create({kube::resources::kNodes, "", "", ""}, node);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    // A two-node NUMA machine.
    testing::WriteNumaSysfs(dir_ + "/sys", {"0-7", "8-15"}, 1048576);
  }
  void TearDown() override {
    if (agent_.running()) agent_.Kill(SIGTERM);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void StartAgent(const std::string& scenario, const std::string& library,
                  const std::vector<std::string>& extra = {}) {
    const std::string path = dir_ + "/scenario.json";
    std::ofstream(path) << scenario;
    setenv("GPA_FAKE_NVML_SCENARIO", path.c_str(), 1);
    std::vector<std::string> args = {testing::BinaryPath("gpu-autoscaler-node-agent"),
                                     "--node-name=" + std::string(kNode),
                                     "--kubeconfig=" + kubeconfig_,
                                     "--nvml-library=" + library,
                                     "--poll-interval=200ms",
                                     "--report-interval=200ms",
                                     "--nvml-timeout=500ms",
                                     "--metrics-bind-address=127.0.0.1:0",
                                     "--metrics-secure=false",
                                     "--health-probe-bind-address=127.0.0.1:0",
                                     "--sysfs-root=" + dir_ + "/sys"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(agent_.Spawn(args, dir_ + "/agent.log"));
    ASSERT_TRUE(WaitFor([&] { return agent_.PortFromLog("metrics_port") > 0; })) << agent_.Log();
  }

  std::string Get(const std::string& port_key, const std::string& path) {
    return testing::AgentGet(agent_, port_key, path);
  }
  std::string Metrics() { return Get("metrics_port", "/metrics"); }
  json Report() {
    auto r = client_->Get({api::kNodeResourceReports, "", kNode, ""});
    return r.ok() ? *r : json();
  }
  std::string Condition(const json& report, const std::string& field) {
    if (!report.is_object() || !report.contains("status")) return "";
    auto c = kube::FindCondition(report["status"].value("conditions", json()), "NVMLAvailable");
    if (!c) return "";
    return field == "reason" ? c->reason : field == "status" ? c->status : c->message;
  }
  std::string NodeLabel() {
    auto node = client_->Get({kube::resources::kNodes, "", kNode, ""});
    if (!node.ok()) return "<error>";
    return (*node)["metadata"]
        .value("labels", json::object())
        .value("gpuautoscaler.io/nvlink-islands", "");
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  ChildProcess agent_;
  std::string dir_;
  std::string kubeconfig_;
};

constexpr const char* kScenario = R"({"gpus": [
  {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "usedMiB": 2048, "util": 37,
   "nvlinkPeers": [1], "processes": [{"pid": 4242, "usedMiB": 2000, "smUtil": 30}]},
  {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "nvlinkPeers": [0]},
  {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "nvlinkPeers": [3]},
  {"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "nvlinkPeers": [2],
   "mig": {"enabled": true, "devices": [{"profile": "1g.10gb", "gi": 9, "memoryMiB": 9984,
                                         "usedMiB": 100}]}}]})";

TEST_F(AgentProcessTest, ReportsInventoryLabelsTheNodeAndServesMetrics) {
  StartAgent(kScenario, testing::BinaryPath("libgpa-fake-nvml.so"));
  ASSERT_TRUE(WaitFor([&] {
    json r = Report();
    return Condition(r, "status") == "True" && r["status"].value("gpuCount", 0) == 4;
  })) << agent_.Log();
  json report = Report();
  const json& st = report["status"];
  EXPECT_EQ(report["spec"]["nodeName"], kNode);
  EXPECT_EQ(report["metadata"]["ownerReferences"][0]["kind"], "Node");
  EXPECT_EQ(st["gpuCount"], 4);
  EXPECT_EQ(st["gpus"][0]["model"], "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(st["gpus"][0]["uuid"], "GPU-00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(st["gpus"][0]["memoryBytes"], 81559ll << 20);
  EXPECT_EQ(st["gpus"][3]["migMode"], "Enabled");
  EXPECT_EQ(st["gpus"][3]["migDevices"][0]["profile"], "1g.10gb");
  EXPECT_EQ(st["gpus"][3]["migDevices"][0]["gpuInstanceId"], 9);
  EXPECT_EQ(st["sharing"]["strategy"], "time-slicing");
  EXPECT_EQ(st["sharing"]["replicas"], 4);
  EXPECT_EQ(st["nvlinkIslandsLabel"], "0-1_2-3");
  EXPECT_EQ(st["numaNodes"].size(), 2u);
  EXPECT_EQ(st["numaNodes"][1]["cpus"], "8-15");
  EXPECT_EQ(st["nvml"]["state"], "Up");
  EXPECT_EQ(Condition(report, "reason"), "Available");
  ASSERT_TRUE(WaitFor([&] { return NodeLabel() == "0-1_2-3"; })) << NodeLabel();
  // The QoS loop writes status.qos on its own schedule; once both writers
  // have reported, an unchanged node makes no new write.
  ASSERT_TRUE(WaitFor([&] {
    report = Report();
    return report.contains("status") && report["status"].contains("qos");
  })) << report.dump();
  const std::string rv = report["metadata"].value("resourceVersion", "");
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(Report()["metadata"].value("resourceVersion", ""), rv);

  std::string metrics;
  ASSERT_TRUE(WaitFor([&] {
    metrics = Metrics();
    return metrics.find("gpu_autoscaler_node_nvml_up 1") != std::string::npos;
  })) << metrics;
  EXPECT_NE(metrics.find("DCGM_FI_DEV_GPU_UTIL{Hostname=\"gpu-node-1\",UUID=\"GPU-00000000-0000-"
                         "4000-8000-000000000000\",device=\"nvidia0\",gpu=\"0\",modelName="
                         "\"NVIDIA H100 80GB HBM3\",pci_bus_id=\"00000000:10:00.0\"} 37"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("DCGM_FI_DEV_FB_USED{GPU_I_ID=\"9\",GPU_I_PROFILE=\"1g.10gb\""),
            std::string::npos);
  EXPECT_NE(metrics.find("gpu_autoscaler_node_gpu_process_sm_utilization{Hostname=\"gpu-node-1\","
                         "UUID=\"GPU-00000000-0000-4000-8000-000000000000\",gpu=\"0\","
                         "pid=\"4242\"} 30"),
            std::string::npos);
  EXPECT_NE(metrics.find("gpu_autoscaler_node_nvml_poll_duration_seconds_count"),
            std::string::npos);
}

TEST_F(AgentProcessTest, WithoutNvmlItRunsAndSaysSo) {
  StartAgent(kScenario, dir_ + "/no-such-dir/libnvidia-ml.so.1");
  ASSERT_TRUE(WaitFor([&] { return Condition(Report(), "reason") == "LibraryNotFound"; }))
      << agent_.Log();
  json report = Report();
  EXPECT_EQ(Condition(report, "status"), "False");
  EXPECT_NE(Condition(report, "message").find("libnvidia-ml.so.1"), std::string::npos);
  EXPECT_EQ(report["status"]["nvml"]["state"], "NoLibrary");
  EXPECT_EQ(report["status"]["gpuCount"], 0);
  EXPECT_EQ(report["status"]["numaNodes"].size(), 2u);
  EXPECT_EQ(NodeLabel(), "");
  EXPECT_NE(Metrics().find("gpu_autoscaler_node_nvml_up 0"), std::string::npos);
  EXPECT_EQ(Get("health_port", "/healthz"), "ok");
  EXPECT_NE(agent_.Log().find("NVML is not available"), std::string::npos);
}

TEST_F(AgentProcessTest, AHungNvmlCallFlipsNvmlUpAndTheAgentKeepsServing) {
  std::string scenario = kScenario;
  scenario.pop_back();  // the closing brace
  scenario += R"(, "faults": [{"function": "nvmlDeviceGetUtilizationRates", "gpu": 1,
                  "hang": true, "afterCalls": 8}]})";
  StartAgent(scenario, testing::BinaryPath("libgpa-fake-nvml.so"));
  ASSERT_TRUE(WaitFor([&] {
    return Metrics().find("gpu_autoscaler_node_nvml_up 1") != std::string::npos;
  })) << agent_.Log();
  ASSERT_TRUE(WaitFor([&] {
    return Metrics().find("gpu_autoscaler_node_nvml_up 0") != std::string::npos;
  })) << agent_.Log();
  EXPECT_EQ(Get("health_port", "/healthz"), "ok");
  ASSERT_TRUE(WaitFor([&] { return Condition(Report(), "reason") == "CallTimedOut"; }))
      << agent_.Log();
  EXPECT_NE(Condition(Report(), "message").find("nvmlDeviceGetUtilizationRates"), std::string::npos)
      << Condition(Report(), "message");
  EXPECT_EQ(Report()["status"]["gpuCount"], 4);  // the last inventory stays
  EXPECT_NE(Metrics().find("gpu_autoscaler_node_nvml_state{state=\"Hung\"} 1"), std::string::npos);
  EXPECT_NE(agent_.Log().find("NVML state changed"), std::string::npos);
  // Still serving a while later, and it stops cleanly.
  EXPECT_EQ(Get("health_port", "/healthz"), "ok");
  agent_.Signal(SIGTERM);
  std::optional<int> status;
  ASSERT_TRUE(
      WaitFor([&] { return (status = agent_.TryWait()).has_value(); }, std::chrono::seconds(15)))
      << agent_.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << agent_.Log();
}

// The agent as a real process polling a fake AWS instance metadata service:
// a spot interruption notice for a node with 110 pods taints, cordons and
// drains it, and records how long the drain took in an Event.
TEST_F(AgentProcessTest, AnAwsSpotNoticeDrainsTheNodeOf110Pods) {
  auto aws = testing::FakeAws::Start({});
  ASSERT_TRUE(aws.ok()) << aws.error().ToString();
  const std::string ns = server_->CreateTestNamespace("spot");
  // Priorities 0, 1000 and 2000: the Priority admission plugin takes a
  // non-zero one from a PriorityClass only.
  for (int value : {1000, 2000}) {
    json pc = {{"apiVersion", "scheduling.k8s.io/v1"},
               {"kind", "PriorityClass"},
               {"metadata", {{"name", "agent-test-" + std::to_string(value)}}},
               {"value", value}};
    auto created = client_->Create({kube::resources::kPriorityClasses}, pc);
    ASSERT_TRUE(created.ok() || kube::IsAlreadyExists(created.error()))
        << created.error().ToString();
  }
  for (int i = 0; i < 110; ++i) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "p-" + std::to_string(i)}, {"namespace", ns}}},
                {"spec",
                 {{"nodeName", kNode},
                  {"priority", i % 3 * 1000},
                  {"containers", json::array({{{"name", "c"}, {"image", "x"}}})}}}};
    if (i % 3 != 0) pod["spec"]["priorityClassName"] = "agent-test-" + std::to_string(i % 3 * 1000);
    auto created = client_->Create({kube::resources::kPods, ns}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
  }
  StartAgent(kScenario, testing::BinaryPath("libgpa-fake-nvml.so"),
             {"--interruption-source=aws", "--metadata-endpoint=" + (*aws)->imds_endpoint(),
              "--interruption-poll-interval=100ms"});
  if (HasFatalFailure()) return;
  // AWS gives two minutes.
  const auto when = std::chrono::system_clock::now() + std::chrono::minutes(2);
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  (*aws)->SetSpotInstanceAction(std::string(R"({"action": "terminate", "time": ")") + stamp +
                                "\"}");
  auto terminating = [&] {
    auto pods = client_->List({kube::resources::kPods, ns});
    int n = 0;
    if (pods.ok()) {
      for (const json& p : (*pods)["items"])
        n += p["metadata"].contains("deletionTimestamp") ? 1 : 0;
    }
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return terminating() == 110; }, std::chrono::seconds(60)))
      << terminating() << " of 110 evicted\n"
      << agent_.Log();
  auto node = client_->Get({kube::resources::kNodes, "", kNode});
  ASSERT_TRUE(node.ok());
  EXPECT_TRUE((*node)["spec"].value("unschedulable", false));
  EXPECT_EQ((*node)["spec"]["taints"][0]["key"], "gpu-autoscaler.io/interruption");
  EXPECT_EQ((*node)["spec"]["taints"][0]["value"], "SpotInterruption");
  std::string drained;
  ASSERT_TRUE(WaitFor([&] {
    auto events = client_->List({kube::resources::kEvents, "default"});
    if (!events.ok()) return false;
    for (const json& e : (*events)["items"]) {
      if (e.value("reason", "") == "InterruptionDrained") drained = e.value("message", "");
    }
    return !drained.empty();
  })) << agent_.Log();
  EXPECT_EQ(drained.rfind("SpotInterruption: evicted 110 of 110 pods in ", 0), 0u) << drained;
  std::cout << "notice to drained: " << drained << "\n";
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
