#include "autoscale/defrag.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <unordered_map>

namespace gpu_autoscaler::autoscale {
namespace {

constexpr int kTopDestinations = 4;

bool IsSharing(const PodRequest& pod) {
  return pod.num_gpu == 1 && pod.gpu_milli < kMilliPerGpu;
}

// A pod's shape without memory: destination drops depend only on this.
struct ShapeKey {
  int64_t cpu_milli;
  int num_gpu;
  int gpu_milli;
  ModelMask models;
  bool operator==(const ShapeKey&) const = default;
};
struct ShapeKeyHash {
  size_t operator()(const ShapeKey& k) const {
    uint64_t h = static_cast<uint64_t>(k.cpu_milli) * 0x9e3779b97f4a7c15ULL;
    h ^= (static_cast<uint64_t>(k.num_gpu) << 40) ^ (static_cast<uint64_t>(k.gpu_milli) << 20);
    h ^= k.models * 0xc2b2ae3d27d4eb4fULL;
    return static_cast<size_t>(h ^ (h >> 31));
  }
};

struct DestEntry {
  uint64_t version = 0;  // 0 = not computed
  bool fits = false;
  int8_t gpu = -1;  // the sharing pod's GPU
  double drop = 0;
};

struct SourceEntry {
  uint64_t version = 0;
  double drop = 0;
};

struct Candidate {
  BindingId binding = -1;
  PodRequest pod;
  Placement placement;
  int key = -1;
  bool moved = false;
  SourceEntry source;
};

struct Eval {
  int candidate = -1;
  int dest = -1;
  int gpu = -1;
  double source_drop = 0;
  double dest_drop = 0;
  double gain() const { return source_drop + dest_drop; }
};

struct Undo {
  int candidate = -1;
  Placement original;
};

class Planner {
 public:
  Planner(const ClusterState& cluster, const TargetWorkload& workload)
      : cluster_(cluster), workload_(workload) {}

  Status AddCandidates(std::span<const DefragCandidate> in) {
    std::unordered_map<ShapeKey, int, ShapeKeyHash> key_ids;
    for (const DefragCandidate& c : in) {
      if (c.placement.node < 0 || c.placement.node >= cluster_.node_count()) {
        return InvalidArgumentError("defragmentation candidate on node " +
                                    std::to_string(c.placement.node) +
                                    ", which is not in the cluster");
      }
      Candidate cand;
      cand.binding = c.binding;
      cand.pod = c.pod;
      cand.placement = c.placement;
      // MIG and CPU-only pods do not enter FGD's measure: never moved.
      if (!c.pod.uses_gpu() || c.pod.mig_slices > 0) cand.moved = true;
      const ShapeKey key{c.pod.cpu_milli, c.pod.num_gpu, c.pod.gpu_milli, c.pod.models};
      auto [it, inserted] = key_ids.try_emplace(key, static_cast<int>(keys_.size()));
      if (inserted) {
        PodRequest shape = c.pod;
        shape.memory_mib = 0;  // checked per pod
        keys_.push_back(shape);
        dest_.emplace_back(cluster_.node_count());
        top_.emplace_back();
      }
      cand.key = it->second;
      candidates_.push_back(std::move(cand));
    }
    return Status::Ok();
  }

  Result<DefragPlan> Run(const DefragOptions& options) {
    DefragPlan plan;
    plan.fragmentation_before = ClusterFragmentation(cluster_, workload_);
    plan.fully_free_gpus_before = FullyFreeGpus();
    while (static_cast<int>(plan.moves.size()) < options.max_moves) {
      std::vector<Eval> evals = EvaluateAll();
      if (evals.empty()) {
        plan.stop_reason = "no remaining candidate fits on another node";
        break;
      }
      int best = 0;
      for (size_t i = 1; i < evals.size(); ++i) {
        if (evals[i].gain() > evals[best].gain()) best = static_cast<int>(i);
      }
      double best_score = evals[best].gain();
      bool paired = false;
      const int moves_left = options.max_moves - static_cast<int>(plan.moves.size());
      if (options.lookahead > 0 && moves_left >= 2) {
        for (int first : LookaheadSet(evals, options.lookahead)) {
          const Eval e = evals[first];
          GPU_ASSIGN_OR_RETURN(Undo undo, Apply(e));
          std::vector<Eval> seconds = EvaluateAll();
          GPU_RETURN_IF_ERROR(Revert(undo));
          if (seconds.empty()) continue;
          double second = seconds[0].gain();
          for (const Eval& s : seconds)
            second = std::max(second, s.gain());
          const double pair = (e.gain() + second) / 2;
          if (pair > best_score + 1e-9 && pair > e.gain() + 1e-9) {
            best_score = pair;
            best = first;
            paired = true;
          } else if (e.gain() > best_score + 1e-9) {
            best_score = e.gain();
            best = first;
            paired = false;
          }
        }
      }
      if (best_score < options.min_gain_milli) {
        plan.stop_reason = "no move gains at least " + FormatMilli(options.min_gain_milli) +
                           " milli-GPU per evicted pod";
        break;
      }
      const Eval e = evals[best];
      const int from = candidates_[e.candidate].placement.node;
      const int free_before = cluster_.node(from).fully_free_gpus;
      GPU_ASSIGN_OR_RETURN(Undo undo, Apply(e));
      (void)undo;
      DefragMove move;
      move.candidate = e.candidate;
      move.from_node = from;
      move.to = candidates_[e.candidate].placement;
      move.gain_milli = e.gain();
      move.paired = paired;
      move.whole_gpus_freed = cluster_.node(from).fully_free_gpus - free_before;
      move.source_drop = e.source_drop;
      move.destination_drop = e.dest_drop;
      plan.moves.push_back(std::move(move));
    }
    if (plan.stop_reason.empty()) plan.stop_reason = "max moves reached";
    plan.fragmentation_after = ClusterFragmentation(cluster_, workload_);
    plan.fully_free_gpus_after = FullyFreeGpus();
    return plan;
  }

