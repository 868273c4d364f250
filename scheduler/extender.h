// File: scheduler/extender.h
//
// The kube-scheduler extender protocol (k8s.io/kube-scheduler/extender/v1):
// the request and response codecs and the three verbs over a ClusterCache.
// kube-scheduler sends PascalCase keys (the Go types have no json tags) and
// decodes answers case-insensitively; we accept any key case and answer in
// PascalCase, exactly in the shapes a real kube-scheduler v1.20 exchanged
// (tests/golden/extender/):
//
//   POST /filter      ExtenderArgs {Pod, Nodes, NodeNames}
//                     -> {Nodes, NodeNames, FailedNodes, Error}, in the request's form
//                        (NodeNames when nodeCacheCapable, else Nodes.items echoed)
//   POST /prioritize  ExtenderArgs -> [{Host, Score}], scores 0..10
//   POST /bind        {PodName, PodNamespace, PodUID, Node} -> {Error}
//   POST /preempt     ExtenderPreemptionArgs {Pod, NodeNameToVictims | NodeNameToMetaVictims}
//                     -> {NodeNameToMetaVictims: {node: {Pods: [{UID}], NumPDBViolations}}}:
//                        the one candidate node to preempt on, with victims chosen on the
//                        GPUs (ClusterCache::PlanPreemptionAmong), or {} when none helps.
//                        kube-scheduler v1.20.10+, v1.21.4+ and v1.22+ call it.
//
//   Extender extender(cache, {.bind = ..., .find_pod = ...});
//   ExtenderReply r = extender.Handle("filter", body);   // status 200 + JSON
//
// A malformed body gets 400 with {"Error": "..."}; kube-scheduler reports any
// non-200 as an extender failure. Unknown node names are failed, never kept.
//
// Thread-safety: Handle is safe from many threads (the cache serialises).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kube/event_recorder.h"
#include "scheduler/binder.h"
#include "scheduler/cluster_cache.h"
#include "scheduler/preemption.h"

namespace gpu_autoscaler::scheduler {

struct ExtenderArgs {
  std::string pod_json{};                 // the raw Pod object
  bool node_cache_capable = true;         // NodeNames given (else Nodes)
  std::vector<std::string> node_names{};  // NodeNames, or the names of Nodes.items
  std::vector<std::string> node_items{};  // non-cache mode: each item's raw JSON
};
Result<ExtenderArgs> ParseExtenderArgs(std::string_view body);

struct ExtenderBindingArgs {
  std::string pod_name{};
  std::string pod_namespace{};
  std::string pod_uid{};
  std::string node{};
};
Result<ExtenderBindingArgs> ParseExtenderBindingArgs(std::string_view body);

// kube-scheduler's candidates for preemption: the victims it chose on each
// node (NodeNameToVictims sends whole Pods, NodeNameToMetaVictims their UIDs).
struct ExtenderPreemptionArgs {
  std::string pod_json{};
  struct Candidate {
    std::string node{};
    std::vector<std::string> victim_uids{};
    int64_t pdb_violations = 0;
  };
  std::vector<Candidate> candidates{};  // in the order of the request
};
Result<ExtenderPreemptionArgs> ParseExtenderPreemptionArgs(std::string_view body);

// {"NodeNameToMetaVictims": {...}}: the plan's node and victims' UIDs, or an
// empty map for no plan.
std::string PreemptionResultJson(const PreemptionPlan* plan);

std::string FilterResultJson(const ExtenderArgs& args, const FilterOutcome& outcome,
                             std::string_view error);
std::string HostPriorityListJson(std::span<const std::string> hosts, std::span<const int> scores);
std::string BindingResultJson(std::string_view error);

struct ExtenderReply {
  int status = 200;
  std::string body{};
};

struct ExtenderHooks {
  // Sends the Binding (Binder::Bind in production).
  std::function<Status(const BindRequest&)> bind = nullptr;
  // The pod named by a bind request: the informer's copy, else a GET.
  std::function<std::shared_ptr<const kube::PodView>(std::string_view ns, std::string_view name)>
      find_pod = nullptr;
  // Records an Event on a pod; may be unset.
  std::function<void(const kube::PodView&, kube::EventType, std::string reason,
                     std::string message)>
      record_event = nullptr;
  // The PodDisruptionBudgets preemption respects; may be unset (none).
  std::function<std::vector<DisruptionBudget>()> disruption_budgets = nullptr;
  // Counts a preemption answer ("preempted" or "no_candidate", victims); may be unset.
  std::function<void(std::string_view result, int victims)> count_preemption = nullptr;
  std::string policy_name = "FragLookahead";
  // false: /preempt names no victims, so kube-scheduler preempts for no pod
  // the extender manages.
  bool preemption = true;
};

class Extender {
 public:
  Extender(ClusterCache& cache, ExtenderHooks hooks) : cache_(cache), hooks_(std::move(hooks)) {}

  // `verb`: "filter", "prioritize", "bind" or "preempt"; anything else gets 404.
  ExtenderReply Handle(std::string_view verb, std::string_view body);

 private:
  ExtenderReply Filter(std::string_view body);
  ExtenderReply Prioritize(std::string_view body);
  ExtenderReply Bind(std::string_view body);
  ExtenderReply Preempt(std::string_view body);

  ClusterCache& cache_;
  ExtenderHooks hooks_;
};

}  // namespace gpu_autoscaler::scheduler
