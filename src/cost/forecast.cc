#include "cost/forecast.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

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
  const size_t n = x.size();
  if (n == 0 || !(horizon > 0)) return 0;
  if (n < 2) return x[0] * horizon;  // run rate of the only bucket
  const double a = o.alpha, b = o.beta, g = o.gamma;
  const size_t m = o.season_length > 1 ? static_cast<size_t>(o.season_length) : 0;
  if (m == 0 || n < 2 * m) {
    // Holt's linear trend.
    double level = x[0];
    double trend = x[1] - x[0];
    for (size_t t = 1; t < n; ++t) {
      double prev = level;
      level = a * x[t] + (1 - a) * (level + trend);
      trend = b * (level - prev) + (1 - b) * trend;
    }
    return SumHorizon(horizon, [&](int h) { return level + h * trend; });
  }
  // Additive Holt-Winters, initialised from the first two seasons.
  double mean1 = std::accumulate(x.begin(), x.begin() + m, 0.0) / m;
  double mean2 = std::accumulate(x.begin() + m, x.begin() + 2 * m, 0.0) / m;
  double level = mean1;
  double trend = (mean2 - mean1) / m;
  std::vector<double> season(n);
  for (size_t i = 0; i < m; ++i)
    season[i] = x[i] - mean1;
  for (size_t t = m; t < n; ++t) {
    double prev = level;
    level = a * (x[t] - season[t - m]) + (1 - a) * (level + trend);
    trend = b * (level - prev) + (1 - b) * trend;
    season[t] = g * (x[t] - level) + (1 - g) * season[t - m];
  }
  return SumHorizon(horizon, [&](int h) {
    return level + h * trend + season[n - m + static_cast<size_t>(h - 1) % m];
  });
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
