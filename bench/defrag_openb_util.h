// File: bench/defrag_openb_util.h
//
// The defragmentation experiment on openb: fill the cluster with FGD until
// the arrived GPU demand reaches a share of capacity (the protocol's arrival
// sequence for one seed, no departures), and keep the pods that arrive after
// that point. Shared by the evaluation program (defrag_openb_eval.cc) and the
// benchmark (defrag_plan_bench.cc).
//
//   FilledCluster f = FillWithFgd(OpenbTrace("default"), /*seed=*/42, /*arrived=*/1.0);
//   auto plan = PlanDefragmentation(f.cluster, f.placed, f.trace->workload, {.max_moves = 10});
//
// Thread-safety: pure functions over an immutable PreparedTrace.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "autoscale/defrag.h"
#include "autoscale/policy.h"
#include "autoscale/scheduler.h"
#include "autoscale/simulator.h"

namespace gpu_autoscaler::autoscale::bench {

struct FilledCluster {
  const PreparedTrace* trace = nullptr;
  ClusterState cluster;
  std::vector<DefragCandidate> placed;  // every pod bound, in arrival order
  std::vector<int> remaining;           // arrivals after the fill point (trace indices)
  std::vector<int> node_ranks;
  int failed = 0;  // pods that fit nowhere during the fill
};

inline FilledCluster FillWithFgd(const PreparedTrace& trace, uint64_t seed, double arrived_share) {
  FilledCluster f;
  f.trace = &trace;
  f.cluster = trace.empty_cluster;
  const Workload workload = GenerateWorkload(trace, seed);
  f.node_ranks = workload.node_ranks;
  auto policy = MakePolicy("FGD", &trace.workload);
  Scheduler scheduler(f.cluster, **policy, workload.node_ranks, seed);
  const double limit = arrived_share * static_cast<double>(trace.empty_cluster.total_gpu_milli());
  int64_t arrived = 0;
  size_t i = 0;
  for (; i < workload.arrivals.size(); ++i) {
    const PodRequest& pod = trace.requests[workload.arrivals[i]];
    if (static_cast<double>(arrived + pod.total_gpu_milli()) > limit) break;
    arrived += pod.total_gpu_milli();
    if (std::optional<Placement> at = scheduler.Select(pod)) {
      Result<BindingId> id = f.cluster.Place(pod, *at);
      if (id.ok()) {
        f.placed.push_back({*id, pod, *at});
        continue;
      }
    }
    ++f.failed;
  }
  for (; i < workload.arrivals.size(); ++i)
    f.remaining.push_back(workload.arrivals[i]);
  return f;
}

// How many of `remaining` FGD places on `cluster` (changed in place), and
// the GPU milli they take.
struct PlacedAfter {
  int pods = 0;
  int64_t gpu_milli = 0;
};
inline PlacedAfter PlaceRemaining(ClusterState& cluster, const FilledCluster& f, uint64_t seed) {
  PlacedAfter out;
  auto policy = MakePolicy("FGD", &f.trace->workload);
  Scheduler scheduler(cluster, **policy, f.node_ranks, seed);
  for (int index : f.remaining) {
    const PodRequest& pod = f.trace->requests[index];
    if (std::optional<Placement> at = scheduler.Select(pod)) {
      if (cluster.Place(pod, *at).ok()) {
        ++out.pods;
        out.gpu_milli += pod.total_gpu_milli();
      }
    }
  }
  return out;
}

}  // namespace gpu_autoscaler::autoscale::bench
