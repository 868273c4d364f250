#include "autoscale/demand_forecast.h"

#include <gtest/gtest.h>

#include <vector>

namespace gpu_autoscaler::autoscale {
namespace {

TEST(DemandForecastTest, SeasonalNaiveRepeatsTheValueOneSeasonEarlier) {
  DemandForecaster f(
      {.method = ForecastMethod::kSeasonalNaive, .holt_winters = {.season_length = 3}});
  f.Observe(1);
  f.Observe(2);
  EXPECT_EQ(f.Forecast(1), 2);  // under a season: the last value
  f.Observe(3);
  f.Observe(4);
  // Times 4, 5, 6 repeat times 1, 2, 3: 2, 3, 4.
  EXPECT_EQ(f.Forecast(1), 2);
  EXPECT_EQ(f.Forecast(2), 3);
  EXPECT_EQ(f.Forecast(3), 4);
  EXPECT_EQ(f.PeakOver(2), 3);
  EXPECT_EQ(f.PeakOver(3), 4);
  EXPECT_EQ(f.PeakOver(0), 0);
}

TEST(DemandForecastTest, ForecastsNeverGoBelowZero) {
  DemandForecaster f({.method = ForecastMethod::kHoltWinters,
                      .holt_winters = {.alpha = 1, .beta = 1, .season_length = 24}});
  for (double x : {9.0, 6.0, 3.0})
    f.Observe(x);
  EXPECT_EQ(f.Forecast(1), 0);  // level 3, trend -3: 3 - 3 = 0
  EXPECT_EQ(f.Forecast(2), 0);  // 3 - 6, clamped
  EXPECT_EQ(DescribeForecast({.method = ForecastMethod::kHoltWinters,
                              .holt_winters = {.alpha = 1, .beta = 1, .season_length = 24}}),
            "holt-winters(alpha=1,beta=1,gamma=0.3,season=24)");
}

// Last value over 1..5 with a horizon of 2: at t = 1, 2, 3 it forecasts
// 1, 2, 3 against peaks 3, 4, 5, so every error is +2.
TEST(DemandForecastTest, ScoreComparesThePeakOverTheHorizon) {
  const std::vector<double> series = {1, 2, 3, 4, 5};
  ForecastScore s = ScoreForecast(series, 2, 1, {.method = ForecastMethod::kLastValue});
  EXPECT_EQ(s.points, 3);
  EXPECT_DOUBLE_EQ(s.mean_absolute_error, 2);
  EXPECT_DOUBLE_EQ(s.mean_error, 2);
  EXPECT_EQ(s.errors, (std::vector<double>{2, 2, 2}));
}

// A 0, 4, 0, 4 ... day of two steps: seasonal-naive misses only at t = 1 (no
// season seen yet: it says 0, the actual is 4); last-value misses every step by 4;
// Holt-Winters misses three times before its two seasons are in.
TEST(DemandForecastTest, TuningPicksTheMethodWithTheLowestTrainingError) {
  std::vector<double> series;
  for (int i = 0; i < 20; ++i)
    series.push_back(i % 2 == 0 ? 0 : 4);
  TunedDemandForecast t = TuneDemandForecast(series, 1, 2, 0.9);
  EXPECT_EQ(t.options.method, ForecastMethod::kSeasonalNaive);
  EXPECT_EQ(t.candidates, 2 + 5 * 2 * 4);
  EXPECT_EQ(t.score.points, 19);
  EXPECT_DOUBLE_EQ(t.score.mean_absolute_error, 4.0 / 19);
  EXPECT_EQ(t.headroom, 0);  // rank ceil(0.9 · 19) = 18 of 19 sorted errors is 0
  EXPECT_EQ(TuneDemandForecast(series, 1, 2, 1.0).headroom, 4);
}

TEST(DemandForecastTest, NearestRankQuantile) {
  EXPECT_EQ(NearestRankQuantile({}, 0.5), 0);
  EXPECT_EQ(NearestRankQuantile({5, 1, 3, 2, 4}, 0.5), 3);
  EXPECT_EQ(NearestRankQuantile({5, 1, 3, 2, 4}, 0.99), 5);
  EXPECT_EQ(NearestRankQuantile({5, 1, 3, 2, 4}, 0), 1);
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
