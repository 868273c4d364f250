#include "scheduler/cluster_cache.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>

#include "api/annotations.h"
#include "scheduler/node_fit.h"
#include "scheduler/pod_group.h"

namespace gpu_autoscaler::scheduler {
namespace {

bool Finished(const kube::PodView& pod) {
  return pod.phase() == kube::PodPhase::kSucceeded || pod.phase() == kube::PodPhase::kFailed;
}

std::string Insufficient(std::string_view resource) {
  return "Insufficient " + std::string(resource);
}

// Before the cluster runs any GPU pod: one whole GPU per pod.
autoscale::TargetWorkload DefaultWorkload() {
  autoscale::TypicalPod whole;
  whole.gpu_milli = autoscale::kMilliPerGpu;
  whole.num_gpu = 1;
  whole.count = 1;
  return autoscale::TargetWorkload::FromShapes({whole});
}

// A node's score as standalone's choice orders it (PlacesBefore).
ExtenderCandidate CandidateOf(const autoscale::NodeScore& s, int node_index) {
  return {.score = s.score, .tiebreak = s.tiebreak, .order = node_index};
}

// A CPU-only pod that is part of the cluster's workload, as opposed to its
// plumbing: DaemonSet pods (one per node, placed by node count, not by
// choice), static pods and kube-system's add-ons. Their shapes would only
// crowd the workload's CPU-only shapes.
bool CpuOnlyWorkloadPod(const kube::PodView& pod) {
  return pod.ns() != "kube-system" && !pod.belongs_to_node();
}

}  // namespace

void ClusterCache::SetGroup(PodEntry& entry, const kube::PodView& pod) {
  PodGroupRef ref = PodGroupOf(pod);
  entry.group = std::move(ref.key);
  entry.group_min = ref.min_member;
}

std::string ClusterCache::PodKey(std::string_view ns, std::string_view name) {
  std::string key;
  key.reserve(ns.size() + name.size() + 1);
  key.append(ns).append("/").append(name);
  return key;
}

Result<std::unique_ptr<ClusterCache>> ClusterCache::Create(CacheOptions options) {
  // Validate the policy name now, so a bad flag fails at start.
  autoscale::TargetWorkload probe_workload = DefaultWorkload();
  GPU_ASSIGN_OR_RETURN(std::unique_ptr<autoscale::Policy> probe,
                       autoscale::MakePolicy(options.policy, &probe_workload));
  return std::unique_ptr<ClusterCache>(new ClusterCache(std::move(options), nullptr));
}

ClusterCache::ClusterCache(CacheOptions options, std::unique_ptr<autoscale::Policy>)
    : options_(std::move(options)) {}

void ClusterCache::UpsertNode(std::shared_ptr<const kube::NodeView> node) {
  NodeOffer offer = NodeOfferOf(*node);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(node->name());
  if (it == nodes_.end()) {
    NodeEntry entry;
    entry.view = std::move(node);
    entry.offer = std::move(offer);
    nodes_.emplace(entry.offer.spec.name, std::move(entry));
    dirty_ = true;
    return;
  }
  it->second.view = std::move(node);
  if (!(it->second.offer == offer)) {
    it->second.offer = std::move(offer);
    dirty_ = true;
  }
}

void ClusterCache::DeleteNode(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return;
  nodes_.erase(it);
  // Assumed pods on the node lose their place; their Binding must not go out.
  for (auto p = pods_.begin(); p != pods_.end();) {
    p = p->second.assumed && p->second.node == name ? ErasePodLocked(p) : std::next(p);
  }
  std::erase_if(nominations_, [&](const auto& n) { return n.second.node == name; });
  dirty_ = true;
}

bool ClusterCache::HasNode(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return nodes_.find(name) != nodes_.end();
}

bool ClusterCache::Accounted(std::string_view ns, std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return pods_.find(PodKey(ns, name)) != pods_.end();
}

std::shared_ptr<const kube::PodView> ClusterCache::FindPod(std::string_view ns,
                                                           std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pods_.find(PodKey(ns, name));
  return it == pods_.end() ? nullptr : it->second.view;
}

ClusterCache::NodeEntry* ClusterCache::NodeLocked(std::string_view name) {
  auto it = node_index_.find(name);
  return it == node_index_.end() ? nullptr : by_index_[it->second];
}

void ClusterCache::UpsertPod(std::shared_ptr<const kube::PodView> pod) {
  const std::string key = PodKey(pod->ns(), pod->name());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pods_.find(key);
  const bool bound = !pod->node_name().empty() && !Finished(*pod);
  if (bound || Finished(*pod) || pod->terminating()) {
    nominations_.erase(key);
    cleared_nominations_.erase(key);
  } else {
    UpsertNominationLocked(key, pod);
  }
  if (!bound) {
    // Finished, or still pending (an assumed pod whose Binding is in flight).
    if (it != pods_.end() && (!it->second.assumed || Finished(*pod))) {
      UnplaceLocked(it->second);
      ErasePodLocked(it);
    }
    return;
  }
  std::vector<int> annotated;
  if (std::optional<std::string_view> text = pod->annotation(api::kGpuIndicesAnnotation)) {
    if (Result<std::vector<int>> gpus = ParseGpuIndices(*text); gpus.ok()) {
      annotated = std::move(gpus).value();
    }
  }
  if (it != pods_.end()) {
    PodEntry& entry = it->second;
    const bool same =
        entry.node == pod->node_name() && (annotated.empty() || annotated == entry.gpus);
    entry.view = pod;
    entry.priority = PriorityOf(*pod);
    SetGroup(entry, *pod);
    SetTopologyLocked(key, entry, *pod);
    entry.assumed_view.reset();
    IndexLabelsLocked(entry);
    entry.assumed = false;  // confirmed by the informer
    if (same) return;
    UnplaceLocked(entry);
    entry.node = std::string(pod->node_name());
    entry.gpus = std::move(annotated);
    if (!dirty_) PlaceLocked(entry);
    return;
  }
  PodEntry entry;
  entry.view = pod;
  entry.priority = PriorityOf(*pod);
  SetGroup(entry, *pod);
  SetTopologyLocked(key, entry, *pod);
  entry.node = std::string(pod->node_name());
  entry.gpus = std::move(annotated);
  entry.demand = GpuDemandOf(*pod, milli_per_replica_);
  PodEntry& stored = pods_.emplace(key, std::move(entry)).first->second;
  IndexLabelsLocked(stored);
  if (!dirty_) PlaceLocked(stored);
}

void ClusterCache::DeletePod(std::string_view ns, std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  nominations_.erase(PodKey(ns, name));
  cleared_nominations_.erase(PodKey(ns, name));
  auto it = pods_.find(PodKey(ns, name));
  if (it == pods_.end()) return;
  UnplaceLocked(it->second);
  ErasePodLocked(it);
}

autoscale::PodRequest ClusterCache::RequestOf(const GpuDemand& demand) const {
  autoscale::PodRequest request = state_->Resolve(demand.spec);
  if (demand.kind == GpuKind::kMig) {
    request.num_gpu = 0;
    request.gpu_milli = 0;
    request.mig_slices = demand.mig_slices;
    request.pod_class = autoscale::PodClass::kSharing;
  }
  return request;
}

void ClusterCache::EnsureBuiltLocked() {
  // The target workload follows the cluster's pods: relearn it when their
  // number moved by a tenth (at least 8) since the last build.
  const int64_t pods = static_cast<int64_t>(pods_.size());
  const int64_t drift = std::max<int64_t>(8, pods_at_build_ / 10);
  if (dirty_ || !state_ || std::abs(pods - pods_at_build_) >= drift) RebuildLocked();
}

void ClusterCache::RebuildLocked() {
  ++rebuilds_;
  ++generation_;
  state_ = std::make_unique<autoscale::ClusterState>();
  node_index_.clear();
  by_index_.clear();
  std::map<int, int> replicas_count;
  for (auto& [name, entry] : nodes_) {
    entry.index = -1;
    entry.mig_used.clear();
    if (!state_->AddNode(entry.offer.spec).ok()) continue;  // offers are clamped; defensive
    entry.index = static_cast<int>(by_index_.size());
    node_index_.emplace(name, entry.index);
    by_index_.push_back(&entry);
    if (entry.offer.shared_replicas > 0) ++replicas_count[entry.offer.shared_replicas];
  }
  // A replica's share: the most common replica count among sharing nodes.
  int replicas = 1;
  int best = 0;
  for (const auto& [r, count] : replicas_count) {
    if (count > best) {
      best = count;
      replicas = r;
    }
  }
  milli_per_replica_ = autoscale::kMilliPerGpu / replicas;
  // The target workload: the shapes of the pods the cluster runs.
  std::vector<autoscale::PodSpec> gpu_shapes;
  std::vector<autoscale::PodSpec> cpu_only_shapes;
  for (auto& [key, pod] : pods_) {
    if (pod.view) pod.demand = GpuDemandOf(*pod.view, milli_per_replica_);
    pod.binding = -1;
    if (pod.demand.kind == GpuKind::kWhole || pod.demand.kind == GpuKind::kShared) {
      gpu_shapes.push_back(pod.demand.spec);
    } else if (pod.demand.kind == GpuKind::kNone && pod.view && pod.demand.spec.cpu_milli > 0 &&
               CpuOnlyWorkloadPod(*pod.view)) {
      cpu_only_shapes.push_back(pod.demand.spec);
    }
  }
  workload_ = std::make_unique<autoscale::TargetWorkload>(
      gpu_shapes.empty() ? DefaultWorkload()
                         : autoscale::TargetWorkload::FromTrace(gpu_shapes, *state_));
  // The policy measures against both classes, each cut to its own 95%, so
  // that a cluster running many more CPU-only pods than GPU pods keeps its
  // GPU shapes. Before any GPU pod runs, the one-whole-GPU guess stands
  // alone: weighed against real CPU-only pods it would count for next to
  // nothing.
  policy_workload_ = std::make_unique<autoscale::TargetWorkload>(
      gpu_shapes.empty() || cpu_only_shapes.empty()
          ? *workload_
          : autoscale::TargetWorkload::MergeByPodCount(
                *workload_, autoscale::TargetWorkload::FromTrace(cpu_only_shapes, *state_)));
  policy_ = std::move(autoscale::MakePolicy(options_.policy, policy_workload_.get())).value();
  engine_ =
      std::make_unique<autoscale::Scheduler>(*state_, *policy_, std::vector<int>{}, options_.seed);
  node_fragmentation_.assign(by_index_.size(), 0);
  fragmentation_version_.assign(by_index_.size(), 0);
  dirty_ = false;
  unplaceable_ = 0;
  pods_at_build_ = static_cast<int64_t>(pods_.size());
  for (auto& [key, pod] : pods_)
    PlaceLocked(pod);
}

bool ClusterCache::PlaceLocked(PodEntry& entry) {
  ++generation_;
  NodeEntry* node = NodeLocked(entry.node);
  if (node == nullptr || node->index < 0) return false;  // the node is gone
  const autoscale::PodRequest request = RequestOf(entry.demand);
  auto place = [&](const std::vector<int>& gpus) {
    Result<autoscale::BindingId> id =
        state_->Place(request, autoscale::Placement{.node = node->index, .gpus = gpus});
    if (!id.ok()) return false;
    entry.binding = *id;
    entry.node_index = node->index;
    entry.gpus = gpus;
    return true;
  };
  bool placed =
      (!entry.gpus.empty() || !request.uses_gpu()) && request.mig_slices == 0 && place(entry.gpus);
  if (!placed) placed = place(state_->BestGpus(node->index, request));
  if (!placed) {
    ++unplaceable_;
    return false;
  }
  if (entry.demand.kind == GpuKind::kMig) ++node->mig_used[entry.demand.mig_resource];
  return true;
}

void ClusterCache::UnplaceLocked(PodEntry& entry) {
  ++generation_;
  if (entry.binding < 0 || dirty_ || !state_) {
    entry.binding = -1;
    return;
  }
  (void)state_->Remove(entry.binding);
  entry.binding = -1;
  if (entry.demand.kind == GpuKind::kMig) {
    if (NodeEntry* node = NodeLocked(entry.node)) --node->mig_used[entry.demand.mig_resource];
  }
}

std::string ClusterCache::DemandErrorLocked(const GpuDemand& demand) const {
  if (!demand.error.empty()) return demand.error;
  if (demand.kind == GpuKind::kMig) {
    std::string offered;
    for (const auto& [name, node] : nodes_) {
      for (const auto& [resource, count] : node.offer.mig_instances) {
        if (resource == demand.mig_resource) return "";
        const std::string profile = resource.substr(kMigResourcePrefix.size());
        if (offered.find(profile) == std::string::npos) {
          offered += (offered.empty() ? "" : ", ") + profile;
        }
      }
    }
    return "no node offers " + demand.mig_resource +
           " (MIG profiles in the cluster: " + (offered.empty() ? "none" : offered) + ")";
  }
  return "";
}

// The fixed reasons; CheckNodeLocked returns views of these, so rejecting a
// node allocates nothing.
constexpr std::string_view kInsufficientShared = "Insufficient nvidia.com/gpu.shared";
constexpr std::string_view kInsufficientCpu = "Insufficient cpu";
constexpr std::string_view kInsufficientMemory = "Insufficient memory";
constexpr std::string_view kTooManyPods = "Too many pods";
constexpr std::string_view kSharesItsGpus =
    "node(s) share their GPUs (time-slicing or MPS) and the pod asks for whole GPUs";
constexpr std::string_view kFewerGpusThanPinned =
    "node(s) have fewer GPUs than gpuautoscaler.io/gpu-indices names";
constexpr std::string_view kPinnedGpusBusy =
    "GPU(s) named by gpuautoscaler.io/gpu-indices are busy";

std::string_view ClusterCache::CheckNodeLocked(const NodeEntry& node, const kube::PodView& pod,
                                               const GpuDemand& demand,
                                               const autoscale::PodRequest& request,
                                               bool predicates) const {
  if (predicates) {
    reason_scratch_ = NodePredicateFailure(pod, *node.view);
    if (!reason_scratch_.empty()) return reason_scratch_;
  }
  const NodeOffer& offer = node.offer;
  auto insufficient_mig = [&]() -> std::string_view {
    reason_scratch_ = Insufficient(demand.mig_resource);
    return reason_scratch_;
  };
  switch (demand.kind) {
    case GpuKind::kNone:
      break;
    case GpuKind::kWhole:
      if (offer.whole_gpus == 0 && offer.shared_gpus > 0) return kSharesItsGpus;
      if (offer.whole_gpus < demand.spec.num_gpu) return kInsufficientGpu;
      break;
    case GpuKind::kShared:
      if (offer.shared_gpus == 0) return kInsufficientShared;
      break;
    case GpuKind::kMig: {
      int64_t have = 0;
      for (const auto& [resource, count] : offer.mig_instances) {
        if (resource == demand.mig_resource) have = count;
      }
      auto used = node.mig_used.find(demand.mig_resource);
      if (have - (used == node.mig_used.end() ? 0 : used->second) <= 0) return insufficient_mig();
      break;
    }
  }
  const autoscale::NodeState& state = state_->node(node.index);
  if (request.cpu_milli > state.free_cpu) return kInsufficientCpu;
  if (request.memory_mib > state.free_memory) return kInsufficientMemory;
  if (state.pods >= state.max_pods) return kTooManyPods;
  for (int g : demand.pinned_gpus) {
    if (g >= state.gpu_count) return kFewerGpusThanPinned;
    const bool mig = (state.mig_mask >> g) & 1;
    const bool free = demand.kind == GpuKind::kMig
                          ? mig && state.free_mig_slices[g] >= request.mig_slices
                          : !mig && state.free_milli[g] >= request.gpu_milli;
    if (!free) return kPinnedGpusBusy;
  }
  if (!state_->Fits(node.index, request)) {
    if (demand.kind == GpuKind::kShared) {
      reason_scratch_ = "Insufficient GPU share (no GPU has " + std::to_string(request.gpu_milli) +
                        " milli-GPU free)";
      return reason_scratch_;
    }
    return demand.kind == GpuKind::kMig ? insufficient_mig() : kInsufficientGpu;
  }
  return {};
}

std::vector<int> ClusterCache::ChooseGpusLocked(const NodeEntry& node, const GpuDemand& demand,
                                                const autoscale::PodRequest& request,
                                                bool* island) {
  *island = false;
  if (!demand.pinned_gpus.empty()) return demand.pinned_gpus;
  const std::vector<int>& groups = node.offer.spec.nvlink_group;
  if (demand.kind == GpuKind::kWhole && request.num_gpu > 1 && !groups.empty()) {
    // Best fit among the islands with enough fully free GPUs: the island with
    // the fewest free GPUs that still fits, so larger islands stay whole.
    const autoscale::NodeState& state = state_->node(node.index);
    std::map<int, std::vector<int>> free_by_island;
    for (int g = 0; g < state.gpu_count; ++g) {
      if (!((state.mig_mask >> g) & 1) && state.free_milli[g] == autoscale::kMilliPerGpu) {
        free_by_island[groups[g]].push_back(g);
      }
    }
    const std::vector<int>* best = nullptr;
    for (const auto& [group, gpus] : free_by_island) {
      if (static_cast<int>(gpus.size()) >= request.num_gpu &&
          (best == nullptr || gpus.size() < best->size())) {
        best = &gpus;
      }
    }
    if (best != nullptr) {
      *island = true;
      return std::vector<int>(best->begin(), best->begin() + request.num_gpu);
    }
  }
  return engine_->PlaceOnNode(node.index, request).gpus;
}

FilterOutcome ClusterCache::Filter(const kube::PodView& pod,
                                   std::span<const std::string_view> nodes, bool predicates) {
  FilterOutcome out;
  std::lock_guard<std::mutex> lock(mu_);
  EnsureBuiltLocked();
  const GpuDemand demand = GpuDemandOf(pod, milli_per_replica_);
  const std::string invalid = DemandErrorLocked(demand);
  const autoscale::PodRequest request = RequestOf(demand);
  out.feasible.reserve(nodes.size());
  std::vector<ExtenderCandidate> candidates;
  candidates.reserve(nodes.size());
  for (std::string_view name : nodes) {
    const NodeEntry* node = NodeLocked(name);
    if (node == nullptr) {
      out.failed.emplace_back(name, "node is not in gpu-autoscaler's cache (unknown or deleted)");
      continue;
    }
    std::string_view why =
        invalid.empty() ? CheckNodeLocked(*node, pod, demand, request, predicates) : invalid;
    const autoscale::NodeScore s =
        why.empty() ? engine_->ScoreOf(node->index, request) : autoscale::NodeScore{.score = -1};
    if (why.empty() && s.score < 0) why = kInsufficientGpu;  // defensive: the engine disagrees
    if (why.empty()) {
      out.feasible.push_back(name);
      candidates.push_back(CandidateOf(s, node->index));
    } else {
      out.failed.emplace_back(name, std::string(why));
    }
  }
  memo_.pod_uid.assign(pod.uid());
  memo_.pod_resource_version.assign(pod.resource_version());
  memo_.generation = generation_;
  memo_.names.assign(out.feasible.begin(), out.feasible.end());
  memo_.candidates = std::move(candidates);
  return out;
}

std::vector<int> ClusterCache::Prioritize(const kube::PodView& pod,
                                          std::span<const std::string_view> nodes) {
  std::vector<ExtenderCandidate> candidates(nodes.size());
  std::lock_guard<std::mutex> lock(mu_);
  EnsureBuiltLocked();
  const GpuDemand demand = GpuDemandOf(pod, milli_per_replica_);
  const autoscale::PodRequest request = RequestOf(demand);
  const bool valid = DemandErrorLocked(demand).empty();
  // Nothing changed since Filter kept these nodes for this pod: take its
  // scores, matching names in order (a cheap sequential compare, no lookup).
  bool use_memo = !pod.uid().empty() && memo_.generation == generation_ &&
                  memo_.pod_uid == pod.uid() &&
                  memo_.pod_resource_version == pod.resource_version();
  size_t next = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (use_memo) {
      while (next < memo_.names.size() && memo_.names[next] != nodes[i])
        ++next;
      if (next < memo_.names.size()) {
        candidates[i] = memo_.candidates[next++];
        continue;
      }
      use_memo = false;  // not Filter's order: look the rest up
    }
    const NodeEntry* node = NodeLocked(nodes[i]);
    if (!valid || node == nullptr ||
        !CheckNodeLocked(*node, pod, demand, request, /*predicates=*/false).empty()) {
      continue;
    }
    candidates[i] = CandidateOf(engine_->ScoreOf(node->index, request), node->index);
  }
  return ExtenderPriorities(candidates);
}

