#include "autoscale/predictive_floor.h"

#include <cmath>

#include <gtest/gtest.h>

#include "autoscale/demand_history.h"

namespace gpu_autoscaler::autoscale {
namespace {

constexpr int kSpot = TierIndex(CapacityTier::kSpot);
constexpr int kOnDemand = TierIndex(CapacityTier::kOnDemand);
const double kGap = std::nan("");

// x4: 4 GPUs, spot 2.00/h; x1: 1 GPU, on-demand 3.00/h. The cheapest node is x4 spot.
NodePoolSpec Pool() {
  NodePoolSpec pool;
  PoolInstanceType x4{.name = "x4", .gpu_model = "A10G", .gpu_count = 4};
  x4.price[kSpot] = 2.0;
  PoolInstanceType x1{.name = "x1", .gpu_model = "A10G", .gpu_count = 1};
  x1.price[kOnDemand] = 3.0;
  pool.instance_types = {x4, x1};
  pool.tiers[kSpot].enabled = true;
  pool.tiers[kOnDemand].enabled = true;
  pool.max_nodes = 10;
  return pool;
}

TEST(DemandHistoryTest, AppendAlignsFillsGapsAndTrims) {
  DemandHistory h{.step_seconds = 300};
  EXPECT_FALSE(h.Append(1000, 1, 10));  // not a step boundary
  EXPECT_TRUE(h.Append(1200, 1, 4));
  EXPECT_FALSE(h.Append(1200, 5, 4));  // already there
  EXPECT_TRUE(h.Append(2100, 2, 4));   // 1500 and 1800 missed
  ASSERT_EQ(h.gpus.size(), 4u);
  EXPECT_EQ(h.start, 1200);
  EXPECT_TRUE(std::isnan(h.gpus[1]) && std::isnan(h.gpus[2]));
  EXPECT_EQ(h.observed(), 2u);
  EXPECT_TRUE(h.Append(2400, 3, 4));  // 5 points: the oldest goes, then the leading gaps
  EXPECT_EQ(h.start, 2100);
  EXPECT_EQ(h.gpus, (std::vector<double>{2, 3}));
  EXPECT_EQ(h.end(), 2700);
  EXPECT_TRUE(h.Append(2700 + 300 * 4, 7, 4));  // a gap longer than what is kept
  EXPECT_EQ(h.start, 3900);
  EXPECT_EQ(h.gpus, (std::vector<double>{7}));
}

TEST(DemandHistoryTest, MaxPointsIsSevenDaysOrTwoSeasons) {
  EXPECT_EQ(MaxHistoryPoints(300, 86400), 2016u);             // 7 × 288
  EXPECT_EQ(MaxHistoryPoints(3600, 7 * 86400), 336u);         // two weeks of hours
  EXPECT_EQ(MaxHistoryPoints(10, 86400), kMaxHistoryPoints);  // capped
}

TEST(DemandHistoryTest, EncodesCompactlyAndDecodesBack) {
  DemandHistory h{.step_seconds = 300, .start = 1764892800, .gpus = {2, 2.5, kGap, 3.125, 0.0004}};
  const std::string text = EncodeDemandHistory(h);
  EXPECT_EQ(text, R"({"gpus":"2,2.5,,3.125,0","start":1764892800,"stepSeconds":300,"version":1})");
  auto back = DecodeDemandHistory(text);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->step_seconds, 300);
  EXPECT_EQ(back->start, 1764892800);
  ASSERT_EQ(back->gpus.size(), 5u);
  EXPECT_EQ(back->gpus[1], 2.5);
  EXPECT_TRUE(std::isnan(back->gpus[2]));
  EXPECT_EQ(back->gpus[3], 3.125);
  auto empty = DecodeDemandHistory(R"({"version":1,"stepSeconds":60,"start":0,"gpus":""})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->gpus.empty());
}

TEST(DemandHistoryTest, RejectsBadInputWithTheProblem) {
  struct Row {
    std::string text, error;
  };
  const std::vector<Row> rows = {
      {"not json", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {R"({"version":2,"stepSeconds":300,"start":0,"gpus":""})", "version is not 1"},
      {R"({"version":1,"stepSeconds":0,"start":0,"gpus":""})", "stepSeconds"},
      {R"({"version":1,"stepSeconds":"300","start":0,"gpus":""})", "stepSeconds"},
      {R"({"version":1,"stepSeconds":300,"start":100,"gpus":""})", "start"},
      {R"({"version":1,"stepSeconds":300,"start":-300,"gpus":""})", "start"},
      {R"({"version":1,"stepSeconds":300,"start":0,"gpus":[1,2]})", "gpus is not a string"},
      {R"({"version":1,"stepSeconds":300,"start":0,"gpus":"1,x"})", "point 1 \"x\""},
      {R"({"version":1,"stepSeconds":300,"start":0,"gpus":"1,-2"})", "point 1 \"-2\""},
      {R"({"version":1,"stepSeconds":300,"start":0,"gpus":"inf"})", "point 0"},
      {R"({"version":1,"stepSeconds":300,"start":0,"gpus":"1 "})", "point 0"},
      {R"({"version":1,"stepSeconds":300,"start":0,"gpus":"2e6"})", "point 0"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.text);
    auto got = DecodeDemandHistory(row.text);
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.error().message().find(row.error), std::string::npos) << got.error().message();
  }
  std::string many = R"({"version":1,"stepSeconds":300,"start":0,"gpus":")";
  for (size_t i = 0; i <= kMaxHistoryPoints; ++i)
    many += i == 0 ? "1" : ",1";
  many += "\"}";
  auto too_many = DecodeDemandHistory(many);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message().find("more than 20160 points"), std::string::npos);
}

