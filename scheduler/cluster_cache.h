// File: scheduler/cluster_cache.h
//
// The scheduler's picture of the cluster: every node's offer (gpu_demand.h)
// and every bound pod's GPUs, kept in the placement engine's ClusterState so
// that decisions are the engine's (FragLookahead by default). Informer
// handlers feed it; the extender's filter/prioritize/bind and the standalone
// scheduling loop ask it.
//
//   auto cache = ClusterCache::Create({.policy = "FragLookahead"});
//   (*cache)->UpsertNode(node);  (*cache)->UpsertPod(pod);       // informers
//   Result<PlacementChoice> c = (*cache)->Select(pod, /*predicates=*/true);
//   if (c.ok() && (*cache)->Assume(pod, *c).ok()) ... POST the Binding ...
//
// Accounting follows kube-scheduler's cache: a pod counts on its node from
// Assume (before the Binding is sent) until Forget, or until the informer
// reports it bound, which confirms it. A bound pod's GPUs are its
// gpuautoscaler.io/gpu-indices annotation when valid and free, else the
// engine's best GPUs (pods bound by another scheduler). Node heartbeats that
// change nothing the engine sees cost a map lookup; a changed offer, a new or
// a deleted node rebuilds the engine's state on the next question, and so
// does a tenth more or fewer pods, to relearn the target workload (the pod
// shapes FGD and FragLookahead measure fragmentation against: the GPU pods'
// and, weighted by their count, the CPU-only pods' other than DaemonSet,
// static and kube-system pods).
//
// Inter-pod rules (cluster_cache_topology.cc, standalone mode): required
// (anti-)affinity and topology spread, over the pods a label index finds for
// the pod's selectors, the pods nominated to each node counted too.
//
// Preemption (cluster_cache_preemption.cc): PlanPreemption (standalone mode)
// and PlanPreemptionAmong (the extender's preemptVerb) dry-run evictions of
// lower-priority pods node by node, as kube-scheduler's DefaultPreemption
// does (preemption.h). A pod that preempted is nominated to
// its node: until it binds, Select and PlanOn with predicates keep its room
// there from pods of the same or lower priority (kube-scheduler's nominator). Nominations
// also come from pending pods' status.nominatedNodeName, so they outlive a
// restart and cover other schedulers' preemptions; the scheduler's own
// decisions win over the informer's possibly older copies.
//
// Thread-safety: every method is safe from any thread (one internal mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "autoscale/cluster.h"
#include "autoscale/fragmentation.h"
#include "autoscale/policy.h"
#include "autoscale/scheduler.h"
#include "common/status.h"
#include "kube/node_view.h"
#include "kube/pod_view.h"
#include "scheduler/extender_priorities.h"
#include "scheduler/gpu_demand.h"
#include "scheduler/label_index.h"
#include "scheduler/pod_topology.h"
#include "scheduler/preemption.h"

namespace gpu_autoscaler::scheduler {

struct CacheOptions {
  std::string policy = "FragLookahead";  // any name autoscale::MakePolicy accepts
  uint64_t seed = 42;                    // for the Random policy
};

struct PlacementChoice {
  std::string node{};
  std::vector<int> gpus{};  // empty for a pod without GPUs
  int score = 0;            // the policy's score, 0..100
  GpuKind kind = GpuKind::kNone;
  bool nvlink_island = false;  // a multi-GPU pod got GPUs of one NVLink island
  // Why the other nodes were not taken ("2 Insufficient nvidia.com/gpu, ..."),
  // by Select only; "" when every node could take the pod.
  std::string rejected{};
};

// The extender's filter answer: names are views into the caller's input.
struct FilterOutcome {
  std::vector<std::string_view> feasible{};
  std::vector<std::pair<std::string_view, std::string>> failed{};  // node -> reason
};

struct CacheStats {
  int nodes = 0;
  int pods = 0;  // bound or assumed pods accounted
  int assumed = 0;
  int unplaceable = 0;  // bound pods the engine could not fit (overcommitted by others)
  int64_t rebuilds = 0;
  // The policy's target workload at the last rebuild (0 and 0 before one).
  int gpu_shapes = 0;
  int cpu_only_shapes = 0;  // from CPU-only pods that are not DaemonSet, static or kube-system
};

class ClusterCache {
 public:
  static Result<std::unique_ptr<ClusterCache>> Create(CacheOptions options);

