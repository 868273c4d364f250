#include "autoscale/policy.h"

#include <gtest/gtest.h>

#include <set>

#include "autoscale/scheduler.h"

namespace gpu_autoscaler::autoscale {
namespace {

// A node state built by hand: free CPU and per-GPU free milli.
NodeState Node(int64_t free_cpu, std::vector<int> free_milli, int model = 0) {
  NodeState n;
  n.free_cpu = free_cpu;
  n.free_memory = 1 << 20;
  n.model = model;
  n.gpu_count = static_cast<int>(free_milli.size());
  for (int i = 0; i < n.gpu_count; ++i) {
    n.free_milli[i] = static_cast<int16_t>(free_milli[i]);
    n.free_gpu_milli += free_milli[i];
    n.fully_free_gpus += free_milli[i] == kMilliPerGpu;
  }
  return n;
}

PodRequest Pod(int64_t cpu, int num_gpu, int gpu_milli) {
  PodRequest p;
  p.cpu_milli = cpu;
  p.num_gpu = num_gpu;
  p.gpu_milli = gpu_milli;
  p.pod_class = num_gpu == 0       ? PodClass::kCpuOnly
                : num_gpu > 1      ? PodClass::kMultiGpu
                : gpu_milli < 1000 ? PodClass::kSharing
                                   : PodClass::kWholeGpu;
  return p;
}

struct ScoreCase {
  const char* name;
  NodeState node;
  PodRequest pod;
  int want;
};

TEST(PolicyScoreTest, DotProduct) {
  const ScoreCase cases[] = {
      // v·u = 0.5·0.0625 + 0.25·0.0625 = 0.046875; ⌊100·(1 − 0.0234375)⌋ = 97
      {"typical", Node(64000, {1000, 1000}), Pod(8000, 1, 500), 97},
      {"full node, full pod", Node(128000, std::vector<int>(8, 1000)), Pod(128000, 8, 1000), 0},
      {"cpu-only ignores GPUs", Node(128000, std::vector<int>(8, 1000)), Pod(64000, 0, 0), 75},
      // Truncation: 100·(1 − (0.25·0.25 + 0)/2) = 96.875 → 96.
      {"truncates", Node(32000, {}), Pod(32000, 0, 0), 96},
  };
  for (const ScoreCase& c : cases)
    EXPECT_EQ(DotProductScore(c.node, c.pod), c.want) << c.name;
}

TEST(PolicyScoreTest, GpuClustering) {
  NodeState shared = Node(64000, {1000, 1000, 1000, 1000, 0, 0, 0, 0});  // R = 4000
  shared.tag_counts[0] = 2;
  NodeState mixed = shared;
  mixed.tag_counts[1] = 1;
  NodeState whole = shared;
  whole.tag_counts[0] = 0;
  whole.tag_counts[4] = 1;
  const ScoreCase cases[] = {
      {"cpu-only is always 0", shared, Pod(1000, 0, 0), 0},
      {"empty node: base 0 + 25", Node(64000, std::vector<int>(8, 1000)), Pod(1000, 1, 500), 25},
      {"same tag only: 12 + 75", shared, Pod(1000, 1, 300), 87},
      {"same tag and others: 12 + 50", mixed, Pod(1000, 1, 300), 62},
      {"other tags only: base", shared, Pod(1000, 1, 1000), 12},
      {"4-GPU tag matches", whole, Pod(1000, 4, 1000), 87},
      {"1-GPU is not 4-GPU", whole, Pod(1000, 1, 1000), 12},
      // base = ⌊25·1/8000⌋ = 0, integer division.
      {"integer division", Node(1000, {999, 1000, 1000, 1000, 1000, 1000, 1000, 1000}),
       Pod(1, 1, 100), 25},
  };
  for (const ScoreCase& c : cases)
    EXPECT_EQ(GpuClusteringScore(c.node, c.pod), c.want) << c.name;
}

TEST(PolicyScoreTest, GpuPacking) {
  const ScoreCase cases[] = {
      {"cpu-only", Node(64000, {1000, 400}), Pod(1000, 0, 0), 0},
      {"idle 8-GPU node: max(33-8, 8)", Node(64000, std::vector<int>(8, 1000)), Pod(1, 1, 500), 25},
      {"idle 2-GPU node", Node(64000, {1000, 1000}), Pod(1, 1, 500), 31},
      {"idle 1-GPU node", Node(64000, {1000}), Pod(1, 1, 1000), 32},
      // Tightest GPU that fits is 400: ⌊400·100/1000⌋ = 40, 40/10 = 4 → 96.
      {"share a used GPU", Node(64000, {1000, 400}), Pod(1, 1, 300), 96},
      {"sharing pod needs a free GPU", Node(64000, {1000, 400}), Pod(1, 1, 500), 49},
      {"whole GPU on used node", Node(64000, {1000, 400}), Pod(1, 1, 1000), 49},
      {"two free GPUs on used node", Node(64000, {1000, 1000, 1000, 0}), Pod(1, 2, 1000), 48},
      {"tightest share scores 100", Node(64000, {50, 1000}), Pod(1, 1, 50), 100},
      {"large remainder", Node(64000, {990, 1000}), Pod(1, 1, 100), 91},
      {"stable order among equal free", Node(64000, {600, 600, 1000}), Pod(1, 1, 600), 94},
  };
  for (const ScoreCase& c : cases)
    EXPECT_EQ(GpuPackingScore(c.node, c.pod), c.want) << c.name;
  // Eight nearly full GPUs: 100 − ⌊8·99/10⌋ = 21, floored at 50.
  EXPECT_EQ(GpuPackingScore(Node(1, std::vector<int>(8, 999)), Pod(1, 8, 999)), 50);
}

TEST(PolicyScoreTest, BestFitAndWorstFit) {
  // left = 0.5·56000/128000 + 0.5·1500/8000 = 0.3125.
  EXPECT_EQ(BestFitScore(Node(64000, {1000, 1000}), Pod(8000, 1, 500)), 68);
  EXPECT_EQ(WorstFitScore(Node(64000, {1000, 1000}), Pod(8000, 1, 500)), 31);
  // A perfect fit leaves nothing.
  EXPECT_EQ(BestFitScore(Node(8000, {500}), Pod(8000, 1, 500)), 100);
  EXPECT_EQ(WorstFitScore(Node(8000, {500}), Pod(8000, 1, 500)), 0);
  // Tie: same leftovers, different shapes.
  EXPECT_EQ(BestFitScore(Node(16000, {1000}), Pod(8000, 0, 0)),
            BestFitScore(Node(8000, {1000}), Pod(0, 0, 0)));
}

TEST(PolicyScoreTest, SigmoidTruncates) {
  EXPECT_EQ(SigmoidScore(0), 50);
  EXPECT_EQ(SigmoidScore(9), 50);  // σ(0.009) = 0.50225
  EXPECT_EQ(SigmoidScore(1000), 73);
  EXPECT_EQ(SigmoidScore(-1000), 26);
  EXPECT_EQ(SigmoidScore(-2000), 11);
  EXPECT_EQ(SigmoidScore(1e9), 100);
  EXPECT_EQ(SigmoidScore(-1e9), 0);
}

TypicalPod Shape(int64_t cpu, int gpu_milli, int num_gpu, double p) {
  TypicalPod s;
  s.cpu_milli = cpu;
  s.gpu_milli = gpu_milli;
  s.num_gpu = num_gpu;
  s.probability = p;
  return s;
}

TEST(FragmentationTest, ShapeFragmentationFollowsTheFourCases) {
  const NodeState n = Node(10000, {1000, 400, 0});
  EXPECT_EQ(ShapeFragmentation(n.free_milli.data(), 3, n.free_cpu, 0, Shape(1000, 0, 0, 1)), 1400);
  EXPECT_EQ(ShapeFragmentation(n.free_milli.data(), 3, n.free_cpu, 0, Shape(1000, 500, 1, 1)), 400);
  EXPECT_EQ(ShapeFragmentation(n.free_milli.data(), 3, n.free_cpu, 0, Shape(1000, 300, 1, 1)), 0);
  EXPECT_EQ(ShapeFragmentation(n.free_milli.data(), 3, n.free_cpu, 0, Shape(1000, 1000, 2, 1)),
            1400);  // not enough GPUs
  EXPECT_EQ(ShapeFragmentation(n.free_milli.data(), 3, n.free_cpu, 0, Shape(20000, 300, 1, 1)),
            1400);  // CPU stranding
  TypicalPod other_model = Shape(1000, 300, 1, 1);
  other_model.models = ModelMask{1} << 1;
  EXPECT_EQ(ShapeFragmentation(n.free_milli.data(), 3, n.free_cpu, 0, other_model), 1400);
  const TargetWorkload w =
      TargetWorkload::FromShapes({Shape(1000, 500, 1, 3), Shape(1000, 0, 0, 1)});
  EXPECT_DOUBLE_EQ(NodeFragmentation(n, w), 0.75 * 400 + 0.25 * 1400);
}

TEST(FragmentationTest, TargetWorkloadKeepsTheShortestPrefixWithTies) {
  ClusterState cluster;
  NodeSpec node;
  node.name = "n";
  node.cpu_milli = 1000;
  node.memory_mib = 1000;
  node.gpu_model = "T4";
  node.gpu_count = 1;
  ASSERT_TRUE(cluster.AddNode(node).ok());
  std::vector<PodSpec> pods;
  auto add = [&pods](int count, int64_t cpu, int gpus, int milli, int64_t memory = 0) {
    for (int i = 0; i < count; ++i) {
      PodSpec p;
      p.cpu_milli = cpu;
      p.memory_mib = memory + i % 2;  // memory is not part of the key
      p.num_gpu = gpus;
      p.gpu_milli = milli;
      pods.push_back(p);
    }
  };
  add(10, 1000, 1, 500, 4096);
  add(5, 2000, 1, 1000);
  add(5, 3000, 1, 1000);  // ties with the previous key; larger key first
  add(1, 500, 0, 0);
  // 21 pods: 95% needs 19.95, so the prefix is 10 + 5 + 5 = 20.
  const TargetWorkload w = TargetWorkload::FromTrace(pods, cluster, 0.95);
  ASSERT_EQ(w.shapes().size(), 3u);
  EXPECT_EQ(w.distinct_shapes(), 4);
  EXPECT_EQ(w.shapes()[0].cpu_milli, 1000);
  EXPECT_EQ(w.shapes()[1].cpu_milli, 3000);
  EXPECT_EQ(w.shapes()[2].cpu_milli, 2000);
  EXPECT_DOUBLE_EQ(w.shapes()[0].probability, 0.5);
  EXPECT_DOUBLE_EQ(w.shapes()[1].probability, 0.25);
  // Each shape carries its pods' mean memory, truncated: (5·4096 + 5·4097) / 10.
  EXPECT_EQ(w.shapes()[0].memory_mib, 4096);
  EXPECT_EQ(w.shapes()[1].memory_mib, 0);
}

TEST(FragmentationTest, MergeByPodCountWeighsEachShapeByItsPods) {
  TypicalPod gpu = Shape(1000, 500, 1, 1);
  gpu.count = 30;
  TypicalPod whole = Shape(2000, 1000, 1, 1);
  whole.count = 10;
  TypicalPod cpu_only = Shape(8000, 0, 0, 1);
  cpu_only.count = 60;
  // Each input is normalised on its own (½ and ½, and 1); the merge reads counts.
  const TargetWorkload gpus = TargetWorkload::FromShapes({gpu, whole});
  const TargetWorkload cpus = TargetWorkload::FromShapes({cpu_only});
  ASSERT_DOUBLE_EQ(cpus.shapes()[0].probability, 1.0);
  const TargetWorkload merged = TargetWorkload::MergeByPodCount(gpus, cpus);
  ASSERT_EQ(merged.shapes().size(), 3u);
  EXPECT_DOUBLE_EQ(merged.shapes()[0].probability, 0.3);
  EXPECT_DOUBLE_EQ(merged.shapes()[1].probability, 0.1);
  EXPECT_DOUBLE_EQ(merged.shapes()[2].probability, 0.6);
  EXPECT_EQ(merged.shapes()[2].cpu_milli, 8000);
  EXPECT_EQ(merged.shapes()[2].count, 60);
}

TEST(PolicyScoreTest, FgdPicksTheGpuThatKeepsTheTargetPlaceable) {
  const TargetWorkload w = TargetWorkload::FromShapes({Shape(1000, 500, 1, 1)});
  // Before: 0 fragment. GPU 0 → [700, 600]: 0, Δ = 0 → 50.
  // GPU 1 → [1000, 300]: 300, Δ = −300 → ⌊100·σ(−0.3)⌋ = 42.
  NodeScore s = FgdScore(Node(10000, {1000, 600}), Pod(1000, 1, 300), w);
  EXPECT_EQ(s.score, 50);
  EXPECT_EQ(s.gpu, 0);
  // Filling the 400 hole removes a fragment: Δ = 400 → ⌊100·σ(0.4)⌋ = 59, on GPU 1.
  s = FgdScore(Node(10000, {1000, 400}), Pod(1000, 1, 400), w);
  EXPECT_EQ(s.score, 59);
  EXPECT_EQ(s.gpu, 1);
  // Tie between equal GPUs: the lowest index.
  s = FgdScore(Node(10000, {1000, 600, 600}), Pod(1000, 1, 300), w);
  EXPECT_EQ(s.score, 50);
  EXPECT_EQ(s.gpu, 0);
  s = FgdScore(Node(10000, {600, 600}), Pod(1000, 1, 300), w);
  EXPECT_EQ(s.gpu, 0);
  // A whole-GPU pod uses free GPUs: [1000, 600] → [0, 600], still placeable.
  EXPECT_EQ(FgdScore(Node(10000, {1000, 600}), Pod(1000, 1, 1000), w).score, 50);
  // A CPU-only pod that strands the GPUs: Δ = −1600 → ⌊100·σ(−1.6)⌋ = 16.
  EXPECT_EQ(FgdScore(Node(1500, {1000, 600}), Pod(1000, 0, 0), w).score, 16);
  EXPECT_EQ(FgdScore(Node(2000, {1000, 600}), Pod(1000, 0, 0), w).score, 50);
}

TEST(PolicyTest, MakePolicyKnowsEveryNameAndRejectsOthers) {
  const TargetWorkload w = TargetWorkload::FromShapes({Shape(1000, 500, 1, 1)});
  for (const std::string& name : PolicyNames()) {
    Result<std::unique_ptr<Policy>> p = MakePolicy(name, &w);
    ASSERT_TRUE(p.ok()) << name;
    EXPECT_EQ((*p)->name(), name);
  }
  EXPECT_TRUE(MakePolicy("fgd", &w).ok());
  EXPECT_TRUE(MakePolicy("dotprod", &w).ok());
  EXPECT_EQ(MakePolicy("FGD", nullptr).error().code(), StatusCode::kInvalidArgument);
  Result<std::unique_ptr<Policy>> unknown = MakePolicy("Tetris", &w);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("unknown policy \"Tetris\""), std::string::npos);
}

class SchedulerTest : public ::testing::Test {
 protected:
  void AddNode(std::string name, int gpus, int64_t cpu = 64000) {
    NodeSpec n;
    n.name = std::move(name);
    n.cpu_milli = cpu;
    n.memory_mib = 1 << 20;
    n.gpu_model = "T4";
    n.gpu_count = gpus;
    ASSERT_TRUE(cluster_.AddNode(n).ok());
  }
  ClusterState cluster_;
  TargetWorkload workload_ = TargetWorkload::FromShapes({Shape(1000, 500, 1, 1)});
};

TEST_F(SchedulerTest, TiesGoToTheSmallestRank) {
  AddNode("a", 2);
  AddNode("b", 2);
  AddNode("c", 2);
  auto policy = MakePolicy("BestFit", &workload_);
  ASSERT_TRUE(policy.ok());
  const PodRequest pod = cluster_.Resolve({"p", 1000, 1, 1, 500, {}, {}});
  Scheduler by_index(cluster_, **policy, {}, 1);
  EXPECT_EQ(by_index.Select(pod)->node, 0);
  Scheduler ranked(cluster_, **policy, {2, 0, 1}, 1);
  EXPECT_EQ(ranked.Select(pod)->node, 1);
}

TEST_F(SchedulerTest, HighestScoreWinsAndCacheFollowsPlacements) {
  AddNode("a", 2);
  AddNode("b", 2);
  auto policy = MakePolicy("BestFit", &workload_);
  ASSERT_TRUE(policy.ok());
  Scheduler scheduler(cluster_, **policy, {1, 0}, 1);
  const PodRequest pod = cluster_.Resolve({"p", 1000, 1, 1, 300, {}, {}});
  std::optional<Placement> first = scheduler.Select(pod);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->node, 1);  // tie, rank 0
  EXPECT_EQ(first->gpus, (std::vector<int>{0}));
  ASSERT_TRUE(cluster_.Place(pod, *first).ok());
  // Node b now has less left: BestFit stacks there, on the tighter GPU 0.
  std::optional<Placement> second = scheduler.Select(pod);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->node, 1);
  EXPECT_EQ(second->gpus, (std::vector<int>{0}));
  ASSERT_TRUE(cluster_.Place(pod, *second).ok());
  ASSERT_TRUE(cluster_.Place(pod, *scheduler.Select(pod)).ok());  // GPU 0 is full at 900
  EXPECT_EQ(cluster_.node(1).free_milli[0], 100);
  const PodRequest huge = cluster_.Resolve({"p", 1000, 1, 4, 1000, {}, {}});
  EXPECT_FALSE(scheduler.Select(huge).has_value());
}