  ClusterState& cluster() { return cluster_; }

 private:
  static std::string FormatMilli(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v);
    return buf;
  }

  int FullyFreeGpus() const {
    int n = 0;
    for (int i = 0; i < cluster_.node_count(); ++i)
      n += cluster_.node(i).fully_free_gpus;
    return n;
  }

  double NodeFrag(int node) {
    if (node_frag_.empty()) {
      node_frag_.assign(cluster_.node_count(), 0);
      node_frag_version_.assign(cluster_.node_count(), 0);
    }
    const NodeState& n = cluster_.node(node);
    if (node_frag_version_[node] != n.version) {
      node_frag_version_[node] = n.version;
      node_frag_[node] = NodeFragmentation(n, workload_);
    }
    return node_frag_[node];
  }

  // FGD's drop on `node` if the shape lands there, and the GPU it takes.
  const DestEntry& Dest(int key, int node) {
    DestEntry& entry = dest_[key][node];
    const NodeState& n = cluster_.node(node);
    if (entry.version == n.version) return entry;
    entry.version = n.version;
    const PodRequest& pod = keys_[key];
    entry.fits = cluster_.Fits(node, pod);
    entry.gpu = -1;
    if (!entry.fits) return entry;
    const double before = NodeFrag(node);
    std::array<int16_t, kMaxGpusPerNode> after = n.free_milli;
    const int64_t cpu_after = n.free_cpu - pod.cpu_milli;
    auto frag_after = [&] {
      return Fragmentation(after.data(), n.gpu_count, cpu_after, n.model, workload_);
    };
    if (!IsSharing(pod)) {
      const GpuSet gpus = ChooseBestGpus(n, pod);
      for (int i = 0; i < gpus.count; ++i)
        after[gpus.index[i]] -= static_cast<int16_t>(pod.gpu_milli);
      entry.drop = before - frag_after();
      return entry;
    }
    double best = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < n.gpu_count; ++i) {
      const int16_t f = n.free_milli[i];
      if (f < pod.gpu_milli) continue;
      after[i] = static_cast<int16_t>(f - pod.gpu_milli);
      const double drop = before - frag_after();
      after[i] = f;
      if (drop > best + 1e-9) {
        best = drop;
        entry.gpu = static_cast<int8_t>(i);
      }
    }
    entry.drop = best;
    return entry;
  }

  double SourceDrop(Candidate& c) {
    const NodeState& n = cluster_.node(c.placement.node);
    if (c.source.version == n.version) return c.source.drop;
    c.source.version = n.version;
    std::array<int16_t, kMaxGpusPerNode> after = n.free_milli;
    for (int g : c.placement.gpus)
      after[g] = static_cast<int16_t>(after[g] + c.pod.gpu_milli);
    const double frag_after =
        Fragmentation(after.data(), n.gpu_count, n.free_cpu + c.pod.cpu_milli, n.model, workload_);
    c.source.drop = NodeFrag(c.placement.node) - frag_after;
    return c.source.drop;
  }

  void RefreshTop() {
    for (auto& t : top_)
      t.clear();
    std::vector<bool> used(keys_.size(), false);
    for (const Candidate& c : candidates_)
      if (!c.moved) used[c.key] = true;
    for (size_t k = 0; k < keys_.size(); ++k) {
      if (!used[k]) continue;
      std::vector<int>& top = top_[k];
      for (int node = 0; node < cluster_.node_count(); ++node) {
        const DestEntry& e = Dest(static_cast<int>(k), node);
        if (!e.fits) continue;
        // Insert by (drop desc, node asc), keep kTopDestinations + 1 (one may be the source).
        auto better = [&](int a) { return e.drop > dest_[k][a].drop + 1e-9; };
        auto pos = std::find_if(top.begin(), top.end(), better);
        if (pos == top.end() && static_cast<int>(top.size()) > kTopDestinations) continue;
        top.insert(pos, node);
        if (static_cast<int>(top.size()) > kTopDestinations + 1) top.pop_back();
      }
    }
  }

