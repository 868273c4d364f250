#include "scheduler/cluster_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "scheduler/scheduler_test_util.h"

namespace gpu_autoscaler::scheduler {
namespace {

using testutil::json;
using testutil::Node;
using testutil::Pod;

std::unique_ptr<ClusterCache> NewCache(std::string policy = "FragLookahead") {
  auto cache = ClusterCache::Create({.policy = policy});
  EXPECT_TRUE(cache.ok());
  return std::move(cache).value();
}

TEST(ClusterCacheTest, RejectsAnUnknownPolicy) {
  auto cache = ClusterCache::Create({.policy = "Nope"});
  ASSERT_FALSE(cache.ok());
}

TEST(ClusterCacheTest, TimeSlicedQuarterPodsFillGpusBeforeOpeningNewOnes) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "ts",
                          .allocatable_extra = {{"nvidia.com/gpu.shared", "32"}},
                          .labels = {{"nvidia.com/gpu.replicas", "4"}}}));
  std::set<int> gpus;
  for (int i = 0; i < 8; ++i) {
    auto pod = Pod({.name = "q" + std::to_string(i), .requests = {{"nvidia.com/gpu.shared", "1"}}});
    Result<PlacementChoice> c = cache->Select(*pod, true);
    ASSERT_TRUE(c.ok()) << c.error().message();
    ASSERT_EQ(c->gpus.size(), 1u);
    gpus.insert(c->gpus[0]);
    ASSERT_TRUE(cache->Assume(*pod, *c).ok());
  }
  // 8 pods of a quarter GPU each: 2 GPUs, not 8.
  EXPECT_EQ(gpus.size(), 2u);
}

TEST(ClusterCacheTest, FilterNamesEveryRejectionAndUnknownNodes) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "8"}}}));
  cache->UpsertNode(Node({.name = "b", .allocatable_extra = {{"nvidia.com/gpu", "2"}}}));
  cache->UpsertNode(Node({.name = "cpu"}));
  auto pod = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "4"}}});
  std::vector<std::string_view> names = {"a", "b", "cpu", "ghost"};
  FilterOutcome out = cache->Filter(*pod, names, false);
  EXPECT_EQ(out.feasible, (std::vector<std::string_view>{"a"}));
  ASSERT_EQ(out.failed.size(), 3u);
  EXPECT_EQ(out.failed[0].first, "b");
  EXPECT_EQ(out.failed[0].second, "Insufficient nvidia.com/gpu");
  EXPECT_EQ(out.failed[2].first, "ghost");
  EXPECT_NE(out.failed[2].second.find("not in gpu-autoscaler's cache"), std::string::npos);
}

TEST(ClusterCacheTest, PrioritizeGivesTheBestCandidateTen) {
  auto cache = NewCache("BestFit");
  cache->UpsertNode(Node({.name = "empty", .allocatable_extra = {{"nvidia.com/gpu", "8"}}}));
  cache->UpsertNode(Node({.name = "busy", .allocatable_extra = {{"nvidia.com/gpu", "8"}}}));
  for (int i = 0; i < 6; ++i) {
    cache->UpsertPod(Pod({.name = "b" + std::to_string(i),
                          .requests = {{"nvidia.com/gpu", "1"}},
                          .node = "busy",
                          .phase = "Running"}));
  }
  auto pod = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}});
  std::vector<std::string_view> names = {"empty", "busy", "ghost"};
  std::vector<int> scores = cache->Prioritize(*pod, names);
  ASSERT_EQ(scores.size(), 3u);
  EXPECT_EQ(scores[1], 10);  // best fit: the fuller node
  EXPECT_EQ(scores[0], 1);
  EXPECT_EQ(scores[2], 0);
  for (int s : scores) {
    EXPECT_GE(s, 0);
    EXPECT_LE(s, 10);
  }
}

