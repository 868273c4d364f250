// File: bench/soak_metrics.h
//
// What the manager soak (bench/manager_soak.cc) computes from its samples:
// Prometheus text exposition parsed into samples, per-interval histogram
// quantiles from bucket deltas (as PromQL's histogram_quantile over a rate),
// and the least-squares slope of RSS over time.
//
//   auto now = ParseExposition(body);
//   auto buckets = HistogramBuckets(now, "controller_runtime_reconcile_time_seconds",
//                                   "controller");
//   Buckets step = Delta(buckets["cost"], before["cost"]);
//   double p99 = Quantile(step, 0.99);        // NaN when nothing was observed
//   double mib_per_min = Slope(minutes, rss);
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gpu_autoscaler::bench {

struct MetricSample {
  std::string name{};
  std::map<std::string, std::string> labels{};
  double value = 0;
};

// Every sample line of a text exposition (comments and malformed lines skipped).
std::vector<MetricSample> ParseExposition(std::string_view text);

// Sum of the samples named `name` whose labels include every pair in `match`.
double SumSamples(const std::vector<MetricSample>& samples, std::string_view name,
                  const std::map<std::string, std::string>& match = {});

// Cumulative bucket counts of one histogram series, by upper bound ("+Inf" is
// infinity), sorted by bound.
using Buckets = std::vector<std::pair<double, double>>;

// The `<family>_bucket` series keyed by the value of `by_label`.
std::map<std::string, Buckets> HistogramBuckets(const std::vector<MetricSample>& samples,
                                                std::string_view family, std::string_view by_label);

// now - before, bound by bound (a bound missing from `before` counts from 0).
Buckets Delta(const Buckets& now, const Buckets& before);
// a + b, bound by bound.
Buckets Add(const Buckets& a, const Buckets& b);
// Observations in `b` (its +Inf bucket).
double Count(const Buckets& b);

// The q-quantile by linear interpolation inside the bucket it falls in, as
// histogram_quantile does; the highest finite bound when it falls in +Inf;
// NaN when there are no observations.
double Quantile(const Buckets& b, double q);

// Least-squares slope of y over x; 0 with fewer than two distinct x.
double Slope(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace gpu_autoscaler::bench
