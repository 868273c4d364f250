// File: controllers/node_gpu_allocation.h
//
// Exact GPU allocation per node and GPU resource, from the informer caches:
// what the node offers (status.allocatable) and what the pods bound to it
// request, counted as kube-scheduler counts them. Exported by the
// node-gpu-inventory controller as
//   gpu_autoscaler_node_allocatable_gpus{node,model,resource}
//   gpu_autoscaler_node_allocated_gpus{node,model,resource}
// where resource is nvidia.com/gpu, nvidia.com/gpu.shared (time-slicing and
// MPS replicas) or nvidia.com/mig-<profile>. Units are the resource's own
// devices (a shared replica or a MIG instance counts 1), so allocated /
// allocatable is exact per resource and over all of them.
//
//   auto table = DecideGpuAllocation(nodes_store.List(), pods_store.List());
//   for (const auto& [key, a] : table) gauge(key.node, key.resource) = a.allocated;
//
// A pod holds its request from binding (spec.nodeName) until it is gone or
// reaches phase Succeeded or Failed; a terminating pod still holds it. Pods
// bound to a node not in the cache are left out (no series to put them in).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kube/node_view.h"
#include "kube/pod_view.h"

namespace gpu_autoscaler::controllers {

// Whether `resource` is a GPU resource this gauge reports.
bool IsGpuResource(std::string_view resource);

// The pod's effective request per GPU resource, as kube-scheduler computes
// it: max(sum over containers, max over init containers) + spec.overhead.
// Resources requested at 0 are left out.
std::map<std::string, int64_t> PodGpuRequests(const kube::PodView& pod);

// Whether a pod bound to a node holds its requests there.
bool HoldsNodeResources(const kube::PodView& pod);

struct NodeResourceKey {
  std::string node{};
  std::string resource{};
  auto operator<=>(const NodeResourceKey&) const = default;
};
struct NodeResourceAllocation {
  std::string model{};  // nvidia.com/gpu.product, "unknown" when unlabelled
  int64_t allocatable = 0;
  int64_t allocated = 0;
  friend bool operator==(const NodeResourceAllocation&, const NodeResourceAllocation&) = default;
};

// One entry per (node, GPU resource) the node advertises (allocatable or
// capacity > 0) or a pod on it requests.
std::map<NodeResourceKey, NodeResourceAllocation> DecideGpuAllocation(
    std::span<const std::shared_ptr<const kube::NodeView>> nodes,
    std::span<const std::shared_ptr<const kube::PodView>> pods);

}  // namespace gpu_autoscaler::controllers