Result<PlacementChoice> ClusterCache::Select(const kube::PodView& pod, bool predicates) {
  std::lock_guard<std::mutex> lock(mu_);
  EnsureBuiltLocked();
  // Only the standalone scheduler keeps room for nominated pods; behind
  // kube-scheduler, kube-scheduler does.
  return SelectLocked(pod, predicates, predicates ? HeldFromLocked(pod) : HeldFrom());
}

Result<PlacementChoice> ClusterCache::SelectLocked(const kube::PodView& pod, bool predicates,
                                                   const HeldFrom& held_from) {
  const GpuDemand demand = GpuDemandOf(pod, milli_per_replica_);
  if (std::string invalid = DemandErrorLocked(demand); !invalid.empty()) {
    return FailedPreconditionError(std::move(invalid));
  }
  const autoscale::PodRequest request = RequestOf(demand);
  TopologyCheck topology;
  if (predicates) {
    if (Status s = PrepareTopologyLocked(pod, &topology); !s.ok()) {
      return FailedPreconditionError(s.message());
    }
  }
  std::vector<PodEntry> held;
  std::map<std::string, int, std::less<>> reasons;
  auto count = [&reasons](std::string_view why) {
    auto it = reasons.find(why);
    if (it == reasons.end()) it = reasons.emplace(std::string(why), 0).first;
    ++it->second;
  };
  const NodeEntry* best = nullptr;
  ExtenderCandidate best_candidate;
  for (const NodeEntry* node : by_index_) {
    std::string_view why;
    std::string held_why;
    if (held_from.empty()) {
      why = CheckNodeLocked(*node, pod, demand, request, predicates);
    } else {
      held_why = CheckHeldNodeLocked(*node, pod, demand, request, predicates, held_from, &held);
      why = held_why;
    }
    if (!why.empty()) {
      count(why);
      continue;
    }
    if (topology.filter) {  // after the resources, as kube-scheduler's filters run
      if (std::string_view t = TopologyFailureLocked(*topology.filter, *node, held_from);
          !t.empty()) {
        ReleaseLocked(&held);
        count(t);
        continue;
      }
    }
    const autoscale::NodeScore s = engine_->ScoreOf(node->index, request);
    ReleaseLocked(&held);
    if (s.score < 0) {
      count(kInsufficientGpu);
      continue;
    }
    const ExtenderCandidate candidate = CandidateOf(s, node->index);
    if (best == nullptr || PlacesBefore(candidate, best_candidate)) {
      best = node;
      best_candidate = candidate;
    }
  }
  if (best == nullptr) {
    return FailedPreconditionError(AggregateReasons(static_cast<int>(by_index_.size()), reasons));
  }
  PlacementChoice choice{
      .node = best->offer.spec.name, .score = best_candidate.score, .kind = demand.kind};
  if (!held_from.empty()) {  // the GPUs the nominated pods leave
    (void)CheckHeldNodeLocked(*best, pod, demand, request, false, held_from, &held);
  }
  choice.gpus = ChooseGpusLocked(*best, demand, request, &choice.nvlink_island);
  ReleaseLocked(&held);
  for (const auto& [reason, count] : reasons) {
    choice.rejected += (choice.rejected.empty() ? "" : ", ") + std::to_string(count) + " " + reason;
  }
  return choice;
}

