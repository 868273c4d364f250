// FragLookahead: our placement policy. It keeps FGD's shape (maximise the drop
// in expected fragmentation over the target workload, integer sigmoid score,
// ties by rank) and changes what "fragmentation" means in six ways:
//
//  1. Look-ahead for sharing shapes. FGD asks "does one more pod of shape m
//     fit?". We also ask "how much of the idle GPU would pods of shape m use
//     if the node were filled with them?" (per GPU ⌊f_i/g_m⌋ copies, capped by
//     CPU), and average the two. Remainders that no copy of m can use, and
//     CPU that runs out before the GPUs do, count as fragment.
//  2. Model scarcity. GPU demand that only some models can serve (gpu_spec)
//     makes those models' capacity worth more. Placing a pod on a model pays
//     its GPU demand times that model's excess constrained-demand pressure.
//  3. Unfillable remainders. Per GPU, the free milli that no sum of typical
//     sharing requests can fill counts as fragment (a table built once).
//  4. CPU fragmentation. For typical CPU-only shapes, free CPU mod their
//     request counts, in milli-GPU at the cluster's ratio, weighted by how
//     tight the workload's CPU is (off where CPU is plentiful or
//     oversubscribed).
//  5. CPU shortfall. Idle GPU milli that the node's free CPU cannot feed at
//     the GPU pods' typical CPU per milli counts as fragment, so CPU-hungry
//     pods go where CPU is spare and idle GPUs keep the CPU to be used
//     (phased out as the workload's CPU nears the cluster's).
//  6. CPU stranded by memory. Free CPU that typical CPU-only pods cannot use
//     because the node's free memory runs out first counts, in milli-GPU at
//     the cluster's ratio, once the workload's CPU nears the cluster's: pods
//     then go where they keep CPU and memory in proportion.
//
// Where the workload's CPU exceeds the cluster's (ρ ≥ 1), every GPU pod placed
// takes CPU from CPU-only pods, and ties between nodes decide who gets it.
// CPU-only pods then break score ties toward the node with the most memory to
// spare beyond its idle GPUs' needs; whole-GPU and multi-GPU pods toward the
// node whose spare memory falls furthest short of its free CPU (the node that
// CPU-only pods, which need both, would use worst).
//
// The weights are FragLookaheadParams (policy_internal.h).
// See docs/placement.md for the measurements and why each part helps.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "autoscale/policy_internal.h"

namespace gpu_autoscaler::autoscale::internal {
namespace {

// fill[f]: the most of f free milli that a sum of typical sharing requests
// (any counts) can use; whole-GPU shapes fill 1000.
std::vector<int16_t> FillableMilli(const TargetWorkload& workload) {
  std::vector<bool> reachable(kMilliPerGpu + 1, false);
  reachable[0] = true;
  for (const TypicalPod& shape : workload.shapes()) {
    if (shape.num_gpu == 0 || shape.gpu_milli <= 0) continue;
    for (int f = shape.gpu_milli; f <= kMilliPerGpu; ++f)
      if (reachable[f - shape.gpu_milli]) reachable[f] = true;
  }
  std::vector<int16_t> fill(kMilliPerGpu + 1, 0);
  for (int f = 1; f <= kMilliPerGpu; ++f)
    fill[f] = reachable[f] ? static_cast<int16_t>(f) : fill[f - 1];
  return fill;
}

// The cluster-wide terms of the measure, computed once per cluster.
struct ClusterTerms {
  double cpu_weight = 0;        // part 4: milli-GPU per milli-CPU that CPU-only pods cannot use
  double shortfall_weight = 0;  // part 5, after the pressure ramp
  double cpu_per_milli = 0;     // κ: the GPU shapes' CPU per GPU milli
  double memory_weight = 0;     // part 6: milli-GPU per milli-CPU stranded by memory
  // ρ ≥ 1 and FragLookaheadParams::oversubscribed_cpu_tiebreaks: ties are
  // broken by the memory a node keeps beyond its idle GPUs' needs, at
  // memory_per_milli (the GPU shapes' memory per GPU milli), and for GPU pods
  // by that memory in CPU at the workload's memory per CPU.
  bool oversubscribed_tiebreaks = false;
  double memory_per_milli = 0;
};

class FragLookaheadPolicy final : public Policy {
 public:
  FragLookaheadPolicy(const TargetWorkload* workload, FragLookaheadParams params)
      : workload_(workload), params_(params), fill_(FillableMilli(*workload)) {
    for (const TypicalPod& shape : workload->shapes()) {
      int index = -1;
      if (shape.num_gpu > 0) {
        auto it = std::find(millis_.begin(), millis_.end(), shape.gpu_milli);
        index = static_cast<int>(it - millis_.begin());
        if (it == millis_.end()) millis_.push_back(shape.gpu_milli);
      }
      milli_of_shape_.push_back(index);
    }
    milli_stats_.resize(millis_.size());
  }
  std::string_view name() const override { return "FragLookahead"; }
  GpuSelection gpu_selection() const override { return GpuSelection::kFromScore; }

