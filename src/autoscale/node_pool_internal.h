// File: src/autoscale/node_pool_internal.h
//
// Helpers node_pool.cc and node_pool_scale_down.cc share; not an API.
//
// Thread-safety: pure functions.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "autoscale/node_pool.h"

namespace gpu_autoscaler::autoscale::internal {

NodeSpec NodeSpecOf(const PoolInstanceType& it, const std::string& name);

// Adds `nodes` (those `keep` accepts) to `cluster`, recording each one's index,
// and binds `pods` on them: at their GPUs when valid, else where the engine
// would put them. Pods that no longer fit (the cache raced a change) are skipped.
Status BuildCluster(const NodePoolSpec& pool, const std::vector<PoolNode>& nodes,
                    const std::vector<PoolPod>& pods,
                    const std::function<bool(const PoolNode&)>& keep, ClusterState* cluster,
                    std::map<std::string, int>* index);

}  // namespace gpu_autoscaler::autoscale::internal
