// FragLookahead: our placement policy. It keeps FGD's shape (maximise the drop
// in expected fragmentation over the target workload, integer sigmoid score,
// ties by rank) and changes what "fragmentation" means in two ways:
//
//  1. Look-ahead for sharing shapes. FGD asks "does one more pod of shape m
//     fit?". We also ask "how much of the idle GPU would pods of shape m use
//     if the node were filled with them?" (per GPU ⌊f_i/g_m⌋ copies, capped by
//     CPU), and average the two. Remainders that no copy of m can use, and
//     CPU that runs out before the GPUs do, count as fragment.
//  2. Model scarcity. GPU demand that only some models can serve (gpu_spec)
//     makes those models' capacity worth more. Placing a pod on a model pays
//     its GPU demand times that model's excess constrained-demand pressure.
//
// See docs/placement.md for the measurements and why each part helps.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "autoscale/policy_internal.h"

namespace gpu_autoscaler::autoscale::internal {
namespace {

// Weight of the packing look-ahead against FGD's one-pod test, for sharing shapes.
constexpr double kLookaheadWeight = 0.5;
// Milli-GPU of penalty per milli-GPU placed, per unit of model scarcity.
constexpr double kScarcityWeight = 1.0;

// Idle GPU milli that copies of `shape` could not use if the node were filled with them.
int64_t PackedShapeFragmentation(const int16_t* free_milli, int gpu_count, int64_t free_cpu,
                                 const TypicalPod& shape, int64_t idle) {
  const int64_t cpu_copies =
      shape.cpu_milli > 0 ? free_cpu / shape.cpu_milli : std::numeric_limits<int64_t>::max();
  int64_t gpu_copies = 0;
  for (int i = 0; i < gpu_count; ++i)
    gpu_copies += free_milli[i] / shape.gpu_milli;
  return idle - std::min(cpu_copies, gpu_copies) * shape.gpu_milli;
}

double LookaheadFragmentation(const int16_t* free_milli, int gpu_count, int64_t free_cpu, int model,
                              const TargetWorkload& workload) {
  int64_t idle = 0;
  for (int i = 0; i < gpu_count; ++i)
    idle += free_milli[i];
  double total = 0;
  for (const TypicalPod& shape : workload.shapes()) {
    const int64_t single = ShapeFragmentation(free_milli, gpu_count, free_cpu, model, shape);
    const bool sharing = shape.num_gpu == 1 && shape.gpu_milli < kMilliPerGpu;
    if (!sharing || single == idle) {  // idle: the shape cannot use this node at all
      total += shape.probability * static_cast<double>(single);
      continue;
    }
    const int64_t packed = PackedShapeFragmentation(free_milli, gpu_count, free_cpu, shape, idle);
    total += shape.probability * ((1 - kLookaheadWeight) * static_cast<double>(single) +
                                  kLookaheadWeight * static_cast<double>(packed));
  }
  return total;
}

class FragLookaheadPolicy final : public Policy {
 public:
  explicit FragLookaheadPolicy(const TargetWorkload* workload) : workload_(workload) {}
  std::string_view name() const override { return "FragLookahead"; }
  GpuSelection gpu_selection() const override { return GpuSelection::kFromScore; }

  NodeScore Score(const ClusterState& cluster, int index, const PodRequest& pod) override {
    if (scarcity_.empty()) ComputeScarcity(cluster);
    const NodeState& node = cluster.node(index);
    const double penalty =
        node.model >= 0
            ? kScarcityWeight * static_cast<double>(pod.total_gpu_milli()) * scarcity_[node.model]
            : 0.0;
    const double before = LookaheadFragmentation(node.free_milli.data(), node.gpu_count,
                                                 node.free_cpu, node.model, *workload_);
    std::array<int16_t, kMaxGpusPerNode> after = node.free_milli;
    const int64_t cpu_after = node.free_cpu - pod.cpu_milli;
    auto score_after = [&]() {
      const double frag =
          LookaheadFragmentation(after.data(), node.gpu_count, cpu_after, node.model, *workload_);
      return SigmoidScore(before - frag - penalty);
    };
    if (!(pod.num_gpu == 1 && pod.gpu_milli < kMilliPerGpu)) {
      const GpuSet gpus = ChooseBestGpus(node, pod);
      for (int i = 0; i < gpus.count; ++i)
        after[gpus.index[i]] -= pod.gpu_milli;
      return {score_after(), -1, 0};
    }
    // A sharing pod: the best GPU by score, then the tightest, then the lowest index.
    NodeScore best{-1, -1, 0};
    for (int i = 0; i < node.gpu_count; ++i) {
      const int16_t f = node.free_milli[i];
      if (f < pod.gpu_milli) continue;
      after[i] = static_cast<int16_t>(f - pod.gpu_milli);
      const int score = score_after();
      after[i] = f;
      const double tightness = 1.0 - f / static_cast<double>(kMilliPerGpu);
      if (score > best.score || (score == best.score && tightness > best.tiebreak)) {
        best = {score, i, tightness};
      }
    }
    return best;
  }

 private:
  // scarcity_[j]: how much more constrained demand, per unit of capacity that
  // can serve it, model j carries than the least pressed model (milli-GPU
  // units / 1000). Zero everywhere when no shape constrains models.
  void ComputeScarcity(const ClusterState& cluster) {
    const int models = static_cast<int>(cluster.models().size());
    std::vector<double> capacity(models, 0);
    double all = 0;
    for (int i = 0; i < cluster.node_count(); ++i) {
      const NodeState& n = cluster.node(i);
      if (n.model < 0) continue;
      capacity[n.model] += n.gpu_count * static_cast<double>(kMilliPerGpu);
      all += n.gpu_count * static_cast<double>(kMilliPerGpu);
    }
    scarcity_.assign(std::max(models, 1), 0);
    for (const TypicalPod& m : workload_->shapes()) {
      if (m.num_gpu == 0) continue;
      double accepted = 0;
      for (int j = 0; j < models; ++j) {
        if ((m.models >> j) & 1) accepted += capacity[j];
      }
      if (accepted <= 0) continue;
      const double pressure = m.probability * m.num_gpu * m.gpu_milli * all / accepted;
      for (int j = 0; j < models; ++j) {
        if ((m.models >> j) & 1) scarcity_[j] += pressure;
      }
    }
    const double least = *std::min_element(scarcity_.begin(), scarcity_.end());
    for (double& s : scarcity_)
      s = (s - least) / kMilliPerGpu;
  }

  const TargetWorkload* workload_;
  std::vector<double> scarcity_;
};

}  // namespace

std::unique_ptr<Policy> MakeFragLookahead(const TargetWorkload* workload) {
  return std::make_unique<FragLookaheadPolicy>(workload);
}

}  // namespace gpu_autoscaler::autoscale::internal