// A fork starts from the original's score cache but decides on its own copy
// of the cluster exactly as a fresh scheduler there would, and leaves the
// original cluster and scheduler as they were.
TEST_F(SchedulerTest, AForkDecidesOnItsCopyAsAFreshSchedulerWould) {
  AddNode("a", 2);
  AddNode("b", 2);
  AddNode("c", 4);
  auto policy = MakePolicy("FGD", &workload_);
  ASSERT_TRUE(policy.ok());
  const std::vector<int> ranks = {2, 0, 1};
  Scheduler original(cluster_, **policy, ranks, 1);
  const PodRequest small = cluster_.Resolve({"s", 1000, 1, 1, 300, {}, {}});
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(cluster_.Place(small, *original.Select(small)).ok());
  const int64_t allocated = cluster_.allocated_gpu_milli();

  ClusterState copy = cluster_;
  auto fork_policy = MakePolicy("FGD", &workload_);
  ASSERT_TRUE(fork_policy.ok());
  Scheduler fork(original, copy, **fork_policy);
  const std::vector<PodRequest> pods = {
      cluster_.Resolve({"a", 1000, 1, 1, 700, {}, {}}),
      cluster_.Resolve({"b", 1000, 1, 1, 500, {}, {}}),
      cluster_.Resolve({"c", 2000, 1, 2, 1000, {}, {}}),
      small,
      cluster_.Resolve({"d", 1000, 1, 1, 1000, {}, {}}),
      cluster_.Resolve({"e", 1000, 1, 1, 600, {}, {}}),
  };
  for (const PodRequest& pod : pods) {
    auto fresh_policy = MakePolicy("FGD", &workload_);
    ASSERT_TRUE(fresh_policy.ok());
    Scheduler fresh(copy, **fresh_policy, ranks, 1);
    const std::optional<Placement> expected = fresh.Select(pod);
    const std::optional<Placement> got = fork.Select(pod);
    ASSERT_EQ(got, expected) << pod.gpu_milli;
    if (got) {
      ASSERT_TRUE(copy.Place(pod, *got).ok());
    }
  }
  EXPECT_GT(copy.allocated_gpu_milli(), allocated);
  EXPECT_EQ(cluster_.allocated_gpu_milli(), allocated);
  Scheduler fresh(cluster_, **fork_policy, ranks, 1);
  EXPECT_EQ(original.Select(small), fresh.Select(small));
}

