// File: src/autoscale/node_pool_decide.h
//
// The GPUNodePool controller's decision, pure: one pass over a pool's
// observed state (its groups as the provider describes them, its Nodes, the
// pods on them, the pending GPU pods it serves, the clock) and the state it
// carries between passes (PoolMemory: the batching window, the unavailable
// offerings, when each node's pods last changed, the interruption notices
// already answered) becomes a PoolPlan: resizes, evictions, terminations,
// cordons, interruption replacements and when to look again. The controller
// (controllers/gpu_node_pool_controller.h) only reads the cluster and the
// cloud into a PoolSnapshot and carries the plan out; the trace replay can
// drive the same function with a simulated cloud.
//
//   PoolMemory memory(std::chrono::seconds(1), std::chrono::seconds(10));
//   PoolSnapshot snap{.pool = &spec, .groups = groups, .nodes = nodes, ...};
//   GPU_ASSIGN_OR_RETURN(PoolPlan plan, DecidePool(snap, &memory, {}));
//   for (const GroupIncrease& inc : plan.increases) provider.SetDesiredSize(...);
//   // a capacity error: memory.unavailable.Mark(...); raise snap's desired for
//   // what succeeded, and DecideScaleUp(snap, memory) again.
//
// A node whose cloud announced its end (the node agent's interruption taint
// or notice annotation) is answered at once: its offering is marked
// unavailable, its pods' GPU demand is planned as pending on other capacity
// (before they are evicted), it is left out of consolidation, and once its
// pods are gone its instance is terminated with the group's desired size
// decremented (the replacement was ordered elsewhere).
//
// Thread-safety: pure functions; a PoolMemory has one owner at a time.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "autoscale/node_pool.h"
#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

// One (instance type, tier) offering's provider group.
struct GroupObservation {
  int instance_type = -1;  // index into NodePoolSpec::instance_types
  CapacityTier tier = CapacityTier::kOnDemand;
  std::string group{};
  int desired = 0;
  std::vector<std::string> instance_ids{};  // the group's instances
  // The cloud found no capacity after taking the size (a LaunchFailure of
  // kind InsufficientCapacity or QuotaExceeded): its message. Only asked
  // for when desired > instances.
  std::optional<std::string> launch_shortage{};
};

struct NodeObservation {
  std::string name{};
  int group = -1;  // index into PoolSnapshot::groups
  std::string instance_id{};
  bool ready = true;
  bool disrupting = false;            // carries our disruption taint
  bool do_not_disrupt = false;        // the Node's do-not-disrupt annotation
  bool interrupted = false;           // the node agent's interruption taint or notice
  std::string interruption_notice{};  // the notice annotation, for the Event
};

struct PodObservation {
  std::string key{};                // namespace/name
  std::string node{};               // a NodeObservation name
  std::optional<PodSpec> demand{};  // GPU demand (PoolDemandOf); nullopt: no GPU
  std::vector<int> gpus{};          // GPU indices it holds, when known
  bool do_not_disrupt = false;
  bool terminating = false;
};

struct PendingPod {
  std::string key{};
  PodSpec demand{};
};

struct PoolSnapshot {
  const NodePoolSpec* pool = nullptr;
  std::vector<GroupObservation> groups{};
  std::vector<NodeObservation> nodes{};  // the pool's registered Nodes
  std::vector<PodObservation> pods{};    // non-terminal, non-DaemonSet pods on `nodes`
  std::vector<PendingPod> pending{};     // unschedulable GPU pods this pool serves
  std::vector<std::string> spot_scale_down_budgets{};  // ns/name of Budgets asking it
  // Nodes to keep ready or launching whatever the pods ask (a forecast's
  // pre-provisioning, predictive_floor.h): the cheapest available offering
  // grows to it within maxNodes, its tier's maxNodes and the cost ceiling,
  // and consolidation stops at it.
  int floor_nodes = 0;
  Clock::TimePoint now{};
  int64_t now_unix = 0;  // the budgets' cron schedules (UTC)
};

