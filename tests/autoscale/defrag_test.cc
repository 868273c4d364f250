// Table tests of the GPU defragmentation planner on tiny clusters, with the
// fragmentation of every node computed by hand. The target workload is one
// shape, a whole GPU (1000 milli, 0 CPU): a node's fragmentation is then its
// idle GPU when no GPU is fully free, else the idle milli of its partly used GPUs.
#include "autoscale/defrag.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::autoscale {
namespace {

TargetWorkload WholeGpuWorkload() {
  TypicalPod whole;
  whole.gpu_milli = 1000;
  whole.num_gpu = 1;
  whole.probability = 1;
  return TargetWorkload::FromShapes({whole});
}

NodeSpec Node(std::string name, int gpus, int64_t memory_mib = 1 << 20) {
  NodeSpec n;
  n.name = std::move(name);
  n.cpu_milli = 64000;
  n.memory_mib = memory_mib;
  n.gpu_model = "T4";
  n.gpu_count = gpus;
  return n;
}

struct Fixture {
  ClusterState cluster;
  std::vector<DefragCandidate> pods;

  void AddNode(const NodeSpec& spec) { ASSERT_TRUE(cluster.AddNode(spec).ok()); }
  // A sharing pod of `milli` on GPU `gpu` of node `node`.
  void Bind(int node, int gpu, int milli, int64_t memory_mib = 1) {
    PodSpec spec;
    spec.name = "p";
    spec.cpu_milli = 1000;
    spec.memory_mib = memory_mib;
    spec.num_gpu = 1;
    spec.gpu_milli = milli;
    PodRequest pod = cluster.Resolve(spec);
    Placement at{.node = node, .gpus = {gpu}};
    Result<BindingId> id = cluster.Place(pod, at);
    ASSERT_TRUE(id.ok()) << id.error().ToString();
    pods.push_back({*id, pod, at});
  }
};

TEST(DefragTest, FourHalfPodsOnTwoNodesFreeTwoWholeGpusInTwoMoves) {
  // a: [500|500] b: [500|500] (pods p0,p1 on a; p2,p3 on b). No GPU is whole:
  // F_a = F_b = 1000, total 2000.
  // Move 1: p0 -> b GPU 0. a becomes [1000 free|500]: F_a = 500 (drop 500);
  // b becomes [0|500]: no whole GPU, F_b = 500 (drop 500). Gain 1000.
  // Move 2: p1 -> b GPU 1 (ties with p3 -> a; p1 has the lower index):
  // a [1000|1000] F 0 (drop 500); b [0|0] F 0 (drop 500). Gain 1000.
  // Then every move gains <= 0.
  Fixture f;
  f.AddNode(Node("a", 2));
  f.AddNode(Node("b", 2));
  f.Bind(0, 0, 500);
  f.Bind(0, 1, 500);
  f.Bind(1, 0, 500);
  f.Bind(1, 1, 500);
  ClusterState after;
  Result<DefragPlan> plan =
      PlanDefragmentation(f.cluster, f.pods, WholeGpuWorkload(), {.max_moves = 5}, &after);
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  EXPECT_DOUBLE_EQ(plan->fragmentation_before, 2000);
  EXPECT_DOUBLE_EQ(plan->fragmentation_after, 0);
  EXPECT_DOUBLE_EQ(plan->recovered_milli(), 2000);
  EXPECT_EQ(plan->fully_free_gpus_before, 0);
  EXPECT_EQ(plan->fully_free_gpus_after, 2);
  ASSERT_EQ(plan->moves.size(), 2u);
  const DefragMove& m0 = plan->moves[0];
  EXPECT_EQ(m0.candidate, 0);
  EXPECT_EQ(m0.from_node, 0);
  EXPECT_EQ(m0.to, (Placement{.node = 1, .gpus = {0}}));
  EXPECT_DOUBLE_EQ(m0.source_drop, 500);
  EXPECT_DOUBLE_EQ(m0.destination_drop, 500);
  EXPECT_DOUBLE_EQ(m0.gain_milli, 1000);
  EXPECT_EQ(m0.whole_gpus_freed, 1);
  EXPECT_FALSE(m0.paired);
  const DefragMove& m1 = plan->moves[1];
  EXPECT_EQ(m1.candidate, 1);
  EXPECT_EQ(m1.to, (Placement{.node = 1, .gpus = {1}}));
  EXPECT_DOUBLE_EQ(m1.gain_milli, 1000);
  EXPECT_EQ(plan->stop_reason, "no move gains at least 1 milli-GPU per evicted pod");
  // The returned cluster has node a empty and b full.
  EXPECT_EQ(after.node(0).fully_free_gpus, 2);
  EXPECT_EQ(after.node(1).free_gpu_milli, 0);
  // The input is not changed.
  EXPECT_EQ(f.cluster.node(0).free_gpu_milli, 1000);
}

TEST(DefragTest, MaxMovesBoundsThePlan) {
  Fixture f;
  f.AddNode(Node("a", 2));
  f.AddNode(Node("b", 2));
  for (int i = 0; i < 4; ++i)
    f.Bind(i / 2, i % 2, 500);
  auto plan = PlanDefragmentation(f.cluster, f.pods, WholeGpuWorkload(), {.max_moves = 1});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->moves.size(), 1u);
  EXPECT_DOUBLE_EQ(plan->recovered_milli(), 1000);
  EXPECT_EQ(plan->stop_reason, "max moves reached");
  auto none = PlanDefragmentation(f.cluster, f.pods, WholeGpuWorkload(), {.max_moves = 0});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->moves.empty());
  EXPECT_DOUBLE_EQ(none->recovered_milli(), 0);
}