TEST(ClusterCacheTest, PrioritizeGivesTenOnlyToTheNodeSelectPicks) {
  // Four identical empty nodes: FragLookahead scores them alike, and standalone
  // takes the first in its order. kube-scheduler, which picks at random among
  // equal totals, must see that node ahead of the others, whatever order it
  // sends them in.
  auto cache = NewCache();
  for (const char* name : {"d", "b", "a", "c"}) {
    cache->UpsertNode(Node({.name = name, .allocatable_extra = {{"nvidia.com/gpu", "8"}}}));
  }
  auto pod = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}});
  Result<PlacementChoice> choice = cache->Select(*pod, true);
  ASSERT_TRUE(choice.ok()) << choice.error().message();
  for (std::vector<std::string_view> asked : {std::vector<std::string_view>{"a", "b", "c", "d"},
                                              std::vector<std::string_view>{"d", "c", "b", "a"},
                                              std::vector<std::string_view>{"c", "a", "d", "b"}}) {
    const std::vector<int> scores = cache->Prioritize(*pod, asked);
    ASSERT_EQ(scores.size(), 4u);
    for (size_t i = 0; i < asked.size(); ++i) {
      EXPECT_EQ(scores[i], asked[i] == choice->node ? 10 : 9) << asked[i];
    }
  }
  // After Filter (the memo path) the answer is the same.
  std::vector<std::string_view> all = {"b", "d", "a", "c"};
  FilterOutcome kept = cache->Filter(*pod, all, false);
  ASSERT_EQ(kept.feasible.size(), 4u);
  const std::vector<int> scores = cache->Prioritize(*pod, all);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(scores[i], all[i] == choice->node ? 10 : 9) << all[i];
  }
  // Without Select's node, the next one in its order gets 10.
  std::vector<std::string_view> rest;
  for (std::string_view name : all) {
    if (name != choice->node) rest.push_back(name);
  }
  const std::vector<int> rest_scores = cache->Prioritize(*pod, rest);
  EXPECT_EQ(std::count(rest_scores.begin(), rest_scores.end(), 10), 1);
  EXPECT_EQ(std::count(rest_scores.begin(), rest_scores.end(), 9), 2);
}

TEST(ClusterCacheTest, PrioritizeAfterFilterScoresAsPrioritizeAlone) {
  auto fill = [](ClusterCache& cache) {
    for (int n = 0; n < 6; ++n) {
      const std::string name = "n" + std::to_string(n);
      cache.UpsertNode(Node({.name = name, .allocatable_extra = {{"nvidia.com/gpu", "8"}}}));
      for (int p = 0; p < n; ++p) {
        cache.UpsertPod(Pod({.name = name + "-p" + std::to_string(p),
                             .requests = {{"nvidia.com/gpu", "1"}},
                             .node = name,
                             .phase = "Running"}));
      }
    }
  };
  auto with_memo = NewCache("BestFit");
  auto without = NewCache("BestFit");
  fill(*with_memo);
  fill(*without);
  auto pod = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "2"}}});
  std::vector<std::string_view> all = {"n0", "n1", "n2", "n3", "n4", "n5"};
  FilterOutcome kept = with_memo->Filter(*pod, all, false);
  ASSERT_EQ(kept.feasible.size(), 6u);
  // In Filter's order, a subset, and out of order: all as if computed afresh.
  for (std::vector<std::string_view> asked : {all, std::vector<std::string_view>{"n1", "n4"},
                                              std::vector<std::string_view>{"n5", "n0", "ghost"}}) {
    EXPECT_EQ(with_memo->Prioritize(*pod, asked), without->Prioritize(*pod, asked));
  }
  // A change between the calls invalidates what Filter saw.
  with_memo->Filter(*pod, all, false);
  with_memo->UpsertPod(Pod(
      {.name = "late", .requests = {{"nvidia.com/gpu", "8"}}, .node = "n0", .phase = "Running"}));
  without->UpsertPod(Pod(
      {.name = "late", .requests = {{"nvidia.com/gpu", "8"}}, .node = "n0", .phase = "Running"}));
  EXPECT_EQ(with_memo->Prioritize(*pod, all), without->Prioritize(*pod, all));
  EXPECT_EQ(with_memo->Prioritize(*pod, all)[0], 0);  // n0 is full now
}

TEST(ClusterCacheTest, BoundPodsKeepTheirAnnotatedGpus) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "n", .allocatable_extra = {{"nvidia.com/gpu", "4"}}}));
  cache->UpsertPod(Pod({.name = "x",
                        .requests = {{"nvidia.com/gpu", "2"}},
                        .annotations = {{"gpuautoscaler.io/gpu-indices", "1,2"}},
                        .node = "n",
                        .phase = "Running"}));
  auto pod = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "2"}}});
  Result<PlacementChoice> c = cache->Select(*pod, true);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->gpus, (std::vector<int>{0, 3}));
}

