// File: src/autoscale/scheduler.h
//
// One scheduling decision: filter the nodes that fit a pod, score them with a
// policy, take the highest score (ties: NodeScore::tiebreak, then the smallest
// node rank) and pick the GPUs on the winner. The scheduler never mutates the
// cluster; the caller applies the returned Placement with ClusterState::Place.
//
// Scores are cached per (node, pod shape) and invalidated by the node's
// version, so after one placement only the touched node is rescored. A pod
// that fit nowhere is remembered until the cluster's release epoch changes,
// so repeated rejections on a full cluster cost a hash lookup.
//
//   Scheduler scheduler(cluster, *policy, ranks, /*seed=*/42);
//   if (std::optional<Placement> p = scheduler.Select(pod)) {
//     GPU_ASSIGN_OR_RETURN(BindingId id, cluster.Place(pod, *p));
//   }
//
// Thread-safety: none; one Scheduler per thread, bound to one ClusterState.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "autoscale/cluster.h"
#include "autoscale/policy.h"
#include "autoscale/random.h"

namespace gpu_autoscaler::autoscale {

class Scheduler {
 public:
  // `ranks[i]` is node i's tie-break rank (smaller wins); empty means node index.
  // `seed` drives Random's node and GPU draws.
  Scheduler(const ClusterState& cluster, Policy& policy, std::vector<int> ranks, uint64_t seed);
  // A scheduler for `cluster`, a copy of `from`'s cluster (a copied
  // ClusterState keeps its node versions), starting from `from`'s score cache,
  // rejections and random state, for what-if runs that would otherwise rescore
  // every node. `policy` must score as `from`'s does (same policy, same
  // parameters, same target workload).
  Scheduler(const Scheduler& from, const ClusterState& cluster, Policy& policy);

  // Where `pod` should go, or nullopt when no node fits.
  std::optional<Placement> Select(const PodRequest& pod);

  // The policy's score of one node for `pod`, from the same per-version cache
  // as Select; score -1 when the pod does not fit there. For callers that
  // filter nodes themselves (the scheduler extender).
  NodeScore ScoreOf(int node, const PodRequest& pod);
  // The placement Select would make if `node` won: the policy's GPU choice.
  // `node` must fit `pod`.
  Placement PlaceOnNode(int node, const PodRequest& pod);

 private:
  struct CacheEntry {
    uint64_t version = 0;  // node version the entry was computed at; 0 = empty
    int16_t score = -1;    // -1: the shape does not fit (ignoring memory and slots)
    int8_t gpu = -1;
    double tiebreak = 0;
  };
  struct ShapeKey {
    int64_t cpu_milli;
    int num_gpu;
    int gpu_milli;
    ModelMask models;
    int mig_slices;
    bool operator==(const ShapeKey&) const = default;
  };
  struct ShapeKeyHash {
    size_t operator()(const ShapeKey& k) const;
  };
  struct Rejection {
    uint64_t release_epoch;
    int64_t memory_mib;  // the smallest memory request rejected at that epoch
  };

  std::vector<CacheEntry>& CacheFor(const PodRequest& pod);
  // `entry` (node's slot in the shape's cache), rescored if the node changed.
  const CacheEntry& Refresh(CacheEntry& entry, int node, const PodRequest& pod);
  Placement PlaceOn(int node, const PodRequest& pod, int scored_gpu);

  const ClusterState& cluster_;
  Policy& policy_;
  std::vector<int> ranks_;
  Rng rng_;
  std::unordered_map<ShapeKey, int, ShapeKeyHash> shape_ids_;
  std::vector<std::vector<CacheEntry>> cache_;
  std::vector<Rejection> rejected_;  // per shape id
  int shape_id_ = 0;                 // set by CacheFor
  std::vector<int> feasible_;
};

}  // namespace gpu_autoscaler::autoscale
