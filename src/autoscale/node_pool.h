// File: src/autoscale/node_pool.h
//
// The GPUNodePool's planner (crds/gpunodepool.yaml), pure: no I/O, time as a
// parameter. The controller (controllers/gpu_node_pool_controller.h) feeds it
// the pool's spec, its nodes and their pods, and the pending GPU pods, and
// applies what it returns through a cloud::NodeGroupProvider.
//
//  * PendingBatcher: Karpenter's batching window: scale-up waits until no new
//    pending pod arrived for 1 s, or 10 s after the first.
//  * UnavailableOfferings: (instance type, tier) pairs that failed for lack
//    of capacity, skipped for 3 minutes (Karpenter's ICE cache TTL), so spot
//    falls back to on-demand.
//  * PlanPoolScaleUp: the nodes to add per (instance type, tier), through
//    PlanScaleUp, honouring the pool's, each tier's and the cost limits.
//    Pending pods are sharing-aware PodSpecs: a time-sliced replica is
//    1000 / replicas milli-GPU, a MIG pod takes its slices' share of a GPU.
//  * PlanPoolScaleDown: the nodes to disrupt now: empty after
//    consolidateAfter, underused when PlanConsolidation shows their pods fit
//    elsewhere, spot nodes while a Budget asks scaleDownSpot; never a node
//    with a do-not-disrupt pod, never below minNodes, at most what the
//    disruption budgets allow.
//
//   NodePoolSpec pool = ...;                 // parsed from the CRD
//   auto up = PlanPoolScaleUp({.pool = &pool, .nodes = nodes, .pods = bound,
//                              .pending = pending, .unavailable = &ice, .now = now});
//   for (const TierIncrease& inc : up->increases) provider.SetDesiredSize(...);
//
// Thread-safety: the functions are reentrant. PendingBatcher and
// UnavailableOfferings are not synchronised; one owner at a time.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "autoscale/cluster.h"
#include "autoscale/scale_plan.h"
#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

// The CRD's tier keys: "spot", "onDemand", "reserved".
std::string_view TierKey(CapacityTier t);
std::optional<CapacityTier> TierFromKey(std::string_view key);

struct PoolInstanceType {
  std::string name{};
  std::string gpu_model{};
  int gpu_count = 0;
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int max_pods = 110;
  std::array<std::optional<double>, kTierCount> price{};  // by TierIndex
};

struct PoolTier {
  bool enabled = false;  // the pool names a group for this tier
  double weight = 1.0;
  int max_nodes = kUnlimitedNodes;
};

enum class ConsolidationPolicy : uint8_t { kWhenEmpty, kWhenUnderutilized };

// Karpenter's budget: `nodes` as a count or a percent of the pool's nodes;
// with a schedule, only inside [match, match + duration).
struct DisruptionBudget {
  int nodes = 10;
  bool percent = true;
  std::string schedule{};  // empty: always active
  int64_t duration_seconds = 0;
};
// The longest schedule window we accept (30 days): InWindow walks it minute by minute.
inline constexpr int64_t kMaxBudgetWindowSeconds = 720 * 3600;
// "10%" -> {10, percent}, "3" -> {3, count}; Karpenter's pattern ^((100|[0-9]{1,2})%|[0-9]+)$.
Result<DisruptionBudget> ParseBudgetNodes(std::string_view text);

struct NodePoolSpec {
  std::string name{};
  std::vector<PoolInstanceType> instance_types{};
  int min_nodes = 0;
  int max_nodes = 10;
  std::array<PoolTier, kTierCount> tiers{};
  std::optional<double> cost_per_hour_ceiling{};
  ConsolidationPolicy policy = ConsolidationPolicy::kWhenUnderutilized;
  std::optional<Clock::Duration> consolidate_after = std::chrono::seconds(30);  // nullopt: Never
  double utilization_threshold = 0.5;
  std::vector<DisruptionBudget> budgets = {DisruptionBudget{}};
};

// What makes a spec unusable ("minNodes 5 > maxNodes 2"); empty when fine.
std::vector<std::string> ValidateNodePool(const NodePoolSpec& pool);

// One node of the pool as the cluster shows it. `launching` nodes are
// instances asked for but not yet registered: the planner counts their
// capacity so the same pending pods do not scale the pool twice.
struct PoolNode {
  std::string name{};
  int instance_type = -1;  // index into NodePoolSpec::instance_types
  CapacityTier tier = CapacityTier::kOnDemand;
  bool launching = false;
  bool ready = true;
  bool disrupting = false;      // cordoned by the controller, draining or terminating
  bool do_not_disrupt = false;  // the Node's own do-not-disrupt annotation
  // When its pods last changed (or it registered): consolidateAfter counts from here.
  Clock::TimePoint last_pod_change{};
};