  NodeScore Score(const ClusterState& cluster, int index, const PodRequest& pod) override {
    if (scarcity_.empty()) ComputeClusterTerms(cluster);
    const NodeState& node = cluster.node(index);
    const double penalty = node.model >= 0 ? params_.scarcity_weight *
                                                 static_cast<double>(pod.total_gpu_milli()) *
                                                 scarcity_[node.model]
                                           : 0.0;
    const double before = FragmentationNow(node, index);
    std::array<int16_t, kMaxGpusPerNode> after = node.free_milli;
    const int64_t cpu_after = node.free_cpu - pod.cpu_milli;
    const bool memory_matters = terms_.memory_weight != 0 || terms_.oversubscribed_tiebreaks;
    const int64_t memory_after =
        memory_matters ? node.free_memory - TypicalMemory(pod) : node.free_memory;
    auto score_after = [&]() {
      const double frag =
          Fragmentation(after.data(), node.gpu_count, cpu_after, memory_after, node.model);
      return SigmoidScore(before - frag - penalty);
    };
    if (pod.num_gpu == 0) {
      const double tiebreak = terms_.oversubscribed_tiebreaks
                                  ? SpareMemory(after.data(), node.gpu_count, memory_after)
                                  : 0;
      return {score_after(), -1, tiebreak};
    }
    if (!(pod.num_gpu == 1 && pod.gpu_milli < kMilliPerGpu)) {
      const GpuSet gpus = ChooseBestGpus(node, pod);
      for (int i = 0; i < gpus.count; ++i)
        after[gpus.index[i]] -= pod.gpu_milli;
      double tiebreak = 0;
      if (terms_.oversubscribed_tiebreaks && memory_per_cpu_ > 0) {
        tiebreak = static_cast<double>(cpu_after) -
                   SpareMemory(after.data(), node.gpu_count, memory_after) / memory_per_cpu_;
      }
      return {score_after(), -1, tiebreak};
    }
    // A sharing pod: the best GPU by score, then the tightest, then the lowest
    // index. The measure does not depend on GPU order, so a GPU with the same
    // free milli as a lower-index one scores the same and cannot win.
    NodeScore best{-1, -1, 0};
    for (int i = 0; i < node.gpu_count; ++i) {
      const int16_t f = node.free_milli[i];
      if (f < pod.gpu_milli) continue;
      if (std::find(node.free_milli.begin(), node.free_milli.begin() + i, f) !=
          node.free_milli.begin() + i) {
        continue;
      }
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
  // The memory, in MiB, a node with these GPUs free and this much memory keeps
  // beyond what its idle GPUs would take if filled with typical GPU pods.
  double SpareMemory(const int16_t* free_milli, int gpu_count, int64_t free_memory) const {
    int64_t idle = 0;
    for (int i = 0; i < gpu_count; ++i)
      idle += free_milli[i];
    return static_cast<double>(free_memory) - terms_.memory_per_milli * static_cast<double>(idle);
  }
  // The memory part 6 charges a pod: its shape's mean in the target workload,
  // else its CPU at the workload's memory per CPU. Not the pod's own request:
  // scores must depend on the shape alone, which the scheduler caches them by
  // (a trace's shape nearly always comes with one memory request).
  int64_t TypicalMemory(const PodRequest& pod) const {
    for (const TypicalPod& m : workload_->shapes()) {
      if (m.cpu_milli == pod.cpu_milli && m.num_gpu == pod.num_gpu &&
          m.gpu_milli == pod.gpu_milli && m.models == pod.models)
        return m.memory_mib;
    }
    return static_cast<int64_t>(static_cast<double>(pod.cpu_milli) * memory_per_cpu_);
  }
  // The measure of a node in the given state: parts 1 and 3–6 over the
  // target workload. Per GPU request size, how many GPUs fit it, the milli
  // on GPUs too small for it, and the copies the GPUs hold are counted once
  // and shared by the shapes of that size (FGD's ShapeFragmentation and the
  // look-ahead, computed together).
  double Fragmentation(const int16_t* free_milli, int gpu_count, int64_t free_cpu,
                       int64_t free_memory, int model) {
    int64_t idle = 0;
    for (int i = 0; i < gpu_count; ++i)
      idle += free_milli[i];
    for (size_t k = 0; k < millis_.size(); ++k) {
      const int m = millis_[k];
      MilliStats& stats = milli_stats_[k];
      stats = {};
      for (int i = 0; i < gpu_count; ++i) {
        if (free_milli[i] >= m) {
          ++stats.fitting;
          if (m > 0) stats.copies += free_milli[i] / m;
        } else {
          stats.unusable += free_milli[i];
        }
      }
    }
    double total = 0;
    if (terms_.shortfall_weight != 0) {
      const double fed = static_cast<double>(free_cpu) / terms_.cpu_per_milli;
      if (fed < static_cast<double>(idle)) {
        total += terms_.shortfall_weight * (static_cast<double>(idle) - fed);
      }
    }
    if (params_.unfillable_weight != 0) {
      int64_t unfillable = 0;
      for (int i = 0; i < gpu_count; ++i)
        unfillable += free_milli[i] - fill_[free_milli[i]];
      total += params_.unfillable_weight * static_cast<double>(unfillable);
    }
    const std::vector<TypicalPod>& shapes = workload_->shapes();
    for (size_t j = 0; j < shapes.size(); ++j) {
      const TypicalPod& shape = shapes[j];
      if (shape.num_gpu == 0) {
        if (terms_.cpu_weight != 0 && shape.cpu_milli > 0) {
          total += terms_.cpu_weight * shape.probability *
                   static_cast<double>(free_cpu % shape.cpu_milli);
        }
        if (terms_.memory_weight != 0 && shape.memory_mib > 0) {
          const int64_t fed =
              (std::max<int64_t>(free_memory, 0) / shape.memory_mib) * shape.cpu_milli;
          if (fed < free_cpu) {
            total += terms_.memory_weight * shape.probability * static_cast<double>(free_cpu - fed);
          }
        }
        total += shape.probability * static_cast<double>(idle);  // FGD: all idle GPU is fragment
        continue;
      }
      const MilliStats& stats = milli_stats_[milli_of_shape_[j]];
      // FGD's F_n(m): all idle when the shape cannot use the node at all.
      const bool usable = model >= 0 && ((shape.models >> model) & 1) &&
                          free_cpu >= shape.cpu_milli && stats.fitting >= shape.num_gpu;
      const int64_t single = usable ? stats.unusable : idle;
      const bool sharing = shape.num_gpu == 1 && shape.gpu_milli < kMilliPerGpu;
      if (!sharing || single == idle) {
        total += shape.probability * static_cast<double>(single);
        continue;
      }
      // The look-ahead: idle milli that copies of the shape could not use if
      // the node were filled with them, as many as its CPU allows.
      const int64_t cpu_copies =
          shape.cpu_milli > 0 ? free_cpu / shape.cpu_milli : std::numeric_limits<int64_t>::max();
      const int64_t packed = idle - std::min(cpu_copies, stats.copies) * shape.gpu_milli;
      total += shape.probability * ((1 - params_.lookahead_weight) * static_cast<double>(single) +
                                    params_.lookahead_weight * static_cast<double>(packed));
    }
    return total;
  }

  // The node's fragmentation as it stands, computed once per node version:
  // every shape scored against the node starts from it.
  double FragmentationNow(const NodeState& node, int index) {
    if (index >= static_cast<int>(now_.size())) now_.resize(index + 1);
    NowEntry& entry = now_[index];
    if (entry.version != node.version) {
      entry.version = node.version;
      entry.fragmentation = Fragmentation(node.free_milli.data(), node.gpu_count, node.free_cpu,
                                          node.free_memory, node.model);
    }
    return entry.fragmentation;
  }

  // scarcity_[j]: how much more constrained demand, per unit of capacity that
  // can serve it, model j carries than the least pressed model (milli-GPU
  // units / 1000). Zero everywhere when no shape constrains models. And
  // terms_, the weights of the CPU terms.
  void ComputeClusterTerms(const ClusterState& cluster) {
    const int models = static_cast<int>(cluster.models().size());
    std::vector<double> capacity(models, 0);
    double all = 0, cpu = 0;
    for (int i = 0; i < cluster.node_count(); ++i) {
      const NodeState& n = cluster.node(i);
      cpu += static_cast<double>(cluster.spec(i).cpu_milli);
      if (n.model < 0) continue;
      capacity[n.model] += n.gpu_count * static_cast<double>(kMilliPerGpu);
      all += n.gpu_count * static_cast<double>(kMilliPerGpu);
    }
    // The CPU term in milli-GPU at the cluster's exchange rate, scaled by
    // how CPU-bound the target workload is when asked to.
    double pod_cpu = 0, pod_gpu = 0, gpu_pod_cpu = 0;
    for (const TypicalPod& m : workload_->shapes()) {
      pod_cpu += m.probability * static_cast<double>(m.cpu_milli);
      pod_gpu += m.probability * m.num_gpu * m.gpu_milli;
      if (m.num_gpu > 0) gpu_pod_cpu += m.probability * static_cast<double>(m.cpu_milli);
    }
    const double gpu_per_cpu = cpu > 0 ? all / cpu : 0;
    // ρ: the workload's CPU per GPU milli over the cluster's.
    const double rho = pod_gpu > 0 ? (pod_cpu / pod_gpu) * gpu_per_cpu : 0;
    double cpu_pressure = 1;
    const double ref = params_.cpu_pressure_reference;
    if (ref > 0 && ref < 1 && pod_gpu > 0) {
      // From ρ = 1 on, the workload's CPU exceeds the cluster's: CPU-only
      // pods are then refused for capacity, not fragmentation, and the term
      // would only move CPU from them to GPU pods (measured on tuning seeds).
      cpu_pressure = rho >= 1 ? 0 : std::max(0.0, rho - ref) / (1 - ref);
    }
    terms_.cpu_weight = params_.cpu_fragment_weight * gpu_per_cpu * cpu_pressure;
    // The shortfall term spends CPU on GPU pods; as ρ nears 1 that CPU is
    // what large CPU-only pods need (measured on tuning seeds), so it fades.
    const double full = params_.cpu_shortfall_full_below, off = params_.cpu_shortfall_off_from;
    const double ramp = rho <= full ? 1.0 : rho >= off ? 0.0 : (off - rho) / (off - full);
    if (pod_gpu > 0 && gpu_pod_cpu > 0) {
      terms_.cpu_per_milli = gpu_pod_cpu / pod_gpu;
      terms_.shortfall_weight = params_.cpu_shortfall_weight * ramp;
    }
    const double strand_ref = params_.memory_strand_reference;
    const double strand_ramp = strand_ref >= 1
                                   ? (rho >= 1 ? 1.0 : 0.0)
                                   : std::clamp((rho - strand_ref) / (1 - strand_ref), 0.0, 1.0);
    terms_.memory_weight = params_.memory_strand_weight * gpu_per_cpu * strand_ramp;
    double shape_memory = 0, gpu_shape_memory = 0;
    for (const TypicalPod& m : workload_->shapes()) {
      shape_memory += m.probability * static_cast<double>(m.memory_mib);
      if (m.num_gpu > 0) gpu_shape_memory += m.probability * static_cast<double>(m.memory_mib);
    }
    memory_per_cpu_ = pod_cpu > 0 ? shape_memory / pod_cpu : 0;
    terms_.oversubscribed_tiebreaks =
        params_.oversubscribed_cpu_tiebreaks && pod_gpu > 0 && rho >= 1;
    terms_.memory_per_milli = pod_gpu > 0 ? gpu_shape_memory / pod_gpu : 0;
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
  FragLookaheadParams params_;
  std::vector<int16_t> fill_;
  std::vector<double> scarcity_;
  ClusterTerms terms_;
  struct NowEntry {
    uint64_t version = 0;  // node versions start at 1
    double fragmentation = 0;
  };
  std::vector<NowEntry> now_;  // per node index
  double memory_per_cpu_ = 0;
  // The distinct GPU request sizes of the target workload's GPU shapes, each
  // shape's index into them (-1 for CPU-only), and Fragmentation's scratch.
  struct MilliStats {
    int fitting = 0;       // GPUs with at least this much free
    int64_t unusable = 0;  // free milli on the GPUs with less
    int64_t copies = 0;    // Σ ⌊free / size⌋
  };
  std::vector<int> millis_;
  std::vector<int> milli_of_shape_;
  std::vector<MilliStats> milli_stats_;
};

}  // namespace

std::unique_ptr<Policy> MakeFragLookahead(const TargetWorkload* workload,
                                          FragLookaheadParams params) {
  return std::make_unique<FragLookaheadPolicy>(workload, params);
}

}  // namespace gpu_autoscaler::autoscale::internal
