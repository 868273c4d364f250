#include "autoscale/policy.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "autoscale/policy_internal.h"

namespace gpu_autoscaler::autoscale {
namespace {

constexpr double kCpuNorm = 128000;  // the protocol's max node CPU (milli)
constexpr double kGpuNorm = 8000;    // the protocol's max node GPU (milli)

int ClampScore(double s) {
  return static_cast<int>(std::clamp(std::floor(s), 0.0, 100.0));
}

class FirstFitPolicy final : public Policy {
 public:
  std::string_view name() const override { return "FirstFit"; }
  NodeScore Score(const ClusterState&, int, const PodRequest&) override { return {100, -1}; }
};

class RandomPolicy final : public Policy {
 public:
  std::string_view name() const override { return "Random"; }
  NodeScore Score(const ClusterState&, int, const PodRequest&) override { return {0, -1}; }
  GpuSelection gpu_selection() const override { return GpuSelection::kRandom; }
  bool picks_random_node() const override { return true; }
};

// A policy whose score is a pure function of (node, pod).
template <int (*ScoreFn)(const NodeState&, const PodRequest&)>
class FormulaPolicy final : public Policy {
 public:
  explicit FormulaPolicy(std::string_view name) : name_(name) {}
  std::string_view name() const override { return name_; }
  NodeScore Score(const ClusterState& cluster, int node, const PodRequest& pod) override {
    return {ScoreFn(cluster.node(node), pod), -1};
  }

 private:
  std::string_view name_;
};

class FgdPolicy final : public Policy {
 public:
  explicit FgdPolicy(const TargetWorkload* workload) : workload_(workload) {}
  std::string_view name() const override { return "FGD"; }
  NodeScore Score(const ClusterState& cluster, int node, const PodRequest& pod) override {
    return FgdScore(cluster.node(node), pod, *workload_);
  }
  GpuSelection gpu_selection() const override { return GpuSelection::kFromScore; }

