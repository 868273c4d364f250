// File: controllers/gpu_node_pool_internal.h
//
// What the GPUNodePool reconciler (gpu_node_pool_controller.cc: caches,
// observation of Nodes and pods, metrics) and one pass of it over one pool
// (gpu_node_pool_pass.cc: read the cloud, decide, apply, write the status)
// share. Included by those two files only.
//
//   return Pass(*this, request.name, std::move(object), generation).Run();
//
// Thread-safety: a Pass runs on the worker that holds its pool's key, and the
// workqueue never runs one key twice at once, so the pool's PoolState is
// touched by one pass at a time. Metrics are prometheus-cpp families (safe).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "autoscale/node_pool_decide.h"
#include "controllers/gpu_node_pool_controller.h"
#include "controllers/gpu_node_pool_predictive.h"
#include "controllers/gpu_node_pool_scale_down.h"
#include "kube/event_recorder.h"

namespace gpu_autoscaler::controllers {
namespace node_pool {

inline constexpr std::string_view kReady = "Ready";
inline constexpr std::string_view kScalingUp = "ScalingUp";
inline constexpr std::string_view kAtLimit = "AtLimit";
inline constexpr std::string_view kProviderError = "ProviderError";
inline constexpr std::string_view kPredicting = "Predicting";
inline constexpr std::string_view kScaleDownSpotRequested = "ScaleDownSpotRequested";

}  // namespace node_pool

struct GpuNodePoolReconciler::Metrics {
  explicit Metrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& actions;
  prometheus::Family<prometheus::Gauge>& pending;
  prometheus::Family<prometheus::Gauge>& nodes;
  prometheus::Family<prometheus::Gauge>& desired;
  prometheus::Family<prometheus::Counter>& interruptions;
  prometheus::Family<prometheus::Counter>& provider_errors;
  prometheus::Family<prometheus::Gauge>& forecast;
  prometheus::Family<prometheus::Gauge>& floor;
  prometheus::Gauge& unservable;
};

struct GpuNodePoolReconciler::PoolState {
  PoolState(Clock::Duration batch_idle, Clock::Duration batch_max)
      : memory(batch_idle, batch_max) {}
  autoscale::PoolMemory memory;  // what the decision carries between passes
  bool restored = false;         // memory seeded from the pool's status (after a restart)
  std::shared_ptr<cloud::NodeGroupProvider> provider;
  std::string provider_pool_shape;  // the spec the provider was built from (simulated groups)
  // Actions taken whose status write failed (a conflict with a stale cached
  // object): carried into the next write, so a Terminate is never forgotten.
  std::vector<nlohmann::json> unwritten_actions;
  // Ids of Terminate entries this process wrote: the informers may still show
  // the Node and the pool from before the write for a pass.
  std::deque<std::string> recorded_terminations;
  PoolPredictor predictor;  // spec.predictive: the demand history and the floor
};

// One reconcile of one pool. Every action taken is recorded (an Event, a
// metric and a status.recentActions entry) and the status is written once,
// by Finish, which every step that stops early goes through.
class GpuNodePoolReconciler::Pass {
 public:
  Pass(GpuNodePoolReconciler& reconciler, std::string pool, nlohmann::json object,
       int64_t generation);
  reconcile::ReconcileResult Run();

 private:
  using Outcome = std::optional<reconcile::ReconcileResult>;  // set: the pass stops here

  Outcome BuildProvider();  // 2. credentials, and the provider for the pool's shape
  Outcome ObserveGroups();  // 3. the cloud's groups and instances
  void CarryOut(const TerminationIntent& intent);
  void Predict();
  void ApplyShortagesAndInterruptions(const autoscale::PoolPlan& plan);
  Outcome ScaleUp(const autoscale::PoolPlan& plan, bool* scaled_up);
  void Evict(const autoscale::PoolPlan& plan);
  void Terminate(const autoscale::PoolPlan& plan);
  int Cordon(const autoscale::PoolPlan& plan);  // nodes newly cordoned
  void WriteTotals(const autoscale::PoolPlan& plan, bool scaled_up);

  void SetCondition(std::string_view type, bool value, std::string reason, std::string message);
  void Record(std::string action, autoscale::CapacityTier tier, int count, std::string message,
              bool warning = false, std::string id = "");
  const std::string& TypeName(int group) const;
  std::string OfferingText(int group) const;
  Status DeleteTerminatedNodes();
  // Writes the status when it changed, with Events for condition changes.
  reconcile::ReconcileResult Finish(reconcile::ReconcileResult result);

  GpuNodePoolReconciler& r_;
  const std::string pool_;
  const nlohmann::json object_;
  const int64_t generation_;
  const ParsedNodePool parsed_;
  const autoscale::NodePoolSpec& spec_;  // parsed_.spec
  PoolState& st_;
  const Clock::TimePoint now_;
  const Clock::WallTime wall_;
  const int64_t now_unix_;
  const kube::EventObject event_object_;
  const nlohmann::json old_status_;
  nlohmann::json status_;
  nlohmann::json actions_;                     // status.recentActions, newest first
  std::vector<nlohmann::json> taken_;          // this pass's actions (and unwritten ones)
  std::vector<TerminationIntent> terminated_;  // Nodes to delete once recorded
  bool replan_soon_ = false;                   // a resize lost to someone else's: plan again soon
  cloud::NodeGroupProvider* provider_ = nullptr;
  autoscale::PoolSnapshot snap_;
  std::map<std::string, int> group_of_provider_id_;
  PredictivePass predicted_;
  const autoscale::DecideOptions decide_options_;
};

}  // namespace gpu_autoscaler::controllers
