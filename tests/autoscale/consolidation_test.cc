// PlanConsolidation: which nodes go, in what order, and where their pods move.
#include "autoscale/consolidation.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::autoscale {
namespace {

// A node with 4 T4 GPUs (or `gpus`), 64 CPUs and 256 GiB at `price` an hour.
PricedNode Node(std::string name, double price, int gpus = 4) {
  NodeSpec n;
  n.name = std::move(name);
  n.cpu_milli = 64000;
  n.memory_mib = 262144;
  n.gpu_model = "T4";
  n.gpu_count = gpus;
  return {n, price};
}

// A pod of one whole GPU per index in `gpus`, bound to them on `node`.
BoundPod On(std::string node, std::vector<int> gpus, std::string name = "p") {
  BoundPod b;
  b.spec.name = std::move(name);
  b.spec.cpu_milli = 1000;
  b.spec.memory_mib = 1024;
  b.spec.num_gpu = static_cast<int>(gpus.size());
  b.spec.gpu_milli = 1000;
  b.node = std::move(node);
  b.gpus = std::move(gpus);
  return b;
}

TEST(ConsolidationTest, RemovesNodesByMoneySavedWithMoves) {
  const std::vector<PricedNode> nodes = {Node("cheap", 1.0), Node("dear", 5.0), Node("mid", 3.0)};
  const std::vector<BoundPod> pods = {On("dear", {0}), On("mid", {0}), On("mid", {1}),
                                      On("cheap", {2})};
  Result<ConsolidationPlan> plan =
      PlanConsolidation(nodes, pods, [](const PodSpec&) { return true; });
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  ASSERT_EQ(plan->removals.size(), 2u);
  EXPECT_EQ(plan->removals[0].node, "dear");
  EXPECT_DOUBLE_EQ(plan->removals[0].saved_per_hour, 5.0);
  ASSERT_EQ(plan->removals[0].moves.size(), 1u);
  EXPECT_EQ(plan->removals[0].moves[0].pod, 0);
  EXPECT_EQ(plan->removals[0].moves[0].to_node, "mid");  // tightest staying node
  EXPECT_EQ(plan->removals[0].moves[0].gpus, std::vector<int>{2});
  EXPECT_EQ(plan->removals[1].node, "cheap");
  EXPECT_EQ(plan->removals[1].moves.at(0).to_node, "mid");
  EXPECT_EQ(plan->removals[1].moves.at(0).gpus, std::vector<int>{3});
  EXPECT_DOUBLE_EQ(plan->saved_per_hour, 6.0);
}

TEST(ConsolidationTest, NeverMovesPodsOntoRemovedNodes) {
  // "empty" goes first (highest price); "full"'s pods could only fit on it.
  const std::vector<PricedNode> nodes = {Node("empty", 9.0, 2), Node("full", 4.0, 2)};
  const std::vector<BoundPod> pods = {On("full", {0, 1})};
  Result<ConsolidationPlan> plan =
      PlanConsolidation(nodes, pods, [](const PodSpec&) { return true; });
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->removals.size(), 1u);
  EXPECT_EQ(plan->removals[0].node, "empty");
  EXPECT_TRUE(plan->removals[0].moves.empty());
}

TEST(ConsolidationTest, RespectsMayEvictAndCapacity) {
  const std::vector<PricedNode> nodes = {Node("a", 5.0, 2), Node("b", 3.0, 2)};
  std::vector<BoundPod> pods = {On("a", {0}, "pinned"), On("b", {0}), On("b", {1})};
  auto not_pinned = [](const PodSpec& p) { return p.name != "pinned"; };
  Result<ConsolidationPlan> plan = PlanConsolidation(nodes, pods, not_pinned);
  ASSERT_TRUE(plan.ok());
  // "a" is pinned; "b"'s two pods do not fit on "a"'s one free GPU.
  EXPECT_TRUE(plan->removals.empty());
  EXPECT_DOUBLE_EQ(plan->saved_per_hour, 0);
}

TEST(ConsolidationTest, RejectsBadInput) {
  const std::vector<PricedNode> nodes = {Node("a", 1.0)};
  auto any = [](const PodSpec&) { return true; };
  EXPECT_EQ(PlanConsolidation(nodes, {On("ghost", {0})}, any).error().code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(PlanConsolidation(nodes, {On("a", {0}), On("a", {0})}, any).ok());
  EXPECT_EQ(PlanConsolidation({Node("a", -1.0)}, {}, any).error().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