  void UpsertNode(std::shared_ptr<const kube::NodeView> node);
  void DeleteNode(std::string_view name);
  // Pending pods are ignored; bound pods count until deleted or finished.
  void UpsertPod(std::shared_ptr<const kube::PodView> pod);
  void DeletePod(std::string_view ns, std::string_view name);

  bool HasNode(std::string_view name) const;
  // Whether the pod is accounted: bound, or assumed while its Binding is sent.
  bool Accounted(std::string_view ns, std::string_view name) const;
  // The cached pod, for the extender's bind (which names only the pod).
  std::shared_ptr<const kube::PodView> FindPod(std::string_view ns, std::string_view name) const;

  // Which of `nodes` can take `pod`. `predicates`: also apply node_fit.h
  // (kube-scheduler has already applied them when it calls an extender).
  FilterOutcome Filter(const kube::PodView& pod, std::span<const std::string_view> nodes,
                       bool predicates);
  // Extender priorities 0..10 for `nodes`, in order (extender_priorities.h):
  // 10 for the node Select would pick among them, 1..9 for the other nodes
  // that fit by the policy's score, 0 where the pod does not fit.
  std::vector<int> Prioritize(const kube::PodView& pod, std::span<const std::string_view> nodes);
  // The best node of the whole cluster. The error (FailedPrecondition) is the
  // reason to show on the pod: kube-scheduler's "0/N nodes are available: ..."
  // or what makes the pod unschedulable as written. `predicates` (standalone
  // mode) also applies node_fit.h and keeps the room of nominated pods.
  Result<PlacementChoice> Select(const kube::PodView& pod, bool predicates);
  // The GPUs `pod` would get on `node`; error when it does not fit there.
  // `predicates` (standalone mode) as for Select.
  Result<PlacementChoice> PlanOn(const kube::PodView& pod, std::string_view node,
                                 bool predicates = false);

  // Counts `pod` at `choice` now. AlreadyExists when the pod is accounted
  // already; FailedPrecondition when the choice no longer fits.
  Status Assume(const kube::PodView& pod, const PlacementChoice& choice);
  // The same, keeping the pod's labels while it binds, so that the next
  // decisions see it for inter-pod affinity and topology spread.
  Status Assume(std::shared_ptr<const kube::PodView> pod, const PlacementChoice& choice);
  // Drops an assumed pod (its Binding failed). Confirmed pods stay.
  void Forget(std::string_view ns, std::string_view name);

  // The node, and the pods of lower priority to evict there, that let `pod`
  // in (preemption.h). FailedPrecondition, with kube-scheduler's reasons
  // ("0/3 nodes are available: 1 Preemption is not helpful for scheduling,
  // 2 No preemption victims found for incoming pod."), when no node does;
  // InvalidArgument when the pod can never fit (Select's reason).
  Result<PreemptionPlan> PlanPreemption(const kube::PodView& pod,
                                        const std::vector<DisruptionBudget>& budgets);
  // The extender's preemptVerb: the same dry run over kube-scheduler's
  // candidate nodes only (unknown names are skipped), without node_fit.h's
  // predicates, which kube-scheduler has applied. Victims are chosen on the
  // GPUs, not taken from kube-scheduler's count-based choice, except that a
  // pod without GPUs whose UID is in `evict_anyway` (kube-scheduler's own
  // victims) is never spared. A node where the pod fits with no victim is no
  // candidate. Errors as PlanPreemption's.
  Result<PreemptionPlan> PlanPreemptionAmong(const kube::PodView& pod,
                                             std::span<const std::string_view> nodes,
                                             const std::unordered_set<std::string>& evict_anyway,
                                             const std::vector<DisruptionBudget>& budgets);
  // Preemption for a pod group whose pending `members` do not all fit: the
  // members are planned one after the other, largest GPU demand first, each
  // where it fits as the cluster would be once the earlier members run and
  // the earlier victims are gone, else by PlanPreemption's dry run (budgets
  // spent cumulatively; victims below the lowest member priority). Other
  // members' nominations keep no room from the group. FailedPrecondition,
  // naming the member, when one cannot be placed even so; InvalidArgument
  // when one can never fit. The cache is left as it was.
  Result<GangPreemptionPlan> PlanGangPreemption(
      std::span<const std::shared_ptr<const kube::PodView>> members,
      std::vector<DisruptionBudget> budgets);
  // Nominates `pod` to `node`. Returns the pods ("ns/name") of lower priority
  // nominated to that node before, whose nominations this drops.
  std::vector<std::string> Nominate(std::shared_ptr<const kube::PodView> pod,
                                    std::string_view node);
  // Drops the pod's nomination; the caller clears its status.nominatedNodeName,
  // and until the informer shows that, older copies naming the node are ignored.
  void ClearNomination(std::string_view ns, std::string_view name);
  // "" when the pod is not nominated.
  std::string NominatedNode(std::string_view ns, std::string_view name) const;
  // Whether a pod of priority below `priority` is terminating on `node`: a
  // preemption there is still under way, and preempting again would only
  // evict more.
  // A pod being evicted counts from the moment it is planned (MarkEvicting),
  // before the informer shows it terminating.
  bool PreemptionUnderWay(std::string_view node, int32_t priority) const;
  // Marks the bound pods ("ns/name") as being evicted by this scheduler, or
  // not any more (their eviction failed). The informer's copies may lag
  // behind the DELETE: a preemptor tried again meanwhile must not plan the
  // same victims again.
  void MarkEvicting(std::span<const std::string> keys, bool evicting);

