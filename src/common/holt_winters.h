// File: src/common/holt_winters.h
//
// Additive Holt-Winters (level + trend + season) fed one observation at a
// time, shared by the spend forecast (src/cost/forecast.h) and the GPU demand
// forecast (src/autoscale/demand_forecast.h). Until it has seen two seasons it
// is Holt's linear trend over what it has (level = x0, trend = x1 - x0); at the
// end of the second season it initialises the seasonal model from those two
// seasons (level = mean of season 1, trend = (mean2 - mean1) / m, season[i] =
// x[i] - mean1) and replays season 2 through the update equations.
//
//   HoltWinters hw({.alpha = 0.5, .beta = 0.1, .gamma = 0.3, .season_length = 24});
//   for (double x : hourly) hw.Observe(x);
//   double next_hour = hw.Forecast(1);
//
// Observe is O(1) (O(m) once, at the switch); memory is O(m).
//
// Thread-safety: a value type; not synchronised.
#pragma once

#include <cstddef>
#include <vector>

namespace gpu_autoscaler {

struct HoltWintersOptions {
  double alpha = 0.5;      // level smoothing
  double beta = 0.1;       // trend smoothing
  double gamma = 0.3;      // seasonal smoothing
  int season_length = 24;  // steps per season; <= 1: no season (Holt's linear trend)
};

class HoltWinters {
 public:
  explicit HoltWinters(const HoltWintersOptions& options = {});

  void Observe(double x);

  // The forecast `h` >= 1 steps after the last observation, not clamped.
  // 0 before any observation; the only value after one.
  double Forecast(int h) const;

  size_t observations() const { return n_; }
  // True once two seasons have been seen and the seasonal model is in use.
  bool seasonal() const { return seasonal_; }

 private:
  HoltWintersOptions o_;
  size_t m_ = 0;  // season length, 0 without a season
  size_t n_ = 0;
  double level_ = 0;
  double trend_ = 0;
  bool seasonal_ = false;
  std::vector<double> first_seasons_;  // the first 2m observations, until the switch
  std::vector<double> season_;         // ring of m seasonal terms, by time % m
};

}  // namespace gpu_autoscaler