TEST(PredictiveFloorTest, FillsGapsFromTheSeasonBeforeElseThePreviousValue) {
  EXPECT_EQ(FillDemandGaps({1, kGap, 3, kGap}, 2), (std::vector<double>{1, 1, 3, 1}));
  EXPECT_EQ(FillDemandGaps({kGap, 2, kGap}, 0), (std::vector<double>{0, 2, 2}));
}

TEST(PredictiveFloorTest, GpusBecomeNodesOfTheCheapestOfferingWithinLimits) {
  NodePoolSpec pool = Pool();
  EXPECT_EQ(FloorNodesForGpus(9, pool).nodes, 3);  // ceil(9 / 4) x4 spot nodes
  EXPECT_EQ(FloorNodesForGpus(8, pool).nodes, 2);
  EXPECT_EQ(FloorNodesForGpus(0, pool).nodes, 0);
  pool.max_nodes = 1;
  EXPECT_EQ(FloorNodesForGpus(9, pool).nodes, 1);
  EXPECT_EQ(FloorNodesForGpus(9, pool).limited_by, "MaxNodes");
  pool.max_nodes = 10;
  pool.cost_per_hour_ceiling = 5.0;  // floor(5 / 2) = 2 spot nodes
  EXPECT_EQ(FloorNodesForGpus(9, pool).nodes, 2);
  EXPECT_EQ(FloorNodesForGpus(9, pool).limited_by, "CostCeiling");
  pool.tiers[kSpot].enabled = false;  // now x1 on-demand: 9 nodes at 3/h, 1 affordable
  EXPECT_EQ(FloorNodesForGpus(9, pool).nodes, 1);
  pool.tiers[kOnDemand].enabled = false;
  EXPECT_EQ(FloorNodesForGpus(9, pool).limited_by, "NoOffering");
}

// A season of 4 steps of 300 s, seen twice: 0, 4, 1, 0. The history ends at
// 14400 (step 48); the next steps are the season's first and second slots.
DemandHistory TwoSeasons() {
  return {.step_seconds = 300, .start = 12000, .gpus = {0, 4, 1, 0, 0, 4, 1, 0}};
}
PredictiveOptions SeasonalNaive() {
  return {.step_seconds = 300,
          .season_seconds = 1200,
          .horizon_seconds = 300,
          .method = DemandForecastOptions{.method = ForecastMethod::kSeasonalNaive},
          .min_history_seconds = 2400};
}