  // Expected fragmented share of the idle GPU capacity (FGD's measure over
  // the target workload learnt from the cluster's own pods), 0..1.
  double FragmentationRatio();
  CacheStats stats() const;

 private:
  struct NodeEntry {
    std::shared_ptr<const kube::NodeView> view{};
    NodeOffer offer;
    int index = -1;  // in state_; -1 until the next rebuild
    std::map<std::string, int64_t, std::less<>> mig_used{};
  };
  struct PodEntry {
    std::shared_ptr<const kube::PodView> view{};  // null for an assumed pod not yet seen bound
    std::string node{};
    std::vector<int> gpus{};
    GpuDemand demand;
    bool assumed = false;
    autoscale::BindingId binding = -1;
    int node_index = -1;   // the node's index in state_ while placed (binding >= 0)
    int32_t priority = 0;  // the view's, kept here for preemption's scan of every pod
    std::string group{};   // its pod group's "ns/group"; empty when not in a gang
    int group_min = 0;     // the group's min-member as this pod states it (0: all)
    // Its required anti-affinity (the rest is unused once placed); null when none.
    std::shared_ptr<const PodTopologyRules> topology{};
    std::shared_ptr<const kube::PodView> assumed_view{};  // an assumed pod's labels
    bool evicting = false;                                // MarkEvicting
  };
  // The rules of the pod being placed and the filter they make, for one
  // decision (standalone mode). Filled in place: the filter refers to rules.
  struct TopologyCheck {
    PodTopologyRules rules;
    std::optional<TopologyFilter> filter{};  // none when nothing constrains the pod
    TopologyCheck() = default;
    TopologyCheck(const TopologyCheck&) = delete;
    TopologyCheck& operator=(const TopologyCheck&) = delete;
  };
  // What the last Filter decided, for the Prioritize call that follows it
  // for the same pod (kube-scheduler sends the kept nodes, in order).
  struct FilterMemo {
    std::string pod_uid{};
    std::string pod_resource_version{};
    uint64_t generation = 0;  // generation_ when it was made
    std::vector<std::string> names{};
    std::vector<ExtenderCandidate> candidates{};
  };
  struct Nomination {
    std::shared_ptr<const kube::PodView> view{};
    std::string node{};
    int32_t priority = 0;
    // Made by this scheduler (Nominate), as opposed to read from the pod's
    // status: the informer's copies may lag behind it.
    bool ours = false;
    // Its required anti-affinity; null when none (it counts for inter-pod
    // rules on its node, as kube-scheduler's nominated pods do).
    std::shared_ptr<const PodTopologyRules> topology{};
  };
  // Nominations that keep room from one pod, by node index.
  using HeldFrom = std::unordered_map<int, std::vector<const Nomination*>>;
  // What each node could give up to a preemptor (its bound pods of lower
  // priority, not those merely assumed), by node index, and the GPUs the
  // other pods keep there.
  // A running gang whose every member could be a victim.
  struct Gang {
    std::vector<PodEntry*> members{};  // bound, still in the cluster
    int spare = 0;  // how many may go alone (those running beyond its min-member)
  };
  struct Evictable {
    std::vector<std::vector<PodEntry*>> lower{};
    std::vector<uint32_t> kept_gpus{};
    std::unordered_map<std::string, Gang> gangs{};  // by "ns/group", for every gang in `lower`
  };
  struct DryRunOptions {
    bool predicates = true;  // apply node_fit.h to each candidate
    const std::unordered_set<std::string>* evict_anyway = nullptr;  // UIDs
    const HeldFrom* held_from = nullptr;                            // else HeldFromLocked(pod)
    int32_t victims_below = INT32_MAX;  // and below the pod's own priority
    // Kept up to date by the caller (a gang's plan), else computed from pods_.
    const Evictable* evictable = nullptr;
    // A gang that must go as a whole may have members on other nodes. False
    // for kube-scheduler, which evicts only on the node it picks: there such
    // a gang is never broken, and the node does not help.
    bool gangs_across_nodes = true;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using PodMap = std::unordered_map<std::string, PodEntry, StringHash, std::equal_to<>>;

