#include "autoscale/scheduler.h"

#include <numeric>

namespace gpu_autoscaler::autoscale {

size_t Scheduler::ShapeKeyHash::operator()(const ShapeKey& k) const {
  uint64_t h = static_cast<uint64_t>(k.cpu_milli) * 0x9e3779b97f4a7c15ULL;
  h ^= (static_cast<uint64_t>(k.num_gpu) << 48) ^ (static_cast<uint64_t>(k.gpu_milli) << 32) ^
       static_cast<uint64_t>(k.mig_slices);
  h ^= k.models * 0xc2b2ae3d27d4eb4fULL;
  return static_cast<size_t>(h ^ (h >> 29));
}

Scheduler::Scheduler(const ClusterState& cluster, Policy& policy, std::vector<int> ranks,
                     uint64_t seed)
    : cluster_(cluster), policy_(policy), ranks_(std::move(ranks)), rng_(seed) {
  if (static_cast<int>(ranks_.size()) != cluster_.node_count()) {
    ranks_.resize(cluster_.node_count());
    std::iota(ranks_.begin(), ranks_.end(), 0);
  }
}

Scheduler::Scheduler(const Scheduler& from, const ClusterState& cluster, Policy& policy)
    : cluster_(cluster),
      policy_(policy),
      ranks_(from.ranks_),
      rng_(from.rng_),
      shape_ids_(from.shape_ids_),
      cache_(from.cache_),
      rejected_(from.rejected_) {}

std::vector<Scheduler::CacheEntry>& Scheduler::CacheFor(const PodRequest& pod) {
  const ShapeKey key{pod.cpu_milli, pod.num_gpu, pod.gpu_milli, pod.models, pod.mig_slices};
  auto [it, inserted] = shape_ids_.try_emplace(key, static_cast<int>(cache_.size()));
  if (inserted) {
    cache_.emplace_back(cluster_.node_count());
    rejected_.push_back({~uint64_t{0}, 0});
  }
  shape_id_ = it->second;
  return cache_[it->second];
}

std::optional<Placement> Scheduler::Select(const PodRequest& pod) {
  const int n = cluster_.node_count();
  std::vector<CacheEntry>& cache = CacheFor(pod);
  Rejection& rejection = rejected_[shape_id_];
  if (rejection.release_epoch == cluster_.release_epoch() &&
      pod.memory_mib >= rejection.memory_mib) {
    return std::nullopt;  // resources only shrank since a no-larger pod fit nowhere
  }
  auto reject = [&]() -> std::optional<Placement> {
    if (rejection.release_epoch != cluster_.release_epoch() ||
        pod.memory_mib < rejection.memory_mib) {
      rejection = {cluster_.release_epoch(), pod.memory_mib};
    }
    return std::nullopt;
  };
  if (policy_.picks_random_node()) {
    feasible_.clear();
    for (int i = 0; i < n; ++i) {
      if (cluster_.Fits(i, pod)) feasible_.push_back(i);
    }
    if (feasible_.empty()) return reject();
    const int node = feasible_.size() == 1 ? feasible_[0] : feasible_[rng_.Below(feasible_.size())];
    return PlaceOn(node, pod, -1);
  }
  int best = -1;
  int best_score = -1;
  double best_tiebreak = 0;
  int best_gpu = -1;
  for (int i = 0; i < n; ++i) {
    const NodeState& node = cluster_.node(i);
    if (pod.memory_mib > node.free_memory || node.pods >= node.max_pods) continue;
    const CacheEntry& entry = Refresh(cache[i], i, pod);
    if (entry.score < 0) continue;
    if (entry.score > best_score ||
        (entry.score == best_score &&
         (entry.tiebreak > best_tiebreak ||
          (entry.tiebreak == best_tiebreak && ranks_[i] < ranks_[best])))) {
      best = i;
      best_score = entry.score;
      best_tiebreak = entry.tiebreak;
      best_gpu = entry.gpu;
    }
  }
  if (best < 0) return reject();
  return PlaceOn(best, pod, best_gpu);
}

const Scheduler::CacheEntry& Scheduler::Refresh(CacheEntry& entry, int node,
                                                const PodRequest& pod) {
  const uint64_t version = cluster_.node(node).version;
  if (entry.version == version) return entry;
  entry.version = version;
  if (cluster_.Fits(node, pod)) {
    const NodeScore s = policy_.Score(cluster_, node, pod);
    entry.score = static_cast<int16_t>(s.score);
    entry.gpu = static_cast<int8_t>(s.gpu);
    entry.tiebreak = s.tiebreak;
  } else {
    entry.score = -1;
  }
  return entry;
}

NodeScore Scheduler::ScoreOf(int node, const PodRequest& pod) {
  std::vector<CacheEntry>& cache = CacheFor(pod);
  const NodeState& state = cluster_.node(node);
  if (pod.memory_mib > state.free_memory || state.pods >= state.max_pods) return {.score = -1};
  const CacheEntry& entry = Refresh(cache[node], node, pod);
  return {.score = entry.score, .gpu = entry.gpu, .tiebreak = entry.tiebreak};
}

Placement Scheduler::PlaceOnNode(int node, const PodRequest& pod) {
  return PlaceOn(node, pod, ScoreOf(node, pod).gpu);
}

Placement Scheduler::PlaceOn(int node, const PodRequest& pod, int scored_gpu) {
  Placement placement;
  placement.node = node;
  const bool sharing = pod.num_gpu == 1 && pod.gpu_milli < kMilliPerGpu;
  if (sharing && policy_.gpu_selection() == GpuSelection::kFromScore && scored_gpu >= 0) {
    placement.gpus.push_back(scored_gpu);
    return placement;
  }
  if (sharing && policy_.gpu_selection() == GpuSelection::kRandom) {
    const NodeState& state = cluster_.node(node);
    std::array<int, kMaxGpusPerNode> fitting{};
    int count = 0;
    for (int i = 0; i < state.gpu_count; ++i) {
      if (state.free_milli[i] >= pod.gpu_milli) fitting[count++] = i;
    }
    placement.gpus.push_back(count == 1 ? fitting[0] : fitting[rng_.Below(count)]);
    return placement;
  }
  placement.gpus = cluster_.BestGpus(node, pod);
  return placement;
}

}  // namespace gpu_autoscaler::autoscale
