#include "kube/pod_view.h"

#include <algorithm>

namespace gpu_autoscaler::kube {

PodPhase ParsePodPhase(std::string_view s) {
  if (s == "Pending") return PodPhase::kPending;
  if (s == "Running") return PodPhase::kRunning;
  if (s == "Succeeded") return PodPhase::kSucceeded;
  if (s == "Failed") return PodPhase::kFailed;
  return PodPhase::kUnknown;
}

std::string_view PodPhaseName(PodPhase p) {
  switch (p) {
    case PodPhase::kPending:
      return "Pending";
    case PodPhase::kRunning:
      return "Running";
    case PodPhase::kSucceeded:
      return "Succeeded";
    case PodPhase::kFailed:
      return "Failed";
    case PodPhase::kUnknown:
      break;
  }
  return "Unknown";
}

std::optional<std::string_view> PodView::annotation(std::string_view key) const {
  for (const Annotation& a : annotations_) {
    if (a.key.view() == key) return a.value;
  }
  return std::nullopt;
}

const OwnerReference* PodView::controller_ref() const {
  for (const OwnerReference& o : owners_) {
    if (o.controller) return &o;
  }
  return nullptr;
}

bool PodView::belongs_to_node() const {
  if (annotation("kubernetes.io/config.mirror")) return true;
  const OwnerReference* owner = controller_ref();
  return owner != nullptr && (owner->kind.view() == "DaemonSet" || owner->kind.view() == "Node");
}

ConditionStatus PodView::condition(std::string_view type) const {
  for (const Condition& c : conditions_) {
    if (c.type.view() == type) return c.status;
  }
  return ConditionStatus::kUnknown;
}

namespace {

template <typename Select>
int64_t Effective(const PackedArray<ContainerResources>& containers,
                  const PackedArray<ContainerResources>& init_containers, std::string_view resource,
                  Select select) {
  int64_t sum = 0;
  for (const ContainerResources& c : containers)
    sum += FindQuantity(select(c), resource);
  int64_t init_max = 0;
  for (const ContainerResources& c : init_containers) {
    init_max = std::max(init_max, FindQuantity(select(c), resource));
  }
  return std::max(sum, init_max);
}

}  // namespace

int64_t PodView::Request(std::string_view resource) const {
  return Effective(containers_, init_containers_, resource,
                   [](const ContainerResources& c) { return c.requests.span(); }) +
         FindQuantity(overhead_.span(), resource);
}

int64_t PodView::Limit(std::string_view resource) const {
  return Effective(containers_, init_containers_, resource,
                   [](const ContainerResources& c) { return c.limits.span(); });
}

size_t PodView::OwnedBytes() const {
  size_t bytes = strings_.bytes() + labels_.size() * sizeof(Label) +
                 annotations_.size() * sizeof(Annotation) +
                 owners_.size() * sizeof(OwnerReference) + node_selector_.size() * sizeof(Label) +
                 tolerations_.size() * sizeof(Toleration) + conditions_.size() * sizeof(Condition) +
                 node_affinity_.size() * sizeof(NodeSelectorRequirement) +
                 overhead_.size() * sizeof(ResourceQuantity);
  for (const auto* list : {&containers_, &init_containers_}) {
    bytes += list->size() * sizeof(ContainerResources);
    for (const ContainerResources& c : *list) {
      bytes += (c.requests.size() + c.limits.size()) * sizeof(ResourceQuantity);
    }
  }
  return bytes;
}

}  // namespace gpu_autoscaler::kube
