#include "controllers/node_pool_selection.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/object_codec.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

kube::PodView Pod(const json& requests, const json& node_selector = json::object(),
                  const json& affinity_terms = nullptr) {
  json spec = {{"nodeSelector", node_selector},
               {"containers", {{{"name", "main"}, {"resources", {{"requests", requests}}}}}}};
  if (!affinity_terms.is_null()) {
    spec["affinity"] = {{"nodeAffinity",
                         {{"requiredDuringSchedulingIgnoredDuringExecution",
                           {{"nodeSelectorTerms", affinity_terms}}}}}};
  }
  auto decoded = kube::DecodePod(
      json{{"metadata", {{"name", "p"}, {"namespace", "ml"}}}, {"spec", spec}}.dump());
  EXPECT_TRUE(decoded.ok()) << decoded.error().ToString();
  return std::move(*decoded);
}

json Type(const std::string& name, const std::string& model, int gpus, const std::string& cpu,
          const std::string& memory) {
  return {{"name", name},
          {"gpuModel", model},
          {"gpuCount", gpus},
          {"cpu", cpu},
          {"memory", memory},
          {"price", {{"onDemand", 1.0}}},
          {"groups", {{"onDemand", name + "-od"}}}};
}

ParsedNodePool Pool(const std::string& name, json types, std::optional<int> weight = {}) {
  json spec = {{"provider", {{"type", "simulated"}, {"groups", {{"onDemand", name}}}}},
               {"instanceTypes", std::move(types)}};
  if (weight) spec["weight"] = *weight;
  ParsedNodePool p = ParseNodePool(json{{"metadata", {{"name", name}}}, {"spec", spec}});
  EXPECT_TRUE(p.problems.empty()) << p.problems[0];
  return p;
}

class PoolSelectionTest : public ::testing::Test {
 protected:
  // a100: 8 x A100-40GB (96 CPU) and 1 x A10G (4 CPU); t4: 1 x T4 (4 CPU);
  // h100: 8 x H100 80GB (192 CPU), weight 50.
  ParsedNodePool a100 = Pool("a100", {Type("p4d.24xlarge", "A100-SXM4-40GB", 8, "96", "1152Gi"),
                                      Type("g5.xlarge", "A10G", 1, "4", "16Gi")});
  ParsedNodePool t4 = Pool("t4", {Type("g4dn.xlarge", "Tesla-T4", 1, "4", "16Gi")});
  ParsedNodePool h100 =
      Pool("h100", {Type("p5.48xlarge", "NVIDIA-H100-80GB-HBM3", 8, "192", "2048Gi")}, 50);
  NamedPools unweighted = {{"a100", &a100}, {"t4", &t4}};
  NamedPools all = {{"a100", &a100}, {"h100", &h100}, {"t4", &t4}};
};

TEST_F(PoolSelectionTest, NamesBreakTiesAndWeightWins) {
  const kube::PodView one = Pod({{"nvidia.com/gpu", "1"}});
  EXPECT_EQ(ChoosePoolForPod(one, unweighted), (PoolChoice{"a100", ""}));
  EXPECT_EQ(ChoosePoolForPod(one, all), (PoolChoice{"h100", ""}));  // weight 50 > 0
  // The pools' order in the list does not matter.
  EXPECT_EQ(PoolForPod(one, {{"t4", &t4}, {"a100", &a100}}), "a100");
}

TEST_F(PoolSelectionTest, WholeGpusMustFitOneInstanceType) {
  const kube::PodView eight = Pod({{"nvidia.com/gpu", "8"}});
  EXPECT_EQ(PoolForPod(eight, unweighted), "a100");  // p4d has 8; T4 and A10G have 1
  EXPECT_EQ(ServingInstanceTypes(eight, "a100", a100), std::vector<int>{0});
  EXPECT_EQ(ServingInstanceTypes(Pod({{"nvidia.com/gpu", "1"}}), "a100", a100),
            (std::vector<int>{0, 1}));
  EXPECT_EQ(ChoosePoolForPod(eight, {{"t4", &t4}}),
            (PoolChoice{"",
                        "no GPUNodePool has an instance type for 8 nvidia.com/gpu (1 pools "
                        "considered)"}));
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/gpu", "16"}}), all), "");
}

TEST_F(PoolSelectionTest, CpuAndMemoryMustFit) {
  // 8 CPUs: neither the A10G nor the T4 node (4 CPUs) holds the pod.
  const kube::PodView big_cpu = Pod({{"nvidia.com/gpu", "1"}, {"cpu", "8"}});
  EXPECT_EQ(ServingInstanceTypes(big_cpu, "a100", a100), std::vector<int>{0});
  EXPECT_EQ(PoolForPod(big_cpu, {{"t4", &t4}}), "");
  EXPECT_EQ(ChoosePoolForPod(Pod({{"nvidia.com/gpu", "1"}, {"cpu", "8"}, {"memory", "32Gi"}}),
                             {{"t4", &t4}})
                .reason,
            "no GPUNodePool has an instance type for 1 nvidia.com/gpu with 8000m CPU and 32768Mi "
            "memory (1 pools considered)");
}

