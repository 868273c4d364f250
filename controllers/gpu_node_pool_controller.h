// File: controllers/gpu_node_pool_controller.h
//
// The GPUNodePool controller (crds/gpunodepool.yaml, docs/autoscaling.md).
// For each pool it reads, from the manager's shared informers, the pool, the
// Nodes, the Pods and the Budgets; describes the pool's groups through its
// cloud::NodeGroupProvider (built by node_pool_providers.h) into a
// PoolSnapshot; runs the pure decision (autoscale::DecidePool,
// src/autoscale/node_pool_decide.h); and applies its plan:
//   scale-up    SetDesiredSize per (instance type, tier) group, after the
//               batching window; a capacity error marks the offering
//               unavailable for 3 minutes and the plan is redone at once, so
//               spot falls back to on-demand;
//   scale-down  cordon (spec.unschedulable plus the gpu-autoscaler.io/disruption
//               taint), evict through the Eviction API (PDBs enforced by the
//               API server; do-not-disrupt pods are never evicted), then,
//               once the node is drained, the crash-safe termination of
//               gpu_node_pool_scale_down.h: an intent on the Node,
//               TerminateInstances(decrement=true), one Terminate record,
//               the Node deleted; a restart resumes the intents it finds;
//   interruption a node the node agent marked (gpu-autoscaler.io/interruption
//               taint or notice annotation): Event "Interruption", the
//               replacement ordered at once (see node_pool_decide.h), the
//               counter gpu_autoscaler_node_pool_interruption_replacements_total;
//   selection   a pending GPU pod counts for the pool node_pool_selection.h
//               picks (one that can serve it, by weight then name); a pod no
//               pool serves gets a Warning Event NoNodePool and counts in
//               gpu_autoscaler_node_pool_unservable_pending_gpu_pods;
//   predictive  spec.predictive (gpu_node_pool_predictive.h): the pool's demand
//               history in a checkpoint ConfigMap, the forecast's floor of
//               nodes (PoolSnapshot::floor_nodes), status.predictive, the
//               Predicting condition, Event PreProvision when the floor grows
//               the pool;
//   status      nodes and desired per tier, conditions Ready, ScalingUp,
//               AtLimit, ProviderError, Predicting, recentActions,
//               observedGeneration;
//               Events on actions and condition changes; Prometheus metrics.
// A pool whose spec is unusable (minNodes > maxNodes, an unknown provider, a
// missing credentials Secret) gets Ready=False with the reason; the other
// pools are not affected.
//
//   GpuNodePoolReconciler r(pools->store(), nodes->store(), pods->store(),
//                           budgets->store(), *client, clock, &recorder, registry, {});
//   Controller c({.name = "gpunodepool"}, r);
//   c.For(pool_source);
//   c.Watches(pod_source, r.AllPools());  // and nodes, budgets
//
// Thread-safety: Reconcile may run on several workers (never twice for one
// pool); per-pool state is kept under a mutex.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autoscale/node_pool_decide.h"
#include "cloud/node_group.h"
#include "common/clock.h"
#include "controllers/gpu_node_pool_spec.h"
#include "controllers/node_pool_providers.h"
#include "controllers/node_pool_selection.h"
#include "cost/budget.h"
#include "kube/generic_object.h"
#include "kube/node_view.h"
#include "kube/pod_view.h"
#include "kube/store.h"
#include "reconcile/controller.h"
#include "reconcile/reconciler.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Gauge;
}  // namespace prometheus

namespace gpu_autoscaler::kube {
class EventRecorder;
class RestClient;
}  // namespace gpu_autoscaler::kube

