#include "controllers/node_gpu_allocation.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <nlohmann/json.hpp>

#include "controllers/node_gpu_inventory.h"
#include "kube/object_codec.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

std::shared_ptr<const kube::PodView> Pod(const json& j) {
  auto pod = kube::DecodePod(j.dump());
  EXPECT_TRUE(pod.ok()) << pod.error().ToString();
  return std::make_shared<const kube::PodView>(std::move(*pod));
}
std::shared_ptr<const kube::NodeView> Node(const json& j) {
  auto node = kube::DecodeNode(j.dump());
  EXPECT_TRUE(node.ok()) << node.error().ToString();
  return std::make_shared<const kube::NodeView>(std::move(*node));
}

json Container(const json& requests) {
  return {{"name", "c"}, {"resources", {{"requests", requests}}}};
}

json PodJson(const std::string& name, const std::string& node, const std::string& phase,
             json containers, json init = json::array(), json overhead = nullptr) {
  json spec = {{"containers", std::move(containers)}};
  if (!init.empty()) spec["initContainers"] = std::move(init);
  if (!overhead.is_null()) spec["overhead"] = std::move(overhead);
  if (!node.empty()) spec["nodeName"] = node;
  return {{"metadata", {{"name", name}, {"namespace", "ml"}, {"uid", "uid-" + name}}},
          {"spec", spec},
          {"status", {{"phase", phase}}}};
}

json NodeJson(const std::string& name, const std::string& model, const json& resources) {
  json labels = json::object();
  if (!model.empty()) labels["nvidia.com/gpu.product"] = model;
  return {{"metadata", {{"name", name}, {"uid", "uid-" + name}, {"labels", labels}}},
          {"status", {{"capacity", resources}, {"allocatable", resources}}}};
}

TEST(PodGpuRequestsTest, SchedulerRuleWithInitContainersAndOverhead) {
  // Containers 1 + 2 = 3 GPUs; the larger init container asks 4: max(3, 4) = 4.
  // MIG: containers 1 + 1 = 2 instances, init 1: max = 2; overhead adds 1 -> 3.
  // cpu is not a GPU resource; a 0 request is left out.
  auto pod = Pod(PodJson(
      "p", "n", "Running",
      json::array(
          {Container({{"nvidia.com/gpu", "1"}, {"cpu", "2"}, {"nvidia.com/mig-1g.10gb", "1"}}),
           Container({{"nvidia.com/gpu", "2"}, {"nvidia.com/mig-1g.10gb", "1"}})}),
      json::array({Container({{"nvidia.com/gpu", "4"}}),
                   Container({{"nvidia.com/mig-1g.10gb", "1"}}),
                   Container({{"nvidia.com/gpu.shared", "0"}})}),
      {{"nvidia.com/mig-1g.10gb", "1"}, {"cpu", "250m"}}));
  EXPECT_EQ(PodGpuRequests(*pod),
            (std::map<std::string, int64_t>{{"nvidia.com/gpu", 4}, {"nvidia.com/mig-1g.10gb", 3}}));
}

TEST(PodGpuRequestsTest, TerminalAndUnboundPodsHoldNothing) {
  json c = json::array({Container({{"nvidia.com/gpu", "1"}})});
  EXPECT_TRUE(HoldsNodeResources(*Pod(PodJson("a", "n", "Running", c))));
  EXPECT_TRUE(HoldsNodeResources(*Pod(PodJson("b", "n", "Pending", c))));  // bound, starting
  EXPECT_FALSE(HoldsNodeResources(*Pod(PodJson("c", "n", "Succeeded", c))));
  EXPECT_FALSE(HoldsNodeResources(*Pod(PodJson("d", "n", "Failed", c))));
  EXPECT_FALSE(HoldsNodeResources(*Pod(PodJson("e", "", "Pending", c))));
}