TEST(ClusterCacheTest, PinnedGpuThatIsBusyGivesAClearReason) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "n", .allocatable_extra = {{"nvidia.com/gpu", "4"}}}));
  cache->UpsertPod(Pod({.name = "x",
                        .requests = {{"nvidia.com/gpu", "1"}},
                        .annotations = {{"gpuautoscaler.io/gpu-indices", "3"}},
                        .node = "n",
                        .phase = "Running"}));
  auto pinned = Pod({.name = "p",
                     .requests = {{"nvidia.com/gpu", "1"}},
                     .annotations = {{"gpuautoscaler.io/gpu-indices", "3"}}});
  Result<PlacementChoice> c = cache->Select(*pinned, true);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(),
            "0/1 nodes are available: 1 GPU(s) named by gpuautoscaler.io/gpu-indices are busy.");
  auto free_pin = Pod({.name = "q",
                       .requests = {{"nvidia.com/gpu", "1"}},
                       .annotations = {{"gpuautoscaler.io/gpu-indices", "2"}}});
  Result<PlacementChoice> ok = cache->Select(*free_pin, true);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->gpus, (std::vector<int>{2}));
}

TEST(ClusterCacheTest, MigProfileNoNodeHas) {
  auto cache = NewCache();
  cache->UpsertNode(Node(
      {.name = "m",
       .allocatable_extra = {{"nvidia.com/mig-1g.10gb", "7"}, {"nvidia.com/mig-3g.40gb", "2"}}}));
  auto pod = Pod({.name = "p", .requests = {{"nvidia.com/mig-7g.80gb", "1"}}});
  Result<PlacementChoice> c = cache->Select(*pod, true);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(),
            "no node offers nvidia.com/mig-7g.80gb (MIG profiles in the cluster: 1g.10gb, "
            "3g.40gb)");
  // Counted per profile: two 3g instances, the third pod does not fit.
  for (int i = 0; i < 2; ++i) {
    auto mig =
        Pod({.name = "m" + std::to_string(i), .requests = {{"nvidia.com/mig-3g.40gb", "1"}}});
    Result<PlacementChoice> placed = cache->Select(*mig, true);
    ASSERT_TRUE(placed.ok()) << placed.error().message();
    ASSERT_TRUE(cache->Assume(*mig, *placed).ok());
  }
  auto third = Pod({.name = "m2", .requests = {{"nvidia.com/mig-3g.40gb", "1"}}});
  Result<PlacementChoice> full = cache->Select(*third, true);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().message(),
            "0/1 nodes are available: 1 Insufficient nvidia.com/mig-3g.40gb.");
}

TEST(ClusterCacheTest, MultiGpuPodsStayInOneNvlinkIsland) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "n",
                          .allocatable_extra = {{"nvidia.com/gpu", "8"}},
                          .labels = {{"gpuautoscaler.io/nvlink-islands", "0.2.4.6_1.3.5.7"}}}));
  // GPU 0 is busy: island {0,2,4,6} has 3 free, island {1,3,5,7} has 4.
  cache->UpsertPod(Pod({.name = "x",
                        .requests = {{"nvidia.com/gpu", "1"}},
                        .annotations = {{"gpuautoscaler.io/gpu-indices", "0"}},
                        .node = "n",
                        .phase = "Running"}));
  auto three = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "3"}}});
  Result<PlacementChoice> c = cache->Select(*three, true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->gpus, (std::vector<int>{2, 4, 6}));  // best fit: the island with 3 free
  EXPECT_TRUE(c->nvlink_island);
  ASSERT_TRUE(cache->Assume(*three, *c).ok());
  auto four = Pod({.name = "q", .requests = {{"nvidia.com/gpu", "4"}}});
  Result<PlacementChoice> d = cache->Select(*four, true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->gpus, (std::vector<int>{1, 3, 5, 7}));
}