  bool PodFitsOn(const Candidate& c, int node) const {
    const NodeState& n = cluster_.node(node);
    return node != c.placement.node && n.free_memory >= c.pod.memory_mib && n.pods < n.max_pods;
  }

  // The best destination of candidate `i`; dest -1 when none.
  Eval Evaluate(int i) {
    Candidate& c = candidates_[i];
    Eval e;
    e.candidate = i;
    const std::vector<int>& top = top_[c.key];
    for (int node : top) {
      if (PodFitsOn(c, node)) {
        e.dest = node;
        break;
      }
    }
    if (e.dest < 0 && static_cast<int>(top.size()) > kTopDestinations) {
      // Every listed node is the source or short of memory: scan them all.
      double best = -std::numeric_limits<double>::infinity();
      for (int node = 0; node < cluster_.node_count(); ++node) {
        const DestEntry& d = Dest(c.key, node);
        if (!d.fits || !PodFitsOn(c, node)) continue;
        if (d.drop > best + 1e-9) {
          best = d.drop;
          e.dest = node;
        }
      }
    }
    if (e.dest < 0) return e;
    const DestEntry& d = Dest(c.key, e.dest);
    e.gpu = d.gpu;
    e.dest_drop = d.drop;
    e.source_drop = SourceDrop(c);
    return e;
  }

  std::vector<Eval> EvaluateAll() {
    RefreshTop();
    std::vector<Eval> out;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (candidates_[i].moved) continue;
      Eval e = Evaluate(static_cast<int>(i));
      if (e.dest >= 0) out.push_back(e);
    }
    return out;
  }

  // Indices into `evals`: the best `n` by gain and the best `n` by source drop.
  static std::vector<int> LookaheadSet(const std::vector<Eval>& evals, int n) {
    std::vector<int> order(evals.size());
    for (size_t i = 0; i < order.size(); ++i)
      order[i] = static_cast<int>(i);
    std::vector<int> out;
    auto take = [&](auto key) {
      std::vector<int> sorted = order;
      const size_t k = std::min<size_t>(n, sorted.size());
      std::partial_sort(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k),
                        sorted.end(), [&](int a, int b) {
                          const double ka = key(evals[a]), kb = key(evals[b]);
                          return ka > kb + 1e-9 || (ka >= kb - 1e-9 && a < b);
                        });
      for (size_t i = 0; i < k; ++i)
        if (std::find(out.begin(), out.end(), sorted[i]) == out.end()) out.push_back(sorted[i]);
    };
    take([](const Eval& e) { return e.gain(); });
    take([](const Eval& e) { return e.source_drop; });
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<Undo> Apply(const Eval& e) {
    Candidate& c = candidates_[e.candidate];
    Placement to;
    to.node = e.dest;
    if (IsSharing(c.pod)) {
      to.gpus = {e.gpu};
    } else {
      to.gpus = cluster_.BestGpus(e.dest, c.pod);
    }
    Undo undo{e.candidate, c.placement};
    GPU_RETURN_IF_ERROR(cluster_.Remove(c.binding).WithContext("defragmentation candidate " +
                                                               std::to_string(e.candidate)));
    GPU_ASSIGN_OR_RETURN(c.binding, cluster_.Place(c.pod, to));
    c.placement = std::move(to);
    c.moved = true;
    return undo;
  }

  Status Revert(const Undo& undo) {
    Candidate& c = candidates_[undo.candidate];
    GPU_RETURN_IF_ERROR(cluster_.Remove(c.binding));
    GPU_ASSIGN_OR_RETURN(c.binding, cluster_.Place(c.pod, undo.original));
    c.placement = undo.original;
    c.moved = false;
    return Status::Ok();
  }

  ClusterState cluster_;
  const TargetWorkload& workload_;
  std::vector<Candidate> candidates_;
  std::vector<PodRequest> keys_;
  std::vector<std::vector<DestEntry>> dest_;  // [key][node]
  std::vector<std::vector<int>> top_;         // [key]: best destinations
  std::vector<double> node_frag_;
  std::vector<uint64_t> node_frag_version_;
};

}  // namespace

double ClusterFragmentation(const ClusterState& cluster, const TargetWorkload& workload) {
  double total = 0;
  for (int i = 0; i < cluster.node_count(); ++i)
    total += NodeFragmentation(cluster.node(i), workload);
  return total;
}

Result<DefragPlan> PlanDefragmentation(const ClusterState& cluster,
                                       std::span<const DefragCandidate> candidates,
                                       const TargetWorkload& workload, const DefragOptions& options,
                                       ClusterState* after) {
  if (options.max_moves < 0) return InvalidArgumentError("max moves must not be negative");
  if (options.lookahead < 0) return InvalidArgumentError("lookahead must not be negative");
  Planner planner(cluster, workload);
  GPU_RETURN_IF_ERROR(planner.AddCandidates(candidates));
  GPU_ASSIGN_OR_RETURN(DefragPlan plan, planner.Run(options));
  if (after != nullptr) *after = std::move(planner.cluster());
  return plan;
}

}  // namespace gpu_autoscaler::autoscale
