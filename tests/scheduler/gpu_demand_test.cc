#include "scheduler/gpu_demand.h"

#include <gtest/gtest.h>

#include "scheduler/scheduler_test_util.h"

namespace gpu_autoscaler::scheduler {
namespace {

using testutil::json;
using testutil::Node;
using testutil::Pod;

TEST(GpuDemandTest, WholeGpus) {
  GpuDemand d = GpuDemandOf(*Pod({.name = "p", .requests = {{"nvidia.com/gpu", "2"}}}), 250);
  EXPECT_EQ(d.kind, GpuKind::kWhole);
  EXPECT_EQ(d.spec.num_gpu, 2);
  EXPECT_EQ(d.spec.gpu_milli, 1000);
  EXPECT_EQ(d.spec.cpu_milli, 1000);
  EXPECT_EQ(d.spec.memory_mib, 1024);
  EXPECT_TRUE(d.error.empty());
}

TEST(GpuDemandTest, SharedReplicaTakesOneReplicaUnlessComputeIsNamed) {
  GpuDemand d = GpuDemandOf(*Pod({.name = "p", .requests = {{"nvidia.com/gpu.shared", "1"}}}), 250);
  EXPECT_EQ(d.kind, GpuKind::kShared);
  EXPECT_EQ(d.spec.num_gpu, 1);
  EXPECT_EQ(d.spec.gpu_milli, 250);
  GpuDemand named = GpuDemandOf(*Pod({.name = "p",
                                      .requests = {{"nvidia.com/gpu.shared", "1"}},
                                      .annotations = {{"gpuautoscaler.io/gpu-compute", "40%"}}}),
                                250);
  EXPECT_EQ(named.spec.gpu_milli, 400);
  GpuDemand admitted = GpuDemandOf(*Pod({.name = "p",
                                         .requests = {{"nvidia.com/gpu.shared", "1"}},
                                         .annotations = {{"gpuautoscaler.io/replicas", "8"}}}),
                                   250);
  EXPECT_EQ(admitted.spec.gpu_milli, 125);
}

TEST(GpuDemandTest, MigProfile) {
  GpuDemand d =
      GpuDemandOf(*Pod({.name = "p", .requests = {{"nvidia.com/mig-3g.40gb", "1"}}}), 250);
  EXPECT_EQ(d.kind, GpuKind::kMig);
  EXPECT_EQ(d.mig_resource, "nvidia.com/mig-3g.40gb");
  EXPECT_EQ(d.mig_slices, 3);
  EXPECT_TRUE(d.error.empty());
  GpuDemand two =
      GpuDemandOf(*Pod({.name = "p", .requests = {{"nvidia.com/mig-1g.10gb", "2"}}}), 250);
  EXPECT_NE(two.error.find("one MIG instance per pod"), std::string::npos) << two.error;
  GpuDemand bad = GpuDemandOf(*Pod({.name = "p", .requests = {{"nvidia.com/mig-xl", "1"}}}), 250);
  EXPECT_NE(bad.error.find("unknown MIG profile"), std::string::npos) << bad.error;
}

TEST(GpuDemandTest, MixedGpuKindsAreRefused) {
  GpuDemand d = GpuDemandOf(
      *Pod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}, {"nvidia.com/mig-1g.10gb", "1"}}}),
      250);
  EXPECT_NE(d.error.find("mixes GPU resources"), std::string::npos);
}