TEST(ClusterCacheTest, AssumeForgetAndConfirm) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "n", .allocatable_extra = {{"nvidia.com/gpu", "1"}}}));
  auto pod = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}});
  auto other = Pod({.name = "o", .requests = {{"nvidia.com/gpu", "1"}}});
  Result<PlacementChoice> c = cache->Select(*pod, true);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(cache->Assume(*pod, *c).ok());
  EXPECT_EQ(cache->Assume(*pod, *c).code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(cache->Select(*other, true).ok());  // the assumed pod holds the GPU
  cache->Forget("default", "p");
  EXPECT_TRUE(cache->Select(*other, true).ok());
  // Assume again, then the informer confirms it bound: Forget no longer drops it.
  ASSERT_TRUE(cache->Assume(*pod, *c).ok());
  cache->UpsertPod(Pod({.name = "p",
                        .requests = {{"nvidia.com/gpu", "1"}},
                        .annotations = {{"gpuautoscaler.io/gpu-indices", "0"}},
                        .node = "n",
                        .phase = "Running"}));
  cache->Forget("default", "p");
  EXPECT_FALSE(cache->Select(*other, true).ok());
  // The pod finishes: its GPU is free again.
  cache->UpsertPod(
      Pod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}, .node = "n", .phase = "Succeeded"}));
  EXPECT_TRUE(cache->Select(*other, true).ok());
  EXPECT_EQ(cache->stats().pods, 0);
}

TEST(ClusterCacheTest, DeletedNodeTakesNothingAndDropsItsAssumedPods) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}}));
  cache->UpsertNode(Node({.name = "b", .allocatable_extra = {{"nvidia.com/gpu", "1"}}}));
  auto pod = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(cache->Assume(*pod, {.node = "a", .gpus = {0}, .kind = GpuKind::kWhole}).ok());
  cache->DeleteNode("a");
  EXPECT_FALSE(cache->HasNode("a"));
  EXPECT_EQ(cache->stats().assumed, 0);
  auto next = Pod({.name = "q", .requests = {{"nvidia.com/gpu", "1"}}});
  Result<PlacementChoice> c = cache->Select(*next, true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->node, "b");
  EXPECT_FALSE(cache->PlanOn(*next, "a").ok());
}

TEST(ClusterCacheTest, HeartbeatsDoNotRebuild) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}}));
  auto pod = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(cache->Select(*pod, true).ok());
  const int64_t rebuilds = cache->stats().rebuilds;
  cache->UpsertNode(Node({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "1"}}}));
  ASSERT_TRUE(cache->Select(*pod, true).ok());
  EXPECT_EQ(cache->stats().rebuilds, rebuilds);
  cache->UpsertNode(Node({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "2"}}}));
  ASSERT_TRUE(cache->Select(*pod, true).ok());
  EXPECT_EQ(cache->stats().rebuilds, rebuilds + 1);
}

TEST(ClusterCacheTest, RelearnsTheTargetWorkloadAsPodsArrive) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "a", .allocatable_extra = {{"nvidia.com/gpu", "8"}}}));
  auto probe = Pod({.name = "probe", .requests = {{"nvidia.com/gpu", "1"}}});
  ASSERT_TRUE(cache->Select(*probe, true).ok());
  const int64_t rebuilds = cache->stats().rebuilds;
  for (int i = 0; i < 7; ++i) {
    cache->UpsertPod(Pod({.name = "b" + std::to_string(i),
                          .requests = {{"nvidia.com/gpu", "1"}},
                          .node = "a",
                          .phase = "Running"}));
  }
  ASSERT_TRUE(cache->Select(*probe, true).ok());
  EXPECT_EQ(cache->stats().rebuilds, rebuilds);  // 7 pods: not yet
  cache->UpsertPod(
      Pod({.name = "b7", .requests = {{"nvidia.com/gpu", "1"}}, .node = "a", .phase = "Running"}));
  EXPECT_FALSE(cache->Select(*probe, true).ok());  // full: 8 of 8 GPUs
  EXPECT_EQ(cache->stats().rebuilds, rebuilds + 1);
  EXPECT_EQ(cache->stats().pods, 8);
  EXPECT_EQ(cache->stats().unplaceable, 0);
}

