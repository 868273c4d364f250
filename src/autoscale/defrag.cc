#include "autoscale/defrag.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <optional>
#include <unordered_map>

namespace gpu_autoscaler::autoscale {
namespace {

constexpr int kTopDestinations = 4;

bool IsSharing(const PodRequest& pod) {
  return pod.num_gpu == 1 && pod.gpu_milli < kMilliPerGpu;
}

// ClusterState::Fits for a node given by value (non-MIG pods).
bool FitsOn(const NodeState& n, const PodRequest& pod) {
  if (pod.cpu_milli > n.free_cpu || pod.memory_mib > n.free_memory || n.pods >= n.max_pods) {
    return false;
  }
  if (!pod.uses_gpu()) return true;
  if (n.model < 0 || !((pod.models >> n.model) & 1)) return false;
  if (pod.gpu_milli == kMilliPerGpu) return n.fully_free_gpus >= pod.num_gpu;
  return n.GpusWithAtLeast(pod.gpu_milli) >= pod.num_gpu;
}

// Adds (sign +1) or removes (-1) `pod` on GPUs `gpus` of a node copy.
void Adjust(NodeState& n, const PodRequest& pod, const std::vector<int>& gpus, int sign) {
  n.free_cpu -= sign * pod.cpu_milli;
  n.free_memory -= sign * pod.memory_mib;
  n.pods += sign;
  for (int g : gpus) {
    if (n.free_milli[g] == kMilliPerGpu) --n.fully_free_gpus;
    n.free_milli[g] = static_cast<int16_t>(n.free_milli[g] - sign * pod.gpu_milli);
    n.free_gpu_milli -= sign * pod.gpu_milli;
    if (n.free_milli[g] == kMilliPerGpu) ++n.fully_free_gpus;
  }
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
        IndexPodsByNode();
        for (int first : LookaheadSet(evals, options.lookahead)) {
          const Eval& e = evals[first];
          const std::optional<double> second = BestSecondFromSameNode(e);
          if (!second) continue;
          const double pair = (e.gain() + *second) / 2;
          if (pair > best_score + 1e-9 && pair > e.gain() + 1e-9) {
            best_score = pair;
            best = first;
            paired = true;
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
      GPU_RETURN_IF_ERROR(Apply(e));
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

  // FGD's drop on a node (given by value) if the shape lands there, and the GPU it takes.
  DestEntry DestOn(const NodeState& n, const PodRequest& pod, double before) const {
    DestEntry entry;
    entry.fits = FitsOn(n, pod);
    if (!entry.fits) return entry;
    std::array<int16_t, kMaxGpusPerNode> after = n.free_milli;
    const int64_t cpu_after = n.free_cpu - pod.cpu_milli;
    auto frag_after = [&] {
      return Fragmentation(after.data(), n.gpu_count, cpu_after, n.model, workload_);
    };
    if (!IsSharing(pod)) {
      const GpuSet gpus = ChooseBestGpus(n, pod);
      for (int i = 0; i < gpus.count; ++i)
        after[gpus.index[i]] = static_cast<int16_t>(after[gpus.index[i]] - pod.gpu_milli);
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

  const DestEntry& Dest(int key, int node) {
    DestEntry& entry = dest_[key][node];
    const NodeState& n = cluster_.node(node);
    if (entry.version == n.version) return entry;
    entry = DestOn(n, keys_[key], NodeFrag(node));
    entry.version = n.version;
    return entry;
  }

  // Fragmentation drop on a node copy when `c` leaves it.
  double SourceDropOn(const NodeState& n, const Candidate& c) const {
    std::array<int16_t, kMaxGpusPerNode> after = n.free_milli;
    for (int g : c.placement.gpus)
      after[g] = static_cast<int16_t>(after[g] + c.pod.gpu_milli);
    return Fragmentation(n.free_milli.data(), n.gpu_count, n.free_cpu, n.model, workload_) -
           Fragmentation(after.data(), n.gpu_count, n.free_cpu + c.pod.cpu_milli, n.model,
                         workload_);
  }

  void IndexPodsByNode() {
    pods_on_node_.assign(cluster_.node_count(), {});
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (!candidates_[i].moved) {
        pods_on_node_[candidates_[i].placement.node].push_back(static_cast<int>(i));
      }
    }
  }

  // The GPUs move `e` would take on its destination.
  std::vector<int> DestinationGpus(const Eval& e) const {
    const Candidate& c = candidates_[e.candidate];
    if (IsSharing(c.pod)) return {e.gpu};
    return cluster_.BestGpus(e.dest, c.pod);
  }

  // After move `e` (not applied: its two nodes are copied and changed), the
  // best gain of moving another pod off the same source node; nullopt when
  // none fits anywhere. Other nodes are unchanged, so their cached drops hold.
  std::optional<double> BestSecondFromSameNode(const Eval& e) {
    const Candidate& first = candidates_[e.candidate];
    const int src = first.placement.node;
    NodeState source = cluster_.node(src);
    Adjust(source, first.pod, first.placement.gpus, -1);
    NodeState dest = cluster_.node(e.dest);
    Adjust(dest, first.pod, DestinationGpus(e), +1);
    const double dest_before =
        Fragmentation(dest.free_milli.data(), dest.gpu_count, dest.free_cpu, dest.model, workload_);
    std::optional<double> best_gain;
    for (int i : pods_on_node_[src]) {
      if (i == e.candidate) continue;
      const Candidate& c = candidates_[i];
      double best = -std::numeric_limits<double>::infinity();
      bool found = false;
      const std::vector<int>& top = top_[c.key];
      for (int node : top) {
        if (node == src || node == e.dest || !MemoryAndSlotsFit(c, cluster_.node(node))) continue;
        best = Dest(c.key, node).drop;
        found = true;
        break;
      }
      if (!found && static_cast<int>(top.size()) > kTopDestinations) {
        for (int node = 0; node < cluster_.node_count(); ++node) {
          if (node == src || node == e.dest) continue;
          const DestEntry& d = Dest(c.key, node);
          if (!d.fits || !MemoryAndSlotsFit(c, cluster_.node(node))) continue;
          if (!found || d.drop > best) best = d.drop;
          found = true;
        }
      }
      if (MemoryAndSlotsFit(c, dest)) {
        const DestEntry d = DestOn(dest, keys_[c.key], dest_before);
        if (d.fits && (!found || d.drop > best)) {
          best = d.drop;
          found = true;
        }
      }
      if (!found) continue;
      const double gain = SourceDropOn(source, c) + best;
      if (!best_gain || gain > *best_gain) best_gain = gain;
    }
    return best_gain;
  }

  static bool MemoryAndSlotsFit(const Candidate& c, const NodeState& n) {
    return n.free_memory >= c.pod.memory_mib && n.pods < n.max_pods;
  }

  double SourceDrop(Candidate& c) {
    const NodeState& n = cluster_.node(c.placement.node);
    if (c.source.version == n.version) return c.source.drop;
    c.source.version = n.version;
    c.source.drop = SourceDropOn(n, c);
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
    return node != c.placement.node && MemoryAndSlotsFit(c, cluster_.node(node));
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

  Status Apply(const Eval& e) {
    Candidate& c = candidates_[e.candidate];
    Placement to{.node = e.dest, .gpus = DestinationGpus(e)};
    GPU_RETURN_IF_ERROR(cluster_.Remove(c.binding).WithContext("defragmentation candidate " +
                                                               std::to_string(e.candidate)));
    GPU_ASSIGN_OR_RETURN(c.binding, cluster_.Place(c.pod, to));
    c.placement = std::move(to);
    c.moved = true;
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
  std::vector<std::vector<int>> pods_on_node_;  // unmoved candidates per node
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
