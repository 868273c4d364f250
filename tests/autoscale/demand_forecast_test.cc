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

// A 0, 4, 0, 4 ... day of two steps, horizon 1, 90 % coverage. Seasonal-naive
// misses only at t = 1 (no season yet: 0 against 4), so its 90 % headroom is 0
// and it never provisions above need. Last-value alternates +4 / -4 errors:
// headroom 4, and 8 GPUs above need on 9 of 19 points. Recent-peak(2) says 4
// from t = 2 on: headroom 0 and 4 above need on 9 points. Holt-Winters is 8
// over at t = 2, before its two seasons are in.
TEST(DemandForecastTest, TuningPicksTheLeastCapacityAtTheCoverage) {
  std::vector<double> series;
  for (int i = 0; i < 20; ++i)
    series.push_back(i % 2 == 0 ? 0 : 4);
  TunedDemandForecast t = TuneDemandForecast(series, 1, 2, 0.9);
  EXPECT_EQ(t.options.method, ForecastMethod::kSeasonalNaive);
  EXPECT_EQ(t.candidates, 1 + 4 + 1 + 5 * 2 * 4);
  EXPECT_EQ(t.score.points, 19);
  EXPECT_DOUBLE_EQ(t.score.mean_absolute_error, 4.0 / 19);
  EXPECT_EQ(t.headroom, 0);  // rank ceil(0.9 · 19) = 18 of 19 sorted errors is 0
  EXPECT_EQ(t.mean_over, 0);
  // Covering every point needs 4 GPUs of headroom whatever the method (t = 1).
  // Then last-value is 8 over on the 9 even points and seasonal-naive 4 over on
  // the 18 points after t = 1: a tie at 72 / 19, kept by the simpler one.
  // Recent-peak(2) is 8 over on 9 points and 4 over on 9 more.
  TunedDemandForecast full = TuneDemandForecast(series, 1, 2, 1.0);
  EXPECT_EQ(full.headroom, 4);
  EXPECT_EQ(full.options.method, ForecastMethod::kLastValue);
  EXPECT_DOUBLE_EQ(full.mean_over, 72.0 / 19);
}

TEST(DemandForecastTest, RecentPeakIsTheHighestOfTheWindow) {
  DemandForecaster f({.method = ForecastMethod::kRecentPeak, .window = 3});
  for (double x : {5.0, 1.0, 2.0})
    f.Observe(x);
  EXPECT_EQ(f.Forecast(1), 5);
  f.Observe(1);  // 5 leaves the window
  EXPECT_EQ(f.PeakOver(4), 2);
  EXPECT_EQ(DescribeForecast({.method = ForecastMethod::kRecentPeak, .window = 3}),
            "recent-peak(window=3)");
}

TEST(DemandForecastTest, NearestRankQuantile) {
  EXPECT_EQ(NearestRankQuantile({}, 0.5), 0);
  EXPECT_EQ(NearestRankQuantile({5, 1, 3, 2, 4}, 0.5), 3);
  EXPECT_EQ(NearestRankQuantile({5, 1, 3, 2, 4}, 0.99), 5);
  EXPECT_EQ(NearestRankQuantile({5, 1, 3, 2, 4}, 0), 1);
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
