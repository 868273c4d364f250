#include "controllers/node_gpu_allocation.h"

#include <algorithm>
#include <unordered_map>

#include "api/nvidia.h"

namespace gpu_autoscaler::controllers {

bool IsGpuResource(std::string_view resource) {
  return resource == api::kGpuResource || resource == api::kSharedGpuResource ||
         resource.substr(0, api::kMigResourcePrefix.size()) == api::kMigResourcePrefix;
}

std::map<std::string, int64_t> PodGpuRequests(const kube::PodView& pod) {
  std::map<std::string, int64_t> out;
  auto collect = [&](std::span<const kube::ResourceQuantity> list) {
    for (const kube::ResourceQuantity& q : list) {
      if (IsGpuResource(q.name.view())) out.emplace(q.name.view(), 0);
    }
  };
  for (const kube::ContainerResources& c : pod.containers())
    collect(c.requests.span());
  for (const kube::ContainerResources& c : pod.init_containers())
    collect(c.requests.span());
  collect(pod.overhead());
  for (auto it = out.begin(); it != out.end();) {
    it->second = pod.Request(it->first);  // the scheduler's max/sum rule plus overhead
    it = it->second > 0 ? std::next(it) : out.erase(it);
  }
  return out;
}

bool HoldsNodeResources(const kube::PodView& pod) {
  return !pod.node_name().empty() && pod.phase() != kube::PodPhase::kSucceeded &&
         pod.phase() != kube::PodPhase::kFailed;
}

std::map<NodeResourceKey, NodeResourceAllocation> DecideGpuAllocation(
    std::span<const std::shared_ptr<const kube::NodeView>> nodes,
    std::span<const std::shared_ptr<const kube::PodView>> pods) {
  std::map<NodeResourceKey, NodeResourceAllocation> out;
  std::unordered_map<std::string_view, std::string_view> model_of;  // node -> model
  for (const auto& node : nodes) {
    const std::string_view model = node->gpu_product().empty() ? "unknown" : node->gpu_product();
    model_of.emplace(node->name(), model);
    auto add = [&](std::span<const kube::ResourceQuantity> list, bool allocatable) {
      for (const kube::ResourceQuantity& q : list) {
        if (!IsGpuResource(q.name.view()) || q.amount <= 0) continue;
        NodeResourceAllocation& a = out[{std::string(node->name()), std::string(q.name.view())}];
        a.model = std::string(model);
        if (allocatable) a.allocatable = q.amount;
      }
    };
    add(node->capacity(), false);
    add(node->allocatable(), true);
  }
  for (const auto& pod : pods) {
    if (!HoldsNodeResources(*pod)) continue;
    auto node = model_of.find(pod->node_name());
    if (node == model_of.end()) continue;
    for (const auto& [resource, amount] : PodGpuRequests(*pod)) {
      NodeResourceAllocation& a = out[{std::string(pod->node_name()), resource}];
      a.model = std::string(node->second);
      a.allocated += amount;
    }
  }
  return out;
}

}  // namespace gpu_autoscaler::controllers