namespace gpu_autoscaler::controllers {

// Builds a provider for a pool; BuildNodeGroupProvider in production.
using ProviderBuilder = std::function<Result<std::shared_ptr<cloud::NodeGroupProvider>>(
    const ParsedNodePool&, const ProviderContext&)>;

struct GpuNodePoolOptions {
  Clock::Duration resync = std::chrono::seconds(15);  // idle pools
  Clock::Duration active = std::chrono::seconds(1);   // pools launching or draining
  Clock::Duration batch_idle = std::chrono::seconds(1);
  Clock::Duration batch_max = std::chrono::seconds(10);
  std::string secret_namespace = "default";  // for credentialsSecretRef without a namespace
  int recent_actions = 10;
  ProviderBuilder build_provider = BuildNodeGroupProvider;
  // ClusterBudgets asking scaleDownSpot, and Namespaces for their selectors
  // (nullptr: ClusterBudgets are not read).
  const kube::Store<kube::GenericObject>* cluster_budgets = nullptr;
  const kube::Store<kube::GenericObject>* namespaces = nullptr;
};

// The Budgets ("ns/name") and ClusterBudgets ("name", as
// cost::BudgetEnforcer names them) with ScaleDownSpotRequested=True whose
// scope covers any of `namespaces` (the pool's pods'). A Budget covers its
// own namespace only; a ClusterBudget the namespaces it lists (none: all)
// whose labels in `namespace_labels` match its namespaceSelector (a namespace
// with unknown labels does not).
std::vector<std::string> BudgetsAskingSpotScaleDown(
    const std::vector<nlohmann::json>& budgets, const std::vector<std::string>& namespaces,
    const cost::NamespaceLabelIndex& namespace_labels = {});

// The planner's view of a pod's GPU demand, sharing-aware: a time-sliced or
// MPS replica is its share of a GPU (scheduler::GpuDemandOf), a MIG instance
// its compute slices' share of 7; restricted to the GPU model its
// nodeSelector names. nullopt: no GPU, or not placeable as written.
std::optional<autoscale::PodSpec> PoolDemandOf(const kube::PodView& pod);

// Whether an unbound pod asks for capacity: Pending, not terminating,
// PodScheduled=False (the scheduler found no room), not held by its
// scheduling gates (reason SchedulingGated: no scheduler has looked yet), and
// not preempting (status.nominatedNodeName: room is being freed for it).
bool WaitsForCapacity(const kube::PodView& pod);

struct PoolCondition {
  std::string type{};
  bool status = false;
  std::string reason{};
  std::string message{};
};
struct ScaleConditionInput {
  bool scaled_up = false;  // this pass raised a group's desired size
  int launching = 0;       // instances without a Node yet
  int registered = 0;      // the pool's Nodes
  int desired = 0;         // Σ the groups' desired sizes
  int max_nodes = 0;
  int pending = 0;  // pending GPU pods this pool serves
  autoscale::ScaleUpLimit limit = autoscale::ScaleUpLimit::kNone;  // from the last plan
};
// ScalingUp and AtLimit, pure.
std::vector<PoolCondition> DecideScaleConditions(const ScaleConditionInput& in);

class GpuNodePoolReconciler final : public reconcile::Reconciler {
 public:
  GpuNodePoolReconciler(const kube::Store<kube::GenericObject>& pools,
                        const kube::Store<kube::NodeView>& nodes,
                        const kube::Store<kube::PodView>& pods,
                        const kube::Store<kube::GenericObject>* budgets, kube::RestClient& client,
                        Clock& clock, kube::EventRecorder* recorder, prometheus::Registry& registry,
                        GpuNodePoolOptions options = {});
  ~GpuNodePoolReconciler() override;

  reconcile::ReconcileResult Reconcile(const reconcile::Request& request,
                                       std::stop_token stop) override;

  // Any change (a pod, a node, a Budget, another pool) -> every pool.
  reconcile::RequestMapper AllPools() const;

 private:
  struct PoolState;
  struct Metrics;
  class Pass;  // one reconcile of one pool (gpu_node_pool_internal.h)
  PoolState& State(const std::string& pool);
  void ObserveNodesAndPods(const std::string& pool_name, const ParsedNodePool& parsed,
                           const cloud::NodeGroupProvider& provider,
                           const std::map<std::string, int>& group_of_provider_id,
                           autoscale::PoolSnapshot* snap,
                           std::map<std::string, std::string>* unservable) const;
  // Event NoNodePool once per pod (and reason) and the unservable gauge.
  void ReportUnservable(const std::map<std::string, std::string>& pods);

  const kube::Store<kube::GenericObject>& pools_;
  const kube::Store<kube::NodeView>& nodes_;
  const kube::Store<kube::PodView>& pods_;
  const kube::Store<kube::GenericObject>* budgets_;
  kube::RestClient& client_;
  Clock& clock_;
  kube::EventRecorder* recorder_;
  GpuNodePoolOptions options_;
  std::unique_ptr<Metrics> metrics_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<PoolState>> states_;
  std::map<std::string, std::string> reported_unservable_;  // pod key -> reason
};

}  // namespace gpu_autoscaler::controllers
