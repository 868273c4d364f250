#include "profiling/histogram.h"

#include <algorithm>
#include <cmath>

namespace gpu_autoscaler::profiling {
namespace {
// VPA renormalises once the decay exponent would exceed this.
constexpr int64_t kMaxDecayExponent = 100;
// Bounds that keep the reference arithmetic inside int64 (2^62 s is 1.5e11 years).
constexpr int64_t kMaxTimestamp = int64_t{1} << 62;
constexpr int64_t kMaxHalfLife = int64_t{1} << 40;
}  // namespace

ExponentialBuckets::ExponentialBuckets(double max_value, double first_bucket_size, double ratio)
    : first_(first_bucket_size), ratio_(ratio), log_ratio_(std::log(ratio)) {
  // VPA: ceil(log(max * (ratio - 1) / first + 1) / log(ratio)) + 1.
  num_buckets_ =
      static_cast<int>(std::ceil(std::log(max_value * (ratio - 1) / first_ + 1) / log_ratio_)) + 1;
}

int ExponentialBuckets::FindBucket(double value) const {
  if (!(value >= first_)) return 0;  // also NaN
  const double b = std::log(value * (ratio_ - 1) / first_ + 1) / log_ratio_;
  if (b >= num_buckets_ - 1) return num_buckets_ - 1;
  return static_cast<int>(b);
}

double ExponentialBuckets::BucketStart(int bucket) const {
  if (bucket <= 0) return 0;
  return first_ * (std::pow(ratio_, bucket) - 1) / (ratio_ - 1);
}

Histogram::Histogram(ExponentialBuckets buckets)
    : buckets_(buckets),
      weights_(static_cast<size_t>(buckets.num_buckets()), 0.0),
      min_bucket_(buckets.num_buckets() - 1),
      max_bucket_(0) {}

void Histogram::AddSample(double value, double weight) {
  if (!(weight > 0)) return;
  const int b = buckets_.FindBucket(value);
  weights_[static_cast<size_t>(b)] += weight;
  total_weight_ += weight;
  if (weights_[static_cast<size_t>(b)] >= kHistogramEpsilon) {
    min_bucket_ = std::min(min_bucket_, b);
    max_bucket_ = std::max(max_bucket_, b);
  }
}

void Histogram::SubtractSample(double value, double weight) {
  if (!(weight > 0)) return;
  const size_t b = static_cast<size_t>(buckets_.FindBucket(value));
  const double removed = std::min(weight, weights_[b]);
  weights_[b] -= removed;
  total_weight_ = std::max(0.0, total_weight_ - removed);
  if (weights_[b] < kHistogramEpsilon) {
    total_weight_ = std::max(0.0, total_weight_ - weights_[b]);
    weights_[b] = 0;
    UpdateMinMax();
  }
}

void Histogram::Scale(double factor) {
  if (!(factor >= 0)) return;
  for (double& w : weights_)
    w *= factor;
  total_weight_ *= factor;
  UpdateMinMax();
}

void Histogram::Clear() {
  std::fill(weights_.begin(), weights_.end(), 0.0);
  total_weight_ = 0;
  min_bucket_ = buckets_.num_buckets() - 1;
  max_bucket_ = 0;
}

void Histogram::UpdateMinMax() {
  const int n = buckets_.num_buckets();
  int lo = 0;
  while (lo < n && weights_[static_cast<size_t>(lo)] < kHistogramEpsilon)
    ++lo;
  if (lo == n) {
    min_bucket_ = n - 1;
    max_bucket_ = 0;
    return;
  }
  int hi = n - 1;
  while (weights_[static_cast<size_t>(hi)] < kHistogramEpsilon)
    --hi;
  min_bucket_ = lo;
  max_bucket_ = hi;
}

std::vector<std::pair<int, double>> Histogram::NonEmptyBuckets() const {
  std::vector<std::pair<int, double>> out;
  for (int b = 0; b < buckets_.num_buckets(); ++b) {
    const double w = weights_[static_cast<size_t>(b)];
    if (w > 0) out.emplace_back(b, w);
  }
  return out;
}

void Histogram::LoadBuckets(std::span<const std::pair<int, double>> buckets) {
  Clear();
  for (const auto& [b, w] : buckets) {
    if (b < 0 || b >= buckets_.num_buckets() || !(w > 0) || !std::isfinite(w)) continue;
    weights_[static_cast<size_t>(b)] += w;
    total_weight_ += w;
  }
  UpdateMinMax();
}

bool Histogram::IsEmpty() const {
  return weights_[static_cast<size_t>(min_bucket_)] < kHistogramEpsilon;
}

double Histogram::Percentile(double p) const {
  if (IsEmpty()) return 0;
  p = std::clamp(p, 0.0, 1.0);
  const double threshold = p * total_weight_;
  double partial = 0;
  int b = min_bucket_;
  for (; b < max_bucket_; ++b) {
    partial += weights_[static_cast<size_t>(b)];
    if (partial >= threshold) break;
  }
  // The end of the bucket; the last bucket has no end, so its start.
  if (b < buckets_.num_buckets() - 1) return buckets_.BucketStart(b + 1);
  return buckets_.BucketStart(b);
}

DecayingHistogram::DecayingHistogram(ExponentialBuckets buckets, int64_t half_life_seconds)
    : histogram_(buckets), half_life_(std::clamp<int64_t>(half_life_seconds, 1, kMaxHalfLife)) {}

double DecayingHistogram::DecayFactor(int64_t timestamp) {
  timestamp = std::clamp(timestamp, -kMaxTimestamp, kMaxTimestamp);
  if (timestamp > reference_ + kMaxDecayExponent * half_life_) {
    // Round the new reference to a whole number of half-lives (Go's
    // time.Round: halves away from zero) so the rescale is a power of two.
    const int64_t half = half_life_ / 2;
    const int64_t rounded =
        (timestamp >= 0 ? (timestamp + half) / half_life_ : (timestamp - half) / half_life_) *
        half_life_;
    const int64_t exponent = (reference_ - rounded) / half_life_;
    histogram_.Scale(std::ldexp(1.0, static_cast<int>(std::max<int64_t>(exponent, -2000))));
    reference_ = rounded;
  }
  return std::exp2(static_cast<double>(timestamp - reference_) / static_cast<double>(half_life_));
}

void DecayingHistogram::Restore(int64_t reference_timestamp,
                                std::span<const std::pair<int, double>> buckets) {
  reference_ = std::clamp(reference_timestamp, -kMaxTimestamp, kMaxTimestamp);
  histogram_.LoadBuckets(buckets);
}

void DecayingHistogram::AddSample(double value, double weight, int64_t timestamp) {
  histogram_.AddSample(value, weight * DecayFactor(timestamp));
}

void DecayingHistogram::SubtractSample(double value, double weight, int64_t timestamp) {
  histogram_.SubtractSample(value, weight * DecayFactor(timestamp));
}

}  // namespace gpu_autoscaler::profiling