TEST_F(SchedulerTest, FgdUsesTheGpuItScored) {
  AddNode("a", 2);
  auto policy = MakePolicy("FGD", &workload_);
  ASSERT_TRUE(policy.ok());
  Scheduler scheduler(cluster_, **policy, {}, 1);
  const PodRequest first = cluster_.Resolve({"p", 1000, 1, 1, 400, {}, {}});
  ASSERT_TRUE(cluster_.Place(first, {0, {1}}).ok());  // [1000, 600]
  const PodRequest pod = cluster_.Resolve({"p", 1000, 1, 1, 300, {}, {}});
  // "best" would take GPU 1 (600); FGD keeps GPU 1 able to hold a 500 pod.
  EXPECT_EQ(scheduler.Select(pod)->gpus, (std::vector<int>{0}));
}

TEST_F(SchedulerTest, RandomOnlyPicksFeasibleNodesAndGpus) {
  AddNode("a", 2, 500);  // too little CPU
  AddNode("b", 2);
  AddNode("c", 2);
  auto policy = MakePolicy("Random", &workload_);
  ASSERT_TRUE(policy.ok());
  Scheduler scheduler(cluster_, **policy, {}, 7);
  const PodRequest pod = cluster_.Resolve({"p", 1000, 1, 1, 100, {}, {}});
  std::set<std::pair<int, int>> seen;
  for (int i = 0; i < 200; ++i) {
    std::optional<Placement> p = scheduler.Select(pod);
    ASSERT_TRUE(p.has_value());
    ASSERT_NE(p->node, 0);
    seen.insert({p->node, p->gpus.at(0)});
  }
  EXPECT_EQ(seen.size(), 4u);  // both nodes, both GPUs: the draw is not stuck
}

