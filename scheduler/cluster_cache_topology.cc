// ClusterCache's inter-pod rules for the standalone scheduler
// (cluster_cache.h, pod_topology.h): the placed pods' required anti-affinity,
// the label index that finds the pods a selector could select, and the
// filter each decision builds from them.

#include <algorithm>
#include <unordered_set>

#include "scheduler/cluster_cache.h"

namespace gpu_autoscaler::scheduler {

const kube::PodView* ClusterCache::LabelsOf(const PodEntry& entry) {
  return entry.view ? entry.view.get() : entry.assumed_view.get();
}

PlacedPod ClusterCache::PlacedOn(const PodEntry& entry, const NodeEntry& node) {
  return {.pod = LabelsOf(entry), .node = node.view.get(), .rules = entry.topology.get()};
}

void ClusterCache::SetTopologyLocked(const std::string& key, PodEntry& entry,
                                     const kube::PodView& pod) {
  // A placed pod's rules bear on others through its required anti-affinity
  // only. Its terms were valid enough for the API server; what this
  // scheduler cannot read constrains nothing here.
  entry.topology = PlacedRulesOf(pod);
  if (entry.topology && !entry.topology->anti_affinity.empty()) {
    anti_affinity_pods_.insert(key);
  } else {
    DropTopologyLocked(key);
  }
}

std::shared_ptr<const PodTopologyRules> ClusterCache::PlacedRulesOf(const kube::PodView& pod) {
  Result<std::vector<PodAffinityTerm>> anti = ParseRequiredAntiAffinity(pod);
  if (!anti.ok() || anti->empty()) return nullptr;
  auto rules = std::make_shared<PodTopologyRules>();
  rules->anti_affinity = std::move(anti).value();
  return rules;
}

std::string_view ClusterCache::TopologyFailureLocked(const TopologyFilter& filter,
                                                     const NodeEntry& node,
                                                     const HeldFrom& held_from,
                                                     std::span<const PlacedPod> removed) const {
  if (auto it = held_from.find(node.index); it != held_from.end()) {
    std::vector<PlacedPod> nominated;
    nominated.reserve(it->second.size());
    for (const Nomination* n : it->second) {
      nominated.push_back(
          {.pod = n->view.get(), .node = node.view.get(), .rules = n->topology.get()});
    }
    if (std::string_view why = filter.Failure(*node.view, removed, nominated); !why.empty()) {
      return why;
    }
  }
  return filter.Failure(*node.view, removed);
}

void ClusterCache::DropTopologyLocked(std::string_view key) {
  if (auto it = anti_affinity_pods_.find(key); it != anti_affinity_pods_.end()) {
    anti_affinity_pods_.erase(it);
  }
}

ClusterCache::PodMap::iterator ClusterCache::ErasePodLocked(PodMap::iterator it) {
  label_index_.Remove(&it->second);
  DropTopologyLocked(it->first);
  return pods_.erase(it);
}

void ClusterCache::IndexLabelsLocked(const PodEntry& entry) {
  if (label_index_.keys() == 0) return;
  const kube::PodView* view = LabelsOf(entry);
  if (view == nullptr) {
    label_index_.Remove(&entry);
  } else {
    label_index_.Update(&entry, view->labels());
  }
}

bool ClusterCache::SelectableLocked(const PodTopologyRules& rules,
                                    std::unordered_set<const PodEntry*>* out) {
  // One requirement of a selector bounds the pods it selects: the pods filed
  // under the values it names (key=value, key in (...)), or else under any
  // value of its key (key exists).
  auto add = [&](const kube::LabelSelector& selector, bool matches_nothing) {
    if (matches_nothing) return true;
    const kube::LabelSelector::Requirement* bound = nullptr;
    for (const auto& r : selector.requirements()) {
      if (r.op == kube::LabelSelector::Op::kEquals || r.op == kube::LabelSelector::Op::kIn) {
        bound = &r;
        break;
      }
      if (r.op == kube::LabelSelector::Op::kExists && bound == nullptr) bound = &r;
    }
    if (bound == nullptr) return false;  // NotIn, DoesNotExist...: any pod may match
    if (!label_index_.Indexed(bound->key)) {
      label_index_.AddKey(bound->key);
      for (const auto& [key, entry] : pods_)
        IndexLabelsLocked(entry);
    }
    auto insert = [&](const LabelIndex::Ids& ids) {
      for (LabelIndex::Id id : ids)
        out->insert(static_cast<const PodEntry*>(id));
    };
    if (bound->op == kube::LabelSelector::Op::kExists) {
      label_index_.ForEachValue(bound->key, insert);
      return true;
    }
    for (const std::string& value : bound->values) {
      if (const LabelIndex::Ids* ids = label_index_.Find(bound->key, value)) insert(*ids);
    }
    return true;
  };
  for (const PodAffinityTerm& t : rules.affinity) {
    if (!add(t.selector, t.matches_nothing)) return false;
  }
  for (const PodAffinityTerm& t : rules.anti_affinity) {
    if (!add(t.selector, t.matches_nothing)) return false;
  }
  for (const SpreadConstraint& c : rules.spread) {
    if (!add(c.selector, c.matches_nothing)) return false;
  }
  return true;
}

Status ClusterCache::PrepareTopologyLocked(const kube::PodView& pod, TopologyCheck* check) {
  GPU_ASSIGN_OR_RETURN(check->rules, ParsePodTopology(pod));
  if (check->rules.empty() && anti_affinity_pods_.empty() &&
      std::none_of(nominations_.begin(), nominations_.end(),
                   [](const auto& n) { return n.second.topology != nullptr; }) &&
      std::none_of(planned_members_.begin(), planned_members_.end(),
                   [](const PodEntry* m) { return m->topology != nullptr; })) {
    return Status::Ok();  // nothing constrains the pod
  }
  std::vector<PlacedPod> placed;
  auto add = [&](const PodEntry& e) {
    if (LabelsOf(e) == nullptr || planned_victims_.count(&e)) return;
    // A placed pod's node by index; one the state could not place, by name.
    const NodeEntry* node =
        e.binding >= 0 && e.node_index >= 0 && e.node_index < static_cast<int>(by_index_.size())
            ? by_index_[e.node_index]
            : NodeLocked(e.node);
    if (node == nullptr || !node->view) return;
    placed.push_back(PlacedOn(e, *node));
  };
  if (!check->rules.empty()) {
    std::unordered_set<const PodEntry*> selectable;
    if (SelectableLocked(check->rules, &selectable)) {
      for (const std::string& key : anti_affinity_pods_) {
        if (auto it = pods_.find(key); it != pods_.end()) selectable.insert(&it->second);
      }
      placed.reserve(selectable.size());
      for (const PodEntry* entry : selectable)
        add(*entry);
    } else {
      placed.reserve(pods_.size());
      for (const auto& [key, entry] : pods_)
        add(entry);
    }
  } else {
    for (const std::string& key : anti_affinity_pods_) {
      if (auto it = pods_.find(key); it != pods_.end()) add(it->second);
    }
  }
  for (const PodEntry* member : planned_members_)  // not in pods_
    add(*member);
  std::vector<const kube::NodeView*> nodes;
  if (!check->rules.spread.empty()) {
    nodes.reserve(by_index_.size());
    for (const NodeEntry* n : by_index_)
      nodes.push_back(n->view.get());
  }
  check->filter.emplace(pod, check->rules, placed, nodes);
  return Status::Ok();
}

}  // namespace gpu_autoscaler::scheduler