TEST(GpuDemandTest, PinnedIndicesOnAPendingPod) {
  GpuDemand d = GpuDemandOf(*Pod({.name = "p",
                                  .requests = {{"nvidia.com/gpu", "2"}},
                                  .annotations = {{"gpuautoscaler.io/gpu-indices", "3,1"}}}),
                            250);
  EXPECT_EQ(d.pinned_gpus, (std::vector<int>{1, 3}));
  EXPECT_TRUE(d.error.empty());
  GpuDemand wrong = GpuDemandOf(*Pod({.name = "p",
                                      .requests = {{"nvidia.com/gpu", "2"}},
                                      .annotations = {{"gpuautoscaler.io/gpu-indices", "1"}}}),
                                250);
  EXPECT_NE(wrong.error.find("names 1 GPUs; the pod needs 2"), std::string::npos) << wrong.error;
  GpuDemand junk = GpuDemandOf(*Pod({.name = "p",
                                     .requests = {{"nvidia.com/gpu", "1"}},
                                     .annotations = {{"gpuautoscaler.io/gpu-indices", "a"}}}),
                               250);
  EXPECT_NE(junk.error.find("not a list of GPU indices"), std::string::npos) << junk.error;
  // On a bound pod the annotation is the assignment, not a request.
  GpuDemand bound = GpuDemandOf(*Pod({.name = "p",
                                      .requests = {{"nvidia.com/gpu", "1"}},
                                      .annotations = {{"gpuautoscaler.io/gpu-indices", "5"}},
                                      .node = "n"}),
                                250);
  EXPECT_TRUE(bound.pinned_gpus.empty());
}

TEST(GpuDemandTest, CpuOnlyPod) {
  GpuDemand d = GpuDemandOf(*Pod({.name = "p"}), 250);
  EXPECT_FALSE(d.wants_gpu());
}

json ProductAffinity(const json& terms) {
  return {
      {"affinity",
       {{"nodeAffinity",
         {{"requiredDuringSchedulingIgnoredDuringExecution", {{"nodeSelectorTerms", terms}}}}}}}};
}

json ProductIn(std::vector<std::string> products) {
  return {{"key", "nvidia.com/gpu.product"}, {"operator", "In"}, {"values", products}};
}

