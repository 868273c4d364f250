// File: node-agent/attribution.h
//
// Which pod and container each GPU process and each GPU (or MIG device)
// belongs to, from three views: NVML's processes per device (the snapshot),
// the kubelet's device assignments (PodResources List) and each process's
// cgroup (proc_cgroup.h). Pure: the cgroup reads and the UID -> name lookup
// come in as functions.
//
//   A device (GPU UUID, MIG UUID) held by exactly one container names it
//   directly — no /proc read, so it also works without the host PID namespace.
//   A device held by several containers (time-slicing or MPS replicas
//   "GPU-<uuid>::<n>"), or by none the kubelet knows of, is split by each
//   process's cgroup: its pod UID, resolved to namespace/name by `resolve`,
//   and its container id, resolved to a name by `resolve` too or, failing
//   that, by the one container of that pod holding the device.
//
//   Attribution a = Attribute(snapshot, pod_devices, lookup_cgroup, resolve);
//   a.device_owner.at("GPU-...")  // the one container holding that GPU
//   a.processes[i]                // per snapshot process, in snapshot order
//   a.pods                        // SM share and memory summed per pod
//
// Thread-safety: pure function over its arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "node-agent/nvml/snapshot.h"
#include "node-agent/podresources/pod_resources_client.h"
#include "node-agent/proc_cgroup.h"

namespace gpu_autoscaler::node_agent {

struct ContainerRef {
  std::string namespace_name{};
  std::string pod{};
  std::string container{};  // "" when the pod is known but not its container
  bool operator==(const ContainerRef&) const = default;
  auto operator<=>(const ContainerRef&) const = default;
};

// What a pod UID resolves to: its namespace and name, and (when known) its
// containers' names by container id (status.containerStatuses[].containerID
// without the "containerd://" scheme).
struct ResolvedPod {
  std::string namespace_name{};
  std::string name{};
  std::map<std::string, std::string> container_names{};
};
using PodResolver = std::function<std::optional<ResolvedPod>(std::string_view pod_uid)>;
using CgroupLookup = std::function<std::optional<PodCgroupRef>(uint32_t pid)>;

enum class AttributedBy { kNone, kExclusiveDevice, kCgroup };
std::string_view AttributedByName(AttributedBy by);  // "none", "device", "cgroup"

struct ProcessAttribution {
  int gpu_index = 0;
  uint32_t pid = 0;
  std::string device_uuid{};  // the GPU's, or the MIG device's the process runs in
  ContainerRef owner{};       // empty pod when unattributed
  AttributedBy by = AttributedBy::kNone;
};

struct PodGpuUsage {
  double sm_util_percent = 0;  // summed over the pod's processes (100 = one GPU's SMs)
  uint64_t memory_bytes = 0;
  int processes = 0;
};

struct Attribution {
  // Devices held by exactly one container, by GPU or MIG UUID.
  std::map<std::string, ContainerRef> device_owner{};
  // How many containers hold each device the kubelet assigned.
  std::map<std::string, int> device_holders{};
  std::vector<ProcessAttribution> processes{};  // snapshot order: per GPU, per process
  std::map<std::pair<std::string, std::string>, PodGpuUsage> pods{};  // (namespace, pod)
  int unattributed = 0;
};

// The GPU or MIG UUID a device id names ("GPU-x::3" -> "GPU-x"; an index
// "2" or GKE's "nvidia2" -> GPU 2's UUID; legacy "MIG-GPU-x/<gi>/<ci>" and
// GKE's "nvidia2/gi3" -> that MIG device's UUID); "" when not in `snapshot`.
std::string DeviceUuidForId(std::string_view device_id, const nvml::GpuSnapshot& snapshot);

// Resources attribution reads: NVIDIA's ("nvidia.com/gpu", ".shared",
// "nvidia.com/mig-1g.10gb", ...).
bool IsGpuResource(std::string_view resource_name);

Attribution Attribute(const nvml::GpuSnapshot& snapshot,
                      const std::vector<podresources::PodDevices>& pods,
                      const CgroupLookup& lookup_cgroup, const PodResolver& resolve);

}  // namespace gpu_autoscaler::node_agent
