#include "controllers/node_gpu_inventory.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <nlohmann/json.hpp>

#include "kube/object_codec.h"

namespace gpu_autoscaler::controllers {
namespace {

NodeGpuSummary Node(std::string name, std::string model, int64_t cap, int64_t alloc,
                    bool ready = true, bool unschedulable = false) {
  return {std::move(name), std::move(model), cap, alloc, ready, unschedulable};
}

TEST(DecideInventoryTest, AggregatesPerModel) {
  std::map<std::string, NodeGpuSummary> nodes = {
      {"a", Node("a", "A100", 8, 8)},
      {"b", Node("b", "A100", 8, 6, /*ready=*/false)},
      {"c", Node("c", "H100", 4, 4, true, /*unschedulable=*/true)},
      {"d", Node("d", "H100", 4, 4)},
  };
  auto plan = DecideInventory(nodes, nodes["a"], nodes["a"]);
  ASSERT_EQ(plan.models.size(), 2u);
  EXPECT_EQ(plan.models["A100"], (ModelInventory{2, 16, 14, 8}));
  EXPECT_EQ(plan.models["H100"], (ModelInventory{2, 8, 8, 4}));
  EXPECT_TRUE(plan.events.empty());
}

TEST(DecideInventoryTest, EventsForEachTransition) {
  struct Row {
    const char* name;
    std::optional<NodeGpuSummary> before, after;
    std::vector<PlannedEvent> want;
  };
  const std::vector<Row> rows = {
      {"discovered",
       std::nullopt,
       Node("n", "A100", 8, 8),
       {{"n", false, "GpuNodeDiscovered", "node has 8/8 A100 GPUs allocatable"}}},
      {"discovered not ready",
       std::nullopt,
       Node("n", "A100", 8, 8, false),
       {{"n", false, "GpuNodeDiscovered", "node has 8/8 A100 GPUs allocatable"},
        {"n", true, "GpuNodeNotReady", "node with 8/8 A100 GPUs is not Ready"}}},
      {"dropped",
       Node("n", "A100", 8, 8),
       Node("n", "A100", 8, 6),
       {{"n", true, "GpuCapacityDropped", "allocatable nvidia.com/gpu fell from 8 to 6"}}},
      {"restored",
       Node("n", "A100", 8, 6),
       Node("n", "A100", 8, 8),
       {{"n", false, "GpuCapacityRestored", "allocatable nvidia.com/gpu rose from 6 to 8"}}},
      {"not ready",
       Node("n", "A100", 8, 8),
       Node("n", "A100", 8, 8, false),
       {{"n", true, "GpuNodeNotReady", "node with 8/8 A100 GPUs is not Ready"}}},
      {"ready again",
       Node("n", "A100", 8, 8, false),
       Node("n", "A100", 8, 8),
       {{"n", false, "GpuNodeReady", "node with 8/8 A100 GPUs is Ready"}}},
      {"deleted", Node("n", "A100", 8, 8), std::nullopt, {}},
      {"unchanged", Node("n", "A100", 8, 8), Node("n", "A100", 8, 8), {}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    std::map<std::string, NodeGpuSummary> nodes;
    if (row.after) nodes[row.after->name] = *row.after;
    EXPECT_EQ(DecideInventory(nodes, row.before, row.after).events, row.want);
  }
}

std::shared_ptr<const kube::NodeView> DecodeNodeJson(const nlohmann::json& j) {
  auto node = kube::DecodeNode(j.dump());
  EXPECT_TRUE(node.ok()) << node.error().ToString();
  return std::make_shared<const kube::NodeView>(std::move(*node));
}

nlohmann::json GpuNode(const std::string& name, const std::string& gpus,
                       const std::string& ready = "True") {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"name", name},
            {"uid", "uid-" + name},
            {"resourceVersion", "1"},
            {"labels", {{"nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"}}}}},
          {"status",
           {{"capacity", {{"cpu", "64"}, {"nvidia.com/gpu", "8"}}},
            {"allocatable", {{"cpu", "63"}, {"nvidia.com/gpu", gpus}}},
            {"conditions", {{{"type", "Ready"}, {"status", ready}}}}}}};
}

TEST(NodeGpuInventoryReconcilerTest, MaintainsGaugesFromTheCache) {
  kube::Store<kube::NodeView> store;
  prometheus::Registry registry;
  NodeGpuInventoryReconciler reconciler(store, registry, nullptr);
  auto summary = SummarizeNode(*DecodeNodeJson(GpuNode("n1", "8")));
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->model, "NVIDIA-A100-SXM4-80GB");
  EXPECT_EQ(summary->capacity, 8);
  EXPECT_TRUE(summary->ready);

  store.Upsert(DecodeNodeJson(GpuNode("n1", "8")));
  store.Upsert(DecodeNodeJson(GpuNode("n2", "6", "False")));
  EXPECT_TRUE(std::holds_alternative<reconcile::Done>(reconciler.Reconcile({"", "n1"}, {})));
  EXPECT_TRUE(std::holds_alternative<reconcile::Done>(reconciler.Reconcile({"", "n2"}, {})));
  auto inventory = reconciler.Inventory();
  EXPECT_EQ(inventory["NVIDIA-A100-SXM4-80GB"], (ModelInventory{2, 16, 14, 8}));
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(
      text.find(
          R"(gpu_autoscaler_node_gpus{model="NVIDIA-A100-SXM4-80GB",state="allocatable"} 14)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(gpu_autoscaler_gpu_nodes{model="NVIDIA-A100-SXM4-80GB"} 2)"),
            std::string::npos)
      << text;

  // Both nodes go away: the model's gauges drop to zero.
  store.Delete("n1");
  store.Delete("n2");
  reconciler.Reconcile({"", "n1"}, {});
  reconciler.Reconcile({"", "n2"}, {});
  EXPECT_TRUE(reconciler.Inventory().empty());
  text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find(R"(gpu_autoscaler_gpu_nodes{model="NVIDIA-A100-SXM4-80GB"} 0)"),
            std::string::npos)
      << text;
}

TEST(NodeGpuInventoryReconcilerTest, IgnoresNodesWithoutGpus) {
  kube::Store<kube::NodeView> store;
  prometheus::Registry registry;
  NodeGpuInventoryReconciler reconciler(store, registry, nullptr);
  nlohmann::json cpu_node = GpuNode("cpu-1", "0");
  cpu_node["status"]["capacity"].erase("nvidia.com/gpu");
  store.Upsert(DecodeNodeJson(cpu_node));
  reconciler.Reconcile({"", "cpu-1"}, {});
  EXPECT_TRUE(reconciler.Inventory().empty());
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
