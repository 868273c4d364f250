// ClusterCache's preemption dry runs and nominations (cluster_cache.h).

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "scheduler/cluster_cache.h"
#include "scheduler/node_fit.h"
#include "scheduler/pod_group.h"

namespace gpu_autoscaler::scheduler {
namespace {

// kube-scheduler's texts for the nodes preemption cannot use.
constexpr std::string_view kNotHelpful = "Preemption is not helpful for scheduling";
constexpr std::string_view kNoVictims = "No preemption victims found for incoming pod";
// Ours: kube-scheduler evicts on one node only, and a gang needs all of it.
constexpr std::string_view kBreaksGang =
    "Preemption would stop a pod group that also runs on other nodes";

}  // namespace

ClusterCache::HeldFrom ClusterCache::HeldFromLocked(
    const kube::PodView& pod, const std::unordered_set<std::string>* skip) const {
  HeldFrom held_from;
  if (nominations_.empty()) return held_from;
  const std::string self = PodKey(pod.ns(), pod.name());
  const int32_t priority = PriorityOf(pod);
  for (const auto& [key, nomination] : nominations_) {
    if (key == self || nomination.priority < priority) continue;
    if (pods_.count(key) || (skip != nullptr && skip->count(key))) continue;
    auto it = node_index_.find(nomination.node);
    if (it != node_index_.end()) held_from[it->second].push_back(&nomination);
  }
  return held_from;
}

bool ClusterCache::HoldLocked(const NodeEntry& node,
                              const std::vector<const Nomination*>& nominated,
                              std::vector<PodEntry>* held, std::string* why) {
  const int unplaceable = unplaceable_;
  for (const Nomination* n : nominated) {
    PodEntry entry;
    entry.view = n->view;
    entry.node = node.offer.spec.name;
    entry.demand = GpuDemandOf(*n->view, milli_per_replica_);
    entry.gpus = entry.demand.pinned_gpus;
    entry.assumed = true;
    if (!entry.demand.error.empty()) continue;  // it can never bind; it holds nothing
    if (PlaceLocked(entry)) {
      held->push_back(std::move(entry));
      continue;
    }
    unplaceable_ = unplaceable;
    const autoscale::PodRequest request = RequestOf(entry.demand);
    *why = std::string(CheckNodeLocked(node, *n->view, entry.demand, request, false));
    if (why->empty()) *why = kInsufficientGpu;  // the GPUs, not the totals
    ReleaseLocked(held);
    return false;
  }
  return true;
}

void ClusterCache::ReleaseLocked(std::vector<PodEntry>* held) {
  for (auto it = held->rbegin(); it != held->rend(); ++it)
    UnplaceLocked(*it);
  held->clear();
}

std::string ClusterCache::CheckHeldNodeLocked(const NodeEntry& node, const kube::PodView& pod,
                                              const GpuDemand& demand,
                                              const autoscale::PodRequest& request, bool predicates,
                                              const HeldFrom& held_from,
                                              std::vector<PodEntry>* held) {
  auto it = held_from.find(node.index);
  if (it != held_from.end()) {
    std::string why;
    if (predicates) {
      // A node the pod may not use at all says so, not what is held there.
      why = NodePredicateFailure(pod, *node.view);
      if (!why.empty()) return why;
    }
    if (!HoldLocked(node, it->second, held, &why)) return why;
  }
  std::string why(CheckNodeLocked(node, pod, demand, request, predicates));
  if (!why.empty()) ReleaseLocked(held);
  return why;
}

Result<PreemptionPlan> ClusterCache::PlanPreemption(const kube::PodView& pod,
                                                    const std::vector<DisruptionBudget>& budgets) {
  std::lock_guard<std::mutex> lock(mu_);
  EnsureBuiltLocked();
  return PlanPreemptionLocked(pod, budgets, by_index_, {});
}

Result<PreemptionPlan> ClusterCache::PlanPreemptionAmong(
    const kube::PodView& pod, std::span<const std::string_view> nodes,
    const std::unordered_set<std::string>& evict_anyway,
    const std::vector<DisruptionBudget>& budgets) {
  std::lock_guard<std::mutex> lock(mu_);
  EnsureBuiltLocked();
  std::vector<NodeEntry*> candidates;
  std::unordered_set<int> seen;
  for (std::string_view name : nodes) {
    NodeEntry* node = NodeLocked(name);
    if (node != nullptr && node->index >= 0 && seen.insert(node->index).second) {
      candidates.push_back(node);
    }
  }
  // kube-scheduler has applied its predicates to these nodes already, and
  // evicts only on the node it picks.
  return PlanPreemptionLocked(
      pod, budgets, candidates,
      {.predicates = false, .evict_anyway = &evict_anyway, .gangs_across_nodes = false});
}

ClusterCache::Evictable ClusterCache::EvictableLocked(int32_t below_priority,
                                                      std::string_view own_group) {
  Evictable out;
  out.lower.resize(by_index_.size());
  out.kept_gpus.assign(by_index_.size(), 0);
  // A gang is a victim whole or not at all: every member bound (none merely
  // assumed) and below the priority, and not the preemptor's own.
  struct Census {
    bool evictable = true;
    int running = 0;
    int min_member = 0;
  };
  std::unordered_map<std::string_view, Census> census;
  for (const auto& [key, entry] : pods_) {
    if (entry.binding < 0 || entry.group.empty()) continue;
    Census& c = census[entry.group];
    c.evictable = c.evictable && !entry.assumed && entry.view && entry.priority < below_priority &&
                  entry.group != own_group;
    ++c.running;
    c.min_member = std::max(c.min_member, entry.group_min);
  }
  for (auto& [key, entry] : pods_) {
    if (entry.binding < 0) continue;
    const Census* gang = entry.group.empty() ? nullptr : &census[entry.group];
    const bool lower = gang != nullptr
                           ? gang->evictable
                           : !entry.assumed && entry.view && entry.priority < below_priority;
    if (lower) {
      out.lower[entry.node_index].push_back(&entry);
      if (gang == nullptr) continue;
      Gang& g = out.gangs[entry.group];
      g.members.push_back(&entry);
      // Without min-member the gang needs every member it runs.
      g.spare = gang->min_member > 0 ? std::max(0, gang->running - gang->min_member) : 0;
    } else if (entry.demand.kind != GpuKind::kMig) {
      for (int g : entry.gpus)
        out.kept_gpus[entry.node_index] |= uint32_t{1} << g;
    }
  }
  return out;
}

std::optional<PreemptionCandidate> ClusterCache::ReprieveLocked(
    const kube::PodView& pod, const GpuDemand& demand, const autoscale::PodRequest& request,
    const NodeEntry& node, const Evictable& evictable, const std::vector<DisruptionBudget>& budgets,
    const DryRunOptions& options, const TopologyFilter* topology, const HeldFrom& held_from,
    std::string* why) {
  std::vector<PreemptionVictim> victims;
  std::unordered_map<const kube::PodView*, PodEntry*> entry_of;
  for (PodEntry* e : evictable.lower[node.index]) {
    victims.push_back({.pod = e->view, .priority = e->priority});
    entry_of[e->view.get()] = e;
  }
  MarkBudgetViolations(&victims, budgets);
  // Spare the pods a budget protects first, then the others; within each,
  // gang members first (one that goes can take its whole gang with it), and
  // the most important first.
  auto rank = [&entry_of](const PreemptionVictim& v) {
    return (v.violates_budget ? 0 : 2) + (entry_of[v.pod.get()]->group.empty() ? 1 : 0);
  };
  std::stable_sort(
      victims.begin(), victims.end(),
      [&rank](const PreemptionVictim& a, const PreemptionVictim& b) { return rank(a) < rank(b); });
  PreemptionCandidate candidate{.node = node.offer.spec.name, .order = node.index};
  // The node's pods out of it as the reprieve goes, for the inter-pod rules:
  // every lower-priority pod at first.
  std::vector<const PodEntry*> out(evictable.lower[node.index].begin(),
                                   evictable.lower[node.index].end());
  std::vector<PlacedPod> removed;
  auto topology_allows = [&](const PodEntry* back) {
    if (topology == nullptr) return true;
    removed.clear();
    for (const PodEntry* e : out) {
      if (e != back) removed.push_back(PlacedOn(*e, node));
    }
    return TopologyFailureLocked(*topology, node, held_from, removed).empty();
  };
  std::unordered_set<const PodEntry*> gone;
  std::unordered_map<std::string_view, int> gone_alone;  // by gang
  bool whole_gang = false;
  for (const PreemptionVictim& v : victims) {
    PodEntry& e = *entry_of[v.pod.get()];
    if (gone.count(&e)) continue;  // with its gang
    const std::vector<int> gpus = e.gpus;
    // A pod without GPUs that kube-scheduler chose stays chosen: it may
    // stand in the way of what this cache does not model (host ports,
    // inter-pod anti-affinity, other extended resources).
    const bool keep_evicted = e.demand.kind == GpuKind::kNone && options.evict_anyway &&
                              options.evict_anyway->count(std::string(v.pod->uid())) > 0;
    if (!keep_evicted && PlaceLocked(e)) {
      // Spared only where it runs: on its own GPUs (MIG pods are placed
      // by count), with the preemptor still fitting.
      const bool own = e.demand.kind == GpuKind::kMig || e.gpus == gpus;
      if (own && CheckNodeLocked(node, pod, demand, request, false).empty() &&
          topology_allows(&e)) {
        std::erase(out, &e);
        continue;
      }
      UnplaceLocked(e);
      e.gpus = gpus;
    }
    const Gang* gang = e.group.empty() ? nullptr : &evictable.gangs.at(e.group);
    if (gang == nullptr || gone_alone[e.group] < gang->spare) {
      if (gang != nullptr) ++gone_alone[e.group];
      candidate.victims.push_back(v);
      candidate.budget_violations += v.violates_budget;
      gone.insert(&e);
      continue;
    }
    // The gang cannot run without it: all of it goes, wherever it runs.
    if (!options.gangs_across_nodes) {
      for (const PodEntry* m : gang->members) {
        if (m->node_index != node.index) {
          *why = kBreaksGang;
          return std::nullopt;
        }
      }
    }
    whole_gang = true;
    for (PreemptionVictim& earlier : candidate.victims) {
      auto it = entry_of.find(earlier.pod.get());
      if (it != entry_of.end() && it->second->group == e.group) earlier.pod_group = e.group;
    }
    for (PodEntry* m : gang->members) {
      if (gone.count(m)) continue;
      if (m->node_index == node.index && m->binding >= 0) {  // spared before
        UnplaceLocked(*m);
        out.push_back(m);
      }
      candidate.victims.push_back({.pod = m->view, .priority = m->priority, .pod_group = e.group});
      gone.insert(m);
    }
  }
  if (whole_gang) {
    // Counted again over every victim: a gang's members on other nodes too.
    candidate.budget_violations = MarkBudgetViolations(&candidate.victims, budgets);
  }
  std::stable_sort(candidate.victims.begin(), candidate.victims.end(), MoreImportant);
  if (candidate.victims.empty()) {
    // It fits there as it is: only kube-scheduler's nominations or counts
    // differ from this cache's, and evicting nothing is no plan.
    *why = kNoVictims;
    return std::nullopt;
  }
  return candidate;
}

Result<PreemptionPlan> ClusterCache::PlanPreemptionLocked(
    const kube::PodView& pod, const std::vector<DisruptionBudget>& budgets,
    const std::vector<NodeEntry*>& candidates, DryRunOptions options) {
  const GpuDemand demand = GpuDemandOf(pod, milli_per_replica_);
  if (std::string invalid = DemandErrorLocked(demand); !invalid.empty()) {
    return InvalidArgumentError(std::move(invalid));  // no eviction helps
  }
  const autoscale::PodRequest request = RequestOf(demand);
  const int32_t priority = std::min(PriorityOf(pod), options.victims_below);
  const HeldFrom held_from = options.held_from ? *options.held_from : HeldFromLocked(pod);
  // Inter-pod rules: a node closed by a rule that evictions cannot change
  // (no partner for affinity, a missing label) is not helped; anti-affinity
  // and skew are checked again with the victims gone.
  TopologyCheck topology;
  if (options.predicates) {
    if (Status s = PrepareTopologyLocked(pod, &topology); !s.ok()) {
      return InvalidArgumentError(s.message());
    }
  }

  // A whole-GPU pod skips, without a dry run, a node it could not fit on
  // whatever left (the kept GPUs).
  Evictable computed;
  if (options.evictable == nullptr) computed = EvictableLocked(priority, PodGroupOf(pod).key);
  const Evictable& evictable_pods = options.evictable ? *options.evictable : computed;
  const std::vector<std::vector<PodEntry*>>& lower = evictable_pods.lower;
  const std::vector<uint32_t>& kept_gpus = evictable_pods.kept_gpus;

  std::map<std::string, int, std::less<>> reasons;
  auto count = [&reasons](std::string_view why) {
    auto it = reasons.find(why);
    if (it == reasons.end()) it = reasons.emplace(std::string(why), 0).first;
    ++it->second;
  };
  std::optional<PreemptionCandidate> best;
  const int unplaceable = unplaceable_;
  std::vector<PodEntry> held;
  for (const NodeEntry* node : candidates) {
    if (options.predicates && !NodePredicateFailure(pod, *node->view).empty()) {
      count(kNotHelpful);  // no eviction changes a taint, a selector or a cordon
      continue;
    }
    if (topology.filter) {
      std::string_view rule = topology.filter->Failure(*node->view);
      if (!rule.empty() && !EvictionsMayClear(rule)) {
        count(kNotHelpful);
        continue;
      }
    }
    const std::vector<PodEntry*>& evictable = lower[node->index];
    if (evictable.empty()) {
      count(kNoVictims);
      continue;
    }
    if (demand.kind == GpuKind::kWhole) {
      const autoscale::NodeState& state = state_->node(node->index);
      const uint32_t all =
          state.gpu_count >= 32 ? ~uint32_t{0} : (uint32_t{1} << state.gpu_count) - 1;
      if (std::popcount(all & ~state.mig_mask & ~kept_gpus[node->index]) < request.num_gpu) {
        count(kInsufficientGpu);  // what the dry run would say
        continue;
      }
    }
    // Dry run: every lower-priority pod gone.
    std::vector<std::vector<int>> own_gpus;
    own_gpus.reserve(evictable.size());
    for (PodEntry* e : evictable) {
      own_gpus.push_back(e->gpus);
      UnplaceLocked(*e);
    }
    std::string why = CheckHeldNodeLocked(*node, pod, demand, request, false, held_from, &held);
    if (why.empty() && topology.filter) {
      std::vector<PlacedPod> removed;
      removed.reserve(evictable.size());
      for (const PodEntry* e : evictable)
        removed.push_back(PlacedOn(*e, *node));
      why = TopologyFailureLocked(*topology.filter, *node, held_from, removed);
    }
    const TopologyFilter* rules = topology.filter ? &*topology.filter : nullptr;
    if (!why.empty()) {
      count(why);
    } else if (std::optional<PreemptionCandidate> candidate =
                   ReprieveLocked(pod, demand, request, *node, evictable_pods, budgets, options,
                                  rules, held_from, &why)) {
      // The placement score only breaks ties: most nodes lose on their victims.
      if (!best || CompareByVictims(*candidate, *best) <= 0) {
        candidate->score = std::max(0, engine_->ScoreOf(node->index, request).score);
        if (!best || PreemptsBetter(*candidate, *best)) best = std::move(candidate);
      }
    } else {
      count(why);
    }
    ReleaseLocked(&held);
    // Back as they were: every evictable pod on its own GPUs again.
    for (PodEntry* e : evictable) {
      if (e->binding >= 0) UnplaceLocked(*e);
    }
    for (size_t i = 0; i < evictable.size(); ++i) {
      evictable[i]->gpus = own_gpus[i];
      PlaceLocked(*evictable[i]);
    }
  }
  unplaceable_ = unplaceable;
  if (!best) {
    return FailedPreconditionError(AggregateReasons(static_cast<int>(candidates.size()), reasons));
  }
  return PreemptionPlan{.node = std::move(best->node),
                        .victims = std::move(best->victims),
                        .budget_violations = best->budget_violations};
}

Result<GangPreemptionPlan> ClusterCache::PlanGangPreemption(
    std::span<const std::shared_ptr<const kube::PodView>> members,
    std::vector<DisruptionBudget> budgets) {
  std::lock_guard<std::mutex> lock(mu_);
  EnsureBuiltLocked();
  // The members' own nominations (from an earlier plan) are this plan's.
  std::unordered_set<std::string> group;
  int32_t lowest = INT32_MAX;
  struct Member {
    std::shared_ptr<const kube::PodView> pod;
    GpuDemand demand;
    int64_t gpu_milli = 0;
  };
  std::vector<Member> order;
  for (const auto& m : members) {
    GpuDemand demand = GpuDemandOf(*m, milli_per_replica_);
    if (std::string invalid = DemandErrorLocked(demand); !invalid.empty()) {
      return InvalidArgumentError(std::string(m->name()) + ": " + invalid);
    }
    group.insert(PodKey(m->ns(), m->name()));
    lowest = std::min(lowest, PriorityOf(*m));
    const int64_t gpu_milli = RequestOf(demand).total_gpu_milli();
    order.push_back({.pod = m, .demand = std::move(demand), .gpu_milli = gpu_milli});
  }
  // The hardest to place first; by name among equals, for a stable plan.
  std::stable_sort(order.begin(), order.end(), [](const Member& a, const Member& b) {
    return a.gpu_milli != b.gpu_milli ? a.gpu_milli > b.gpu_milli : a.pod->name() < b.pod->name();
  });

  // Victims rank below every member, so one table serves every member; a
  // member's victims leave it as they leave the cluster.
  const std::string own_group = members.empty() ? std::string() : PodGroupOf(*members[0]).key;
  Evictable evictable = EvictableLocked(lowest, own_group);
  GangPreemptionPlan plan;
  std::vector<PodEntry> placed;                                 // the members, as if bound
  std::vector<std::pair<PodEntry*, std::vector<int>>> removed;  // victims, with their GPUs
  placed.reserve(order.size());                                 // planned_members_ points into it
  const int unplaceable = unplaceable_;
  Status failure;
  for (const Member& m : order) {
    const std::shared_ptr<const kube::PodView>& member = m.pod;
    const std::string named = std::string(member->name()) + ": ";  // failures name the member
    const HeldFrom held_from = HeldFromLocked(*member, &group);
    Result<PlacementChoice> choice = SelectLocked(*member, /*predicates=*/true, held_from);
    bool preempts = false;
    if (!choice.ok()) {
      Result<PreemptionPlan> evict = PlanPreemptionLocked(
          *member, budgets, by_index_,
          {.held_from = &held_from, .victims_below = lowest, .evictable = &evictable});
      if (!evict.ok()) {
        failure = Status(evict.error().code(), named + evict.error().message());
        break;
      }
      for (const PreemptionVictim& v : evict->victims) {
        PodEntry& entry = pods_.find(PodKey(v.pod->ns(), v.pod->name()))->second;
        std::erase(evictable.lower[entry.node_index], &entry);
        if (auto gang = evictable.gangs.find(entry.group); gang != evictable.gangs.end()) {
          std::erase(gang->second.members, &entry);  // gone alone, or with all of it
          gang->second.spare = std::max(0, gang->second.spare - 1);
        }
        removed.emplace_back(&entry, entry.gpus);
        planned_victims_.insert(&entry);
        UnplaceLocked(entry);
        ChargeBudgets(&budgets, *v.pod);
        plan.victims.push_back({.node = evict->node, .victim = v, .preemptor = member});
      }
      plan.budget_violations += evict->budget_violations;
      choice = PlanOnLocked(*member, evict->node, /*predicates=*/true, held_from);
      preempts = true;
      if (!choice.ok()) {  // the dry run said it fits; keep the failure readable
        failure = FailedPreconditionError(named + choice.error().message());
        break;
      }
    }
    PodEntry entry;
    entry.view = member;
    entry.node = choice->node;
    entry.gpus = choice->gpus;
    entry.demand = m.demand;
    entry.assumed = true;
    entry.topology = PlacedRulesOf(*member);
    if (!PlaceLocked(entry)) {
      failure = FailedPreconditionError(named + "no longer fits node \"" + choice->node + "\"");
      break;
    }
    placed.push_back(std::move(entry));
    planned_members_.push_back(&placed.back());
    plan.members.push_back({.pod = member, .node = choice->node, .preempts = preempts});
  }
  // Back as it was: the members out, every victim on its own GPUs again.
  planned_members_.clear();
  planned_victims_.clear();
  ReleaseLocked(&placed);
  for (auto it = removed.rbegin(); it != removed.rend(); ++it) {
    it->first->gpus = it->second;
    PlaceLocked(*it->first);
  }
  unplaceable_ = unplaceable;
  if (!failure.ok()) return failure;
  return plan;
}

void ClusterCache::UpsertNominationLocked(const std::string& key,
                                          const std::shared_ptr<const kube::PodView>& pod) {
  const std::string_view node = pod->nominated_node_name();
  auto it = nominations_.find(key);
  if (node.empty()) {
    cleared_nominations_.erase(key);  // the clearing has landed
    if (it != nominations_.end() && !it->second.ours) nominations_.erase(it);
    return;
  }
  if (cleared_nominations_.count(key) || (it != nominations_.end() && it->second.ours)) return;
  nominations_[key] = Nomination{.view = pod,
                                 .node = std::string(node),
                                 .priority = PriorityOf(*pod),
                                 .topology = PlacedRulesOf(*pod)};
}

std::vector<std::string> ClusterCache::Nominate(std::shared_ptr<const kube::PodView> pod,
                                                std::string_view node) {
  std::lock_guard<std::mutex> lock(mu_);
  const int32_t priority = PriorityOf(*pod);
  std::vector<std::string> dropped;
  // Lower-priority pods nominated there may no longer fit (kube-scheduler
  // clears their nominations too).
  std::erase_if(nominations_, [&](const auto& n) {
    if (n.second.node != node || n.second.priority >= priority) return false;
    dropped.push_back(n.first);
    return true;
  });
  for (const std::string& key : dropped)
    cleared_nominations_.insert(key);
  std::string key = PodKey(pod->ns(), pod->name());
  cleared_nominations_.erase(key);
  std::shared_ptr<const PodTopologyRules> rules = PlacedRulesOf(*pod);
  nominations_[std::move(key)] = Nomination{.view = std::move(pod),
                                            .node = std::string(node),
                                            .priority = priority,
                                            .ours = true,
                                            .topology = std::move(rules)};
  ++generation_;
  std::sort(dropped.begin(), dropped.end());
  return dropped;
}

void ClusterCache::ClearNomination(std::string_view ns, std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = PodKey(ns, name);
  if (nominations_.erase(key) > 0) ++generation_;
  cleared_nominations_.insert(std::move(key));
}

std::string ClusterCache::NominatedNode(std::string_view ns, std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nominations_.find(PodKey(ns, name));
  return it == nominations_.end() ? std::string() : it->second.node;
}

bool ClusterCache::PreemptionUnderWay(std::string_view node, int32_t priority) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, entry] : pods_) {
    if (entry.node == node && (entry.evicting || (entry.view && entry.view->terminating())) &&
        entry.priority < priority) {
      return true;
    }
  }
  return false;
}

void ClusterCache::MarkEvicting(std::span<const std::string> keys, bool evicting) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& key : keys) {
    if (auto it = pods_.find(key); it != pods_.end()) it->second.evicting = evicting;
  }
}

}  // namespace gpu_autoscaler::scheduler
