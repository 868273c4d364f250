// File: src/autoscale/policy.h
//
// Placement policies. A policy gives every feasible node an integer score in
// [0, 100] for one pod; the scheduler (scheduler.h) takes the highest score and
// breaks ties by node rank. The formulas follow the ATC'23 FGD evaluation
// protocol exactly, integer truncation included (see docs/placement.md):
//
//   FirstFit, BestFit, WorstFit, Random, DotProduct, GpuClustering,
//   GpuPacking, FGD, and our own FragLookahead.
//
//   auto policy = MakePolicy("FGD", &workload);
//   NodeScore s = (*policy)->Score(cluster, node, pod);
//
// Scores depend only on the node's state and the pod's shape (not its memory
// request, which the scheduler tests live), so callers may cache them per node
// version (scheduler.h does).
//
// A Policy scores the nodes of one ClusterState: it may keep per-cluster and
// per-node-version caches.
//
// Thread-safety: none; use one Policy per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "autoscale/cluster.h"
#include "autoscale/fragmentation.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

// How a sharing pod's GPU is chosen on the winning node.
enum class GpuSelection {
  kBest,       // the GPU with the least free milli that fits, lowest index on ties
  kRandom,     // uniform among the GPUs that fit
  kFromScore,  // the GPU the score picked (NodeScore::gpu)
};

struct NodeScore {
  int score = 0;  // 0..100; higher is better
  int gpu = -1;   // with kFromScore: the GPU for a single-GPU sharing pod
  // Compared only between equal scores, before the rank tie-break. The
  // protocol policies leave it 0; finer-grained policies use it.
  double tiebreak = 0;
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;
  // Score of `node`, which must fit `pod`.
  virtual NodeScore Score(const ClusterState& cluster, int node, const PodRequest& pod) = 0;
  virtual GpuSelection gpu_selection() const { return GpuSelection::kBest; }
  // True for Random: the scheduler draws a feasible node uniformly instead of scoring.
  virtual bool picks_random_node() const { return false; }
};

// The names MakePolicy accepts, in display order.
const std::vector<std::string>& PolicyNames();
// Case-insensitive lookup ("fgd", "BestFit", "dotprod" also works for DotProduct).
// FGD and FragLookahead need `workload`; the others ignore it.
Result<std::unique_ptr<Policy>> MakePolicy(std::string_view name, const TargetWorkload* workload);

// The individual score formulas, exposed for table tests. All take a node that fits.
int DotProductScore(const NodeState& node, const PodRequest& pod);
int GpuClusteringScore(const NodeState& node, const PodRequest& pod);
int GpuPackingScore(const NodeState& node, const PodRequest& pod);
int BestFitScore(const NodeState& node, const PodRequest& pod);  // raw, before rescaling
int WorstFitScore(const NodeState& node, const PodRequest& pod);
// FGD: the score and, for a sharing pod, the first GPU reaching it.
NodeScore FgdScore(const NodeState& node, const PodRequest& pod, const TargetWorkload& workload);
// s = ⌊100·σ(Δ/1000)⌋ for a fragmentation drop Δ in milli-GPU.
int SigmoidScore(double delta);

}  // namespace gpu_autoscaler::autoscale
