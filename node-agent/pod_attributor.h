// File: node-agent/pod_attributor.h
//
// The agent's pod attribution over time: asks the kubelet's PodResources API
// for device assignments every refresh (List, GetAllocatableResources, each
// with a deadline), reads the cgroup of each GPU process once (cached while
// NVML keeps reporting that pid), and attributes a snapshot (attribution.h)
// at each /metrics render. When the socket is absent, the kubelet hangs or
// errs, the assignments are dropped (no stale labels) and state() says why;
// processes are still attributed through their cgroups.
//
//   PodAttributor attributor({.socket_path = flags.pod_resources_socket,
//                             .proc_root = flags.proc_root}, resolver);
//   Status s = attributor.Refresh();              // on its own thread
//   Attribution a = attributor.Attribute(*snap);  // from the metrics hook
//
// Thread-safety: all methods may be called from any thread; Refresh calls
// are serialised by the caller's single refresh thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"
#include "node-agent/attribution.h"

namespace gpu_autoscaler::node_agent {

enum class PodResourcesState {
  kDisabled,  // --pod-resources-socket=""
  kPending,   // not asked yet
  kUp,        // the last List answered
  kNoSocket,  // the socket does not exist
  kTimedOut,  // the kubelet did not answer within the deadline
  kFailed,    // anything else (nothing listening, an error answer)
};
std::string_view PodResourcesStateName(PodResourcesState s);  // "Up", "NoSocket", ...

struct PodAttributorOptions {
  std::string socket_path = "/var/lib/kubelet/pod-resources/kubelet.sock";  // "": disabled
  std::chrono::milliseconds call_timeout{2000};
  std::string proc_root = "/proc";
};

struct PodResourcesStatus {
  PodResourcesState state = PodResourcesState::kPending;
  Status error{};                               // why not Up
  size_t pods = 0;                              // pods in the last List
  std::map<std::string, size_t> allocatable{};  // GPU resource -> devices the kubelet can assign
  std::map<std::string, size_t> assigned{};     // GPU resource -> devices assigned
};

class PodAttributor {
 public:
  PodAttributor(PodAttributorOptions options, PodResolver resolve);
  ~PodAttributor();

  // Asks the kubelet; OK when List answered. A no-op when disabled.
  Status Refresh();
  Attribution Attribute(const nvml::GpuSnapshot& snapshot);
  PodResourcesStatus status() const;

 private:
  std::optional<PodCgroupRef> LookupCgroup(uint32_t pid);

  PodAttributorOptions options_;
  PodResolver resolve_;
  std::unique_ptr<podresources::PodResourcesClient> client_;
  mutable std::mutex mu_;
  std::vector<podresources::PodDevices> pods_;
  PodResourcesStatus status_;
  std::map<uint32_t, std::optional<PodCgroupRef>> cgroups_;  // by pid
};

}  // namespace gpu_autoscaler::node_agent
