// File: src/api/nvidia.h
//
// The names NVIDIA's Kubernetes components give GPUs, shared by the webhook,
// the meter, the scheduler and the node agent: the device plugin's resources
// and GPU feature discovery's node labels (docs/webhooks.md, docs/scheduler.md).
//
//   int64_t replicas = node.Allocatable(api::kSharedGpuResource);
//
// Thread-safety: constants only.
#pragma once

#include <string_view>

namespace gpu_autoscaler::api {

// Device plugin resources.
inline constexpr std::string_view kGpuResource = "nvidia.com/gpu";
// Replicas of time-sliced or MPS GPUs with `renameByDefault: true` (the same
// name for both sharing kinds).
inline constexpr std::string_view kSharedGpuResource = "nvidia.com/gpu.shared";
// MIG instances under the mixed strategy: "nvidia.com/mig-1g.10gb".
inline constexpr std::string_view kMigResourcePrefix = "nvidia.com/mig-";

// GPU feature discovery node labels.
inline constexpr std::string_view kGpuProductLabel = "nvidia.com/gpu.product";
inline constexpr std::string_view kGpuCountLabel = "nvidia.com/gpu.count";
inline constexpr std::string_view kGpuReplicasLabel = "nvidia.com/gpu.replicas";
inline constexpr std::string_view kSharingStrategyLabel = "nvidia.com/gpu.sharing-strategy";
inline constexpr std::string_view kMigStrategyLabel = "nvidia.com/mig.strategy";

}  // namespace gpu_autoscaler::api
