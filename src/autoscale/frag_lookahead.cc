#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "autoscale/policy_internal.h"

namespace gpu_autoscaler::autoscale::internal {
namespace {

double Env(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v ? std::atof(v) : fallback;
}

// Idle GPU milli that copies of `shape` could not use if the node were filled with them.
double PackedShapeFragmentation(const int16_t* free_milli, int gpu_count, int64_t free_cpu,
                                int model, const TypicalPod& shape) {
  int64_t idle = 0;
  for (int i = 0; i < gpu_count; ++i) idle += free_milli[i];
  if (shape.num_gpu == 0) return static_cast<double>(idle);
  if (model < 0 || !((shape.models >> model) & 1) || free_cpu < shape.cpu_milli) {
    return static_cast<double>(idle);
  }
  const int64_t cpu_copies = shape.cpu_milli > 0 ? free_cpu / shape.cpu_milli : 1 << 20;
  int64_t gpu_copies = 0;
  if (shape.num_gpu == 1) {
    for (int i = 0; i < gpu_count; ++i) gpu_copies += free_milli[i] / shape.gpu_milli;
  } else {
    int64_t fitting = 0;
    for (int i = 0; i < gpu_count; ++i) fitting += free_milli[i] >= shape.gpu_milli;
    gpu_copies = fitting / shape.num_gpu;
  }
  const int64_t copies = std::min(cpu_copies, gpu_copies);
  return static_cast<double>(idle - copies * shape.num_gpu * shape.gpu_milli);
}

double PackedFragmentation(const int16_t* free_milli, int gpu_count, int64_t free_cpu, int model,
                           const TargetWorkload& w, double mix) {
  double total = 0;
  for (const TypicalPod& shape : w.shapes()) {
    const double packed = PackedShapeFragmentation(free_milli, gpu_count, free_cpu, model, shape);
    const double single = static_cast<double>(
        ShapeFragmentation(free_milli, gpu_count, free_cpu, model, shape));
    total += shape.probability * (mix * packed + (1 - mix) * single);
  }
  return total;
}

class FragLookaheadPolicy final : public Policy {
 public:
  explicit FragLookaheadPolicy(const TargetWorkload* workload) : workload_(workload) {
    quantum_ = Env("FL_QUANTUM", 1.0);
    gpu_pack_ = Env("FL_GPU_PACK", 0.0);
    cpu_pack_ = Env("FL_CPU_PACK", 0.0);
    lex_ = Env("FL_LEX", 1.0);
    mix_ = Env("FL_MIX", 0.0);
  }
  std::string_view name() const override { return "FragLookahead"; }
  GpuSelection gpu_selection() const override { return GpuSelection::kFromScore; }
  NodeScore Score(const ClusterState& cluster, int index, const PodRequest& pod) override {
    const NodeState& node = cluster.node(index);
    const double before = PackedFragmentation(node.free_milli.data(), node.gpu_count, node.free_cpu, node.model, *workload_, mix_);
    std::array<int16_t, kMaxGpusPerNode> after = node.free_milli;
    const int64_t cpu_after = node.free_cpu - pod.cpu_milli;
    auto utility = [&](int64_t gpu_left) {
      const double delta =
          before - PackedFragmentation(after.data(), node.gpu_count, cpu_after, node.model, *workload_, mix_);
      const double q = lex_ > 1 ? SigmoidScore(delta) : std::round(delta / quantum_);
      const double packing = gpu_pack_ * (1.0 - static_cast<double>(gpu_left) / 16000.0) +
                             cpu_pack_ * (1.0 - static_cast<double>(cpu_after) / 256000.0);
      return lex_ > 0 ? q + packing * 0.5 : delta + packing;
    };
    const int64_t r_after = node.free_gpu_milli - pod.total_gpu_milli();
    NodeScore best{-1, -1, 0};
    auto consider = [&](double u, int gpu) {
      const int score = lex_ > 1 ? static_cast<int>(std::floor(u)) : SigmoidScore(lex_ > 0 ? u * quantum_ : u);
      if (best.score < 0 || score > best.score || (score == best.score && u > best.tiebreak)) {
        best = {score, gpu, u};
      }
    };
    if (!pod.uses_gpu() || pod.num_gpu > 1 || pod.gpu_milli == kMilliPerGpu) {
      const GpuSet gpus = ChooseBestGpus(node, pod);
      for (int i = 0; i < gpus.count; ++i) after[gpus.index[i]] -= pod.gpu_milli;
      consider(utility(r_after), -1);
      return best;
    }
    for (int i = 0; i < node.gpu_count; ++i) {
      const int16_t f = node.free_milli[i];
      if (f < pod.gpu_milli) continue;
      after[i] = static_cast<int16_t>(f - pod.gpu_milli);
      // Prefer the tighter GPU between equal fragmentation outcomes.
      consider(utility(r_after) + 0.25 * (1.0 - f / 1000.0) * (lex_ > 0 ? 1e-3 : 0), i);
      after[i] = f;
    }
    return best;
  }

 private:
  const TargetWorkload* workload_;
  double quantum_, gpu_pack_, cpu_pack_, lex_, mix_;
};

}  // namespace

std::unique_ptr<Policy> MakeFragLookahead(const TargetWorkload* workload) {
  return std::make_unique<FragLookaheadPolicy>(workload);
}

}  // namespace gpu_autoscaler::autoscale::internal
