// File: src/cost/metering.h
//
// Per-second cost of every pod, including fractional GPUs, and the idle cost
// of every node. Inputs are plain data (`MeteredNode`, `MeteredPod`) so the
// controllers and the simulator can both feed it.
//
//   Meter meter(pricing);                          // any PricingSource
//   InventoryReport r = meter.SetInventory(nodes, pods);   // precomputes rates
//   TickResult tick;
//   meter.Tick(now_unix_seconds, tick);            // cheap: no allocation once warm
//   meter.AppendSamples(tick, samples);            // CostSample rows for storage
//   RunChanges changes;
//   meter.DiffRuns(tick, changes);                 // or only the rows that changed
//   store.AppendRuns({.from = now, .through = now + 1, .complete = changes.complete,
//                     .started = changes.started, .ended = changes.ended});
//
// Allocation cost of a pod for one second:
//   gpu_share x node GPU price per GPU-second + cpu request x node price per
//   core-second + memory request x node price per byte-second,
// where gpu_share is fractional for MIG (slice fraction), time-slicing
// (1/replicas) and MPS (thread percentage, else 1/replicas). Usage cost is the
// GPU cost weighted by measured utilisation. Node capacity that no pod holds is
// the node's idle cost, reported per node and optionally shared out to the
// node's pods in proportion to their allocation cost. See docs/cost.md.
//
// Thread-safety: a Meter is not thread-safe; one owner calls SetInventory,
// SetUtilization and Tick. TickResult is a plain value.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/annotations.h"
#include "common/status.h"
#include "cost/pricing.h"
#include "cost/sample.h"

namespace gpu_autoscaler::cost {

// Annotations the admission webhook writes on pods it placed on a shared GPU.
// (aliases of the shared keys in src/api/annotations.h)
inline constexpr std::string_view kSharingModeAnnotation = api::kModeAnnotation;
inline constexpr std::string_view kMigProfileAnnotation = api::kMigProfileAnnotation;
inline constexpr std::string_view kReplicasAnnotation = api::kReplicasAnnotation;
inline constexpr std::string_view kMpsThreadPercentageAnnotation =
    api::kMpsThreadPercentageAnnotation;
// Our own node label for reserved / committed-use capacity.
inline constexpr std::string_view kCapacityTierLabel = "gpuautoscaler.io/capacity-tier";

enum class SharingMode { kExclusive, kTimeSlicing, kMps, kMig };
std::string_view SharingModeName(SharingMode mode);  // "exclusive", "timeSlicing", "mps", "mig"

struct GpuSharing {
  SharingMode mode = SharingMode::kExclusive;
  std::string mig_profile{};         // "1g.5gb", "3g.40gb" (mode kMig)
  int replicas = 0;                  // time-slicing / MPS clients per GPU; 0 = unknown
  double mps_thread_percentage = 0;  // CUDA_MPS_ACTIVE_THREAD_PERCENTAGE; 0 = unset
};

// Reads the sharing annotations; a missing mode annotation means exclusive.
// Bad values (unknown mode, replicas "abc") are InvalidArgument naming the annotation.
Result<GpuSharing> ParseSharingAnnotations(const std::map<std::string, std::string>& annotations);

// Fraction of one GPU a MIG profile holds: compute slices over the GPU's
// slices ("3g.20gb" on an A100 = 3/7, "2g.12gb" on an A30 = 2/4).
Result<double> MigSliceFraction(std::string_view gpu_model, std::string_view profile);

// Capacity tier from well-known node labels (Karpenter, EKS, GKE, AKS, ours).
CapacityTier TierFromNodeLabels(const std::map<std::string, std::string>& labels);

// Which pod labels fill CostSample.team/project/experiment.
struct AttributionLabels {
  std::string team = "team";
  std::string project = "project";
  std::string experiment = "experiment-id";
};

struct MeteredNode {
  std::string name{};
  std::string instance_type{};                  // node.kubernetes.io/instance-type
  CapacityTier tier = CapacityTier::kOnDemand;  // see TierFromNodeLabels
  std::string gpu_model{};  // for the fallback price and MIG fractions; "" = catalogue's
  int gpus = 0;             // 0 = the catalogue's count
  double cpu_cores = 0;     // allocatable; 0 = the catalogue's vCPUs
  double memory_bytes = 0;  // allocatable; 0 = the catalogue's memory
};

struct MeteredPod {
  std::string uid{};
  std::string name{};
  std::string ns{};
  std::map<std::string, std::string> labels{};
  std::string node{};       // spec.nodeName; "" = not scheduled, not metered
  double cpu_cores = 0;     // requests
  double memory_bytes = 0;  // requests
  double gpus = 0;          // nvidia.com/gpu (or MIG devices) requested
  GpuSharing sharing{};
  double gpu_utilization = -1;  // 0..1 from DCGM; -1 when no metric
};

struct MeterOptions {
  AttributionLabels labels{};
  // Share each node's idle cost out to its pods in proportion to their
  // allocation cost (idle rows are then still reported, marked shared).
  bool share_idle = false;
};

// Problems found while compiling the inventory. Metering still runs for
// everything else; nothing here is silently charged 0.
struct UnpricedNode {
  std::string node{};
  Unpriced why{};
};
struct InventoryReport {
  std::vector<UnpricedNode> unpriced_nodes{};
  std::vector<std::string> pods_on_unpriced_nodes{};  // "ns/name"
  std::vector<std::string> pods_on_unknown_nodes{};   // "ns/name"
  std::vector<std::string> bad_pods{};                // "ns/name: reason"
};

// One pod's cost for one second (currency units). Indices refer to the pods
// passed to SetInventory.
struct PodSecondCost {
  uint32_t pod_index = 0;
  double gpu_share = 0;
  double gpu_cost = 0;
  double cpu_cost = 0;
  double memory_cost = 0;
  double usage_cost = 0;       // gpu_cost x utilisation; 0 when no metric
  double idle_share_cost = 0;  // share of the node's idle cost (share_idle only)
  double total() const { return gpu_cost + cpu_cost + memory_cost + idle_share_cost; }
};

struct NodeSecondCost {
  uint32_t node_index = 0;
  double total_cost = 0;  // the whole node's price for this second
  double idle_gpu_cost = 0;
  double idle_cpu_cost = 0;
  double idle_memory_cost = 0;
  double idle_gpus = 0;  // GPU capacity no pod holds
  double idle_cost() const { return idle_gpu_cost + idle_cpu_cost + idle_memory_cost; }
};

// The runs that changed at one tick (CostStore::AppendRuns).
struct RunChanges {
  // `started` lists every run (the first call, or after ResetRuns).
  bool complete = false;
  std::vector<CostSample> started{};  // new values from the tick's second on
  std::vector<std::string> ended{};   // pod uids / "idle/<node>" that stopped
  bool empty() const { return !complete && started.empty() && ended.empty(); }
  void Clear() {
    complete = false;
    started.clear();
    ended.clear();
  }
};

struct TickResult {
  int64_t second = 0;
  std::vector<PodSecondCost> pods{};    // priced, scheduled pods only
  std::vector<NodeSecondCost> nodes{};  // priced nodes only
  double allocated_cost = 0;
  double idle_cost = 0;
};

class Meter {
 public:
  explicit Meter(const PricingSource& pricing, MeterOptions options = {});
  ~Meter();
  Meter(const Meter&) = delete;
  Meter& operator=(const Meter&) = delete;

