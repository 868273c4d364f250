// File: scheduler/preemption.h
//
// Preemption's rules, as kube-scheduler's DefaultPreemption plugin applies
// them, for the standalone scheduler (ClusterCache::PlanPreemption runs the
// dry runs; these functions are its pure decisions):
//
//   - only pods of lower priority than the preemptor are victims;
//   - on each node, every such pod is removed, and if the preemptor then
//     fits, the victims are spared again one at a time, most important first
//     (higher priority, then the earlier start), those whose eviction would
//     break a PodDisruptionBudget before the others; what cannot be spared is
//     evicted;
//   - a running gang (pod_group.h) is not broken: a member may go alone only
//     while the gang keeps its min-member running; past that, the whole
//     gang goes, on every node, and counts as victims of that node (its
//     members are offered a reprieve before pods that are not in a gang);
//   - among the nodes where that works, the pick is the node with the fewest
//     budget violations, then the lowest highest-victim priority, the lowest
//     sum of victim priorities, the fewest victims, the latest start among
//     its most important victims, and last (our addition: kube-scheduler
//     takes the first node) the best placement score for the preemptor.
//
//   std::vector<DisruptionBudget> budgets = ...;   // from the PDB informer
//   SplitByBudget(&victims, budgets);  // sets violates_budget, in order
//   if (PreemptsBetter(a, b)) ...
//
// Thread-safety: values and pure functions.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "kube/pod_view.h"
#include "kube/selector.h"

namespace gpu_autoscaler::scheduler {

// The pod's priority; a pod without spec.priority counts as 0, as in
// kube-scheduler (admission fills it in on real clusters).
int32_t PriorityOf(const kube::PodView& pod);

// A PodDisruptionBudget as preemption reads it (policy/v1).
struct DisruptionBudget {
  std::string ns{};
  std::string name{};
  kube::LabelSelector selector{};  // an empty selector protects no pod here
  int64_t disruptions_allowed = 0;
  std::set<std::string> disrupted_pods{};  // status.disruptedPods: already counted
};
// Reads a policy/v1 PodDisruptionBudget object given as JSON text.
Result<DisruptionBudget> ParseDisruptionBudget(std::string_view json);

struct PreemptionVictim {
  std::shared_ptr<const kube::PodView> pod{};
  int32_t priority = 0;
  bool violates_budget = false;  // evicting it (after those before it) breaks a PDB
  // "ns/group" when it goes with the rest of its running pod group, which
  // cannot run without a member that had to go; such members may run on
  // other nodes than the preemptor's. Empty for a pod evicted alone.
  std::string pod_group{};
};

// kube-scheduler's MoreImportantPod: higher priority, then the earlier
// status.startTime (a pod not started yet is the least important).
bool MoreImportant(const PreemptionVictim& a, const PreemptionVictim& b);

// Sorts `victims` most important first and marks each one whose eviction,
// after the more important ones, would take a budget below zero
// (filterPodsWithPDBViolation). Returns how many are marked.
int MarkBudgetViolations(std::vector<PreemptionVictim>* victims,
                         const std::vector<DisruptionBudget>& budgets);

// Spends what evicting `victim` takes from the budgets that protect it, as
// if the eviction had happened: later MarkBudgetViolations calls see the
// rest (a pod group's members are planned one after the other).
void ChargeBudgets(std::vector<DisruptionBudget>* budgets, const kube::PodView& victim);

// One node where preemption lets the preemptor in.
struct PreemptionCandidate {
  std::string node{};
  std::vector<PreemptionVictim> victims{};  // most important first
  int budget_violations = 0;
  int score = 0;  // the placement policy's score for the preemptor there, 0..100
  int order = 0;  // the node's position; the last tie-break
};

// The order above on the victims alone (everything but score and order):
// negative when `a` is better, 0 on a tie, positive when worse.
int CompareByVictims(const PreemptionCandidate& a, const PreemptionCandidate& b);
// True when `a` is the better node to preempt on (the whole order above).
bool PreemptsBetter(const PreemptionCandidate& a, const PreemptionCandidate& b);

// What preemption does to the cluster.
struct PreemptionPlan {
  std::string node{};
  std::vector<PreemptionVictim> victims{};
  int budget_violations = 0;
};

// What preemption does for a pod group: where each pending member goes
// (after the victims are gone), and every victim with its node.
struct GangPreemptionPlan {
  struct Member {
    std::shared_ptr<const kube::PodView> pod{};
    std::string node{};
    bool preempts = false;  // its room comes from victims (else it fits already)
  };
  struct Victim {
    std::string node{};
    PreemptionVictim victim{};
    std::shared_ptr<const kube::PodView> preemptor{};  // the member it makes room for
  };
  std::vector<Member> members{};
  std::vector<Victim> victims{};
  int budget_violations = 0;
};

}  // namespace gpu_autoscaler::scheduler