TEST(PredictiveFloorTest, SeasonalNaiveSeesTheRiseWithinTheHorizon) {
  PredictiveOptions o = SeasonalNaive();
  o.headroom_gpus = 1;
  o.headroom_fraction = 0.25;
  // now = 14410: steps 48 (0 GPUs a season ago) and 49 (4 GPUs) are covered.
  PredictiveFloor f = DecidePredictiveFloor(TwoSeasons(), o, Pool(), 14410);
  ASSERT_TRUE(f.predicting) << f.message;
  EXPECT_EQ(f.reason, "Forecasting");
  EXPECT_EQ(f.method, "seasonal-naive(season=4)");
  EXPECT_EQ(f.horizon_steps, 2);
  EXPECT_EQ(f.forecast_gpus, 4);
  EXPECT_EQ(f.headroom_gpus, 2);  // 1 + 25% of 4
  EXPECT_EQ(f.target_gpus, 6);
  EXPECT_EQ(f.floor_nodes, 2);  // ceil(6 / 4)
  EXPECT_EQ(f.history_points, 8u);
  EXPECT_EQ(f.message,
            "seasonal-naive(season=4) forecasts 4 GPUs over the next 2 steps; 6 with headroom: 2 "
            "nodes");

  // Without a horizon only step 48 counts: 0 GPUs, the 1 GPU of headroom.
  o.horizon_seconds = 0;
  f = DecidePredictiveFloor(TwoSeasons(), o, Pool(), 14410);
  EXPECT_EQ(f.forecast_gpus, 0);
  EXPECT_EQ(f.floor_nodes, 1);

  // Later in step 48 the horizon reaches step 50 too (1 GPU): still 4.
  o.horizon_seconds = 300;
  f = DecidePredictiveFloor(TwoSeasons(), o, Pool(), 14400 + 299);
  EXPECT_EQ(f.horizon_steps, 2);
  EXPECT_EQ(f.forecast_gpus, 4);
}

TEST(PredictiveFloorTest, WaitsForMinHistoryAndIgnoresStaleHistory) {
  PredictiveOptions o = SeasonalNaive();
  o.min_history_seconds = 3000;  // 10 points
  PredictiveFloor f = DecidePredictiveFloor(TwoSeasons(), o, Pool(), 14410);
  EXPECT_FALSE(f.predicting);
  EXPECT_EQ(f.reason, "NotEnoughHistory");
  EXPECT_EQ(f.message, "8 points (0.6667h) of demand history, minHistory is 0.8333h");
  EXPECT_EQ(f.floor_nodes, 0);

  DemandHistory gaps = TwoSeasons();
  gaps.gpus[0] = kGap;  // 7 observed points < 8
  f = DecidePredictiveFloor(gaps, SeasonalNaive(), Pool(), 14410);
  EXPECT_EQ(f.reason, "NotEnoughHistory");

  // Five steps after the last point: more than a season (4 steps) ago.
  f = DecidePredictiveFloor(TwoSeasons(), SeasonalNaive(), Pool(), 14400 + 5 * 300);
  EXPECT_FALSE(f.predicting);
  EXPECT_EQ(f.reason, "StaleHistory");
}

// Ten seasons of the same shape: Auto picks seasonal-naive (exact after the
// first season) and its errors need no headroom... beyond the first season's.
TEST(PredictiveFloorTest, AutoTunesOnTheHistory) {
  DemandHistory h{.step_seconds = 300, .start = 12000};
  for (int s = 0; s < 10; ++s)
    h.gpus.insert(h.gpus.end(), {0, 4, 1, 0});
  PredictiveOptions o = SeasonalNaive();
  o.method.reset();
  const int64_t now = h.end() + 10;
  PredictiveFloor f = DecidePredictiveFloor(h, o, Pool(), now);
  ASSERT_TRUE(f.predicting);
  EXPECT_EQ(f.method, "seasonal-naive(season=4)");
  EXPECT_EQ(f.forecast_gpus, 4);
  EXPECT_EQ(f.headroom_gpus, 0);  // the 0.9 quantile of its errors is 0
  EXPECT_EQ(f.floor_nodes, 1);
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
