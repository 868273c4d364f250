// File: src/autoscale/simulator.h
//
// The trace-driven simulator of the ATC'23 FGD evaluation protocol: build the
// cluster from the node list, derive the target workload from the untuned
// trace, shuffle and tune the pods to 130% of GPU capacity with seed s, submit
// them one at a time with no departures (failed pods count as arrived) and
// record GPU allocation and fragmentation against arrived demand, bucketed
// into columns 0..130 (percent of capacity).
//
//   GPU_ASSIGN_OR_RETURN(PreparedTrace trace, PrepareTrace(nodes, pods));
//   GPU_ASSIGN_OR_RETURN(RunResult run, Simulate(trace, "FGD", /*seed=*/42));
//   double at130 = run.alloc_pct[130];
//
// Thread-safety: a PreparedTrace is immutable; Simulate may run concurrently
// on one PreparedTrace from many threads.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "autoscale/cluster.h"
#include "autoscale/fragmentation.h"
#include "autoscale/policy.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

inline constexpr int kArrivedColumns = 131;  // arrived workload 0..130 % of capacity

struct PreparedTrace {
  ClusterState empty_cluster;        // nodes sorted by name
  std::vector<PodSpec> pods;         // sorted by name
  std::vector<PodRequest> requests;  // pods[i] resolved against the cluster
  TargetWorkload workload;           // from the untuned trace
  int64_t total_demand_milli = 0;    // Σ num_gpu·gpu_milli over the trace
};

// Builds the cluster (GPU-less nodes are left out, as in the protocol) and
// the target workload. Fails on an empty cluster or an invalid node.
Result<PreparedTrace> PrepareTrace(std::vector<NodeSpec> nodes, std::vector<PodSpec> pods);

struct SimulationOptions {
  double tune_ratio = 1.3;  // target total GPU demand as a fraction of capacity
  bool shuffle = true;
};

// The arrival sequence for one seed: indices into PreparedTrace::pods, plus
// the node tie-break ranks. Exposed for tests.
struct Workload {
  std::vector<int> arrivals;
  std::vector<int> node_ranks;
};
Workload GenerateWorkload(const PreparedTrace& trace, uint64_t seed,
                          const SimulationOptions& options = {});

struct RunResult {
  std::string policy;
  uint64_t seed = 0;
  // Column k: mean GPU allocation (% of capacity) over the events whose
  // arrived demand rounds to k% (falling back to k-1..k+1). NaN when empty.
  std::array<double, kArrivedColumns> alloc_pct{};
  // Column k: mean cluster fragmentation as % of capacity.
  std::array<double, kArrivedColumns> frag_pct{};
  // Column k: mean fragmentation as % of idle GPU.
  std::array<double, kArrivedColumns> frag_ratio{};
  std::array<int64_t, kPodClassCount> arrived_by_class{};
  std::array<int64_t, kPodClassCount> failed_by_class{};
  // The CPU the refused CPU-only pods asked for: refusals counted in pods
  // favour a policy that refuses large pods, this counts their size.
  int64_t failed_cpu_only_cpu_milli = 0;
  int64_t pods = 0;
  int64_t placed = 0;
};

Result<RunResult> Simulate(const PreparedTrace& trace, std::string_view policy, uint64_t seed,
                           const SimulationOptions& options = {});
// The same with a policy object (fresh for each run: policies may cache per
// cluster), for tuning tools that build policies with their own parameters.
Result<RunResult> Simulate(const PreparedTrace& trace, Policy& policy, uint64_t seed,
                           const SimulationOptions& options = {});

}  // namespace gpu_autoscaler::autoscale