struct PoolPod {
  PodSpec spec{};
  std::string node{};       // a PoolNode name
  std::vector<int> gpus{};  // GPU indices it holds, when known (else chosen by the planner)
  bool do_not_disrupt = false;
};

// ---- Scale-up ----

// Karpenter's batching window over pending pods.
class PendingBatcher {
 public:
  explicit PendingBatcher(Clock::Duration idle = std::chrono::seconds(1),
                          Clock::Duration max = std::chrono::seconds(10))
      : idle_(idle), max_(max) {}

  // The pending pods seen now; a key not seen before (re)starts the idle timer.
  void Observe(const std::vector<std::string>& pending_keys, Clock::TimePoint now);
  // Whether the batch should be planned now.
  bool Due(Clock::TimePoint now) const;
  // When Due becomes true; nullopt when nothing is pending.
  std::optional<Clock::TimePoint> DueAt() const;
  // After planning: the pods seen so far count as handled until they change.
  void Flush();

 private:
  Clock::Duration idle_, max_;
  std::set<std::string> seen_;  // pending keys of the current batch (and handled ones)
  std::optional<Clock::TimePoint> first_, last_;
};

inline constexpr Clock::Duration kUnavailableOfferingTtl = std::chrono::minutes(3);

class UnavailableOfferings {
 public:
  void Mark(const std::string& instance_type, CapacityTier tier, Clock::TimePoint now,
            Clock::Duration ttl = kUnavailableOfferingTtl);
  bool Unavailable(const std::string& instance_type, CapacityTier tier, Clock::TimePoint now) const;
  // Live entries: ((instance type, tier), until).
  std::vector<std::pair<std::pair<std::string, CapacityTier>, Clock::TimePoint>> Live(
      Clock::TimePoint now) const;

 private:
  std::map<std::pair<std::string, CapacityTier>, Clock::TimePoint> until_;
};

struct ScaleUpInput {
  const NodePoolSpec* pool = nullptr;
  std::vector<PoolNode> nodes{};  // registered and launching
  std::vector<PoolPod> pods{};    // bound to `nodes`
  std::vector<PodSpec> pending{};
  const UnavailableOfferings* unavailable = nullptr;  // may be null
  bool spot_scale_down = false;  // a Budget asks scaleDownSpot: no new spot nodes
  Clock::TimePoint now{};
};

struct TierIncrease {
  int instance_type = -1;
  CapacityTier tier = CapacityTier::kOnDemand;
  int count = 0;
};

enum class ScaleUpLimit : uint8_t { kNone, kPoolMax, kTierMax, kCostCeiling };
std::string_view ScaleUpLimitName(ScaleUpLimit l);  // "", "MaxNodes", "TierMaxNodes", "CostCeiling"

struct PoolScaleUpPlan {
  std::vector<TierIncrease> increases{};  // by instance type, then tier
  std::vector<UnplacedPod> unplaced{};    // by index into `pending`
  int new_gpus = 0;                       // GPUs the increases add
  double added_hourly_cost = 0;
  ScaleUpLimit limit = ScaleUpLimit::kNone;  // the first limit that left pods unplaced
  int new_nodes() const;
};

// Fails only on an invalid spec (see ValidateNodePool) or inconsistent input.
Result<PoolScaleUpPlan> PlanPoolScaleUp(const ScaleUpInput& input);

// ---- Scale-down ----

enum class DisruptionReason : uint8_t { kEmpty, kUnderutilized, kSpotScaleDown };
std::string_view DisruptionReasonName(DisruptionReason r);  // "Empty", "Underutilized", ...

struct ScaleDownInput {
  const NodePoolSpec* pool = nullptr;
  std::vector<PoolNode> nodes{};  // registered nodes (launching ones are ignored)
  std::vector<PoolPod> pods{};    // bound to `nodes`; DaemonSet pods left out by the caller
  bool spot_scale_down = false;
  Clock::TimePoint now{};
  int64_t now_unix = 0;  // for the budgets' cron schedules (UTC)
};

struct NodeDisruption {
  std::string node{};
  DisruptionReason reason = DisruptionReason::kEmpty;
};

struct PoolScaleDownPlan {
  std::vector<NodeDisruption> disrupt{};  // start these now (cordon, evict, terminate)
  int allowed = 0;                        // the budget left before these
  // Nodes that would go but may not, with why ("do-not-disrupt pod ml/train-0",
  // "disruption budget", "minNodes").
  std::vector<std::pair<std::string, std::string>> blocked{};
};

// The number of nodes the budgets allow to be disrupting at once, over
// `total` nodes (Karpenter: ceil(total × percent), the smallest active
// budget wins). Budgets with a bad schedule are skipped by the caller's
// validation; here they count as inactive.
int AllowedDisruptions(const std::vector<DisruptionBudget>& budgets, int total, int64_t now_unix);

Result<PoolScaleDownPlan> PlanPoolScaleDown(const ScaleDownInput& input);

}  // namespace gpu_autoscaler::autoscale
