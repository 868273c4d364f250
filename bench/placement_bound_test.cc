// Tests of the LP upper bound (placement_bound.h) on hand-sized problems.
#include "placement_bound.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace gpu_autoscaler::autoscale::bench {
namespace {

NodeSpec GpuNode(std::string name, int gpus) {
  NodeSpec n;
  n.name = std::move(name);
  n.cpu_milli = 64000;
  n.memory_mib = 1 << 20;
  n.gpu_model = "T4";
  n.gpu_count = gpus;
  return n;
}

PodSpec SharePod(std::string name, int milli) {
  return PodSpec{std::move(name), 1000, 1, 1, milli, {}, {}};
}

// Two GPUs (capacity 2000 milli); pods a (810), b (810), c (300) arrive in
// name order (no shuffle). Tuning to 1.0 × capacity adds nothing: the first
// resample would overflow 2000. Arrived after each pod: 40.5% → column 40,
// 81%, 96%.
TEST(AllocationBoundTest, MatchesHandSolvedRelaxation) {
  Result<PreparedTrace> trace =
      PrepareTrace({GpuNode("n", 2)}, {SharePod("a", 810), SharePod("b", 810), SharePod("c", 300)});
  ASSERT_TRUE(trace.ok());
  SimulationOptions options;
  options.tune_ratio = 1.0;
  options.shuffle = false;
  Result<BoundCurve> curve = AllocationBound(*trace, 42, options);
  ASSERT_TRUE(curve.ok()) << curve.error().ToString();
  EXPECT_EQ(curve->node_types, 1);
  EXPECT_EQ(curve->pod_shapes, 2);
  EXPECT_NEAR(curve->alloc_pct[40], 40.5, 0.011);  // a alone fits
  EXPECT_NEAR(curve->alloc_pct[81], 81.0, 0.011);  // a and b, one GPU each
  // a, b, c: 1920 ≤ 2000 in total, but an 810 share leaves 190, which c
  // cannot use. The GPU patterns over {810, 300} are {810} and {300, 300,
  // 300}: max 810·x + 300·y with x ≤ p, y ≤ 3q, p + q ≤ 2, x ≤ 2, y ≤ 1 gives
  // q = 1/3, x = 5/3, y = 1: 1650 milli = 82.5% (the integer optimum is 81%:
  // the relaxation bounds it). The ε rows alone allowed 83.85%.
  EXPECT_NEAR(curve->alloc_pct[96], 82.5, 0.011);
  // Columns next to an event take its bound; columns far from any are NaN.
  EXPECT_NEAR(curve->alloc_pct[97], 82.5, 0.011);
  EXPECT_TRUE(std::isnan(curve->alloc_pct[10]));
}

// Five 470-milli pods on two GPUs: counted in milli, 4.25 of them fit
// (2000 / 470); per GPU only two do. Tuning to 1.3 adds
// nothing (a sixth 470 would pass 2600). Arrived after the fifth: 117.5% →
// column 118. Without the GPU patterns the bound was 100%.
TEST(AllocationBoundTest, CountsPodsPerGpuNotMilli) {
  std::vector<PodSpec> pods;
  for (char name = 'a'; name <= 'e'; ++name)
    pods.push_back(SharePod(std::string(1, name), 470));
  Result<PreparedTrace> trace = PrepareTrace({GpuNode("n", 2)}, pods);
  ASSERT_TRUE(trace.ok());
  SimulationOptions options;
  options.tune_ratio = 1.3;
  options.shuffle = false;
  Result<BoundCurve> curve = AllocationBound(*trace, 42, options);
  ASSERT_TRUE(curve.ok()) << curve.error().ToString();
  EXPECT_NEAR(curve->alloc_pct[70], 70.5, 0.011);   // three pods: two GPUs hold them
  EXPECT_NEAR(curve->alloc_pct[118], 94.0, 0.011);  // four of five: 1880 milli
}

// Sixty small distinct requests fit one GPU in far more ways than the LP can
// take: the bound says so instead of running out of memory or time.
TEST(AllocationBoundTest, RefusesTooManyGpuPatterns) {
  std::vector<PodSpec> pods;
  for (int milli = 10; milli < 70; ++milli)
    pods.push_back(SharePod("p" + std::to_string(milli), milli));
  Result<PreparedTrace> trace = PrepareTrace({GpuNode("n", 8)}, pods);
  ASSERT_TRUE(trace.ok());
  SimulationOptions options;
  options.shuffle = false;
  Result<BoundCurve> curve = AllocationBound(*trace, 42, options);
  ASSERT_FALSE(curve.ok());
  EXPECT_NE(curve.error().message().find("GPU patterns exceed"), std::string::npos)
      << curve.error().ToString();
}

// Three 810s, then a whole GPU, on three GPUs (tuning to 1.15 adds nothing:
// 3430 + 810 > 3450). Any LP placement may leave an 810 out for the whole
// GPU: 2620 milli, 87.33%. A policy that places what fits must place all
// three 810s while GPUs are empty, and then the whole GPU fits nowhere: 81%.
// The must-place bound finds that: the whole-GPU pod dominates the 810s, so it
// can be placed only if no 810 was refused before it.
TEST(AllocationBoundTest, MustPlaceBoundKeepsEveryPodThatFitWhenItCame) {
  std::vector<PodSpec> pods = {SharePod("a", 810), SharePod("b", 810), SharePod("c", 810),
                               SharePod("d", 1000)};
  Result<PreparedTrace> trace = PrepareTrace({GpuNode("n", 3)}, pods);
  ASSERT_TRUE(trace.ok());
  SimulationOptions options;
  options.tune_ratio = 1.15;
  options.shuffle = false;
  Result<MustPlaceBound> bound = MustPlaceAllocationBound(*trace, 42, 114, 4, 1, options);
  ASSERT_TRUE(bound.ok()) << bound.error().ToString();
  EXPECT_NEAR(bound->plain_pct, 87.34, 0.011);  // 2620 / 3000, rounded up
  EXPECT_NEAR(bound->alloc_pct, 81.0, 0.011);
  EXPECT_EQ(bound->anchor_milli, 810);
  EXPECT_EQ(bound->anchor_pods, 3);
  // The plain LP at the same events is the curve's value.
  Result<BoundCurve> curve = AllocationBound(*trace, 42, options);
  ASSERT_TRUE(curve.ok());
  EXPECT_NEAR(curve->alloc_pct[114], bound->plain_pct, 0.011);
}

TEST(AllocationBoundTest, NeverPlacesWhatNoNodeTakes) {
  // A pod asking for a model the cluster lacks adds demand but no allocation.
  PodSpec v100 = SharePod("a", 500);
  v100.gpu_models = {"V100"};
  Result<PreparedTrace> trace = PrepareTrace({GpuNode("n", 1)}, {v100, SharePod("b", 200)});
  ASSERT_TRUE(trace.ok());
  SimulationOptions options;
  options.tune_ratio = 0.7;
  options.shuffle = false;
  Result<BoundCurve> curve = AllocationBound(*trace, 42, options);
  ASSERT_TRUE(curve.ok()) << curve.error().ToString();
  EXPECT_EQ(curve->pod_shapes, 1);
  EXPECT_NEAR(curve->alloc_pct[50], 0.0, 0.011);   // a arrived, cannot be placed
  EXPECT_NEAR(curve->alloc_pct[70], 20.0, 0.011);  // b placed
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale::bench
