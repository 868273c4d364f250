// File: src/cost/forecast.h
//
// End-of-period spend forecasts from the spend so far, bucketed (e.g. hourly)
// from the period start. Two models:
//   linear:       spent + (spent / elapsed) x remaining time (run rate);
//   Holt-Winters: additive level + trend + season (e.g. 24 hourly buckets, a
//                 day) fitted to the buckets, its forecasts summed over the
//                 remaining buckets. With fewer than two seasons of data it
//                 degrades to Holt's linear trend, and with fewer than two
//                 buckets to the run rate.
//
//   PeriodForecast f = ForecastPeriod(hourly, 3600, period, now);
//   status.forecast = f.holt_winters;
//
// Forecasts never go below the spend so far (spend only grows).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>

#include "common/holt_winters.h"
#include "cost/budget.h"

namespace gpu_autoscaler::cost {

// The model itself is common/holt_winters.h, shared with the GPU demand forecast.
using HoltWintersOptions = gpu_autoscaler::HoltWintersOptions;

// Sum of the next `horizon` one-step-ahead forecasts of the per-bucket series
// (each clamped at 0). Exposed for tests; see ForecastPeriod.
double HoltWintersFutureSum(std::span<const double> buckets, double horizon,
                            const HoltWintersOptions& options = {});

struct PeriodForecast {
  double spent = 0;
  double linear = 0;
  double holt_winters = 0;
};

// `buckets[i]` is the spend in [period.start + i*bucket_seconds, +bucket_seconds);
// buckets up to `now` are complete except possibly the last.
PeriodForecast ForecastPeriod(std::span<const double> buckets, int64_t bucket_seconds,
                              PeriodWindow period, int64_t now,
                              const HoltWintersOptions& options = {});

}  // namespace gpu_autoscaler::cost
