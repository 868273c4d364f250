// File: scheduler/gpu_demand.h
//
// Pure translation from Kubernetes objects to the placement engine's model
// (src/autoscale/cluster.h): what a Pod asks for, and what a Node offers,
// in GPUs, milli-GPU shares, MIG slices and NVLink islands.
//
//   NodeOffer offer = NodeOfferOf(node_view);       // capacity, GPU kind, islands
//   GpuDemand demand = GpuDemandOf(pod_view, 250);  // 250: milli per shared replica
//   if (!demand.error.empty()) ... the pod cannot be scheduled as written ...
//
// Resources read (the NVIDIA device plugin's names, docs/webhooks.md):
//   nvidia.com/gpu          whole GPUs;
//   nvidia.com/gpu.shared   one replica of a time-sliced or MPS GPU; the share is
//                           the pod's gpuautoscaler.io/gpu-compute percent, else
//                           1000 / gpuautoscaler.io/replicas (set by the webhook),
//                           else one replica of the cluster's sharing nodes;
//   nvidia.com/mig-<p>      one MIG instance of profile p (mixed strategy).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/nvidia.h"
#include "autoscale/cluster.h"
#include "kube/node_view.h"
#include "kube/pod_view.h"

namespace gpu_autoscaler::scheduler {

// (the NVIDIA names of src/api/nvidia.h)
inline constexpr std::string_view kWholeGpuResource = api::kGpuResource;
using api::kGpuCountLabel;
using api::kGpuProductLabel;
using api::kGpuReplicasLabel;
using api::kMigResourcePrefix;
using api::kSharedGpuResource;

enum class GpuKind : uint8_t { kNone, kWhole, kShared, kMig };
std::string_view GpuKindName(GpuKind kind);

struct GpuDemand {
  GpuKind kind = GpuKind::kNone;
  // cpu, memory, num_gpu, gpu_milli and gpu_models (GpuProductsOf); mig_profile is left empty.
  autoscale::PodSpec spec{};
  int mig_slices = 0;              // compute slices of the MIG profile
  std::string mig_resource{};      // "nvidia.com/mig-1g.10gb"
  std::vector<int> pinned_gpus{};  // from gpuautoscaler.io/gpu-indices on a pending pod
  std::string error{};             // why the pod cannot be placed as written; "" when fine

  bool wants_gpu() const { return kind != GpuKind::kNone; }
};

// The GPU products (nvidia.com/gpu.product values) a pod's nodeSelector and
// required node affinity (`In` on that label) hold it to, sorted; empty when
// any product will do. The engine reads them as the pod's gpu_models: model
// scarcity (FragLookahead's part 2) counts the demand only some models can
// serve. Other operators (NotIn, Exists, ...) do not narrow it here; the node
// predicates still apply them.
std::vector<std::string> GpuProductsOf(const kube::PodView& pod);

// `milli_per_replica`: the share one nvidia.com/gpu.shared replica stands for
// when the pod names no gpu-compute percent.
GpuDemand GpuDemandOf(const kube::PodView& pod, int milli_per_replica);

// The compute slices of a MIG profile name ("3g.40gb" -> 3); 0 when malformed.
int MigComputeSlices(std::string_view profile);

struct NodeOffer {
  autoscale::NodeSpec spec{};  // name, cpu, memory, pods, model, GPUs, MIG flags, NVLink groups
  int whole_gpus = 0;          // GPU indices [0, whole_gpus) serve nvidia.com/gpu
  int shared_gpus = 0;         // the next shared_gpus serve nvidia.com/gpu.shared
  int shared_replicas = 0;     // replicas per shared GPU (time-slicing or MPS)
  // Allocatable MIG instances per resource ("nvidia.com/mig-1g.10gb" -> 7).
  std::vector<std::pair<std::string, int64_t>> mig_instances{};
  std::string topology_error;  // a malformed NVLink label (the label is then ignored)

  bool operator==(const NodeOffer&) const = default;
};

NodeOffer NodeOfferOf(const kube::NodeView& node);

// Parses "0-3_4-7" / "0.2_1.3" into a group id per GPU; error text when it
// names a GPU twice, out of range, or is malformed.
Result<std::vector<int>> ParseNvlinkIslands(std::string_view label, int gpu_count);

// Parses "0,1" (the gpu-indices annotation); error text when malformed.
Result<std::vector<int>> ParseGpuIndices(std::string_view text);
std::string FormatGpuIndices(const std::vector<int>& gpus);

}  // namespace gpu_autoscaler::scheduler