Result<PlacementChoice> ClusterCache::PlanOn(const kube::PodView& pod, std::string_view name,
                                             bool predicates) {
  std::lock_guard<std::mutex> lock(mu_);
  EnsureBuiltLocked();
  return PlanOnLocked(pod, name, predicates, predicates ? HeldFromLocked(pod) : HeldFrom());
}

Result<PlacementChoice> ClusterCache::PlanOnLocked(const kube::PodView& pod, std::string_view name,
                                                   bool predicates, const HeldFrom& held_from) {
  const GpuDemand demand = GpuDemandOf(pod, milli_per_replica_);
  if (std::string invalid = DemandErrorLocked(demand); !invalid.empty()) {
    return FailedPreconditionError(std::move(invalid));
  }
  const NodeEntry* node = NodeLocked(name);
  if (node == nullptr) {
    return NotFoundError("node \"" + std::string(name) + "\" is not in gpu-autoscaler's cache");
  }
  const autoscale::PodRequest request = RequestOf(demand);
  TopologyCheck topology;
  if (predicates) {
    if (Status s = PrepareTopologyLocked(pod, &topology); !s.ok()) {
      return FailedPreconditionError(s.message());
    }
  }
  std::vector<PodEntry> held;
  if (std::string why =
          CheckHeldNodeLocked(*node, pod, demand, request, predicates, held_from, &held);
      !why.empty()) {
    return FailedPreconditionError("node \"" + std::string(name) + "\": " + why);
  }
  if (topology.filter) {
    if (std::string_view t = TopologyFailureLocked(*topology.filter, *node, held_from);
        !t.empty()) {
      ReleaseLocked(&held);
      return FailedPreconditionError("node \"" + std::string(name) + "\": " + std::string(t));
    }
  }
  PlacementChoice choice{.node = std::string(name),
                         .score = engine_->ScoreOf(node->index, request).score,
                         .kind = demand.kind};
  choice.gpus = ChooseGpusLocked(*node, demand, request, &choice.nvlink_island);
  ReleaseLocked(&held);
  return choice;
}

