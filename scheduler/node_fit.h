// File: scheduler/node_fit.h
//
// The node predicates kube-scheduler applies before resources, for the
// standalone mode (in extender mode kube-scheduler has applied them already):
// unschedulable and NotReady nodes, taints the pod does not tolerate
// (NoSchedule, NoExecute), nodeSelector and required node affinity. Each
// failure returns kube-scheduler's own reason text, so the aggregated message
// ("0/4 nodes are available: 3 node(s) didn't match node selector.") reads the
// same as from the default scheduler.
//
//   if (std::string_view why = NodePredicateFailure(pod, node); !why.empty()) ...
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "kube/node_view.h"
#include "kube/pod_view.h"

namespace gpu_autoscaler::scheduler {

// "" when the pod may go on the node as far as these predicates go.
std::string NodePredicateFailure(const kube::PodView& pod, const kube::NodeView& node);

bool MatchesNodeSelector(const kube::PodView& pod, const kube::NodeView& node);
bool MatchesRequiredNodeAffinity(const kube::PodView& pod, const kube::NodeView& node);
bool ToleratesTaints(const kube::PodView& pod, const kube::NodeView& node,
                     const kube::Taint** untolerated);

// kube-scheduler's FitError message: "0/N nodes are available: " followed by
// each reason with its count, sorted by reason, then ".".
std::string AggregateReasons(int total_nodes,
                             const std::map<std::string, int, std::less<>>& reasons);

}  // namespace gpu_autoscaler::scheduler