// What the controller keeps per pool between passes.
struct PoolMemory {
  PoolMemory(Clock::Duration batch_idle = std::chrono::seconds(1),
             Clock::Duration batch_max = std::chrono::seconds(10))
      : batcher(batch_idle, batch_max) {}
  PendingBatcher batcher;
  UnavailableOfferings unavailable{};
  struct PodChange {
    std::string pods{};  // sorted pod keys
    Clock::TimePoint at{};
  };
  std::map<std::string, PodChange> changes{};   // node -> when its pods last changed
  std::optional<Clock::TimePoint> last_plan{};  // the last scale-up plan
  std::set<std::string> interrupted{};          // nodes whose notice was answered
};

struct DecideOptions {
  Clock::Duration resync = std::chrono::seconds(15);  // idle pools; replan while pods wait
  Clock::Duration active = std::chrono::seconds(1);   // pools launching or draining
};

struct GroupShortage {  // mark unavailable (done in memory), shrink to what it has
  int group = -1;
  int shrink_to = 0;
  std::string message{};
};
struct GroupIncrease {
  int group = -1;
  int count = 0;
};
struct PodEviction {
  std::string key{};
  std::string node{};
  CapacityTier tier = CapacityTier::kOnDemand;
};
struct InstanceTermination {
  int group = -1;
  std::string node{};
  std::string instance_id{};
  CapacityTier tier = CapacityTier::kOnDemand;
  bool interrupted = false;  // after an interruption notice, not a consolidation
};
struct NodeCordon {
  std::string node{};
  CapacityTier tier = CapacityTier::kOnDemand;
  DisruptionReason reason = DisruptionReason::kEmpty;
  std::string why{};  // "Empty", "SpotScaleDown (finance/ml)"
};
struct InterruptionReplacement {
  std::string node{};
  int group = -1;
  CapacityTier tier = CapacityTier::kOnDemand;
  int pods = 0;     // GPU pods on it whose demand is planned elsewhere
  double gpus = 0;  // their GPU demand
  std::string notice{};
};

struct PoolPlan {
  std::vector<GroupShortage> shortages{};
  std::vector<InterruptionReplacement> interruptions{};  // notices answered this pass
  bool scale_up_planned = false;                         // the pass planned a scale-up
  std::vector<GroupIncrease> increases{};
  int floor_added = 0;  // of the increases, nodes the floor (floor_nodes) added
  ScaleUpLimit limit = ScaleUpLimit::kNone;
  std::vector<PodEviction> evictions{};
  std::vector<InstanceTermination> terminations{};
  std::vector<NodeCordon> cordons{};
  int pending = 0;                         // pending GPU pods (the snapshot's)
  int replacing = 0;                       // GPU pods on interrupted nodes planned as pending
  int launching = 0;                       // instances without a Node, and sizes not yet instances
  int registered = 0;                      // the pool's Nodes
  int draining = 0;                        // disrupting nodes, before the cordons
  std::optional<Clock::TimePoint> wake{};  // when to look again (without the active poll)
};

// The whole pass. Updates `memory`. Fails only when the planner does (an
// invalid spec, inconsistent input).
Result<PoolPlan> DecidePool(const PoolSnapshot& snapshot, PoolMemory* memory,
                            const DecideOptions& options = {});

// The scale-up alone, for a replan after the controller marked an offering
// unavailable and raised `snapshot`'s desired sizes for what succeeded.
Result<PoolScaleUpPlan> DecideScaleUp(const PoolSnapshot& snapshot, const PoolMemory& memory);

// The increases of `plan` mapped onto the snapshot's groups.
std::vector<GroupIncrease> IncreasesOnGroups(const PoolSnapshot& snapshot,
                                             const PoolScaleUpPlan& plan);

// When to reconcile the pool again: `plan.wake`, sooner (options.active)
// while instances launch, nodes drain or a scale-up was made, so a shortage
// the cloud finds after the resize (a LaunchFailure) is seen within seconds;
// at most options.resync, at least 50 ms.
Clock::Duration RequeueAfter(const PoolPlan& plan, bool scaled_up, int draining,
                             Clock::TimePoint now, const DecideOptions& options);

// The status arithmetic: per tier the registered nodes and the desired sizes
// (the snapshot after the plan was carried out), and the hourly cost of the
// registered nodes.
struct PoolTotals {
  std::array<int, kTierCount> nodes{}, desired{};
  std::array<std::vector<std::string>, kTierCount> groups{};
  int registered = 0;
  int desired_total = 0;
  double hourly = 0;
};
PoolTotals TotalsOf(const PoolSnapshot& snapshot);

}  // namespace gpu_autoscaler::autoscale
