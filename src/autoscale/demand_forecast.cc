#include "autoscale/demand_forecast.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace gpu_autoscaler::autoscale {

std::string_view ForecastMethodName(ForecastMethod m) {
  switch (m) {
    case ForecastMethod::kHoltWinters:
      return "holt-winters";
    case ForecastMethod::kSeasonalNaive:
      return "seasonal-naive";
    case ForecastMethod::kLastValue:
      return "last-value";
    case ForecastMethod::kRecentPeak:
      return "recent-peak";
  }
  return "unknown";
}

std::string DescribeForecast(const DemandForecastOptions& o) {
  char buf[160];
  const HoltWintersOptions& hw = o.holt_winters;
  switch (o.method) {
    case ForecastMethod::kHoltWinters:
      std::snprintf(buf, sizeof(buf), "holt-winters(alpha=%g,beta=%g,gamma=%g,season=%d)", hw.alpha,
                    hw.beta, hw.gamma, hw.season_length);
      break;
    case ForecastMethod::kSeasonalNaive:
      std::snprintf(buf, sizeof(buf), "seasonal-naive(season=%d)", hw.season_length);
      break;
    case ForecastMethod::kLastValue:
      std::snprintf(buf, sizeof(buf), "last-value");
      break;
    case ForecastMethod::kRecentPeak:
      std::snprintf(buf, sizeof(buf), "recent-peak(window=%d)", o.window);
      break;
  }
  return buf;
}

DemandForecaster::DemandForecaster(const DemandForecastOptions& options)
    : o_(options),
      m_(options.holt_winters.season_length > 1
             ? static_cast<size_t>(options.holt_winters.season_length)
             : 0),
      holt_winters_(options.holt_winters) {
  if (o_.method == ForecastMethod::kSeasonalNaive && m_ > 0) recent_.assign(m_, 0);
  if (o_.method == ForecastMethod::kRecentPeak) recent_.assign(std::max(o_.window, 1), 0);
}

void DemandForecaster::Observe(double peak) {
  last_ = peak;
  if (o_.method == ForecastMethod::kHoltWinters) holt_winters_.Observe(peak);
  if (!recent_.empty()) recent_[n_ % recent_.size()] = peak;
  ++n_;
}

double DemandForecaster::Forecast(int h) const {
  if (h < 1 || n_ == 0) return 0;
  double f = last_;
  switch (o_.method) {
    case ForecastMethod::kHoltWinters:
      f = holt_winters_.Forecast(h);
      break;
    case ForecastMethod::kSeasonalNaive:
      // Time n - 1 + h, one season earlier (whole seasons back for h > m).
      if (m_ > 0 && n_ >= m_) f = recent_[(n_ - 1 + static_cast<size_t>(h)) % m_];
      break;
    case ForecastMethod::kLastValue:
      break;
    case ForecastMethod::kRecentPeak:
      // Unfilled slots hold 0, below any peak seen.
      f = *std::max_element(recent_.begin(), recent_.end());
      break;
  }
  return std::max(0.0, f);
}

double DemandForecaster::PeakOver(int steps) const {
  double peak = 0;
  for (int h = 1; h <= steps; ++h)
    peak = std::max(peak, Forecast(h));
  return peak;
}

ForecastScore ScoreForecast(std::span<const double> series, int horizon_steps, size_t warmup,
                            const DemandForecastOptions& options) {
  ForecastScore score;
  if (horizon_steps < 1) return score;
  const size_t h = static_cast<size_t>(horizon_steps);
  DemandForecaster f(options);
  double abs_sum = 0, sum = 0;
  for (size_t t = 0; t + h <= series.size(); ++t) {
    // f has seen series[0, t); forecast series[t, t + h).
    if (t >= warmup) {
      const double actual = *std::max_element(series.begin() + t, series.begin() + t + h);
      const double e = actual - f.PeakOver(horizon_steps);
      score.errors.push_back(e);
      abs_sum += std::abs(e);
      sum += e;
    }
    f.Observe(series[t]);
  }
  score.points = static_cast<int64_t>(score.errors.size());
  if (score.points > 0) {
    score.mean_absolute_error = abs_sum / score.points;
    score.mean_error = sum / score.points;
  }
  return score;
}

double NearestRankQuantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(std::clamp(q, 0.0, 1.0) * values.size());
  const size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return values[std::min(i, values.size() - 1)];
}

TunedDemandForecast TuneDemandForecast(std::span<const double> training, int horizon_steps,
                                       int season_length, double coverage) {
  std::vector<DemandForecastOptions> candidates;
  const HoltWintersOptions base{.season_length = season_length};
  candidates.push_back({.method = ForecastMethod::kLastValue, .holt_winters = base});
  for (int window : {2, 5, 10, 30})
    candidates.push_back(
        {.method = ForecastMethod::kRecentPeak, .holt_winters = base, .window = window});
  candidates.push_back({.method = ForecastMethod::kSeasonalNaive, .holt_winters = base});
  for (double alpha : {0.1, 0.3, 0.5, 0.7, 0.9}) {
    for (double beta : {0.0, 0.05}) {
      for (double gamma : {0.1, 0.3, 0.5, 0.7}) {
        candidates.push_back(
            {.method = ForecastMethod::kHoltWinters,
             .holt_winters = {
                 .alpha = alpha, .beta = beta, .gamma = gamma, .season_length = season_length}});
      }
    }
  }
  TunedDemandForecast best;
  best.candidates = static_cast<int>(candidates.size());
  bool have = false;
  const size_t warmup = static_cast<size_t>(std::max(horizon_steps, 1));
  for (const DemandForecastOptions& c : candidates) {
    ForecastScore s = ScoreForecast(training, horizon_steps, warmup, c);
    const double headroom = std::max(0.0, NearestRankQuantile(s.errors, coverage));
    double over = 0;
    for (double e : s.errors)
      over += std::max(0.0, headroom - e);  // forecast + headroom - actual
    if (s.points > 0) over /= static_cast<double>(s.points);
    if (!have || over < best.mean_over) {
      best.options = c;
      best.score = std::move(s);
      best.headroom = headroom;
      best.mean_over = over;
      have = true;
    }
  }
  return best;
}

}  // namespace gpu_autoscaler::autoscale
