// File: controllers/node_pool_selection.h
//
// Which GPUNodePool a pending GPU pod goes to, as Karpenter picks among its
// NodePools: only pools that can actually serve the pod are considered, then
// the highest spec.weight wins, then the pool name (for determinism). A pool
// serves a pod when one of its instance types does:
//   * the pod's nodeSelector and required node affinity allow a node of that
//     pool and GPU model (only the keys gpuautoscaler.io/node-pool and
//     nvidia.com/gpu.product are known before launch; other keys are
//     assumed satisfiable);
//   * its GPUs hold the request: nvidia.com/gpu up to gpuCount; a shared
//     replica on any GPU; nvidia.com/mig-<profile> only on a MIG-capable
//     model that has that profile (src/gpu/mig.h);
//   * its allocatable CPU and memory hold the pod's requests.
// A pod no pool serves gets a reason instead of being counted against a
// pool that could never launch a node for it.
//
//   PoolChoice c = ChoosePoolForPod(pod, {{"a100", &a100}, {"t4", &t4}});
//   if (c.pool.empty()) recorder.Record(pod, kWarning, "NoNodePool", c.reason);
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "controllers/gpu_node_pool_spec.h"
#include "kube/pod_view.h"

namespace gpu_autoscaler::controllers {

using NamedPools = std::vector<std::pair<std::string, const ParsedNodePool*>>;

struct PoolChoice {
  std::string pool{};    // "" when no pool serves the pod
  std::string reason{};  // why, when `pool` is empty
  friend bool operator==(const PoolChoice&, const PoolChoice&) = default;
};

// Indices into pool.spec.instance_types of the instance types that can serve
// the pod (empty when the pod asks for no GPU or is not placeable as written).
std::vector<int> ServingInstanceTypes(const kube::PodView& pod, const std::string& pool_name,
                                      const ParsedNodePool& pool);

PoolChoice ChoosePoolForPod(const kube::PodView& pod, const NamedPools& pools);

// ChoosePoolForPod(pod, pools).pool.
std::string PoolForPod(const kube::PodView& pod, const NamedPools& pools);

}  // namespace gpu_autoscaler::controllers
