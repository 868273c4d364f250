#include "common/holt_winters.h"

#include <numeric>

namespace gpu_autoscaler {

HoltWinters::HoltWinters(const HoltWintersOptions& options)
    : o_(options), m_(options.season_length > 1 ? static_cast<size_t>(options.season_length) : 0) {
  if (m_ > 0) first_seasons_.reserve(2 * m_);
}

void HoltWinters::Observe(double x) {
  const double a = o_.alpha, b = o_.beta, g = o_.gamma;
  if (seasonal_) {
    const size_t slot = n_ % m_;  // holds season[n - m]
    const double prev = level_;
    level_ = a * (x - season_[slot]) + (1 - a) * (level_ + trend_);
    trend_ = b * (level_ - prev) + (1 - b) * trend_;
    season_[slot] = g * (x - level_) + (1 - g) * season_[slot];
    ++n_;
    return;
  }
  // Holt's linear trend.
  if (n_ == 0) {
    level_ = x;
  } else {
    if (n_ == 1) trend_ = x - level_;
    const double prev = level_;
    level_ = a * x + (1 - a) * (level_ + trend_);
    trend_ = b * (level_ - prev) + (1 - b) * trend_;
  }
  ++n_;
  if (m_ == 0) return;
  first_seasons_.push_back(x);
  if (n_ < 2 * m_) return;
  // Two seasons seen: initialise the seasonal model from them.
  const std::vector<double>& s = first_seasons_;
  const double mean1 = std::accumulate(s.begin(), s.begin() + m_, 0.0) / m_;
  const double mean2 = std::accumulate(s.begin() + m_, s.end(), 0.0) / m_;
  level_ = mean1;
  trend_ = (mean2 - mean1) / m_;
  season_.assign(m_, 0);
  for (size_t i = 0; i < m_; ++i)
    season_[i] = s[i] - mean1;
  for (size_t t = m_; t < 2 * m_; ++t) {
    const size_t slot = t % m_;
    const double prev = level_;
    level_ = a * (s[t] - season_[slot]) + (1 - a) * (level_ + trend_);
    trend_ = b * (level_ - prev) + (1 - b) * trend_;
    season_[slot] = g * (s[t] - level_) + (1 - g) * season_[slot];
  }
  seasonal_ = true;
  first_seasons_.clear();
  first_seasons_.shrink_to_fit();
}

double HoltWinters::Forecast(int h) const {
  if (n_ == 0) return 0;
  const double trend_part = level_ + h * trend_;
  if (!seasonal_) return trend_part;
  // The season of the step h after the last: time n - 1 + h, seen one season ago.
  return trend_part + season_[(n_ - 1 + static_cast<size_t>(h)) % m_];
}

}  // namespace gpu_autoscaler