TEST_F(PoolSelectionTest, MigProfileNeedsAModelThatHasIt) {
  // 3g.20gb exists on the A100 40GB only, 3g.40gb on the H100 80GB only,
  // 1g.10gb on both; the T4 and A10G have no MIG.
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/mig-3g.20gb", "1"}}), all), "a100");
  EXPECT_EQ(ServingInstanceTypes(Pod({{"nvidia.com/mig-3g.20gb", "1"}}), "a100", a100),
            std::vector<int>{0});
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/mig-3g.40gb", "1"}}), unweighted), "");
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/mig-3g.40gb", "1"}}), all), "h100");
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/mig-1g.10gb", "1"}}), all), "h100");
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/mig-1g.10gb", "1"}}), unweighted), "a100");
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/mig-1g.10gb", "1"}}), {{"t4", &t4}}), "");
  EXPECT_EQ(ChoosePoolForPod(Pod({{"nvidia.com/mig-2g.20gb", "1"}}), unweighted).reason,
            "no GPUNodePool has an instance type for 1 nvidia.com/mig-2g.20gb (2 pools "
            "considered)");
}

TEST_F(PoolSelectionTest, SharedReplicaFitsAnyGpu) {
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/gpu.shared", "1"}}), all), "h100");
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/gpu.shared", "1"}}), {{"t4", &t4}}), "t4");
}

TEST_F(PoolSelectionTest, NodeSelectorNamesThePoolOrItsModel) {
  const json gpu = {{"nvidia.com/gpu", "1"}};
  EXPECT_EQ(PoolForPod(Pod(gpu, {{"nvidia.com/gpu.product", "Tesla-T4"}}), all), "t4");
  EXPECT_EQ(PoolForPod(Pod(gpu, {{"gpuautoscaler.io/node-pool", "t4"}}), all), "t4");
  // A model the named pool does not have, or a pool too small: nothing.
  EXPECT_EQ(PoolForPod(Pod(gpu, {{"gpuautoscaler.io/node-pool", "t4"},
                                 {"nvidia.com/gpu.product", "A10G"}}),
                       all),
            "");
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/gpu", "8"}}, {{"gpuautoscaler.io/node-pool", "t4"}}), all),
            "");
  EXPECT_EQ(PoolForPod(Pod(gpu, {{"nvidia.com/gpu.product", "H200"}}), all), "");
  // Other labels are left to the scheduler once the node exists.
  EXPECT_EQ(PoolForPod(Pod(gpu, {{"topology.kubernetes.io/zone", "us-east-1a"}}), unweighted),
            "a100");
}

TEST_F(PoolSelectionTest, RequiredNodeAffinityOnTheModel) {
  const json gpu = {{"nvidia.com/gpu", "1"}};
  auto term = [](std::string key, std::string op, std::vector<std::string> values) {
    json expr = {{"key", key}, {"operator", op}, {"values", values}};
    return json{{"matchExpressions", json::array({expr})}};
  };
  auto with = [&](std::vector<json> terms) { return Pod(gpu, json::object(), json(terms)); };
  // In: only the T4 pool.
  EXPECT_EQ(PoolForPod(with({term("nvidia.com/gpu.product", "In", {"Tesla-T4"})}), all), "t4");
  // NotIn A100 and A10G: t4 and h100 remain; h100 by weight.
  EXPECT_EQ(
      PoolForPod(with({term("nvidia.com/gpu.product", "NotIn", {"A100-SXM4-40GB", "A10G"})}), all),
      "h100");
  // Terms are ORed: T4 or A10G, unweighted -> a100 (its A10G) by name.
  EXPECT_EQ(PoolForPod(with({term("nvidia.com/gpu.product", "In", {"Tesla-T4"}),
                             term("nvidia.com/gpu.product", "In", {"A10G"})}),
                       unweighted),
            "a100");
  // The pool label through affinity.
  EXPECT_EQ(PoolForPod(with({term("gpuautoscaler.io/node-pool", "In", {"t4", "nowhere"})}), all),
            "t4");
  // A zone requirement alone does not rule a pool out.
  EXPECT_EQ(
      PoolForPod(with({term("topology.kubernetes.io/zone", "In", {"us-east-1a"})}), unweighted),
      "a100");
  // No model passes: reported.
  EXPECT_EQ(ChoosePoolForPod(with({term("nvidia.com/gpu.product", "In", {"H200"})}), all).reason,
            "no GPUNodePool has an instance type for 1 nvidia.com/gpu that its node selector and "
            "affinity allow (3 pools considered)");
}

TEST_F(PoolSelectionTest, NoGpuOrBadRequestPicksNothing) {
  EXPECT_EQ(ChoosePoolForPod(Pod({{"cpu", "1"}}), all).pool, "");
  EXPECT_EQ(PoolForPod(Pod({{"nvidia.com/gpu", "1"}, {"nvidia.com/gpu.shared", "1"}}), all), "");
}

TEST(PoolWeightTest, ParsedAndValidated) {
  auto parse = [](json weight) {
    json spec = {{"provider", {{"type", "simulated"}, {"groups", {{"onDemand", "g"}}}}},
                 {"instanceTypes", {Type("t", "A10G", 1, "4", "16Gi")}},
                 {"weight", weight}};
    return ParseNodePool(json{{"metadata", {{"name", "p"}}}, {"spec", spec}});
  };
  EXPECT_EQ(parse(10).weight, 10);
  EXPECT_TRUE(parse(100).problems.empty());
  EXPECT_EQ(parse(0).problems, std::vector<std::string>{"spec.weight must be between 1 and 100"});
  EXPECT_EQ(parse(101).problems, std::vector<std::string>{"spec.weight must be between 1 and 100"});
  EXPECT_EQ(parse("high").problems,
            std::vector<std::string>{"spec.weight must be between 1 and 100"});
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
