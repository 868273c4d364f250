// File: src/autoscale/predictive_floor.h
//
// Predictive scaling's decision, pure: from a pool's demand history
// (demand_history.h), the predictive options and the pool's shape, the floor
// of nodes to keep ready or launching (PoolSnapshot::floor_nodes in
// node_pool_decide.h). The forecast is the peak demand (GPUs) over the steps
// from now to now + horizon; the target adds the headroom; the floor is that
// many GPUs in nodes of the pool's cheapest offering, at most maxNodes and
// what the cost ceiling pays for. Auto tunes the method and its headroom on
// the history (TuneDemandForecast); a named method forecasts with fixed
// parameters. The GPUNodePool controller and the trace replay's
// --through-controller path both call it.
//
//   PredictiveOptions o{.step_seconds = 300, .season_seconds = 86400, .horizon_seconds = 90};
//   PredictiveFloor f = DecidePredictiveFloor(history, o, pool_spec, now_unix);
//   snapshot.floor_nodes = f.predicting ? f.floor_nodes : 0;
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "autoscale/demand_forecast.h"
#include "autoscale/demand_history.h"
#include "autoscale/node_pool.h"

namespace gpu_autoscaler::autoscale {

struct PredictiveOptions {
  int64_t step_seconds = 300;
  int64_t season_seconds = 86400;
  int64_t horizon_seconds = 90;
  // nullopt: Auto, TuneDemandForecast on the history picks the method and
  // adds the headroom that covered its errors at `coverage` of the points.
  std::optional<DemandForecastOptions> method{};
  double coverage = 0.9;
  double headroom_gpus = 0;             // added to the forecast
  double headroom_fraction = 0;         // of the forecast, added
  int64_t min_history_seconds = 86400;  // observed points × step before it acts
};

struct PredictiveFloor {
  bool predicting = false;  // false: no floor (reason says why)
  std::string reason{};     // Forecasting, NotEnoughHistory, StaleHistory
  std::string message{};
  std::string method{};  // DescribeForecast of the method used
  int horizon_steps = 0;
  double forecast_gpus = 0;  // peak forecast over the horizon
  double headroom_gpus = 0;  // all headroom added
  double target_gpus = 0;
  int floor_nodes = 0;
  std::string limited_by{};   // "", MaxNodes, CostCeiling, NoOffering
  size_t history_points = 0;  // observed points
};

PredictiveFloor DecidePredictiveFloor(const DemandHistory& history,
                                      const PredictiveOptions& options, const NodePoolSpec& pool,
                                      int64_t now_unix);

// The target and the floor for a peak forecast: the headroom (`tuned` plus
// the options') added, converted by FloorNodesForGpus. DecidePredictiveFloor
// ends with it; the trace replay, which forecasts online, calls it directly.
PredictiveFloor FloorForForecast(double peak_gpus, double tuned_headroom,
                                 const PredictiveOptions& options, const NodePoolSpec& pool);

// `gpus` in nodes of the cheapest priced offering of an enabled tier (by
// node price, as DecidePool grows the floor), at most maxNodes and
// floor(costPerHourCeiling / price).
struct FloorNodes {
  int nodes = 0;
  std::string limited_by{};
};
FloorNodes FloorNodesForGpus(double gpus, const NodePoolSpec& pool);

// Gaps (NaN) filled with the value one season earlier when there is one,
// else the previous value, else 0.
std::vector<double> FillDemandGaps(const std::vector<double>& points, int season_steps);

}  // namespace gpu_autoscaler::autoscale
