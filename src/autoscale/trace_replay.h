// File: src/autoscale/trace_replay.h
//
// Discrete-event replay of a GPU workload against a simulated cloud, to compare
// autoscaling strategies. Pods arrive and depart at trace times; the cloud
// delivers a requested node after `provisioning_delay` and bills it from the
// request until it is removed; a placement step binds pending pods onto ready
// nodes (first fit in node order, a fractional pod onto the fullest GPU it fits).
//
// The model is a GPU-count model, not the full placement engine (cluster.h):
// one homogeneous pool of nodes with `gpus_per_node` GPUs of 1000 milli-GPU
// each; a pod takes `num_gpu` GPUs on one node with `gpu_milli` free on each;
// CPU and memory are not modelled (GPU nodes have them in proportion). The full
// engine scores heterogeneous clusters of fixed size; here the pool changes
// size on every event and a replay of the openb trace must stay interactive.
//
// Strategies:
//   reactive:   pending pods that fit nowhere (ready or in-flight capacity) get
//               new nodes at once, as Cluster Autoscaler and Karpenter do; a node
//               empty for `scale_down_delay` is removed.
//   predictive: reactive, plus every `step` it keeps ready + in-flight GPUs at
//               the forecast peak demand of the next ceil((delay + step) / step)
//               steps plus `headroom_gpus`; empty nodes above that target go
//               after `predictive_scale_down_delay` (default 0: at once).
//   oracle:     sees each arrival `provisioning_delay` early and provisions for
//               it then, so the node is ready when the pod arrives; removes a
//               node as soon as it is empty and no foreseen pod needs it. It
//               plans on current free capacity (it does not count on GPUs freed
//               by departures inside the look-ahead), so it is a near lower bound.
//
//   GPU_ASSIGN_OR_RETURN(ReplayResult r, ReplayTrace(workload, ScalingStrategy::kReactive, {}));
//   std::printf("%.1f GPU-hours, p99 pending %.0f s\n", r.gpu_hours, r.pending_p99);
//
// The replay ends when the last pod leaves: node time after that is not billed.
// Time is the workload's (seconds); nothing reads a clock. With
// `through_controller` the strategies decide with the controller's DecidePool.
// Thread-safety: pure; concurrent replays of one workload are fine.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "autoscale/demand_forecast.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

struct ReplayPod {
  int64_t arrival = 0;
  int64_t departure = 0;  // >= arrival
  int num_gpu = 1;
  int gpu_milli = 1000;  // per GPU, 1..1000
  // true: the pod runs for (departure - arrival) from when it is bound (a batch
  // task); false: it leaves at `departure` whether or not it ran (a serving
  // replica the service no longer wants), a pending one is then cancelled.
  bool runs_for_duration = true;
};

struct ReplayWorkload {
  std::string name{};
  std::vector<ReplayPod> pods{};  // sorted by arrival
};

enum class ScalingStrategy : uint8_t { kReactive, kPredictive, kOracle };
std::string_view ScalingStrategyName(ScalingStrategy s);

struct ReplayOptions {
  int gpus_per_node = 8;
  int64_t provisioning_delay = 90;  // seconds from request to a ready node
  int64_t scale_down_delay = 600;   // an empty node goes after this long (reactive, predictive)
  int min_nodes = 0;
  int max_nodes = -1;  // -1: unlimited
  int64_t step = 300;  // forecast step and time-series resolution
  // Metrics cover pods arriving at or after this time and node time from it.
  int64_t report_from = std::numeric_limits<int64_t>::min();
  double price_per_gpu_hour = 0;
  DemandForecastOptions forecast{};  // predictive
  double headroom_gpus = 0;          // predictive
  // Predictive: an empty node above the forecast target goes after this long
  // (the forecast, not a fixed cool-down, guards against the next arrivals).
  int64_t predictive_scale_down_delay = 0;
  // true: each strategy decides through the GPUNodePool controller's own
  // decision (DecidePool, node_pool_decide.h) instead of the replay's
  // first-fit model: the batching window (idle `batch_idle`, at most
  // `batch_max` seconds), the placement engine's scale-up plan, and
  // consolidation of nodes empty for consolidateAfter (the scale-down delay);
  // predictive sets the pool's floor to the forecast target, the oracle adds
  // the foreseen pods to the pending ones.
  bool through_controller = false;
  int64_t batch_idle = 1;
  int64_t batch_max = 10;
  bool record_series = true;
  // Called now and then with the fraction of events done (0..1).
  std::function<void(double)> progress{};
};

// One point per step: the state at `time`.
struct ReplayPoint {
  int64_t time = 0;
  double demand_gpus = 0;    // Σ num_gpu × gpu_milli / 1000 of running and pending pods
  int ready_gpus = 0;        // GPUs on ready nodes
  int provisioned_gpus = 0;  // ready plus in-flight (billed)
};

struct ReplayResult {
  ScalingStrategy strategy = ScalingStrategy::kReactive;
  // Billed node time, from request to removal, inside the report window; the
  // replay ends when the last pod leaves (end_time).
  double gpu_hours = 0;
  double demand_gpu_hours = 0;         // Σ pod demand × run time, inside the report window
  double cost = 0;                     // gpu_hours × price_per_gpu_hour
  int64_t pods = 0;                    // GPU pods arriving in the report window
  int64_t pods_delayed = 0;            // of those, pods that waited at all
  int64_t pods_multi_gpu = 0;          // of those, pods asking for more than one GPU
  int64_t pods_multi_gpu_delayed = 0;  // ... that waited
  int64_t pods_unplaceable = 0;  // need more GPUs than a node has (left out of the pending stats)
  int64_t pods_cancelled = 0;    // left while pending (runs_for_duration = false)
  double pending_p50 = 0;        // seconds from arrival to bound (or cancelled)
  double pending_p99 = 0;
  double pending_mean = 0;
  double pending_max = 0;
  int64_t nodes_requested = 0;
  int peak_nodes = 0;
  int64_t end_time = 0;  // when the last pod left
  std::vector<ReplayPoint> series{};
};

// Fails on invalid options (gpus_per_node < 1, negative delays, step < 1) or a
// pod with departure < arrival or gpu_milli outside 1..1000.
Result<ReplayResult> ReplayTrace(const ReplayWorkload& workload, ScalingStrategy strategy,
                                 const ReplayOptions& options);

// Steps ahead the predictive strategy provisions for: ceil((delay + step) / step).
int PredictiveHorizonSteps(const ReplayOptions& options);

// The evaluation protocol: the first `train_fraction` of the pods (by arrival)
// is the training part; the forecaster and its headroom are tuned on the
// demand peaks before the split only, and the report covers the rest.
struct ReplayTraining {
  int64_t split_time = 0;  // report_from for the evaluation
  int64_t training_steps = 0;
  TunedDemandForecast tuned;
};
// Fails when the step does not divide a day (the season) or there are no pods.
Result<ReplayTraining> TrainPredictive(const ReplayWorkload& workload, const ReplayOptions& options,
                                       double train_fraction, double coverage);

// The demand (GPUs) a workload would have with no waiting: the peak of
// Σ num_gpu × gpu_milli / 1000 over each step [start + k·step, +step), up to `end`.
std::vector<double> DemandPeaks(const ReplayWorkload& workload, int64_t start, int64_t end,
                                int64_t step);

}  // namespace gpu_autoscaler::autoscale
