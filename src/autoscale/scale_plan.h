// File: src/autoscale/scale_plan.h
//
// Scale planning on top of the placement engine (cluster.h): pure functions, no I/O.
//
//  * PlanScaleUp: which nodes to add so that as many pending pods as possible
//    schedule at the lowest hourly cost. Pods go first onto the existing
//    cluster's free capacity, then new nodes are opened greedily by cost per
//    unit of packed demand (a first-fit-decreasing fill of a candidate node),
//    then an improvement pass empties or downsizes opened nodes. Every pod that
//    cannot be placed gets a reason. The plan carries a proven lower bound on
//    the cost of placing the same pods (scale_plan_bound.h).
//
// Removing nodes whose pods fit elsewhere is consolidation.h.
//
//   Offering a100{.instance_type = "p4d", .gpu_model = "A100", .gpu_count = 8,
//                 .cpu_milli = 96000, .memory_mib = 1 << 20, .max_nodes = 10};
//   a100.tiers[TierIndex(CapacityTier::kSpot)] = {.price_per_hour = 12.0};
//   GPU_ASSIGN_OR_RETURN(ScaleUpPlan plan, PlanScaleUp(cluster, pending, {a100}, {}));
//   for (const NewNode& n : plan.new_nodes) Provision(n);
//
// Fractional GPU sharing uses the engine's milli-GPU model: a time-sliced GPU
// with `replicas` slots is modelled as pods of 1000 / replicas milli.
//
// Thread-safety: the functions are reentrant; inputs are only read.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "autoscale/cluster.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

// Capacity tiers in preference order: on an equal effective price the earlier wins.
enum class CapacityTier : uint8_t { kReserved = 0, kSpot, kOnDemand };
inline constexpr int kTierCount = 3;
inline constexpr int TierIndex(CapacityTier t) {
  return static_cast<int>(t);
}
std::string_view CapacityTierName(CapacityTier t);

inline constexpr int kUnlimitedNodes = -1;

struct TierOffer {
  std::optional<double> price_per_hour;  // nullopt: this tier is not offered
  int max_nodes = kUnlimitedNodes;       // availability of this tier
};

// One node pool: an instance type with its shape, per-tier prices and limits.
struct Offering {
  std::string instance_type;  // unique; names the pool
  std::string gpu_model;      // empty when gpu_count == 0
  int gpu_count = 0;
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int max_pods = 110;
  int max_nodes = kUnlimitedNodes;  // per-pool limit over all tiers
  std::array<TierOffer, kTierCount> tiers{};
};

struct ScaleUpOptions {
  // Effective price = price × weight, per tier (indexed by TierIndex). Must be > 0.
  std::array<double, kTierCount> tier_weights = {1.0, 1.0, 1.0};
  // Run the improvement pass (empty and downsize opened nodes).
  bool improve = true;
};

struct NewNode {
  std::string name;  // "<instance_type>-<tier>-<n>"
  int offering = -1;
  CapacityTier tier = CapacityTier::kOnDemand;
  double price_per_hour = 0;  // the real price, not weighted
};

struct PodAssignment {
  int pod = -1;           // index into the pending pods
  bool new_node = false;  // true: `node` indexes new_nodes; false: the existing cluster
  int node = -1;
  std::vector<int> gpus;
};

enum class UnplacedReason : uint8_t {
  kNoOfferingWithModel,     // no offering (nor existing node) has an acceptable GPU model
  kExceedsLargestOffering,  // even an empty node of every acceptable offering is too small
  kLimitsExhausted,         // it fits an offering, but pool or tier limits ran out
};
std::string_view UnplacedReasonName(UnplacedReason r);

struct UnplacedPod {
  int pod = -1;
  UnplacedReason reason = UnplacedReason::kLimitsExhausted;
};

struct ScaleUpPlan {
  std::vector<NewNode> new_nodes;
  std::vector<PodAssignment> assignments;  // one per placed pod, by pod index
  std::vector<UnplacedPod> unplaced;       // by pod index
  double hourly_cost = 0;                  // Σ price of new_nodes (real prices)
  double effective_cost = 0;               // Σ weighted price; what the planner minimises
  // A lower bound on the effective cost of any set of new nodes on which the
  // placed pods fit (together with the existing free capacity).
  double lower_bound = 0;
  // effective_cost / lower_bound − 1; 0 when both are 0.
  double gap() const;
};

// Plans the nodes to add for `pending`. `existing` holds the current nodes with
// their bindings; its free capacity is used first. Fails on invalid offerings
// or weights.
Result<ScaleUpPlan> PlanScaleUp(const ClusterState& existing, const std::vector<PodSpec>& pending,
                                const std::vector<Offering>& offerings,
                                const ScaleUpOptions& options);

}  // namespace gpu_autoscaler::autoscale
