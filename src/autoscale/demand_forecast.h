// File: src/autoscale/demand_forecast.h
//
// Forecasts a GPU pool's demand from its history, for predictive scaling. The
// history is a series of demand peaks (GPUs) per fixed step (e.g. 300 s); the
// forecast is the peak over the next `steps` steps, which the autoscaler
// provisions ahead of the provisioning delay. Four methods:
//   holt-winters:   additive Holt-Winters with a daily season (common/holt_winters.h);
//   seasonal-naive: the value one season (a day) earlier, the last value until
//                   a season has been seen;
//   last-value:     the last observed peak (what a reactive autoscaler assumes);
//   recent-peak:    the highest of the last `window` peaks (like the Horizontal
//                   Pod Autoscaler's scale-down stabilisation window).
// TuneDemandForecast picks the method and its parameters on a training series
// only, with the headroom to add: the one that needs the least capacity above
// the actual peak to cover it at a given fraction of the steps.
//
//   TunedDemandForecast tuned = TuneDemandForecast(train, /*horizon_steps=*/2, 288);
//   DemandForecaster f(tuned.options);
//   for (double peak : history) f.Observe(peak);
//   double target_gpus = f.PeakOver(2) + tuned.headroom;
//
// Thread-safety: DemandForecaster is a value type, not synchronised; the free
// functions are pure.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/holt_winters.h"

namespace gpu_autoscaler::autoscale {

enum class ForecastMethod : uint8_t { kHoltWinters, kSeasonalNaive, kLastValue, kRecentPeak };
std::string_view ForecastMethodName(ForecastMethod m);

struct DemandForecastOptions {
  ForecastMethod method = ForecastMethod::kHoltWinters;
  // season_length is shared by holt-winters and seasonal-naive.
  HoltWintersOptions holt_winters{.alpha = 0.5, .beta = 0.0, .gamma = 0.3, .season_length = 288};
  int window = 5;  // recent-peak: steps
};
// "holt-winters(alpha=0.5,beta=0,gamma=0.3,season=288)", "seasonal-naive(season=288)", ...
std::string DescribeForecast(const DemandForecastOptions& options);

class DemandForecaster {
 public:
  explicit DemandForecaster(const DemandForecastOptions& options = {});

  // The demand peak (GPUs) of the step that just ended.
  void Observe(double peak);
  // The forecast for the step `h` >= 1 steps ahead, at least 0.
  double Forecast(int h) const;
  // max(Forecast(1..steps)); 0 when steps < 1.
  double PeakOver(int steps) const;
  size_t observations() const { return n_; }

 private:
  DemandForecastOptions o_;
  size_t m_;
  size_t n_ = 0;
  HoltWinters holt_winters_;
  std::vector<double> recent_;  // the last m (seasonal-naive) or window (recent-peak) peaks
  double last_ = 0;
};

struct ForecastScore {
  double mean_absolute_error = 0;  // of PeakOver(horizon) vs the actual peak
  double mean_error = 0;           // actual - forecast: > 0 means it under-forecasts
  int64_t points = 0;
  std::vector<double> errors{};  // actual - forecast at each scored point
};
// Walks `series` forward: at each point from `warmup` on, forecasts the peak
// over the next `horizon_steps` values and compares with the actual peak.
ForecastScore ScoreForecast(std::span<const double> series, int horizon_steps, size_t warmup,
                            const DemandForecastOptions& options);

struct TunedDemandForecast {
  DemandForecastOptions options{};
  ForecastScore score{};  // of the chosen options on the training series
  double headroom = 0;    // GPUs: the coverage quantile of the training errors, at least 0
  // Mean of max(0, forecast + headroom - actual) on the training series: the
  // capacity above need that the coverage costs. What the tuning minimises.
  double mean_over = 0;
  int candidates = 0;  // option sets tried
};
// Tries last-value, recent-peak (windows 2..30), seasonal-naive and a grid of
// Holt-Winters smoothing factors (alpha 0.1..0.9, beta 0 or 0.05, gamma
// 0.1..0.7) on `training`. Each gets the headroom that covers the actual peak
// at a `coverage` fraction of the training points (the quantile of its
// errors); the one with the lowest mean_over wins (ties: the earlier, simpler
// candidate). Scoring starts after one horizon so all are judged on the same
// points.
TunedDemandForecast TuneDemandForecast(std::span<const double> training, int horizon_steps,
                                       int season_length, double coverage = 0.9);

// The q-quantile (0..1) of `values` by the nearest-rank method; 0 when empty.
double NearestRankQuantile(std::vector<double> values, double q);

}  // namespace gpu_autoscaler::autoscale