Status ClusterCache::Assume(const kube::PodView& pod, const PlacementChoice& choice) {
  std::lock_guard<std::mutex> lock(mu_);
  return AssumeLocked(pod, choice, nullptr);
}

Status ClusterCache::Assume(std::shared_ptr<const kube::PodView> pod,
                            const PlacementChoice& choice) {
  std::lock_guard<std::mutex> lock(mu_);
  const kube::PodView& view = *pod;
  return AssumeLocked(view, choice, std::move(pod));
}

Status ClusterCache::AssumeLocked(const kube::PodView& pod, const PlacementChoice& choice,
                                  std::shared_ptr<const kube::PodView> keep) {
  const std::string key = PodKey(pod.ns(), pod.name());
  if (pods_.count(key)) return AlreadyExistsError("pod " + key + " is already accounted");
  EnsureBuiltLocked();
  PodEntry entry;
  entry.node = choice.node;
  entry.gpus = choice.gpus;
  entry.demand = GpuDemandOf(pod, milli_per_replica_);
  entry.demand.pinned_gpus.clear();
  entry.assumed = true;
  SetGroup(entry, pod);  // its gang, if any, is no victim while it binds
  if (keep) {
    SetTopologyLocked(key, entry, pod);
    entry.assumed_view = std::move(keep);
  }
  const auto inserted = pods_.emplace(key, std::move(entry)).first;
  PodEntry& stored = inserted->second;
  IndexLabelsLocked(stored);
  const int before = unplaceable_;
  if (!PlaceLocked(stored) || stored.gpus != choice.gpus) {
    UnplaceLocked(stored);
    unplaceable_ = before;
    ErasePodLocked(inserted);
    return FailedPreconditionError("pod " + key + " no longer fits node \"" + choice.node +
                                   "\" on GPUs [" + FormatGpuIndices(choice.gpus) + "]");
  }
  return Status::Ok();
}

