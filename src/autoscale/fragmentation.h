// File: src/autoscale/fragmentation.h
//
// FGD's "target workload" and node fragmentation (protocol §4.6). The target
// workload is the most frequent pod shapes of a trace covering 95% of its
// pods, each with its probability. A node's fragmentation with respect to a
// shape is the idle GPU milli that the shape could not use there; the node's
// fragmentation is the expectation over the target workload.
//
//   TargetWorkload w = TargetWorkload::FromTrace(pods, cluster);
//   double frag = NodeFragmentation(cluster.node(3), w);  // milli-GPU
//
// Thread-safety: a TargetWorkload is immutable after construction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autoscale/cluster.h"

namespace gpu_autoscaler::autoscale {

struct TypicalPod {
  int64_t cpu_milli = 0;
  int gpu_milli = 0;  // per GPU; 0 for CPU-only shapes
  int num_gpu = 0;
  std::string gpu_spec;  // '|'-joined models; empty = any
  ModelMask models = kAnyModel;
  int64_t count = 0;
  double probability = 0;
  // Mean memory request of the group's pods (not part of the grouping key);
  // 0 when unknown (FromShapes callers that do not set it).
  int64_t memory_mib = 0;
};

class TargetWorkload {
 public:
  TargetWorkload() = default;
  // Groups `pods` by (cpu, gpu_milli, num_gpu, gpu_spec), sorts by count
  // (descending, ties by key descending) and keeps the shortest prefix
  // covering `coverage` of the pods. Model names are resolved against `cluster`.
  static TargetWorkload FromTrace(const std::vector<PodSpec>& pods, const ClusterState& cluster,
                                  double coverage = 0.95);
  // A workload from explicit shapes; probabilities are normalised to sum to 1.
  static TargetWorkload FromShapes(std::vector<TypicalPod> shapes);
  // The shapes of `a` and `b`, each weighted by its pod count (TypicalPod::
  // count). The scheduler cuts GPU and CPU-only pods to their own coverage and
  // merges them, so that a class with many more pods cannot crowd the other's
  // shapes out of the cut.
  static TargetWorkload MergeByPodCount(const TargetWorkload& a, const TargetWorkload& b);

  const std::vector<TypicalPod>& shapes() const { return shapes_; }
  // Number of distinct shapes in the trace before the cutoff.
  int distinct_shapes() const { return distinct_shapes_; }

 private:
  std::vector<TypicalPod> shapes_;
  int distinct_shapes_ = 0;
};

// F_n(m) for one shape, in milli-GPU, of a node given as raw state.
int64_t ShapeFragmentation(const int16_t* free_milli, int gpu_count, int64_t free_cpu, int model,
                           const TypicalPod& shape);
// F_n = Σ_m p_m·F_n(m) for raw node state.
double Fragmentation(const int16_t* free_milli, int gpu_count, int64_t free_cpu, int model,
                     const TargetWorkload& workload);
inline double NodeFragmentation(const NodeState& node, const TargetWorkload& workload) {
  return Fragmentation(node.free_milli.data(), node.gpu_count, node.free_cpu, node.model, workload);
}

}  // namespace gpu_autoscaler::autoscale
