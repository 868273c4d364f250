#include "cloud/simulated_provider.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kube/error.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"

namespace gpu_autoscaler::cloud {
namespace {

using std::chrono::seconds;

SimulatedGroup T4Spot() {
  return SimulatedGroup{.name = "t4-spot",
                        .instance_type = "sim.t4x1",
                        .gpu_model = "Tesla-T4",
                        .gpu_count = 1,
                        .cpu_milli = 8000,
                        .memory_mib = 32768,
                        .lifecycle = Lifecycle::kSpot,
                        .max = 5,
                        .labels = {{"gpuautoscaler.io/node-pool", "t4"}}};
}

TEST(SimulatedCloudTest, InstancesBecomeRunningAfterTheProvisioningDelay) {
  FakeClock clock;
  SimulatedCloud cloud(nullptr, clock, {.zone = "sim-a", .provisioning_delay = seconds(90)});
  cloud.AddGroup(T4Spot());
  ASSERT_TRUE(cloud.SetDesiredSize("t4-spot", 2).ok());
  auto group = cloud.Describe("t4-spot");
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(group->desired, 2);
  ASSERT_EQ(group->instances.size(), 2u);
  EXPECT_EQ(group->instances[0].state, "Pending");
  EXPECT_EQ(group->instances[0].lifecycle, Lifecycle::kSpot);
  EXPECT_EQ(group->instances[0].provider_id, "simulated:///sim-a/" + group->instances[0].id);
  EXPECT_EQ(cloud.NextReadyAt(), clock.Now() + seconds(90));
  clock.Step(seconds(89));
  EXPECT_EQ(cloud.Describe("t4-spot")->instances[0].state, "Pending");
  clock.Step(seconds(1));
  EXPECT_EQ(cloud.Describe("t4-spot")->instances[1].state, "Running");
  EXPECT_FALSE(cloud.NextReadyAt().has_value());

  auto id = cloud.InstanceIdFromProviderId(group->instances[1].provider_id);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, group->instances[1].id);
  EXPECT_FALSE(cloud.InstanceIdFromProviderId("aws:///us-east-1a/i-0abc").ok());
  EXPECT_FALSE(cloud.InstanceIdFromProviderId("simulated:///sim-a/").ok());

  // Terminate with decrement: desired follows; without: a replacement launches.
  ASSERT_TRUE(cloud.TerminateInstances("t4-spot", {group->instances[0].id}, true).ok());
  EXPECT_EQ(cloud.Describe("t4-spot")->desired, 1);
  EXPECT_EQ(cloud.Describe("t4-spot")->instances.size(), 1u);
  ASSERT_TRUE(cloud.TerminateInstances("t4-spot", {group->instances[1].id}, false).ok());
  auto replaced = cloud.Describe("t4-spot");
  EXPECT_EQ(replaced->desired, 1);
  ASSERT_EQ(replaced->instances.size(), 1u);
  EXPECT_NE(replaced->instances[0].id, group->instances[1].id);
  EXPECT_EQ(replaced->instances[0].state, "Pending");
}

TEST(SimulatedCloudTest, ScriptedFailuresCarryTheirKind) {
  FakeClock clock;
  SimulatedCloud cloud(nullptr, clock);
  cloud.AddGroup(T4Spot());
  cloud.SetCapacityError("t4-spot", true);
  Status s = cloud.SetDesiredSize("t4-spot", 1);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kInsufficientCapacity) << s.ToString();
  EXPECT_EQ(cloud.Describe("t4-spot")->desired, 0);
  cloud.SetCapacityError("t4-spot", false);
  EXPECT_TRUE(cloud.SetDesiredSize("t4-spot", 1).ok());

  EXPECT_EQ(ClassifyProviderError(cloud.SetDesiredSize("t4-spot", 6)),
            ProviderErrorKind::kInvalid);  // over max
  EXPECT_EQ(ClassifyProviderError(cloud.Describe("nope").error()), ProviderErrorKind::kNotFound);
  EXPECT_EQ(ClassifyProviderError(cloud.TerminateInstances("t4-spot", {"sim-999"}, true)),
            ProviderErrorKind::kNotFound);
  cloud.SetFailure("t4-spot", ProviderErrorKind::kAuth);
  EXPECT_EQ(ClassifyProviderError(cloud.Describe("t4-spot").error()), ProviderErrorKind::kAuth);
  cloud.SetFailure("t4-spot", ProviderErrorKind::kNone);
  EXPECT_TRUE(cloud.Describe("t4-spot").ok());
}

// Against the embedded API server: a Ready instance is a Node, a terminated one is not.
TEST(SimulatedCloudTest, WritesAndDeletesKwokStyleNodes) {
  auto server = testing::TestApiServer::Start();
  ASSERT_TRUE(server) << "api server did not start";
  if (server->is_real_cluster()) GTEST_SKIP() << "creates Nodes";
  auto client = kube::RestClient::Create(server->config());
  ASSERT_TRUE(client.ok());
  FakeClock clock;
  SimulatedCloud cloud(client->get(), clock, {.zone = "sim-b", .provisioning_delay = seconds(30)});
  cloud.AddGroup(T4Spot());
  ASSERT_TRUE(cloud.SetDesiredSize("t4-spot", 1).ok());
  clock.Step(seconds(30));
  auto group = cloud.Describe("t4-spot");
  ASSERT_TRUE(group.ok());
  const std::string id = group->instances[0].id;
  auto node = (*client)->Get({kube::resources::kNodes, "", id});
  ASSERT_TRUE(node.ok()) << node.error().ToStatus().ToString();
  EXPECT_EQ((*node)["spec"]["providerID"], "simulated:///sim-b/" + id);
  const auto& labels = (*node)["metadata"]["labels"];
  EXPECT_EQ(labels["nvidia.com/gpu.product"], "Tesla-T4");
  EXPECT_EQ(labels["nvidia.com/gpu.count"], "1");
  EXPECT_EQ(labels["karpenter.sh/capacity-type"], "spot");
  EXPECT_EQ(labels["node.kubernetes.io/instance-type"], "sim.t4x1");
  EXPECT_EQ(labels["gpuautoscaler.io/node-pool"], "t4");
  EXPECT_EQ((*node)["status"]["allocatable"]["nvidia.com/gpu"], "1");
  EXPECT_EQ((*node)["status"]["capacity"]["cpu"], "8000m");
  EXPECT_EQ((*node)["status"]["conditions"][0]["type"], "Ready");
  EXPECT_EQ((*node)["status"]["conditions"][0]["status"], "True");

  ASSERT_TRUE(cloud.TerminateInstances("t4-spot", {id}, /*decrement_desired=*/true).ok());
  auto gone = (*client)->Get({kube::resources::kNodes, "", id});
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(kube::IsNotFound(gone.error()));
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