// a: one GPU with two 300 pods (free 400); b: two GPUs with a 700 pod each
// (free [300|300]). F_a = 400, F_b = 600, total 1000. The 700 pods fit
// nowhere else. Moving one 300 pod to b: a free 700 (F 700, drop -300), b
// [0|300] (F 300, drop 300): gain 0. The second 300 pod then: a free 1000
// (F 0, drop 700), b [0|0] (F 0, drop 300): gain 1000. Only the pair helps.
Fixture PairOnlyCluster() {
  Fixture f;
  f.AddNode(Node("a", 1));
  f.AddNode(Node("b", 2));
  f.Bind(0, 0, 300);
  f.Bind(0, 0, 300);
  f.Bind(1, 0, 700);
  f.Bind(1, 1, 700);
  return f;
}

TEST(DefragTest, LookaheadFindsThePairThatFreesASharedGpu) {
  Fixture f = PairOnlyCluster();
  auto plan = PlanDefragmentation(f.cluster, f.pods, WholeGpuWorkload(), {.max_moves = 4});
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  ASSERT_EQ(plan->moves.size(), 2u);
  EXPECT_EQ(plan->moves[0].candidate, 0);
  EXPECT_TRUE(plan->moves[0].paired);
  EXPECT_DOUBLE_EQ(plan->moves[0].gain_milli, 0);
  EXPECT_DOUBLE_EQ(plan->moves[0].source_drop, -300);
  EXPECT_EQ(plan->moves[0].to, (Placement{.node = 1, .gpus = {0}}));
  EXPECT_EQ(plan->moves[1].candidate, 1);
  EXPECT_DOUBLE_EQ(plan->moves[1].gain_milli, 1000);
  EXPECT_EQ(plan->moves[1].to, (Placement{.node = 1, .gpus = {1}}));
  EXPECT_EQ(plan->moves[1].whole_gpus_freed, 1);
  EXPECT_DOUBLE_EQ(plan->fragmentation_before, 1000);
  EXPECT_DOUBLE_EQ(plan->fragmentation_after, 0);
}

TEST(DefragTest, WithoutLookaheadOrRoomForTwoMovesThePairIsNotStarted) {
  Fixture f = PairOnlyCluster();
  auto greedy =
      PlanDefragmentation(f.cluster, f.pods, WholeGpuWorkload(), {.max_moves = 4, .lookahead = 0});
  ASSERT_TRUE(greedy.ok());
  EXPECT_TRUE(greedy->moves.empty());
  // One move allowed: the first half of a pair gains nothing on its own.
  auto one = PlanDefragmentation(f.cluster, f.pods, WholeGpuWorkload(), {.max_moves = 1});
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->moves.empty());
}

TEST(DefragTest, APodThatFitsNowhereElseIsNeverMoved) {
  // b has the free GPU a's pod would want but no memory left for it.
  Fixture f;
  f.AddNode(Node("a", 1));
  f.AddNode(Node("b", 1, /*memory_mib=*/100));
  f.Bind(0, 0, 500, /*memory_mib=*/200);
  f.Bind(1, 0, 500, /*memory_mib=*/100);
  auto plan = PlanDefragmentation(f.cluster, f.pods, WholeGpuWorkload(), {.max_moves = 3});
  ASSERT_TRUE(plan.ok());
  // Pod 1 fits on a (memory 1M) and would free b's GPU: a [0] b [1000].
  // a: F 500 -> 0 (drop 500); b: F 500 -> 0 (drop 500). Pod 0 never moves.
  ASSERT_EQ(plan->moves.size(), 1u);
  EXPECT_EQ(plan->moves[0].candidate, 1);
  EXPECT_EQ(plan->moves[0].to.node, 0);
  EXPECT_DOUBLE_EQ(plan->moves[0].gain_milli, 1000);
}

TEST(DefragTest, MinGainStopsSmallMoves) {
  Fixture f;
  f.AddNode(Node("a", 2));
  f.AddNode(Node("b", 2));
  for (int i = 0; i < 4; ++i)
    f.Bind(i / 2, i % 2, 500);
  auto plan = PlanDefragmentation(f.cluster, f.pods, WholeGpuWorkload(),
                                  {.max_moves = 5, .min_gain_milli = 1001});
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->moves.empty());
  EXPECT_EQ(plan->stop_reason, "no move gains at least 1001 milli-GPU per evicted pod");
}

TEST(DefragTest, BadInputIsAnError) {
  Fixture f;
  f.AddNode(Node("a", 1));
  f.Bind(0, 0, 500);
  f.pods[0].placement.node = 7;
  auto plan = PlanDefragmentation(f.cluster, f.pods, WholeGpuWorkload(), {});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message().find("not in the cluster"), std::string::npos);
  EXPECT_FALSE(PlanDefragmentation(f.cluster, {}, WholeGpuWorkload(), {.max_moves = -1}).ok());
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