  explicit ClusterCache(CacheOptions options, std::unique_ptr<autoscale::Policy> probe);
  static std::string PodKey(std::string_view ns, std::string_view name);  // "ns/name"
  // The entry's group and group_min, from the pod's annotations.
  static void SetGroup(PodEntry& entry, const kube::PodView& pod);
  // The entry's topology rules, and the index of pods with anti-affinity.
  void SetTopologyLocked(const std::string& key, PodEntry& entry, const kube::PodView& pod);
  void DropTopologyLocked(std::string_view key);
  // Erases the entry and what refers to it (the label index, the set of pods
  // with anti-affinity); the caller has unplaced it. The next entry.
  PodMap::iterator ErasePodLocked(PodMap::iterator it);
  // InvalidArgument when the pod's rules cannot be read.
  Status PrepareTopologyLocked(const kube::PodView& pod, TopologyCheck* check);
  // The view whose labels the entry has: the bound pod's, or an assumed pod's.
  static const kube::PodView* LabelsOf(const PodEntry& entry);
  // The entry as the inter-pod rules see it on `node`.
  static PlacedPod PlacedOn(const PodEntry& entry, const NodeEntry& node);
  // A pod's required anti-affinity, as the rules of a placed pod; null when none.
  static std::shared_ptr<const PodTopologyRules> PlacedRulesOf(const kube::PodView& pod);
  // The filter's verdict on `node`, with the pods nominated there that keep
  // room from this pod (`held_from`) counted and not counted, both of which
  // must pass (kube-scheduler's RunFilterPluginsWithNominatedPods), and with
  // `removed` gone (preemption's dry run).
  std::string_view TopologyFailureLocked(const TopologyFilter& filter, const NodeEntry& node,
                                         const HeldFrom& held_from,
                                         std::span<const PlacedPod> removed = {}) const;
  // Files the entry in label_index_ (call after any change of its view).
  void IndexLabelsLocked(const PodEntry& entry);
  // Adds to `out` every placed pod that one of `rules`' selectors could
  // select; false when a selector bounds no label (only NotIn, DoesNotExist...).
  bool SelectableLocked(const PodTopologyRules& rules, std::unordered_set<const PodEntry*>* out);
  Status AssumeLocked(const kube::PodView& pod, const PlacementChoice& choice,
                      std::shared_ptr<const kube::PodView> keep);
  // The reason for a node short of GPUs, shared by the fit checks and preemption.
  static constexpr std::string_view kInsufficientGpu = "Insufficient nvidia.com/gpu";