void ClusterCache::Forget(std::string_view ns, std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pods_.find(PodKey(ns, name));
  if (it == pods_.end() || !it->second.assumed) return;
  UnplaceLocked(it->second);
  ErasePodLocked(it);
}

double ClusterCache::FragmentationRatio() {
  std::lock_guard<std::mutex> lock(mu_);
  EnsureBuiltLocked();
  double fragmented = 0;
  for (size_t i = 0; i < by_index_.size(); ++i) {
    const autoscale::NodeState& node = state_->node(static_cast<int>(i));
    if (fragmentation_version_[i] != node.version) {
      fragmentation_version_[i] = node.version;
      node_fragmentation_[i] = autoscale::NodeFragmentation(node, *workload_);
    }
    fragmented += node_fragmentation_[i];
  }
  const int64_t idle = state_->idle_gpu_milli();
  return idle > 0 ? std::clamp(fragmented / static_cast<double>(idle), 0.0, 1.0) : 0.0;
}

CacheStats ClusterCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  CacheStats s;
  s.nodes = static_cast<int>(nodes_.size());
  s.pods = static_cast<int>(pods_.size());
  for (const auto& [key, pod] : pods_)
    s.assumed += pod.assumed;
  s.unplaceable = unplaceable_;
  s.rebuilds = rebuilds_;
  if (policy_workload_) {
    for (const autoscale::TypicalPod& shape : policy_workload_->shapes())
      ++(shape.num_gpu > 0 ? s.gpu_shapes : s.cpu_only_shapes);
  }
  return s;
}

}  // namespace gpu_autoscaler::scheduler
