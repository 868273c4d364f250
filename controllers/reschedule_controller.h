// File: controllers/reschedule_controller.h
//
// The rescheduler: for each ReschedulePolicy (crds/reschedulepolicy.yaml), at
// most once per spec.intervalSeconds (at once after a spec change), it plans
// evictions and carries them out.
//   - GPU defragmentation: the cluster's nodes and bound pods become the
//     placement engine's ClusterState (scheduler/gpu_demand.h, as the
//     scheduler sees them; a pod's GPUs are its gpu-indices annotation), the
//     typical pods are learnt from every pod (pending ones included, they are
//     what needs the room), and autoscale::PlanDefragmentation picks the moves.
//   - Usage balancing: autoscale::PlanUsageBalance on measured usage. Busy
//     GPUs per pod come from the utilisation source the cost meter uses
//     (Prometheus dcgm-exporter series); CPU and memory usage have no source
//     in the manager, so listing them leaves every node unmeasured. Missing
//     usage evicts nothing and sets UsageAvailable=False naming the pods.
// Evictions go through the Eviction API (respectPDBs: true; a 429 from a
// PodDisruptionBudget is counted as blocked, not retried in the run) or a
// DELETE (respectPDBs: false). Each planned move gets an Event on its pod
// with the reason ("GPU defragmentation: frees 1 whole GPU on node a; pod
// fits on node b (GPU 1)"); dryRun records the Events and status only.
// Limits: per node and per namespace per run, per hour across runs (the
// hour's evictions are kept in status.recentEvictions).
//
// Only pods a controller owns (not DaemonSet pods, static or mirror pods),
// outside kube-system, not marked gpu-autoscaler.io/do-not-disrupt, under
// system-critical priority, running on a node, matching the policy's
// namespaces and podSelector, may move.
//
//   RescheduleReconciler r(policies->store(), nodes->store(), pods->store(), *client,
//                          clock, &recorder, utilization_or_null, synced);
//   Controller c({.name = "rescheduler"}, r);
//   c.For(policy_source);
//
// Decide/apply: DecideReschedule is pure (snapshot -> plan and status);
// Reconcile reads the caches, fetches usage, evicts, records, writes status.
//
// Thread-safety: Reconcile may run on several workers (never twice for one policy).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/resources.h"
#include "common/clock.h"
#include "controllers/reschedule_policy_spec.h"
#include "kube/generic_object.h"
#include "kube/node_view.h"
#include "kube/pod_view.h"
#include "kube/resource.h"
#include "kube/store.h"
#include "reconcile/reconciler.h"

namespace gpu_autoscaler::cost {
class UtilizationSource;
}
namespace gpu_autoscaler::kube {
class EventRecorder;
class RestClient;
}  // namespace gpu_autoscaler::kube

namespace gpu_autoscaler::controllers {

struct RescheduleInput {
  ParsedReschedulePolicy policy{};
  nlohmann::json status = nullptr;  // the policy's current status
  int64_t now = 0;                  // Unix seconds
  std::vector<std::shared_ptr<const kube::NodeView>> nodes{};
  std::vector<std::shared_ptr<const kube::PodView>> pods{};
  // Busy GPUs per "ns/name" (utilisation × GPUs held); nullopt when there is
  // no usage source or it failed (`usage_error` says why).
  std::optional<std::map<std::string, double>> gpu_usage{};
  std::string usage_error{};
};

struct PlannedEviction {
  std::string kind{};  // "Defragmentation" or "UsageBalancing"
  std::string ns{}, pod{}, pod_uid{};
  std::string from_node{}, to_node{};
  int64_t gain_milli = 0;
  std::string reason{};  // the Event message
  std::string result{};  // "Planned" before apply; "Skipped" when a limit holds it back
};

struct ReschedulePlan {
  bool due = false;             // false: not time yet, nothing to do but requeue
  int64_t requeue_after_s = 0;  // when to look again
  bool accepted = true;
  std::vector<PlannedEviction> moves{};  // in order; Skipped ones are not evicted
  // Status to write, before the results of apply (lastRun.executed etc).
  nlohmann::json status = nlohmann::json::object();
  struct Event {
    bool warning = false;
    std::string reason{};
    std::string message{};
  };
  std::vector<Event> policy_events{};  // on the policy (condition changes)
};

ReschedulePlan DecideReschedule(const RescheduleInput& input);

// Fills in lastRun's counters, each move's result and recentEvictions from
// the results of apply (`results[i]` for plan.moves[i]). Pure.
nlohmann::json StatusAfterApply(const ReschedulePlan& plan, const std::vector<std::string>& results,
                                bool dry_run, int64_t now);

class RescheduleReconciler final : public reconcile::Reconciler {
 public:
  // `usage` may be null (no source: usage balancing reports it and evicts
  // nothing). `synced` tells whether the node and pod caches are complete.
  RescheduleReconciler(const kube::Store<kube::GenericObject>& policies,
                       const kube::Store<kube::NodeView>& nodes,
                       const kube::Store<kube::PodView>& pods, kube::RestClient& client,
                       Clock& clock, kube::EventRecorder* recorder, cost::UtilizationSource* usage,
                       std::function<bool()> synced);

  reconcile::ReconcileResult Reconcile(const reconcile::Request& request,
                                       std::stop_token stop) override;

 private:
  const kube::Store<kube::GenericObject>& policies_;
  const kube::Store<kube::NodeView>& nodes_;
  const kube::Store<kube::PodView>& pods_;
  kube::RestClient& client_;
  Clock& clock_;
  kube::EventRecorder* recorder_;
  cost::UtilizationSource* usage_;
  std::function<bool()> synced_;
};

}  // namespace gpu_autoscaler::controllers
