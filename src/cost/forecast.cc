#include "cost/forecast.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace gpu_autoscaler::cost {

namespace {

// Sums f(1..floor(h)) plus the fraction of f(ceil(h)) for a fractional horizon.
template <typename F>
double SumHorizon(double horizon, F&& forecast_step) {
  if (!(horizon > 0)) return 0;
  double whole = std::floor(horizon);
  double sum = 0;
  for (int h = 1; h <= static_cast<int>(whole); ++h)
    sum += std::max(0.0, forecast_step(h));
  double frac = horizon - whole;
  if (frac > 0) sum += frac * std::max(0.0, forecast_step(static_cast<int>(whole) + 1));
  return sum;
}

}  // namespace

double HoltWintersFutureSum(std::span<const double> x, double horizon,
                            const HoltWintersOptions& o) {
  if (x.empty() || !(horizon > 0)) return 0;
  HoltWinters model(o);
  for (double v : x)
    model.Observe(v);
  return SumHorizon(horizon, [&](int h) { return model.Forecast(h); });
}

PeriodForecast ForecastPeriod(std::span<const double> buckets, int64_t bucket_seconds,
                              PeriodWindow period, int64_t now, const HoltWintersOptions& options) {
  PeriodForecast f;
  f.spent = std::accumulate(buckets.begin(), buckets.end(), 0.0);
  now = std::clamp(now, period.start, period.end);
  const double elapsed = static_cast<double>(now - period.start);
  const double remaining = static_cast<double>(period.end - now);
  f.linear = elapsed > 0 ? f.spent + f.spent / elapsed * remaining : f.spent;
  if (bucket_seconds <= 0) {
    f.holt_winters = f.linear;
    return f;
  }
  // Fit complete buckets only; the partial one is re-forecast.
  size_t complete =
      std::min(buckets.size(), static_cast<size_t>((now - period.start) / bucket_seconds));
  if (complete == 0) {
    f.holt_winters = f.linear;
    return f;
  }
  auto fit = buckets.first(complete);
  double fitted_spend = std::accumulate(fit.begin(), fit.end(), 0.0);
  double horizon = static_cast<double>(period.end - period.start -
                                       static_cast<int64_t>(complete) * bucket_seconds) /
                   static_cast<double>(bucket_seconds);
  f.holt_winters = std::max(f.spent, fitted_spend + HoltWintersFutureSum(fit, horizon, options));
  f.linear = std::max(f.spent, f.linear);
  return f;
}

}  // namespace gpu_autoscaler::cost
