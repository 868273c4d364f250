// File: node-agent/podresources/pod_resources_client.h
//
// The kubelet's PodResources API (v1, gRPC over a unix socket, by default
// /var/lib/kubelet/pod-resources/kubelet.sock): which devices the kubelet
// gave each container (List) and which it can give (GetAllocatableResources).
// The answers are plain structs; gRPC and protobuf stay inside the .cc, so
// including this header costs nothing.
//
//   auto client = PodResourcesClient::Create({.socket_path = "/var/lib/kubelet/pod-resources/"
//                                                            "kubelet.sock"});
//   Result<std::vector<PodDevices>> pods = client->List();
//   // NotFound: no socket; DeadlineExceeded: the kubelet did not answer within
//   // call_timeout; Unavailable: nothing listening, or the call failed.
//
// Every call carries a deadline (call_timeout). The channel is kept and
// reconnects by itself when the kubelet restarts (a new socket inode).
//
// Thread-safety: List and GetAllocatableResources may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::node_agent::podresources {

// One ContainerDevices entry: a resource and the device ids the plugin gave.
// NVIDIA's plugin: "GPU-<uuid>", "GPU-<uuid>::<replica>" (time-slicing, MPS),
// "MIG-<uuid>", or GPU indices with deviceIDStrategy=index.
struct DeviceAssignment {
  std::string resource_name{};  // "nvidia.com/gpu", "nvidia.com/mig-1g.10gb"
  std::vector<std::string> device_ids{};
  std::vector<int64_t> numa_nodes{};
};

struct ContainerDevices {
  std::string name{};
  std::vector<DeviceAssignment> devices{};
  std::vector<int64_t> cpu_ids{};  // exclusive CPUs (static CPU manager policy)
};

struct PodDevices {
  std::string namespace_name{};
  std::string name{};
  std::vector<ContainerDevices> containers{};
};

struct AllocatableResources {
  std::vector<DeviceAssignment> devices{};
  std::vector<int64_t> cpu_ids{};
};

struct PodResourcesOptions {
  std::string socket_path = "/var/lib/kubelet/pod-resources/kubelet.sock";
  std::chrono::milliseconds call_timeout{2000};
  // The kubelet caps its answers at 16 MiB; ours is the same.
  int max_message_bytes = 16 << 20;
};

class PodResourcesClient {
 public:
  static std::unique_ptr<PodResourcesClient> Create(PodResourcesOptions options);
  ~PodResourcesClient();
  PodResourcesClient(const PodResourcesClient&) = delete;
  PodResourcesClient& operator=(const PodResourcesClient&) = delete;

  Result<std::vector<PodDevices>> List();
  Result<AllocatableResources> GetAllocatableResources();
  const std::string& socket_path() const;

 private:
  struct Impl;
  explicit PodResourcesClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpu_autoscaler::node_agent::podresources
