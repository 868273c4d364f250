// The PodResources client against the fake kubelet server on a real unix
// socket: List and GetAllocatableResources round trips, an absent socket, a
// path that is not a socket, a hung kubelet (the call's deadline), and the
// attributor's state and /metrics series through each.
#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <filesystem>
#include <fstream>

#include "node-agent/metrics.h"
#include "node-agent/pod_attributor.h"
#include "node-agent/podresources/pod_resources_client.h"
#include "support/child_process.h"
#include "support/fake_pod_resources/fake_pod_resources.h"

namespace gpu_autoscaler::node_agent {
namespace {

using podresources::PodDevices;
using podresources::PodResourcesClient;
using testing::FakePodResourcesServer;

class PodResourcesTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("gpa-podres"); }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartServer() {
    auto server = FakePodResourcesServer::Start(socket());
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(server).value();
  }
  std::string socket() const { return dir_ + "/kubelet.sock"; }

  std::string dir_;
  std::unique_ptr<FakePodResourcesServer> server_;
};

TEST_F(PodResourcesTest, ListAndAllocatableRoundTrip) {
  StartServer();
  auto data = testing::ParsePodResourcesJson(R"({
    "pods": [{"namespace": "ml", "name": "train-0", "containers": [
      {"name": "main", "devices": [{"resource": "nvidia.com/gpu", "ids": ["GPU-a::1", "GPU-b::0"]}]},
      {"name": "log"}]}],
    "allocatable": [{"resource": "nvidia.com/gpu", "ids": ["GPU-a::0", "GPU-a::1", "GPU-b::0"]}]})");
  ASSERT_TRUE(data.ok()) << data.error().ToString();
  server_->Set(*data);
  auto client = PodResourcesClient::Create({.socket_path = socket()});
  auto pods = client->List();
  ASSERT_TRUE(pods.ok()) << pods.error().ToString();
  ASSERT_EQ(pods->size(), 1u);
  const PodDevices& p = (*pods)[0];
  EXPECT_EQ(p.namespace_name, "ml");
  EXPECT_EQ(p.name, "train-0");
  ASSERT_EQ(p.containers.size(), 2u);
  EXPECT_EQ(p.containers[0].name, "main");
  ASSERT_EQ(p.containers[0].devices.size(), 1u);
  EXPECT_EQ(p.containers[0].devices[0].resource_name, "nvidia.com/gpu");
  EXPECT_EQ(p.containers[0].devices[0].device_ids,
            (std::vector<std::string>{"GPU-a::1", "GPU-b::0"}));
  EXPECT_TRUE(p.containers[1].devices.empty());
  auto allocatable = client->GetAllocatableResources();
  ASSERT_TRUE(allocatable.ok()) << allocatable.error().ToString();
  ASSERT_EQ(allocatable->devices.size(), 1u);
  EXPECT_EQ(allocatable->devices[0].device_ids.size(), 3u);
  EXPECT_EQ(server_->list_calls(), 1);
}

TEST_F(PodResourcesTest, AnAbsentSocketIsNotFoundAndNamesThePath) {
  auto client = PodResourcesClient::Create({.socket_path = socket()});
  auto pods = client->List();
  ASSERT_FALSE(pods.ok());
  EXPECT_EQ(pods.error().code(), StatusCode::kNotFound);
  EXPECT_NE(pods.error().message().find(socket()), std::string::npos);
  std::ofstream(dir_ + "/plain-file") << "x";
  auto file = PodResourcesClient::Create({.socket_path = dir_ + "/plain-file"})->List();
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.error().message().find("is not a socket"), std::string::npos);
}

