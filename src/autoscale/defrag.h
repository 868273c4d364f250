// File: src/autoscale/defrag.h
//
// GPU defragmentation planner: which running pods to evict, and where each
// one fits instead, so that the cluster's FGD fragmentation (fragmentation.h:
// idle GPU milli the typical pods cannot use) drops the most per evicted pod.
// A move is one eviction; its gain is the drop of cluster fragmentation when
// the pod leaves its node and lands on the destination, in milli-GPU. The
// total idle GPU does not change, so the gain is usable GPU capacity won.
//
// Algorithm (greedy with one-step lookahead):
//   1. For every candidate pod, the engine finds its destination: the node,
//      other than its own, that fits it (ClusterState::Fits: CPU, memory, pod
//      slots, model, GPUs) with the largest FGD fragmentation drop, and the
//      GPUs on it (FGD's GPU choice). Pods that fit nowhere else are never
//      moved. single(c) = drop at the source + drop at the destination.
//   2. A single move often cannot free a GPU that two pods share. So for the
//      `lookahead` best first moves by single(c) and by source drop, the
//      best second move of another pod off the same node is found on the
//      cluster after the first (its two nodes copied and changed; every other
//      node's cached drop still holds), and pair(c) = (single(c) + best
//      second) / 2, the gain per evicted pod.
//   3. The first move with the largest max(single, pair) is committed if that
//      reaches `min_gain_milli`; repeat until `max_moves` or no move gains.
//      A committed pair's second move is found again by the next round (it
//      may since have a better partner). No pod moves twice.
// Ties go to the lower candidate index, then the lower node index, so plans
// are deterministic. Destination drops are cached per (pod shape, node
// version): a move touches two nodes, so a round rescored only those.
//
//   std::vector<DefragCandidate> pods = ...;  // bound pods, with their binding ids
//   GPU_ASSIGN_OR_RETURN(DefragPlan plan,
//                        PlanDefragmentation(cluster, pods, workload, {.max_moves = 5}));
//   for (const DefragMove& m : plan.moves) evict(pods[m.candidate]), expect it on m.to.node
//
// Thread-safety: pure; the input cluster is copied, never changed.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "autoscale/cluster.h"
#include "autoscale/fragmentation.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

// A pod bound in the cluster given to the planner that may be evicted.
struct DefragCandidate {
  BindingId binding = -1;  // from ClusterState::Place on that cluster
  PodRequest pod;
  Placement placement;  // where it is now
};

struct DefragOptions {
  int max_moves = 10;
  // A move (or a pair, per pod) must drop fragmentation by at least this.
  double min_gain_milli = 1.0;
  // First moves tried with a second one; 0 = plain greedy.
  int lookahead = 8;
};

struct DefragMove {
  int candidate = -1;  // index into the candidates
  int from_node = -1;
  Placement to;
  double gain_milli = 0;        // this move's own fragmentation drop
  bool paired = false;          // chosen for what the next move can add
  int whole_gpus_freed = 0;     // fully free GPUs gained on the source node
  double source_drop = 0;       // fragmentation drop on the source node
  double destination_drop = 0;  // on the destination (usually <= 0)
};

struct DefragPlan {
  std::vector<DefragMove> moves;
  double fragmentation_before = 0;  // cluster total, milli-GPU
  double fragmentation_after = 0;
  int fully_free_gpus_before = 0;
  int fully_free_gpus_after = 0;
  // Why planning stopped: "max moves reached", "no move gains at least ...".
  std::string stop_reason;

  double recovered_milli() const { return fragmentation_before - fragmentation_after; }
};

// Fails on a candidate whose binding or placement does not match the
// cluster, or on bad options. `after`, when given, receives the cluster with
// every move applied (bindings of moved pods change).
Result<DefragPlan> PlanDefragmentation(const ClusterState& cluster,
                                       std::span<const DefragCandidate> candidates,
                                       const TargetWorkload& workload, const DefragOptions& options,
                                       ClusterState* after = nullptr);

// Cluster fragmentation Σ_n F_n (milli-GPU), for reports and tests.
double ClusterFragmentation(const ClusterState& cluster, const TargetWorkload& workload);

}  // namespace gpu_autoscaler::autoscale