// FragLookahead's part 6 (CPU stranded by memory) needs the CPU-only pods'
// shapes. Node "b" has 4 GiB per core; the cluster's CPU-only pods ask 8
// (4 cores, 32 GiB): b's free 16 cores / 80 GiB feed two of them and strand
// 8 cores. A GPU pod asking 4 cores and 1 GiB leaves 12 / 79: still two, and
// 4 cores stranded. On "a" (256 GiB) nothing is stranded either way. So with
// the CPU-only shapes learnt the pod goes to b; without them a and b tie and
// the lower index, a, wins. The pods run on "c", whose GPU is taken: the
// workload's CPU per GPU is ρ = 12·13/96 ≈ 1.6 times the cluster's.
std::string GpuPodNodeWithCpuOnlyPods(const json& cpu_only_metadata, std::string ns,
                                      CacheStats* stats) {
  auto cache = NewCache();
  cache->UpsertNode(Node(
      {.name = "a", .cpu = 16, .memory_gi = 256, .allocatable_extra = {{"nvidia.com/gpu", "1"}}}));
  cache->UpsertNode(Node(
      {.name = "b", .cpu = 16, .memory_gi = 80, .allocatable_extra = {{"nvidia.com/gpu", "1"}}}));
  cache->UpsertNode(Node(
      {.name = "c", .cpu = 64, .memory_gi = 512, .allocatable_extra = {{"nvidia.com/gpu", "1"}}}));
  cache->UpsertPod(Pod({.name = "trainer",
                        .requests = {{"cpu", "4"}, {"nvidia.com/gpu", "1"}},
                        .node = "c",
                        .phase = "Running"}));
  for (int i = 0; i < 12; ++i) {
    cache->UpsertPod(Pod({.name = "web-" + std::to_string(i),
                          .ns = ns,
                          .requests = {{"cpu", "4"}, {"memory", "32Gi"}},
                          .node = "c",
                          .phase = "Running",
                          .metadata_extra = cpu_only_metadata}));
  }
  auto pod = Pod({.name = "p", .requests = {{"cpu", "4"}, {"nvidia.com/gpu", "1"}}});
  Result<PlacementChoice> choice = cache->Select(*pod, true);
  EXPECT_TRUE(choice.ok()) << choice.error().message();
  *stats = cache->stats();
  EXPECT_EQ(stats->unplaceable, 0);
  return choice.ok() ? choice->node : "";
}

TEST(ClusterCacheTest, LearnsCpuOnlyWorkloadShapesAndKeepsCpuAndMemoryInProportion) {
  CacheStats stats;
  const json deployment = {{"ownerReferences",
                            {{{"apiVersion", "apps/v1"},
                              {"kind", "ReplicaSet"},
                              {"name", "web-7f9c"},
                              {"uid", "rs"},
                              {"controller", true}}}}};
  EXPECT_EQ(GpuPodNodeWithCpuOnlyPods(deployment, "default", &stats), "b");
  EXPECT_EQ(stats.gpu_shapes, 1);
  EXPECT_EQ(stats.cpu_only_shapes, 1);
}

TEST(ClusterCacheTest, DaemonSetStaticAndKubeSystemPodsAreNotTheWorkload) {
  CacheStats stats;
  const json daemonset = {{"ownerReferences",
                           {{{"apiVersion", "apps/v1"},
                             {"kind", "DaemonSet"},
                             {"name", "agent"},
                             {"uid", "ds"},
                             {"controller", true}}}}};
  EXPECT_EQ(GpuPodNodeWithCpuOnlyPods(daemonset, "default", &stats), "a");
  EXPECT_EQ(stats.cpu_only_shapes, 0);
  const json mirror = {{"annotations", {{"kubernetes.io/config.mirror", "abc"}}}};
  EXPECT_EQ(GpuPodNodeWithCpuOnlyPods(mirror, "default", &stats), "a");
  EXPECT_EQ(stats.cpu_only_shapes, 0);
  EXPECT_EQ(GpuPodNodeWithCpuOnlyPods(json::object(), "kube-system", &stats), "a");
  EXPECT_EQ(stats.cpu_only_shapes, 0);
  EXPECT_EQ(stats.gpu_shapes, 1);
}

