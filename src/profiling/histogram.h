// File: src/profiling/histogram.h
//
// Usage histograms in the style of the Kubernetes VPA recommender
// (vertical-pod-autoscaler/pkg/recommender/util/histogram*.go): exponential
// buckets, weighted samples, percentile queries, and a decaying variant whose
// sample weights double every half-life, so recent usage counts more.
//
//   ExponentialBuckets buckets = ExponentialBuckets::GpuMemoryBytes();
//   DecayingHistogram h(buckets, /*half_life_seconds=*/24 * 3600);
//   h.AddSample(34e9, /*weight=*/1, /*timestamp=*/1662858720);
//   double p90 = h.Percentile(0.9);  // the end of the bucket holding the 90th percentile
//
// Bucket b covers [start(b), start(b+1)) with start(0) = 0 and
// start(b) = first * (ratio^b - 1) / (ratio - 1): the first bucket is `first`
// wide and each next one `ratio` times wider; the last bucket is open-ended.
// A percentile is the end of the bucket where the cumulative weight first
// reaches p × total, so it over-estimates by at most one bucket (5 %).
//
// Decay as VPA does it: a sample at time t weighs w × 2^((t − ref)/half_life)
// against a reference time `ref`. Weights grow with t rather than old weights
// shrinking; when t passes ref + 100 half-lives, the reference moves to t
// (rounded to a whole number of half-lives) and every bucket is scaled by
// 2^(old_ref − new_ref)/half_life, which keeps the numbers finite.
// Timestamps are clamped to ±2^62 s and the half-life to [1 s, 2^40 s].
//
// Thread-safety: values; not safe for concurrent mutation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace gpu_autoscaler::profiling {

// Weights below this count as empty: VPA's epsilon, 0.001 × its minimum
// sample weight of 0.1.
inline constexpr double kHistogramEpsilon = 1e-4;
// VPA's DefaultHistogramBucketSizeGrowth: each bucket 5 % wider than the last.
inline constexpr double kBucketGrowthRatio = 1.05;
inline constexpr int64_t kDefaultHalfLifeSeconds = 24 * 3600;

class ExponentialBuckets {
 public:
  // Buckets from 0 to at least `max_value`; requires max_value > 0,
  // first_bucket_size > 0 and ratio > 1.
  ExponentialBuckets(double max_value, double first_bucket_size, double ratio);

  // VPA's CPU histogram: 0.001 core first bucket, up to 1000 cores.
  static ExponentialBuckets CpuCores() { return {1000.0, 0.001, kBucketGrowthRatio}; }
  // VPA's memory histogram: 10 MB (1e7 bytes) first bucket, up to 1 TB.
  static ExponentialBuckets MemoryBytes() { return {1e12, 1e7, kBucketGrowthRatio}; }
  // GPU memory in bytes: VPA's memory buckets.
  static ExponentialBuckets GpuMemoryBytes() { return MemoryBytes(); }
  // A fraction of a whole (GPU utilisation, memory utilisation of a limit):
  // 0.001 first bucket (0.1 %), up to 1, growing by VPA's 5 %.
  static ExponentialBuckets Fraction() { return {1.0, 0.001, kBucketGrowthRatio}; }

  int num_buckets() const { return num_buckets_; }
  // The bucket holding `value`: 0 below the first bucket's end, the last
  // bucket at or above its start.
  int FindBucket(double value) const;
  double BucketStart(int bucket) const;
  double first_bucket_size() const { return first_; }
  double ratio() const { return ratio_; }

 private:
  double first_;
  double ratio_;
  double log_ratio_;
  int num_buckets_;
};

// Weighted samples in exponential buckets.
class Histogram {
 public:
  explicit Histogram(ExponentialBuckets buckets);

  void AddSample(double value, double weight);  // negative weights are ignored
  // Removes weight from `value`'s bucket (not below zero); a bucket left
  // under kHistogramEpsilon is emptied.
  void SubtractSample(double value, double weight);
  void Scale(double factor);  // factor >= 0
  void Clear();

  bool IsEmpty() const;
  double total_weight() const { return total_weight_; }
  // 0 when empty; `p` is clamped to [0, 1].
  double Percentile(double p) const;
  const ExponentialBuckets& buckets() const { return buckets_; }
  double BucketWeight(int bucket) const { return weights_[static_cast<size_t>(bucket)]; }
  // The buckets holding weight, ascending, as (bucket, weight): a checkpoint.
  std::vector<std::pair<int, double>> NonEmptyBuckets() const;
  // Replaces every weight with `buckets` (as NonEmptyBuckets gave them);
  // entries out of range or not > 0 (NaN included) are skipped.
  void LoadBuckets(std::span<const std::pair<int, double>> buckets);

 private:
  void UpdateMinMax();

  ExponentialBuckets buckets_;
  std::vector<double> weights_;
  double total_weight_ = 0;
  int min_bucket_;  // lowest bucket with weight >= epsilon (num_buckets-1 when none)
  int max_bucket_;  // highest such bucket (0 when none)
};

// A Histogram whose samples weigh more the later they are.
class DecayingHistogram {
 public:
  DecayingHistogram(ExponentialBuckets buckets, int64_t half_life_seconds);

  void AddSample(double value, double weight, int64_t timestamp);
  void SubtractSample(double value, double weight, int64_t timestamp);

  bool IsEmpty() const { return histogram_.IsEmpty(); }
  double Percentile(double p) const { return histogram_.Percentile(p); }
  int64_t reference_timestamp() const { return reference_; }
  const Histogram& histogram() const { return histogram_; }
  // Restores a checkpoint: the reference time and the (already decayed)
  // bucket weights that reference_timestamp() and histogram() gave.
  void Restore(int64_t reference_timestamp, std::span<const std::pair<int, double>> buckets);

 private:
  double DecayFactor(int64_t timestamp);

  Histogram histogram_;
  int64_t half_life_;
  int64_t reference_ = 0;
};

}  // namespace gpu_autoscaler::profiling