  // Replaces nodes and pods; prices every node once and precomputes rates.
  InventoryReport SetInventory(std::span<const MeteredNode> nodes,
                               std::span<const MeteredPod> pods);
  // Latest DCGM utilisation (0..1, or -1 for none) of pod `pod_index`.
  void SetUtilization(uint32_t pod_index, double utilization);

  // Meters one second. Reuses `out`'s buffers.
  void Tick(int64_t second, TickResult& out) const;

  // Storage rows for a tick: one per pod and, with `include_idle`, one idle
  // row per node (pod_uid "idle/<node>", CostSample::idle = true). Appends
  // after what `out` holds; filling one vector over many ticks is amortised
  // linear (the vector grows geometrically).
  void AppendSamples(const TickResult& tick, std::vector<CostSample>& out,
                     bool include_idle = true) const;

  // Run bookkeeping: appends to `out` the pods and idle nodes whose row
  // (values or attribution) differs from the one last reported, and the ones
  // gone. Costs nothing when neither the inventory nor any utilisation
  // changed since the last call, one comparison per pod whose utilisation
  // changed, and one lookup per pod after SetInventory; rows are built only
  // for the changed ones. `tick` is this meter's latest Tick.
  void DiffRuns(const TickResult& tick, RunChanges& out, bool include_idle = true);
  // Forget what was reported (a store write failed, or a restart): the next
  // DiffRuns lists everything, complete.
  void ResetRuns();

  size_t pod_count() const;
  size_t node_count() const;

 private:
  struct State;
  struct Reported {
    std::array<double, 7> values{};
    uint64_t identity = 0;  // hash of the row's attribution
    uint64_t seen = 0;      // DiffRuns generation
  };
  CostSample PodRow(const PodSecondCost& c, int64_t second) const;
  CostSample IdleRow(const NodeSecondCost& c, int64_t second) const;

  const PricingSource& pricing_;
  MeterOptions options_{};
  std::unique_ptr<State> state_;
  // What DiffRuns last reported, by pod uid / "idle/<node>".
  std::unordered_map<std::string, Reported> reported_;
  std::vector<Reported*> reported_at_;  // by metered pod, since the last full pass
  std::vector<uint32_t> changed_pods_;  // metered pods whose utilisation changed since
  bool inventory_changed_ = true;
  bool runs_reset_ = true;
  uint64_t diff_generation_ = 0;
};

}  // namespace gpu_autoscaler::cost