  void EnsureBuiltLocked();
  void RebuildLocked();
  autoscale::PodRequest RequestOf(const GpuDemand& demand) const;
  // "" when the node can take the pod, else kube-scheduler-style reason.
  // The view is valid until the next call (it may point at reason_scratch_).
  std::string_view CheckNodeLocked(const NodeEntry& node, const kube::PodView& pod,
                                   const GpuDemand& demand, const autoscale::PodRequest& request,
                                   bool predicates) const;
  std::string DemandErrorLocked(const GpuDemand& demand) const;
  std::vector<int> ChooseGpusLocked(const NodeEntry& node, const GpuDemand& demand,
                                    const autoscale::PodRequest& request, bool* island);
  // Places an accounted pod in state_; false when it does not fit.
  bool PlaceLocked(PodEntry& entry);
  void UnplaceLocked(PodEntry& entry);
  NodeEntry* NodeLocked(std::string_view name);
  // A pending pod's status.nominatedNodeName, as the informer shows it.
  void UpsertNominationLocked(const std::string& key,
                              const std::shared_ptr<const kube::PodView>& pod);
  // The nominations that keep room from `pod`, by node index: other pods'
  // of at least its priority, not yet accounted (assumed or bound: they
  // count already), and not in `skip` ("ns/name"). Empty when there are none.
  HeldFrom HeldFromLocked(const kube::PodView& pod,
                          const std::unordered_set<std::string>* skip = nullptr) const;
  Result<PlacementChoice> SelectLocked(const kube::PodView& pod, bool predicates,
                                       const HeldFrom& held_from);
  Result<PlacementChoice> PlanOnLocked(const kube::PodView& pod, std::string_view name,
                                       bool predicates, const HeldFrom& held_from);
  // Places `nominated` on `node` until ReleaseLocked. False, with nothing
  // held and `why` saying what is short, when they do not all fit.
  bool HoldLocked(const NodeEntry& node, const std::vector<const Nomination*>& nominated,
                  std::vector<PodEntry>* held, std::string* why);
  void ReleaseLocked(std::vector<PodEntry>* held);
  // The bound pods below `below_priority`, gangs whole or not at all, and
  // none of the preemptor's own group (`own_group`, "ns/group").
  Evictable EvictableLocked(int32_t below_priority, std::string_view own_group);
  // With every pod of evictable.lower[node] out of the node and the pod
  // fitting there: spares what it can in preemption.h's order and returns
  // the victims, or nullopt with `why` when the node does not help after all.
  // `topology` (may be null): the pod's inter-pod rules, which a spared pod
  // must not break either.
  std::optional<PreemptionCandidate> ReprieveLocked(
      const kube::PodView& pod, const GpuDemand& demand, const autoscale::PodRequest& request,
      const NodeEntry& node, const Evictable& evictable,
      const std::vector<DisruptionBudget>& budgets, const DryRunOptions& options,
      const TopologyFilter* topology, const HeldFrom& held_from, std::string* why);
  Result<PreemptionPlan> PlanPreemptionLocked(const kube::PodView& pod,
                                              const std::vector<DisruptionBudget>& budgets,
                                              const std::vector<NodeEntry*>& candidates,
                                              DryRunOptions options);
  // CheckNodeLocked once the pods nominated to the node that keep room from
  // this pod (`held_from`) are placed. When it fits (""), they stay placed in
  // `held` for the caller to score under, and to ReleaseLocked.
  std::string CheckHeldNodeLocked(const NodeEntry& node, const kube::PodView& pod,
                                  const GpuDemand& demand, const autoscale::PodRequest& request,
                                  bool predicates, const HeldFrom& held_from,
                                  std::vector<PodEntry>* held);

  const CacheOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, NodeEntry, std::less<>> nodes_{};
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> node_index_{};
  std::vector<NodeEntry*> by_index_{};
  PodMap pods_{};  // "ns/name"
  std::unordered_map<std::string, Nomination, StringHash, std::equal_to<>> nominations_{};
  // Nominations this scheduler dropped whose clearing the informer has not
  // shown yet: an older copy still naming the node must not bring them back.
  std::unordered_set<std::string, StringHash, std::equal_to<>> cleared_nominations_{};
  // Placed pods with required pod anti-affinity ("ns/name"): every decision
  // checks them, where other pods are read only for a pod with rules.
  std::unordered_set<std::string, StringHash, std::equal_to<>> anti_affinity_pods_{};
  // Placed pods (PodEntry*) by the label values that rules select on.
  LabelIndex label_index_{};
  // While PlanGangPreemption runs: the members planned so far count as placed
  // for inter-pod rules, and the victims planned so far as gone.
  std::vector<const PodEntry*> planned_members_{};
  std::unordered_set<const PodEntry*> planned_victims_{};
  bool dirty_ = true;
  int milli_per_replica_ = autoscale::kMilliPerGpu;
  int unplaceable_ = 0;
  int64_t pods_at_build_ = 0;
  uint64_t generation_ = 0;  // bumped by every change to state_
  FilterMemo memo_{};
  mutable std::string reason_scratch_{};  // CheckNodeLocked's built reasons
  int64_t rebuilds_ = 0;
  std::unique_ptr<autoscale::ClusterState> state_{};
  // The GPU pods' shapes (FragmentationRatio's measure), and the policy's:
  // those plus the CPU-only workload pods' shapes, for FragLookahead's CPU terms.
  std::unique_ptr<autoscale::TargetWorkload> workload_{};
  std::unique_ptr<autoscale::TargetWorkload> policy_workload_{};
  std::unique_ptr<autoscale::Policy> policy_{};
  std::unique_ptr<autoscale::Scheduler> engine_{};
  std::vector<double> node_fragmentation_{};  // per node index, at fragmentation_version_
  std::vector<uint64_t> fragmentation_version_{};
};

}  // namespace gpu_autoscaler::scheduler
