// File: controllers/gpu_node_pool_predictive.h
//
// The GPUNodePool controller's predictive scaling (spec.predictive,
// docs/predictive-scaling.md): per pool, the demand history and the floor of
// nodes the forecast asks for. Each pass the controller hands it the pool's
// GPU demand (PoolDemandGpus: bound and pending GPU pods, sharing-aware);
// it keeps the peak of the step under way, and when a step ends appends it
// to the history and writes the history to the pool's checkpoint ConfigMap
// "gpunodepool-<pool>-demand" (key history.json, demand_history.h's text) in
// the manager's namespace: at most once per step. The history is read from
// there when the manager first sees the pool, so it survives restarts and
// leader changes (a manager that loses its lease exits). A checkpoint that
// does not decode is logged, reported (Predicting=False, HistoryReset, and a
// Warning Event) and replaced: the history starts over.
// The floor itself is autoscale::DecidePredictiveFloor, computed once per
// step (or when the spec changes).
//
//   PoolPredictor predictor;
//   PredictivePass pass = predictor.Pass(client, {.ns = ..., .pool = ...}, parsed.predictive,
//                                        parsed.spec, generation, PoolDemandGpus(snap), now_unix,
//                                        wall);
//   snap.floor_nodes = pass.floor_nodes;
//
// Thread-safety: a PoolPredictor has one owner at a time (the pool's worker).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autoscale/demand_history.h"
#include "autoscale/node_pool_decide.h"
#include "autoscale/predictive_floor.h"
#include "common/clock.h"
#include "controllers/gpu_node_pool_spec.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::controllers {

inline constexpr std::string_view kDemandHistoryKey = "history.json";
std::string DemandHistoryConfigMapName(std::string_view pool);

// Σ GPUs asked by the pool's bound pods (not terminating) and its pending GPU
// pods: num_gpu × gpu_milli / 1000 each, as the scale-up plans them.
double PoolDemandGpus(const autoscale::PoolSnapshot& snapshot);

struct PredictivePoolRef {
  std::string ns{};    // where the checkpoint lives (the manager's namespace)
  std::string pool{};  // the GPUNodePool's name
  std::string uid{};   // its uid, for the owner reference
};

struct PredictivePass {
  bool enabled = false;
  std::string reason{};  // the Predicting condition
  std::string message{};
  bool predicting = false;
  int floor_nodes = 0;                   // for PoolSnapshot::floor_nodes
  nlohmann::json status{};               // status.predictive; null when disabled
  std::optional<std::string> warning{};  // a Warning Event to record (HistoryReset)
  autoscale::PredictiveFloor floor{};
};

class PoolPredictor {
 public:
  PredictivePass Pass(kube::RestClient& client, const PredictivePoolRef& ref,
                      const PredictiveSpec& predictive, const autoscale::NodePoolSpec& pool,
                      int64_t generation, double demand_gpus, int64_t now_unix,
                      Clock::WallTime wall);

  const autoscale::DemandHistory& history() const { return history_; }

 private:
  bool loaded_ = false;
  std::string reset_problem_{};  // why the checkpoint was discarded, until enough history
  autoscale::DemandHistory history_{};
  int64_t open_step_ = -1;  // start of the step under way
  double open_peak_ = 0;
  bool unwritten_ = false;  // a closed step the checkpoint lacks
  std::string cache_key_{};
  autoscale::PredictiveFloor cached_{};
  std::string updated_{};  // when cached_ was computed (RFC 3339)
};

}  // namespace gpu_autoscaler::controllers
