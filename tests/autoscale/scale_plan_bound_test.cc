// The scale planner's cost lower bound (scale_plan_bound.h), by hand.
#include "autoscale/scale_plan_bound.h"

#include <gtest/gtest.h>

#include <limits>

namespace gpu_autoscaler::autoscale {
namespace {

// Offering A: 4 GPUs of model 0, 32 cores, 4/h, one node; B: 8 GPUs of
// model 1, 64 cores, 6/h, one node.
CostBoundInput TwoOfferings() {
  CostBoundInput in;
  in.pinned = {2000, 0};  // 2 GPUs that only model 0 serves
  in.any_gpu = 6000;
  in.demand = {16000, 0, 8000, 0};
  in.new_nodes = {{.capacity = {32000, 0, 4000, 0}, .effective_price = 4, .nodes = 1, .model = 0},
                  {.capacity = {64000, 0, 8000, 0}, .effective_price = 6, .nodes = 1, .model = 1}};
  return in;
}

TEST(CostLowerBoundTest, PinnedGpusFirstThenTheCheapestUnitsOfAnyModel) {
  // GPU: 2000 pinned at A's 1/1000 = 2, then 6000 of B's cheaper 0.75/1000 =
  // 4.5; CPU: 16 cores at B's 6/64 = 1.5. The larger, 6.5, is the bound.
  EXPECT_DOUBLE_EQ(CostLowerBound(TwoOfferings()), 6.5);
}

TEST(CostLowerBoundTest, FreeCapacityCostsNothingEvenOfAModelNoOfferingHas) {
  CostBoundInput in = TwoOfferings();
  in.existing = {{.free = {0, 0, 1000, 0}, .model = -1}};
  EXPECT_DOUBLE_EQ(CostLowerBound(in), 2 + 5000 * 0.00075);
  // Free GPUs of model 0 serve the pinned demand first.
  in.existing = {{.free = {0, 0, 2000, 0}, .model = 0}};
  EXPECT_DOUBLE_EQ(CostLowerBound(in), 6000 * 0.00075);
}

TEST(CostLowerBoundTest, TheLargestDimensionBounds) {
  CostBoundInput in = TwoOfferings();
  in.demand[0] = 96000;  // all 96 cores: 64 of B (6) and 32 of A (4)
  EXPECT_DOUBLE_EQ(CostLowerBound(in), 10);
  // Unlimited nodes: the cheapest unit serves everything.
  in.new_nodes[1].nodes = std::numeric_limits<double>::infinity();
  EXPECT_DOUBLE_EQ(CostLowerBound(in), 96000 * 6.0 / 64000);
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
