// File: src/fleet/fleet_objects.h
//
// What the simulated fleet reads from API objects: a Node, a Lease or a Pod
// as JSON (an informer's cached object) to the states of fleet_plan.h, and
// which nodes it manages: KWOK's --manage-nodes-with-annotation-selector
// (default kwok.x-k8s.io/node=fake) and --manage-nodes-with-label-selector.
//
//   GPU_ASSIGN_OR_RETURN(NodeSelection sel, NodeSelection::Parse("kwok.x-k8s.io/node=fake", ""));
//   NodeState n = NodeStateFromJson(node_json, sel);
//
// Missing or mistyped fields read as absent (an API object is never rejected
// here: the server already validated it).
//
// Thread-safety: pure functions; NodeSelection is an immutable value.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "fleet/fleet_plan.h"
#include "kube/selector.h"

namespace gpu_autoscaler::fleet {

class NodeSelection {
 public:
  // Both are label-selector syntax; an empty one matches every node. The
  // annotation selector is matched against metadata.annotations.
  static Result<NodeSelection> Parse(const std::string& annotation_selector,
                                     const std::string& label_selector);
  bool Matches(const nlohmann::json& node) const;

 private:
  kube::LabelSelector annotations_;
  kube::LabelSelector labels_;
};

NodeState NodeStateFromJson(const nlohmann::json& node, const NodeSelection& selection);
LeaseState LeaseStateFromJson(const nlohmann::json& lease);
PodState PodStateFromJson(const nlohmann::json& pod);

}  // namespace gpu_autoscaler::fleet
