#include "autoscale/cluster.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::autoscale {
namespace {

NodeSpec GpuNode(std::string name, int gpus, std::string model = "T4", int64_t cpu = 64000) {
  NodeSpec n;
  n.name = std::move(name);
  n.cpu_milli = cpu;
  n.memory_mib = 262144;
  n.gpu_model = std::move(model);
  n.gpu_count = gpus;
  return n;
}

PodSpec Pod(int64_t cpu, int num_gpu, int gpu_milli, std::vector<std::string> models = {}) {
  PodSpec p;
  p.name = "p";
  p.cpu_milli = cpu;
  p.memory_mib = 1024;
  p.num_gpu = num_gpu;
  p.gpu_milli = gpu_milli;
  p.gpu_models = std::move(models);
  return p;
}

TEST(ClusterTest, AddNodeRejectsBadSpecs) {
  ClusterState c;
  ASSERT_TRUE(c.AddNode(GpuNode("a", 2)).ok());
  EXPECT_EQ(c.AddNode(GpuNode("a", 2)).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(c.AddNode(GpuNode("b", kMaxGpusPerNode + 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.AddNode(GpuNode("c", 2, "")).code(), StatusCode::kInvalidArgument);
  NodeSpec negative = GpuNode("d", 1);
  negative.cpu_milli = -1;
  EXPECT_EQ(c.AddNode(negative).code(), StatusCode::kInvalidArgument);
  NodeSpec bad_mig = GpuNode("e", 2);
  bad_mig.mig_enabled = {true};
  EXPECT_EQ(c.AddNode(bad_mig).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.node_count(), 1);
  EXPECT_EQ(c.total_gpu_milli(), 2000);
}

TEST(ClusterTest, ResolveClassifiesAndClamps) {
  ClusterState c;
  ASSERT_TRUE(c.AddNode(GpuNode("a", 2, "T4")).ok());
  ASSERT_TRUE(c.AddNode(GpuNode("b", 8, "G2")).ok());
  EXPECT_EQ(c.Resolve(Pod(1000, 0, 0)).pod_class, PodClass::kCpuOnly);
  EXPECT_EQ(c.Resolve(Pod(1000, 1, 500)).pod_class, PodClass::kSharing);
  EXPECT_EQ(c.Resolve(Pod(1000, 1, 1000)).pod_class, PodClass::kWholeGpu);
  EXPECT_EQ(c.Resolve(Pod(1000, 4, 1000)).pod_class, PodClass::kMultiGpu);
  const PodRequest clamped = c.Resolve(Pod(1000, 1, 1500));
  EXPECT_EQ(clamped.gpu_milli, 1000);
  EXPECT_EQ(clamped.pod_class, PodClass::kWholeGpu);
  const PodRequest zero = c.Resolve(Pod(1000, 1, 0));
  EXPECT_FALSE(zero.uses_gpu());
  EXPECT_EQ(zero.pod_class, PodClass::kCpuOnly);
  EXPECT_EQ(c.Resolve(Pod(1000, 1, 500, {"G2"})).models, ModelMask{1} << 1);
  EXPECT_EQ(c.Resolve(Pod(1000, 1, 500, {"T4", "G2"})).models, ModelMask{3});
  EXPECT_EQ(c.Resolve(Pod(1000, 1, 500, {"H100"})).models, ModelMask{0});
  EXPECT_EQ(c.Resolve(Pod(1000, 1, 500)).models, kAnyModel);
}

TEST(ClusterTest, FitsChecksEveryResource) {
  ClusterState c;
  ASSERT_TRUE(c.AddNode(GpuNode("a", 2, "T4", 8000)).ok());
  EXPECT_TRUE(c.Fits(0, c.Resolve(Pod(8000, 2, 1000))));
  EXPECT_FALSE(c.Fits(0, c.Resolve(Pod(8001, 0, 0))));                 // CPU
  EXPECT_FALSE(c.Fits(0, c.Resolve(Pod(1000, 4, 1000))));              // GPU count
  EXPECT_FALSE(c.Fits(0, c.Resolve(Pod(1000, 1, 500, {"V100M16"}))));  // model
  EXPECT_TRUE(c.Fits(0, c.Resolve(Pod(1000, 1, 500, {"V100M16", "T4"}))));
  PodSpec big_memory = Pod(1000, 0, 0);
  big_memory.memory_mib = 262145;
  EXPECT_FALSE(c.Fits(0, c.Resolve(big_memory)));
}

TEST(ClusterTest, PlaceAndRemoveAreIncrementalAndExact) {
  ClusterState c;
  ASSERT_TRUE(c.AddNode(GpuNode("a", 4)).ok());
  const PodRequest share = c.Resolve(Pod(4000, 1, 300));
  const uint64_t v0 = c.node(0).version;
  Result<BindingId> first = c.Place(share, {0, {2}});
  ASSERT_TRUE(first.ok());
  const NodeState& n = c.node(0);
  EXPECT_NE(n.version, v0);
  EXPECT_EQ(n.free_cpu, 60000);
  EXPECT_EQ(n.free_milli[2], 700);
  EXPECT_EQ(n.free_gpu_milli, 3700);
  EXPECT_EQ(n.fully_free_gpus, 3);
  EXPECT_EQ(n.tag_counts[0], 1);
  EXPECT_EQ(c.allocated_gpu_milli(), 300);

  const PodRequest pair = c.Resolve(Pod(4000, 2, 1000));
  EXPECT_EQ(c.BestGpus(0, pair), (std::vector<int>{0, 1}));
  // The tightest GPU that fits, lowest index on ties.
  EXPECT_EQ(c.BestGpus(0, share), (std::vector<int>{2}));
  ASSERT_TRUE(c.Place(pair, {0, {0, 1}}).ok());
  EXPECT_EQ(c.node(0).fully_free_gpus, 1);
  EXPECT_EQ(c.node(0).tag_counts[2], 1);
  EXPECT_FALSE(c.Fits(0, pair));

  ASSERT_TRUE(c.Remove(*first).ok());
  EXPECT_EQ(c.node(0).free_milli[2], 1000);
  EXPECT_EQ(c.node(0).fully_free_gpus, 2);
  EXPECT_EQ(c.node(0).tag_counts[0], 0);
  EXPECT_EQ(c.allocated_gpu_milli(), 2000);
  EXPECT_EQ(c.Remove(*first).code(), StatusCode::kNotFound);
  EXPECT_EQ(c.bound_pods(), 1);
}

TEST(ClusterTest, PlaceRejectsInvalidPlacements) {
  ClusterState c;
  ASSERT_TRUE(c.AddNode(GpuNode("a", 2)).ok());
  const PodRequest share = c.Resolve(Pod(1000, 1, 600));
  EXPECT_EQ(c.Place(share, {5, {0}}).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Place(share, {0, {}}).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Place(share, {0, {2}}).error().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(c.Place(share, {0, {0}}).ok());
  // GPU 0 has 400 left: a second 600 pod must not go there.
  EXPECT_EQ(c.Place(share, {0, {0}}).error().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(c.Place(share, {0, {1}}).ok());
  EXPECT_EQ(c.Place(share, {0, {1}}).error().code(), StatusCode::kFailedPrecondition);
  const PodRequest pair = c.Resolve(Pod(1000, 2, 100));
  EXPECT_EQ(c.Place(pair, {0, {0, 0}}).error().code(), StatusCode::kInvalidArgument);
}

TEST(ClusterTest, MigPodsUseMigSlicesOnly) {
  ClusterState c;
  NodeSpec node = GpuNode("a", 2, "A100");
  node.mig_enabled = {true, false};
  ASSERT_TRUE(c.AddNode(node).ok());
  EXPECT_EQ(c.total_gpu_milli(), 1000);  // the MIG GPU is not milli-shareable
  PodSpec mig = Pod(1000, 0, 0);
  mig.mig_profile = "3g.40gb";
  const PodRequest request = c.Resolve(mig);
  EXPECT_EQ(request.mig_slices, 3);
  EXPECT_EQ(c.BestGpus(0, request), (std::vector<int>{0}));
  ASSERT_TRUE(c.Place(request, {0, {0}}).ok());
  ASSERT_TRUE(c.Place(request, {0, {0}}).ok());
  EXPECT_EQ(c.node(0).free_mig_slices[0], 1);
  EXPECT_FALSE(c.Fits(0, request));
  EXPECT_EQ(c.Place(request, {0, {1}}).error().code(), StatusCode::kFailedPrecondition);
  // A whole-GPU pod cannot take the MIG GPU.
  const PodRequest whole = c.Resolve(Pod(1000, 2, 1000));
  EXPECT_FALSE(c.Fits(0, whole));
  EXPECT_NE(FindMigProfile("1g.10gb"), nullptr);
  EXPECT_EQ(FindMigProfile("9g.1tb"), nullptr);
}

TEST(ClusterTest, GpuTagSeparatesSharingFromWholeGpuCounts) {
  ClusterState c;
  ASSERT_TRUE(c.AddNode(GpuNode("a", 8)).ok());
  EXPECT_EQ(GpuTag(c.Resolve(Pod(1, 1, 500))), 0);
  EXPECT_EQ(GpuTag(c.Resolve(Pod(1, 1, 1000))), 1);
  EXPECT_EQ(GpuTag(c.Resolve(Pod(1, 8, 1000))), 8);
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