 private:
  const TargetWorkload* workload_;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

int DotProductScore(const NodeState& node, const PodRequest& pod) {
  const double dot = (static_cast<double>(node.free_cpu) / kCpuNorm) *
                         (static_cast<double>(pod.cpu_milli) / kCpuNorm) +
                     (static_cast<double>(node.free_gpu_milli) / kGpuNorm) *
                         (static_cast<double>(pod.total_gpu_milli()) / kGpuNorm);
  return ClampScore(100.0 * (1.0 - dot / 2.0));
}

int GpuClusteringScore(const NodeState& node, const PodRequest& pod) {
  if (!pod.uses_gpu()) return 0;
  const int base = std::max(0, 25 * (8000 - node.free_gpu_milli) / 8000);
  const int tag = GpuTag(pod);
  bool has_tag = false;
  bool has_other = false;
  for (int t = 0; t <= kMaxGpusPerNode; ++t) {
    if (node.tag_counts[t] <= 0) continue;
    (t == tag ? has_tag : has_other) = true;
  }
  if (has_tag) return base + (has_other ? 50 : 75);
  if (!has_other) return base + 25;
  return base;
}

int GpuPackingScore(const NodeState& node, const PodRequest& pod) {
  if (!pod.uses_gpu()) return 0;
  const int k = node.gpu_count;
  if (node.fully_free_gpus == k) return std::max(33 - k, k);
  std::array<int, kMaxGpusPerNode> order{};
  int count = 0;
  for (int i = 0; i < k; ++i) {
    if (node.free_milli[i] >= pod.gpu_milli) order[count++] = i;
  }
  std::stable_sort(order.begin(), order.begin() + count,
                   [&node](int a, int b) { return node.free_milli[a] < node.free_milli[b]; });
  const int chosen = std::min(count, pod.num_gpu);
  int fully_free = 0;
  int percent_sum = 0;
  for (int i = 0; i < chosen; ++i) {
    const int f = node.free_milli[order[i]];
    fully_free += f == kMilliPerGpu;
    percent_sum += f * 100 / kMilliPerGpu;
  }
  if (fully_free > 0) return std::max(50 - fully_free, 33);
  return std::max(100 - percent_sum / 10, 50);
}

int BestFitScore(const NodeState& node, const PodRequest& pod) {
  const double left =
      0.5 * static_cast<double>(node.free_cpu - pod.cpu_milli) / kCpuNorm +
      0.5 * static_cast<double>(node.free_gpu_milli - pod.total_gpu_milli()) / kGpuNorm;
  return ClampScore(100.0 * (1.0 - left));
}

int WorstFitScore(const NodeState& node, const PodRequest& pod) {
  const double left =
      0.5 * static_cast<double>(node.free_cpu - pod.cpu_milli) / kCpuNorm +
      0.5 * static_cast<double>(node.free_gpu_milli - pod.total_gpu_milli()) / kGpuNorm;
  return ClampScore(100.0 * left);
}

int SigmoidScore(double delta) {
  return ClampScore(100.0 / (1.0 + std::exp(-delta / 1000.0)));
}

NodeScore FgdScore(const NodeState& node, const PodRequest& pod, const TargetWorkload& workload) {
  const double before = NodeFragmentation(node, workload);
  std::array<int16_t, kMaxGpusPerNode> after = node.free_milli;
  const int64_t cpu_after = node.free_cpu - pod.cpu_milli;
  auto frag_after = [&]() {
    return Fragmentation(after.data(), node.gpu_count, cpu_after, node.model, workload);
  };
  if (!pod.uses_gpu()) return {SigmoidScore(before - frag_after()), -1};
  if (pod.num_gpu > 1 || pod.gpu_milli == kMilliPerGpu) {
    const GpuSet gpus = ChooseBestGpus(node, pod);
    for (int i = 0; i < gpus.count; ++i)
      after[gpus.index[i]] -= pod.gpu_milli;
    return {SigmoidScore(before - frag_after()), -1};
  }
  // A sharing pod: try each GPU that fits; GPUs with equal free milli give the
  // same outcome, so each distinct value is evaluated once.
  NodeScore best{-1, -1};
  std::array<int16_t, kMaxGpusPerNode> seen_free{};
  std::array<int, kMaxGpusPerNode> seen_score{};
  int seen = 0;
  for (int i = 0; i < node.gpu_count; ++i) {
    const int16_t f = node.free_milli[i];
    if (f < pod.gpu_milli) continue;
    int score = -1;
    for (int j = 0; j < seen; ++j) {
      if (seen_free[j] == f) score = seen_score[j];
    }
    if (score < 0) {
      after[i] = static_cast<int16_t>(f - pod.gpu_milli);
      score = SigmoidScore(before - frag_after());
      after[i] = f;
      seen_free[seen] = f;
      seen_score[seen++] = score;
    }
    if (score > best.score) best = {score, i};
  }
  return best;
}

const std::vector<std::string>& PolicyNames() {
  static const std::vector<std::string> kNames = {
      "Random", "DotProduct", "GpuClustering", "GpuPacking",    "BestFit",
      "FGD",    "FirstFit",   "WorstFit",      "FragLookahead",
  };
  return kNames;
}

Result<std::unique_ptr<Policy>> MakePolicy(std::string_view name, const TargetWorkload* workload) {
  const std::string key = Lower(name);
  std::unique_ptr<Policy> policy;
  if (key == "random") {
    policy = std::make_unique<RandomPolicy>();
  } else if (key == "dotproduct" || key == "dotprod") {
    policy = std::make_unique<FormulaPolicy<DotProductScore>>("DotProduct");
  } else if (key == "gpuclustering") {
    policy = std::make_unique<FormulaPolicy<GpuClusteringScore>>("GpuClustering");
  } else if (key == "gpupacking") {
    policy = std::make_unique<FormulaPolicy<GpuPackingScore>>("GpuPacking");
  } else if (key == "bestfit") {
    policy = std::make_unique<FormulaPolicy<BestFitScore>>("BestFit");
  } else if (key == "worstfit") {
    policy = std::make_unique<FormulaPolicy<WorstFitScore>>("WorstFit");
  } else if (key == "firstfit") {
    policy = std::make_unique<FirstFitPolicy>();
  } else if (key == "fgd" || key == "fraglookahead") {
    if (workload == nullptr) {
      return InvalidArgumentError("policy " + std::string(name) + " needs a target workload");
    }
    if (key == "fgd") {
      policy = std::make_unique<FgdPolicy>(workload);
    } else {
      policy = internal::MakeFragLookahead(workload);
    }
  } else {
    std::string known;
    for (const std::string& n : PolicyNames())
      known += (known.empty() ? "" : ", ") + n;
    return InvalidArgumentError("unknown policy \"" + std::string(name) + "\" (known: " + known +
                                ")");
  }
  return policy;
}

}  // namespace gpu_autoscaler::autoscale