TEST(GpuDemandTest, GpuProductsFromNodeSelectorAndAffinity) {
  auto products = [](const json& spec) {
    return GpuDemandOf(
               *Pod({.name = "p", .requests = {{"nvidia.com/gpu", "1"}}, .spec_extra = spec}), 250)
        .spec.gpu_models;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(products(json::object()), V{});
  EXPECT_EQ(products({{"nodeSelector", {{"nvidia.com/gpu.product", "Tesla-T4"}}}}), V{"Tesla-T4"});
  EXPECT_EQ(products({{"nodeSelector", {{"kubernetes.io/arch", "amd64"}}}}), V{});
  // One term: its In values, sorted.
  EXPECT_EQ(products(ProductAffinity(
                {{{"matchExpressions", {ProductIn({"NVIDIA-H100-80GB-HBM3", "NVIDIA-A100"})}}}})),
            (V{"NVIDIA-A100", "NVIDIA-H100-80GB-HBM3"}));
  // Two terms, ORed: the union; two In's in one term, ANDed: the intersection.
  EXPECT_EQ(products(ProductAffinity(
                {{{"matchExpressions", {ProductIn({"A", "B"}), ProductIn({"B", "C"})}}},
                 {{"matchExpressions", {ProductIn({"D"})}}}})),
            (V{"B", "D"}));
  // A term that does not name the product lets any through.
  EXPECT_EQ(
      products(ProductAffinity(
          {{{"matchExpressions", {ProductIn({"A"})}}},
           {{"matchExpressions", {{{"key", "pool"}, {"operator", "In"}, {"values", {"gpu"}}}}}}})),
      V{});
  // NotIn does not narrow (the node predicates still apply it).
  EXPECT_EQ(products(ProductAffinity({{{"matchExpressions",
                                        {{{"key", "nvidia.com/gpu.product"},
                                          {"operator", "NotIn"},
                                          {"values", {"Tesla-T4"}}}}}}})),
            V{});
  // Selector and affinity together: both hold.
  json both = ProductAffinity({{{"matchExpressions", {ProductIn({"A", "B"})}}}});
  both["nodeSelector"] = {{"nvidia.com/gpu.product", "B"}};
  EXPECT_EQ(products(both), V{"B"});
}

TEST(NodeOfferTest, WholeGpuNodeWithIslands) {
  NodeOffer o = NodeOfferOf(*Node({.name = "n",
                                   .allocatable_extra = {{"nvidia.com/gpu", "8"}},
                                   .labels = {{"nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"},
                                              {"gpuautoscaler.io/nvlink-islands", "0-3_4-7"}}}));
  EXPECT_EQ(o.whole_gpus, 8);
  EXPECT_EQ(o.spec.gpu_count, 8);
  EXPECT_EQ(o.spec.cpu_milli, 64000);
  EXPECT_EQ(o.spec.memory_mib, 256 * 1024);
  EXPECT_EQ(o.spec.max_pods, 110);
  EXPECT_EQ(o.spec.gpu_model, "NVIDIA-H100-80GB-HBM3");
  EXPECT_EQ(o.spec.nvlink_group, (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_TRUE(o.topology_error.empty());
}

TEST(NodeOfferTest, TimeSlicedNode) {
  NodeOffer renamed = NodeOfferOf(*Node({.name = "n",
                                         .allocatable_extra = {{"nvidia.com/gpu.shared", "16"}},
                                         .labels = {{"nvidia.com/gpu.replicas", "4"}}}));
  EXPECT_EQ(renamed.shared_gpus, 4);
  EXPECT_EQ(renamed.shared_replicas, 4);
  EXPECT_EQ(renamed.whole_gpus, 0);
  // Without renameByDefault the replicas are advertised as nvidia.com/gpu.
  NodeOffer plain = NodeOfferOf(*Node({.name = "n",
                                       .allocatable_extra = {{"nvidia.com/gpu", "8"}},
                                       .labels = {{"nvidia.com/gpu.replicas", "4"}}}));
  EXPECT_EQ(plain.shared_gpus, 2);
  EXPECT_EQ(plain.whole_gpus, 0);
}

TEST(NodeOfferTest, MigNode) {
  NodeOffer o = NodeOfferOf(*Node({.name = "n",
                                   .allocatable_extra = {{"nvidia.com/gpu", "2"},
                                                         {"nvidia.com/mig-1g.10gb", "7"},
                                                         {"nvidia.com/mig-3g.40gb", "2"}}}));
  EXPECT_EQ(o.whole_gpus, 2);
  // 7 + 6 compute slices: two MIG GPUs after the two whole ones.
  EXPECT_EQ(o.spec.gpu_count, 4);
  EXPECT_EQ(o.spec.mig_enabled, (std::vector<bool>{false, false, true, true}));
  ASSERT_EQ(o.mig_instances.size(), 2u);
  EXPECT_EQ(o.mig_instances[0].first, "nvidia.com/mig-1g.10gb");
}

TEST(NodeOfferTest, MalformedIslandsAreReportedAndIgnored) {
  NodeOffer o = NodeOfferOf(*Node({.name = "n",
                                   .allocatable_extra = {{"nvidia.com/gpu", "4"}},
                                   .labels = {{"gpuautoscaler.io/nvlink-islands", "0-5"}}}));
  EXPECT_TRUE(o.spec.nvlink_group.empty());
  EXPECT_NE(o.topology_error.find("out of range"), std::string::npos) << o.topology_error;
}

TEST(NvlinkIslandsTest, Forms) {
  EXPECT_EQ(*ParseNvlinkIslands("0.2_1.3", 4), (std::vector<int>{0, 1, 0, 1}));
  EXPECT_EQ(*ParseNvlinkIslands("0-1", 4), (std::vector<int>{0, 0, 1, 2}));  // rest: singletons
  EXPECT_FALSE(ParseNvlinkIslands("0-1_1-2", 4).ok());
  EXPECT_FALSE(ParseNvlinkIslands("x", 4).ok());
  EXPECT_FALSE(ParseNvlinkIslands("3-1", 4).ok());
}

TEST(GpuIndicesTest, RoundTrip) {
  EXPECT_EQ(FormatGpuIndices(*ParseGpuIndices("2,0")), "0,2");
  EXPECT_FALSE(ParseGpuIndices("").ok());
  EXPECT_FALSE(ParseGpuIndices("1,1").ok());
  EXPECT_FALSE(ParseGpuIndices("16").ok());
  EXPECT_FALSE(ParseGpuIndices("1,").ok());
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
