// Which rollup tables answer which part of a query window (store_internal.h).
#include <vector>

#include "cost/store_internal.h"
#include "gtest/gtest.h"

namespace gpu_autoscaler::cost::internal {
namespace {

constexpr int64_t kDay = 1'700'006'400;  // a UTC midnight

struct Seg {
  Resolution r;
  int64_t from;
  int64_t to;
  friend bool operator==(const Seg&, const Seg&) = default;
};

std::vector<Seg> Segments(const QueryPlan& plan) {
  std::vector<Seg> out;
  for (const Segment& s : plan.segments)
    out.push_back({s.resolution, s.from, s.to});
  return out;
}

TEST(PlanQuery, HoursInTheMiddleMinutesAndSecondsAtTheEdges) {
  Result<QueryPlan> plan = PlanQuery(
      {.window = {kDay + 3599, kDay + 3 * 3600 + 61}, .resolution = Resolution::kSecond}, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Segments(*plan),
            (std::vector<Seg>{{Resolution::kSecond, kDay + 3599, kDay + 3600},
                              {Resolution::kHour, kDay + 3600, kDay + 3 * 3600},
                              {Resolution::kMinute, kDay + 3 * 3600, kDay + 3 * 3600 + 60},
                              {Resolution::kSecond, kDay + 3 * 3600 + 60, kDay + 3 * 3600 + 61}}));
}

TEST(PlanQuery, MinutePrecisionWidensTheWindow) {
  Result<QueryPlan> plan = PlanQuery({.window = {kDay + 30, kDay + 7200 + 90}}, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->window, (TimeWindow{kDay, kDay + 7200 + 120}));
  EXPECT_EQ(Segments(*plan),
            (std::vector<Seg>{{Resolution::kHour, kDay, kDay + 7200},
                              {Resolution::kMinute, kDay + 7200, kDay + 7200 + 120}}));
}

TEST(PlanQuery, OpenMinutesAreReadRaw) {
  Horizons h;
  h.rolled_until = kDay + 7200 + 60;
  Result<QueryPlan> plan = PlanQuery({.window = {kDay, kDay + 7200 + 300}}, h);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Segments(*plan),
            (std::vector<Seg>{{Resolution::kHour, kDay, kDay + 7200},
                              {Resolution::kMinute, kDay + 7200, kDay + 7200 + 60},
                              {Resolution::kSecond, kDay + 7200 + 60, kDay + 7200 + 300}}));
}

TEST(PlanQuery, ExpiredPrecisionFallsBackToCoarserBuckets) {
  Horizons h;
  h.second = kDay + 86400;
  h.minute = kDay + 3600;
  Result<QueryPlan> plan =
      PlanQuery({.window = {kDay + 90, kDay + 100}, .resolution = Resolution::kSecond}, h);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->resolution, Resolution::kHour);
  EXPECT_EQ(plan->window, (TimeWindow{kDay, kDay + 3600}));
}

TEST(PlanQuery, PodsComeFromRawSeconds) {
  Result<QueryPlan> plan =
      PlanQuery({.window = {kDay, kDay + 7200}, .group_by = {Dimension::kPod}}, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Segments(*plan), (std::vector<Seg>{{Resolution::kSecond, kDay, kDay + 7200}}));
}

TEST(PlanQuery, BucketsLimitTheCoarsestTable) {
  Result<QueryPlan> plan =
      PlanQuery({.window = {kDay, kDay + 7200}, .bucket = Resolution::kMinute}, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Segments(*plan), (std::vector<Seg>{{Resolution::kMinute, kDay, kDay + 7200}}));
}

TEST(PlanQuery, RejectsEmptyWindows) {
  EXPECT_FALSE(PlanQuery({.window = {kDay, kDay}}, {}).ok());
  EXPECT_FALSE(PlanQuery({.window = {-5, 10}}, {}).ok());
}

TEST(CostTotals, SharingBaselineRoundsFractionsUpToWholeGpus) {
  CostSample s;
  s.gpu_cost = 1;
  s.gpu_share = 1.0 / 7;
  EXPECT_DOUBLE_EQ(CostTotals::FromSample(s).exclusive_gpu_cost, 7);
  s.gpu_share = 2;  // whole GPUs: no sharing
  EXPECT_DOUBLE_EQ(CostTotals::FromSample(s).exclusive_gpu_cost, 1);
  s.gpu_share = 1.5;
  EXPECT_DOUBLE_EQ(CostTotals::FromSample(s).exclusive_gpu_cost, 2 / 1.5);
  s.idle = true;
  EXPECT_EQ(CostTotals::FromSample(s).exclusive_gpu_cost, 0);
  EXPECT_EQ(CostTotals::FromSample(s).idle_cost, 1);
}

}  // namespace
}  // namespace gpu_autoscaler::cost::internal