TEST_F(SchedulerTest, RejectionIsRememberedUntilCapacityIsReleased) {
  AddNode("a", 1);
  auto policy = MakePolicy("FGD", &workload_);
  ASSERT_TRUE(policy.ok());
  Scheduler scheduler(cluster_, **policy, {}, 1);
  PodSpec spec{"p", 1000, 100, 1, 1000, {}, {}};
  const PodRequest whole = cluster_.Resolve(spec);
  Result<BindingId> bound = cluster_.Place(whole, *scheduler.Select(whole));
  ASSERT_TRUE(bound.ok());
  EXPECT_FALSE(scheduler.Select(whole).has_value());
  EXPECT_FALSE(scheduler.Select(whole).has_value());  // from the memo
  spec.memory_mib = 50;  // a smaller pod of the same shape is not covered by the memo
  EXPECT_FALSE(scheduler.Select(cluster_.Resolve(spec)).has_value());
  const PodRequest cpu_only = cluster_.Resolve({"c", 1000, 100, 0, 0, {}, {}});
  EXPECT_TRUE(scheduler.Select(cpu_only).has_value());  // other shapes are unaffected
  ASSERT_TRUE(cluster_.Remove(*bound).ok());
  EXPECT_EQ(scheduler.Select(whole)->gpus, (std::vector<int>{0}));
}

TEST_F(SchedulerTest, FirstFitTakesTheFirstRankThatFits) {
  AddNode("a", 1);
  AddNode("b", 2);
  auto policy = MakePolicy("FirstFit", &workload_);
  ASSERT_TRUE(policy.ok());
  Scheduler scheduler(cluster_, **policy, {0, 1}, 1);
  EXPECT_EQ(scheduler.Select(cluster_.Resolve({"p", 1, 1, 1, 1000, {}, {}}))->node, 0);
  EXPECT_EQ(scheduler.Select(cluster_.Resolve({"p", 1, 1, 2, 1000, {}, {}}))->node, 1);
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