// FragLookahead's part 2 (model scarcity) needs the pods' GPU model
// constraints: half the cluster's GPU pods can only run on "Scarce" nodes, so
// an unconstrained pod should leave those to them. Scarce pressure is
// ½·1000·8000/4000 + ½·1000 = 1500 against 500 on Plenty: the Scarce nodes
// cost 1000 milli-GPU more per GPU placed. Without the constraint learnt
// every node ties and the lowest index, a1, wins.
TEST(ClusterCacheTest, UnconstrainedPodsLeaveScarceModelsToPodsThatNeedThem) {
  auto cache = NewCache();
  for (const char* name : {"a1", "a2", "b1", "b2"}) {
    const bool scarce = name[0] == 'a';
    cache->UpsertNode(Node({.name = name,
                            .allocatable_extra = {{"nvidia.com/gpu", "2"}},
                            .labels = {{"nvidia.com/gpu.product", scarce ? "Scarce" : "Plenty"}}}));
  }
  cache->UpsertPod(Pod({.name = "needs-scarce",
                        .requests = {{"nvidia.com/gpu", "1"}},
                        .node = "a1",
                        .spec_extra = {{"nodeSelector", {{"nvidia.com/gpu.product", "Scarce"}}}},
                        .phase = "Running"}));
  cache->UpsertPod(Pod(
      {.name = "any", .requests = {{"nvidia.com/gpu", "1"}}, .node = "b1", .phase = "Running"}));
  auto free_pod = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}});
  Result<PlacementChoice> choice = cache->Select(*free_pod, true);
  ASSERT_TRUE(choice.ok()) << choice.error().message();
  EXPECT_EQ(choice->node, "b1");
  EXPECT_EQ(cache->stats().gpu_shapes, 2);
  // A pod held to Scarce still goes there.
  auto held = Pod({.name = "q",
                   .requests = {{"nvidia.com/gpu", "1"}},
                   .spec_extra = {{"nodeSelector", {{"nvidia.com/gpu.product", "Scarce"}}}}});
  choice = cache->Select(*held, true);
  ASSERT_TRUE(choice.ok()) << choice.error().message();
  EXPECT_EQ(choice->node, "a1");
}

TEST(ClusterCacheTest, StandaloneAppliesNodePredicates) {
  auto cache = NewCache();
  cache->UpsertNode(
      Node({.name = "tainted",
            .allocatable_extra = {{"nvidia.com/gpu", "8"}},
            .taints = {{{"key", "gpu"}, {"value", "reserved"}, {"effect", "NoSchedule"}}}}));
  cache->UpsertNode(Node(
      {.name = "cordoned", .allocatable_extra = {{"nvidia.com/gpu", "8"}}, .unschedulable = true}));
  cache->UpsertNode(Node({.name = "h100",
                          .allocatable_extra = {{"nvidia.com/gpu", "8"}},
                          .labels = {{"nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"}}}));
  auto a100 = Pod(
      {.name = "p",
       .requests = {{"nvidia.com/gpu", "1"}},
       .spec_extra = {{"nodeSelector", {{"nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"}}}}});
  Result<PlacementChoice> c = cache->Select(*a100, true);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(),
            "0/3 nodes are available: 1 node(s) didn't match node selector, 1 node(s) had taint "
            "{gpu: reserved}, that the pod didn't tolerate, 1 node(s) were unschedulable.");
  auto tolerant = Pod({.name = "t",
                       .requests = {{"nvidia.com/gpu", "1"}},
                       .spec_extra = {{"tolerations", {{{"key", "gpu"}, {"operator", "Exists"}}}},
                                      {"affinity",
                                       {{"nodeAffinity",
                                         {{"requiredDuringSchedulingIgnoredDuringExecution",
                                           {{"nodeSelectorTerms",
                                             {{{"matchExpressions",
                                                {{{"key", "nvidia.com/gpu.product"},
                                                  {"operator", "DoesNotExist"}}}}}}}}}}}}}}});
  Result<PlacementChoice> t = cache->Select(*tolerant, true);
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->node, "tainted");
  EXPECT_NE(t->rejected.find("node(s) didn't match node selector"), std::string::npos);
}

TEST(ClusterCacheTest, FragmentationRatioIsAShare) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "n", .allocatable_extra = {{"nvidia.com/gpu", "2"}}}));
  EXPECT_DOUBLE_EQ(cache->FragmentationRatio(), 0.0);
  auto pod = Pod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}});
  Result<PlacementChoice> c = cache->Select(*pod, true);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(cache->Assume(*pod, *c).ok());
  const double r = cache->FragmentationRatio();
  EXPECT_GE(r, 0.0);
  EXPECT_LE(r, 1.0);
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
