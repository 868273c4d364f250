#include "common/holt_winters.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler {
namespace {

// Season 2, alpha = beta = gamma = 0.5 over 1, 3, 2, 4. Initialised from the two
// seasons: level 2, trend (3 - 2) / 2 = 0.5, season [-1, 1]; replaying season 2:
//   x=2: level 0.5(2+1) + 0.5(2.5) = 2.75, trend 0.625, season[0] = -0.875
//   x=4: level 0.5(4-1) + 0.5(3.375) = 3.1875, trend 0.53125, season[1] = 0.90625
// Forecast(1) = 3.1875 + 0.53125 - 0.875; Forecast(2) = 3.1875 + 1.0625 + 0.90625.
TEST(HoltWintersTest, OnlineUpdatesMatchAHandComputedSeries) {
  HoltWinters hw({.alpha = 0.5, .beta = 0.5, .gamma = 0.5, .season_length = 2});
  for (double x : {1.0, 3.0, 2.0})
    hw.Observe(x);
  EXPECT_FALSE(hw.seasonal());
  hw.Observe(4);
  EXPECT_TRUE(hw.seasonal());
  EXPECT_DOUBLE_EQ(hw.Forecast(1), 2.84375);
  EXPECT_DOUBLE_EQ(hw.Forecast(2), 5.15625);
  EXPECT_DOUBLE_EQ(hw.Forecast(3), 3.1875 + 3 * 0.53125 - 0.875);
}

TEST(HoltWintersTest, HoltsTrendBeforeTwoSeasons) {
  HoltWinters hw({.alpha = 0.5, .beta = 0.5, .gamma = 0.5, .season_length = 24});
  EXPECT_EQ(hw.Forecast(1), 0);
  hw.Observe(2);
  EXPECT_EQ(hw.Forecast(3), 2);  // one value: flat
  // level = x0 = 2, trend = 4 - 2 = 2; x1 = 4 leaves level 4, trend 2;
  // x2 = 5: level 0.5·5 + 0.5·6 = 5.5, trend 0.5·1.5 + 0.5·2 = 1.75.
  hw.Observe(4);
  hw.Observe(5);
  EXPECT_DOUBLE_EQ(hw.Forecast(1), 7.25);
  EXPECT_DOUBLE_EQ(hw.Forecast(2), 9.0);
}

}  // namespace
}  // namespace gpu_autoscaler