TEST_F(PodResourcesTest, AHungKubeletHitsTheDeadline) {
  StartServer();
  server_->SetHang(true);
  auto client = PodResourcesClient::Create(
      {.socket_path = socket(), .call_timeout = std::chrono::milliseconds(200)});
  auto pods = client->List();
  ASSERT_FALSE(pods.ok());
  EXPECT_EQ(pods.error().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(pods.error().message().find("did not answer within 200ms"), std::string::npos)
      << pods.error().message();
  server_->SetHang(false);
  EXPECT_TRUE(client->List().ok());  // the same channel recovers
}

TEST_F(PodResourcesTest, TheAttributorSaysWhyAttributionIsUnavailable) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry, "node-1");
  auto text = [&] { return prometheus::TextSerializer().Serialize(registry.Collect()); };
  PodAttributor attributor(
      {.socket_path = socket(), .call_timeout = std::chrono::milliseconds(200), .proc_root = dir_},
      [](std::string_view) { return std::nullopt; });
  EXPECT_EQ(attributor.status().state, PodResourcesState::kPending);
  EXPECT_FALSE(attributor.Refresh().ok());
  EXPECT_EQ(attributor.status().state, PodResourcesState::kNoSocket);
  PodResourcesStatus st = attributor.status();
  metrics.Render(nullptr, nvml::NvmlState::kUp, nullptr, &st);
  EXPECT_NE(text().find("gpu_autoscaler_node_pod_resources_up 0"), std::string::npos);
  EXPECT_NE(text().find("gpu_autoscaler_node_pod_resources_state{state=\"NoSocket\"} 1"),
            std::string::npos);

  StartServer();
  server_->SetPods({{"ml", "train-0", {{"main", {{"nvidia.com/gpu", {"GPU-a"}, {}}}, {}}}}});
  ASSERT_TRUE(attributor.Refresh().ok());
  st = attributor.status();
  EXPECT_EQ(st.state, PodResourcesState::kUp);
  EXPECT_EQ(st.pods, 1u);
  EXPECT_EQ(st.assigned.at("nvidia.com/gpu"), 1u);
  nvml::GpuSnapshot snap;
  snap.gpus.push_back({.index = 0, .uuid = "GPU-a", .name = "NVIDIA H100 80GB HBM3"});
  snap.gpus[0].util_gpu = 55;
  snap.gpus[0].processes = {{.pid = 4242, .used_memory_bytes = 1 << 20, .sm_util = 50}};
  Attribution a = attributor.Attribute(snap);
  metrics.Render(&snap, nvml::NvmlState::kUp, &a, &st);
  const std::string up = text();
  EXPECT_NE(up.find("gpu_autoscaler_node_pod_resources_up 1"), std::string::npos);
  EXPECT_NE(up.find("DCGM_FI_DEV_GPU_UTIL{Hostname=\"node-1\",UUID=\"GPU-a\",container=\"main\","
                    "device=\"nvidia0\",gpu=\"0\",modelName=\"NVIDIA H100 80GB HBM3\","
                    "namespace=\"ml\",pod=\"train-0\"} 55"),
            std::string::npos)
      << up;
  EXPECT_NE(up.find("gpu_autoscaler_node_gpu_process_sm_utilization{Hostname=\"node-1\","
                    "UUID=\"GPU-a\",container=\"main\",gpu=\"0\",namespace=\"ml\",pid=\"4242\","
                    "pod=\"train-0\"} 50"),
            std::string::npos)
      << up;
  EXPECT_NE(up.find("gpu_autoscaler_node_pod_gpu_sm_utilization{Hostname=\"node-1\","
                    "namespace=\"ml\",pod=\"train-0\"} 50"),
            std::string::npos);
  EXPECT_NE(up.find("gpu_autoscaler_node_pod_gpu_memory_used_bytes{Hostname=\"node-1\","
                    "namespace=\"ml\",pod=\"train-0\"} 1048576"),
            std::string::npos);

  // A hung kubelet: the assignments go (no stale labels), the state says why.
  server_->SetHang(true);
  EXPECT_EQ(attributor.Refresh().code(), StatusCode::kDeadlineExceeded);
  st = attributor.status();
  EXPECT_EQ(st.state, PodResourcesState::kTimedOut);
  a = attributor.Attribute(snap);
  metrics.Render(&snap, nvml::NvmlState::kUp, &a, &st);
  const std::string hung = text();
  EXPECT_NE(hung.find("gpu_autoscaler_node_pod_resources_state{state=\"TimedOut\"} 1"),
            std::string::npos);
  EXPECT_EQ(hung.find("pod=\"train-0\""), std::string::npos) << hung;
  EXPECT_NE(hung.find("gpu_autoscaler_node_gpu_processes_unattributed 1"), std::string::npos);
  server_->SetHang(false);
}

TEST(PodResourcesJson, BadInputIsAClearError) {
  EXPECT_FALSE(testing::ParsePodResourcesJson("[").ok());
  EXPECT_FALSE(testing::ParsePodResourcesJson(R"({"pods": [3]})").ok());
  EXPECT_FALSE(testing::ParsePodResourcesJson(R"({"allocatable": [{"resource": 1}]})").ok());
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