TEST(DecideGpuAllocationTest, PerNodeAndResource) {
  std::vector<std::shared_ptr<const kube::NodeView>> nodes = {
      Node(NodeJson("whole", "NVIDIA-A100-SXM4-80GB", {{"cpu", "64"}, {"nvidia.com/gpu", "8"}})),
      Node(NodeJson("shared", "NVIDIA-L4",
                    {{"nvidia.com/gpu", "0"}, {"nvidia.com/gpu.shared", "16"}})),
      Node(NodeJson("mig", "NVIDIA-H100-80GB-HBM3",
                    {{"nvidia.com/mig-1g.10gb", "14"}, {"nvidia.com/mig-3g.40gb", "2"}})),
      Node(NodeJson("cpu-only", "", {{"cpu", "8"}})),
  };
  auto gpu = [](const char* n) { return json::array({Container({{"nvidia.com/gpu", n}})}); };
  std::vector<std::shared_ptr<const kube::PodView>> pods = {
      Pod(PodJson("w1", "whole", "Running", gpu("2"))),
      Pod(PodJson("w2", "whole", "Pending", gpu("3"))),
      Pod(PodJson("w-done", "whole", "Succeeded", gpu("4"))),
      Pod(PodJson("w-failed", "whole", "Failed", gpu("1"))),
      Pod(PodJson("pending", "", "Pending", gpu("8"))),
      Pod(PodJson("elsewhere", "gone-node", "Running", gpu("1"))),
      // A MIG request on a node that does not advertise it still shows.
      Pod(PodJson("w-mig", "whole", "Running",
                  json::array({Container({{"nvidia.com/mig-2g.20gb", "1"}})}))),
      Pod(PodJson("s1", "shared", "Running",
                  json::array({Container({{"nvidia.com/gpu.shared", "3"}})}))),
      Pod(PodJson("s2", "shared", "Running",
                  json::array({Container({{"nvidia.com/gpu.shared", "1"}}),
                               Container({{"nvidia.com/gpu.shared", "1"}})}))),
      Pod(PodJson("m1", "mig", "Running",
                  json::array({Container({{"nvidia.com/mig-1g.10gb", "2"}}),
                               Container({{"nvidia.com/mig-3g.40gb", "1"}})}))),
      Pod(PodJson("cpu", "cpu-only", "Running", json::array({Container({{"cpu", "1"}})}))),
  };
  const std::map<NodeResourceKey, NodeResourceAllocation> want = {
      {{"mig", "nvidia.com/mig-1g.10gb"}, {"NVIDIA-H100-80GB-HBM3", 14, 2}},
      {{"mig", "nvidia.com/mig-3g.40gb"}, {"NVIDIA-H100-80GB-HBM3", 2, 1}},
      {{"shared", "nvidia.com/gpu.shared"}, {"NVIDIA-L4", 16, 5}},
      {{"whole", "nvidia.com/gpu"}, {"NVIDIA-A100-SXM4-80GB", 8, 5}},
      {{"whole", "nvidia.com/mig-2g.20gb"}, {"NVIDIA-A100-SXM4-80GB", 0, 1}},
  };
  EXPECT_EQ(DecideGpuAllocation(nodes, pods), want);
}

TEST(NodeGpuInventoryReconcilerTest, AllocationGaugesFollowTheCaches) {
  kube::Store<kube::NodeView> nodes;
  kube::Store<kube::PodView> pods;
  prometheus::Registry registry;
  NodeGpuInventoryReconciler reconciler(nodes, registry, nullptr, &pods);
  nodes.Upsert(Node(NodeJson("n1", "NVIDIA-A100-SXM4-80GB", {{"nvidia.com/gpu", "8"}})));
  nodes.Upsert(Node(NodeJson("n2", "", {{"nvidia.com/gpu", "4"}})));
  pods.Upsert(
      Pod(PodJson("a", "n1", "Running", json::array({Container({{"nvidia.com/gpu", "3"}})}))));
  const reconcile::Request allocation{"", std::string(kAllocationRequest)};
  reconciler.Reconcile(allocation, {});
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(
      text.find(
          R"(gpu_autoscaler_node_allocated_gpus{model="NVIDIA-A100-SXM4-80GB",node="n1",resource="nvidia.com/gpu"} 3)"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          R"(gpu_autoscaler_node_allocatable_gpus{model="unknown",node="n2",resource="nvidia.com/gpu"} 4)"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          R"(gpu_autoscaler_node_allocated_gpus{model="unknown",node="n2",resource="nvidia.com/gpu"} 0)"),
      std::string::npos)
      << text;
  // The mapper sends every change to the allocation request.
  EXPECT_EQ(NodeGpuInventoryReconciler::AllocationMapper()({"ml", "a", {}}),
            std::vector<reconcile::Request>{allocation});

  // The pod finishes and n2 goes away: n1 reads 0, n2's series are removed.
  pods.Upsert(
      Pod(PodJson("a", "n1", "Succeeded", json::array({Container({{"nvidia.com/gpu", "3"}})}))));
  nodes.Delete("n2");
  reconciler.Reconcile(allocation, {});
  EXPECT_EQ(reconciler.Allocation(),
            (std::map<NodeResourceKey, NodeResourceAllocation>{
                {{"n1", "nvidia.com/gpu"}, {"NVIDIA-A100-SXM4-80GB", 8, 0}}}));
  text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_EQ(text.find(R"(node="n2")"), std::string::npos) << text;
  EXPECT_NE(
      text.find(
          R"(gpu_autoscaler_node_allocated_gpus{model="NVIDIA-A100-SXM4-80GB",node="n1",resource="nvidia.com/gpu"} 0)"),
      std::string::npos)
      << text;
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
