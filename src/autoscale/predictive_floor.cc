#include "autoscale/predictive_floor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace gpu_autoscaler::autoscale {
namespace {

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

std::string Hours(int64_t seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4gh", static_cast<double>(seconds) / 3600.0);
  return buf;
}

}  // namespace

std::vector<double> FillDemandGaps(const std::vector<double>& points, int season_steps) {
  std::vector<double> out(points.size());
  double last = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    if (!std::isnan(points[i])) {
      out[i] = points[i];
    } else if (season_steps > 0 && i >= static_cast<size_t>(season_steps)) {
      out[i] = out[i - static_cast<size_t>(season_steps)];
    } else {
      out[i] = last;
    }
    last = out[i];
  }
  return out;
}

FloorNodes FloorNodesForGpus(double gpus, const NodePoolSpec& pool) {
  FloorNodes out;
  if (!(gpus > 0)) return out;
  int best_gpus = 0;
  double best_price = 0;
  for (const PoolInstanceType& it : pool.instance_types) {
    for (int t = 0; t < kTierCount; ++t) {
      if (!pool.tiers[t].enabled || !it.price[t] || it.gpu_count < 1) continue;
      if (best_gpus == 0 || *it.price[t] < best_price) {
        best_gpus = it.gpu_count;
        best_price = *it.price[t];
      }
    }
  }
  if (best_gpus == 0) {
    out.limited_by = "NoOffering";
    return out;
  }
  const double wanted = std::ceil(gpus / best_gpus - 1e-9);
  out.nodes = static_cast<int>(std::min(wanted, 1e6));
  if (out.nodes > pool.max_nodes) {
    out.nodes = pool.max_nodes;
    out.limited_by = "MaxNodes";
  }
  if (pool.cost_per_hour_ceiling && best_price > 0) {
    const int affordable = static_cast<int>(
        std::min(std::floor(*pool.cost_per_hour_ceiling / best_price + 1e-9), 1e6));
    if (out.nodes > affordable) {
      out.nodes = affordable;
      out.limited_by = "CostCeiling";
    }
  }
  out.nodes = std::max(out.nodes, 0);
  return out;
}

PredictiveFloor DecidePredictiveFloor(const DemandHistory& history, const PredictiveOptions& o,
                                      const NodePoolSpec& pool, int64_t now_unix) {
  PredictiveFloor out;
  out.history_points = history.observed();
  const int64_t step = std::max<int64_t>(o.step_seconds, 1);
  const int season_steps = static_cast<int>(std::max<int64_t>(o.season_seconds / step, 1));
  const int64_t have_seconds = static_cast<int64_t>(out.history_points) * step;
  if (history.gpus.empty() || have_seconds < o.min_history_seconds) {
    out.reason = "NotEnoughHistory";
    out.message = std::to_string(out.history_points) + " points (" + Hours(have_seconds) +
                  ") of demand history, minHistory is " + Hours(o.min_history_seconds);
    return out;
  }
  // Forecast(h) is the step starting at end + (h - 1) × step: cover the steps
  // from now's to now + horizon's.
  const int64_t end_index = history.end() / step;
  const int64_t first = std::max<int64_t>(1, FloorDiv(now_unix, step) - end_index + 1);
  const int64_t last = std::max(
      first, FloorDiv(now_unix + std::max<int64_t>(o.horizon_seconds, 0), step) - end_index + 1);
  if (first > season_steps) {
    out.reason = "StaleHistory";
    out.message =
        "the last demand point is more than a season (" + Hours(o.season_seconds) + ") old";
    return out;
  }
  const std::vector<double> series = FillDemandGaps(history.gpus, season_steps);
  DemandForecastOptions method;
  double tuned_headroom = 0;
  if (o.method) {
    method = *o.method;
    method.holt_winters.season_length = season_steps;
  } else {
    TunedDemandForecast tuned =
        TuneDemandForecast(series, static_cast<int>(last), season_steps, o.coverage);
    method = tuned.options;
    tuned_headroom = tuned.headroom;
  }
  DemandForecaster forecaster(method);
  for (double v : series)
    forecaster.Observe(v);
  double peak = 0;
  for (int64_t h = first; h <= last; ++h)
    peak = std::max(peak, forecaster.Forecast(static_cast<int>(h)));

  PredictiveFloor f = FloorForForecast(peak, tuned_headroom, o, pool);
  f.history_points = out.history_points;
  f.method = DescribeForecast(method);
  f.horizon_steps = static_cast<int>(last - first + 1);
  char buf[200];
  std::snprintf(buf, sizeof(buf),
                "%s forecasts %.3g GPUs over the next %d steps; %.3g with headroom: %d nodes",
                f.method.c_str(), peak, f.horizon_steps, f.target_gpus, f.floor_nodes);
  f.message = buf;
  if (!f.limited_by.empty()) f.message += " (limited by " + f.limited_by + ")";
  return f;
}

PredictiveFloor FloorForForecast(double peak_gpus, double tuned_headroom,
                                 const PredictiveOptions& o, const NodePoolSpec& pool) {
  PredictiveFloor out;
  out.predicting = true;
  out.reason = "Forecasting";
  out.forecast_gpus = std::max(peak_gpus, 0.0);
  out.headroom_gpus = std::max(tuned_headroom, 0.0) + std::max(o.headroom_gpus, 0.0) +
                      std::max(o.headroom_fraction, 0.0) * out.forecast_gpus;
  out.target_gpus = out.forecast_gpus + out.headroom_gpus;
  const FloorNodes nodes = FloorNodesForGpus(out.target_gpus, pool);
  out.floor_nodes = nodes.nodes;
  out.limited_by = nodes.limited_by;
  return out;
}

}  // namespace gpu_autoscaler::autoscale
