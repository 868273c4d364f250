// File: src/autoscale/consolidation.h
//
// Consolidation on top of the placement engine (cluster.h): which nodes can be
// removed because all their pods fit on the nodes that remain, ordered by
// money saved, with the moves. Pure functions, no I/O. The most expensive
// node is tried first; its pods move best-fit (the staying node left with the
// least free GPU, then CPU), largest first; a node that received pods stays.
//
//   GPU_ASSIGN_OR_RETURN(ConsolidationPlan plan,
//                        PlanConsolidation(nodes, pods, [](const PodSpec&) { return true; }));
//   for (const NodeRemoval& r : plan.removals) Drain(r.node, r.moves);
//
// Thread-safety: reentrant; inputs are only read.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autoscale/cluster.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

struct PricedNode {
  NodeSpec spec;
  double price_per_hour = 0;
};

struct BoundPod {
  PodSpec spec;
  std::string node;       // a PricedNode name
  std::vector<int> gpus;  // GPU indices it holds (one for a MIG pod)
};

struct PodMove {
  int pod = -1;  // index into the bound pods
  std::string to_node;
  std::vector<int> gpus;
};

struct NodeRemoval {
  std::string node;
  double saved_per_hour = 0;
  std::vector<PodMove> moves;
};

struct ConsolidationPlan {
  std::vector<NodeRemoval> removals;  // by saved_per_hour, highest first
  double saved_per_hour = 0;
};

// Nodes whose pods all fit on the nodes that stay. A node is removable only if
// `may_evict` allows every pod on it; nodes that receive moved pods stay.
// Fails when a pod names an unknown node or its GPUs are not free.
Result<ConsolidationPlan> PlanConsolidation(const std::vector<PricedNode>& nodes,
                                            const std::vector<BoundPod>& pods,
                                            const std::function<bool(const PodSpec&)>& may_evict);

}  // namespace gpu_autoscaler::autoscale
