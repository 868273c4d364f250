// Table tests of LowNodeUtilization on measured usage, values by hand.
#include "autoscale/usage_balance.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::autoscale {
namespace {

constexpr const char* kGpu = "nvidia.com/gpu";

UsageThresholds GpuThresholds(double low, double high) {
  return {.thresholds = {{kGpu, low}}, .target_thresholds = {{kGpu, high}}};
}

// n0: pods using 1.5, 1.2 and 0.5 GPUs of 4 (80%); n1: 0.4 of 4 (10%);
// n2: 1.6 of 4 (40%).
struct Cluster {
  std::vector<UsageNode> nodes{{"n0", {{kGpu, 4}, {"pods", 10}}},
                               {"n1", {{kGpu, 4}, {"pods", 10}}},
                               {"n2", {{kGpu, 4}, {"pods", 10}}}};
  std::vector<UsagePod> pods{{"ml", "p0", 0, 0, true, {{kGpu, 1.5}}},
                             {"ml", "p1", 0, 0, true, {{kGpu, 1.2}}},
                             {"ml", "p2", 0, 0, true, {{kGpu, 0.5}}},
                             {"ml", "p3", 1, 0, true, {{kGpu, 0.4}}},
                             {"ml", "p4", 2, 0, true, {{kGpu, 1.6}}}};
};

TEST(UsageBalanceTest, EvictsTheBusiestPodUntilTheNodeIsUnderItsTarget) {
  // Headroom on n1: 4 × 60% − 0.4 = 2.0. Evicting p0 (1.5) takes n0 to 1.7
  // (42.5%), under 60%: one eviction.
  Cluster c;
  UsageBalancePlan plan = PlanUsageBalance(c.nodes, c.pods, GpuThresholds(20, 60), {});
  EXPECT_EQ(plan.underutilized, std::vector<int>{1});
  EXPECT_EQ(plan.overutilized, std::vector<int>{0});
  EXPECT_DOUBLE_EQ(plan.utilization[0][kGpu], 80);
  EXPECT_DOUBLE_EQ(plan.utilization[2][kGpu], 40);
  ASSERT_EQ(plan.evictions.size(), 1u);
  EXPECT_EQ(plan.evictions[0].pod, 0);
  EXPECT_EQ(plan.evictions[0].node, 0);
  EXPECT_EQ(plan.evictions[0].reason,
            "node n0 is over its target: nvidia.com/gpu 80% > 60% (measured usage)");
  EXPECT_TRUE(plan.skipped.empty());
}

TEST(UsageBalanceTest, LowerPriorityGoesFirst) {
  // p2 (priority -1, 0.5): n0 at 2.7 = 67.5%, still over; headroom 1.5.
  // p0 (1.5): n0 at 1.2 = 30%; done.
  Cluster c;
  c.pods[2].priority = -1;
  UsageBalancePlan plan = PlanUsageBalance(c.nodes, c.pods, GpuThresholds(20, 60), {});
  ASSERT_EQ(plan.evictions.size(), 2u);
  EXPECT_EQ(plan.evictions[0].pod, 2);
  EXPECT_EQ(plan.evictions[1].pod, 0);
  EXPECT_EQ(plan.evictions[1].reason,
            "node n0 is over its target: nvidia.com/gpu 68% > 60% (measured usage)");
}

TEST(UsageBalanceTest, StopsWhenTheUnderutilizedNodesHaveNoHeadroom) {
  // Target 40%: headroom 4 × 40% − 0.4 = 1.2. After p0 (1.5) n0 is at
  // 42.5%, still over, but the headroom is -0.3: stop.
  Cluster c;
  UsageBalancePlan plan = PlanUsageBalance(c.nodes, c.pods, GpuThresholds(20, 40), {});
  ASSERT_EQ(plan.evictions.size(), 1u);
  EXPECT_EQ(plan.evictions[0].pod, 0);
}

TEST(UsageBalanceTest, LimitsAndUnevictablePods) {
  Cluster c;
  c.pods[0].evictable = false;
  UsageBalancePlan plan = PlanUsageBalance(c.nodes, c.pods, GpuThresholds(20, 60), {});
  // p1 (1.2): n0 at 2.0 = 50%.
  ASSERT_EQ(plan.evictions.size(), 1u);
  EXPECT_EQ(plan.evictions[0].pod, 1);
  c.pods[2].priority = -1;
  c.pods[0].evictable = true;
  UsageBalancePlan limited =
      PlanUsageBalance(c.nodes, c.pods, GpuThresholds(20, 60), {.max_per_node = 1});
  ASSERT_EQ(limited.evictions.size(), 1u);
  EXPECT_EQ(limited.evictions[0].pod, 2);
  UsageBalancePlan none =
      PlanUsageBalance(c.nodes, c.pods, GpuThresholds(20, 60), {.max_per_node = 0, .max_total = 0});
  EXPECT_EQ(none.evictions.size(), 2u);
}

TEST(UsageBalanceTest, AMissingUsageMakesTheNodeUnmeasuredAndNothingIsEvicted) {
  Cluster c;
  c.pods.push_back({"ml", "no-metrics", 0, 0, true, {}});
  UsageBalancePlan plan = PlanUsageBalance(c.nodes, c.pods, GpuThresholds(20, 60), {});
  EXPECT_TRUE(plan.evictions.empty());
  EXPECT_TRUE(plan.overutilized.empty());
  EXPECT_EQ(plan.skipped, "no overutilized node");
  ASSERT_EQ(plan.unmeasured.size(), 1u);
  EXPECT_EQ(plan.unmeasured[0], "n0: pod ml/no-metrics has no nvidia.com/gpu usage");
}

TEST(UsageBalanceTest, NothingWithoutAnUnderutilizedNode) {
  Cluster c;
  c.pods[3].usage[kGpu] = 1.0;  // n1 at 25%
  UsageBalancePlan plan = PlanUsageBalance(c.nodes, c.pods, GpuThresholds(20, 60), {});
  EXPECT_TRUE(plan.evictions.empty());
  EXPECT_EQ(plan.skipped, "no underutilized node");
}

TEST(UsageBalanceTest, PodsCountIsAlwaysMeasured) {
  // pods: n0 3/10 = 30% > 25%; n1 1/10 = 10% < 15%; n2 1/10.
  Cluster c;
  UsageThresholds t{.thresholds = {{"pods", 15}}, .target_thresholds = {{"pods", 25}}};
  UsageBalancePlan plan = PlanUsageBalance(c.nodes, c.pods, t, {});
  EXPECT_EQ(plan.overutilized, std::vector<int>{0});
  EXPECT_EQ(plan.underutilized, (std::vector<int>{1, 2}));
  // Headroom 2 × (2.5 − 1) = 3 pods; n0 drops to 2 pods (20%) after one.
  ASSERT_EQ(plan.evictions.size(), 1u);
}

struct BadCase {
  UsageThresholds t;
  std::string error;
};

TEST(UsageBalanceTest, ImpossibleThresholdsAreRejectedWithTheReason) {
  const std::vector<BadCase> cases = {
      {GpuThresholds(80, 60),
       "thresholds.nvidia.com/gpu (80%) is above targetThresholds.nvidia.com/gpu (60%)"},
      {GpuThresholds(20, 120),
       "targetThresholds.nvidia.com/gpu is 120%; percentages must be in "
       "[0, 100]"},
      {GpuThresholds(-5, 60), "thresholds.nvidia.com/gpu is -5%"},
      {{.thresholds = {{"cpu", 20}}, .target_thresholds = {{kGpu, 50}}},
       "thresholds lists cpu but targetThresholds does not"},
      {{.thresholds = {}, .target_thresholds = {{kGpu, 50}}}, "must both list resources"},
  };
  for (const BadCase& c : cases) {
    Status s = ValidateUsageThresholds(c.t);
    ASSERT_FALSE(s.ok()) << c.error;
    EXPECT_NE(s.message().find(c.error), std::string::npos) << s.message();
  }
  EXPECT_TRUE(ValidateUsageThresholds(GpuThresholds(20, 20)).ok());
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
