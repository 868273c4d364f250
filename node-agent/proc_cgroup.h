// File: node-agent/proc_cgroup.h
//
// Which pod and container a process belongs to, from its /proc/<pid>/cgroup.
// The kubelet puts every container in a cgroup under its pod's, and the
// pod's cgroup carries the pod UID. Both cgroup versions (v1: one line per
// hierarchy "N:controllers:/path"; v2: "0::/path") and both kubelet cgroup
// drivers are understood:
//   cgroupfs  /kubepods/burstable/pod<uid>/<container-id>
//             /kubepods/pod<uid>/<container-id>                (Guaranteed: no QoS level)
//   systemd   /kubepods.slice/kubepods-besteffort.slice/
//               kubepods-besteffort-pod<uid with _>.slice/cri-containerd-<id>.scope
//             (also docker-<id>.scope, crio-<id>.scope)
// A prefix before "kubepods" (kind's nested nodes, a kubelet --cgroup-root)
// is allowed. Static pods have a 32-hex-digit config hash instead of a UUID.
//
//   auto ref = ParseProcCgroup("0::/kubepods/burstable/pod1f0c.../3b1d...\n");
//   // ref->pod_uid == "1f0c...", ref->container_id == "3b1d...", ref->qos == "burstable"
//   auto ref2 = ReadProcessCgroup("/proc", 4242);  // NotFound when the process is gone
//
// Thread-safety: pure functions; ReadProcessCgroup reads one file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gpu_autoscaler::node_agent {

struct PodCgroupRef {
  std::string pod_uid{};       // with dashes, as in the Pod's metadata.uid
  std::string container_id{};  // hex id without the runtime's prefix; "" for the pod's own cgroup
  std::string runtime{};       // "containerd", "docker", "crio"; "" with cgroupfs
  std::string qos{};           // "guaranteed", "burstable", "besteffort"
  bool operator==(const PodCgroupRef&) const = default;
};

// The pod of the first line whose path names one; nullopt for a process
// outside any pod (a system daemon) or text that is not a cgroup file.
std::optional<PodCgroupRef> ParseProcCgroup(std::string_view content);

// The pod of one cgroup path ("/kubepods/pod<uid>/<id>").
std::optional<PodCgroupRef> ParseCgroupPath(std::string_view path);

// Reads <proc_root>/<pid>/cgroup (at most 64 KiB). NotFound when the
// process has gone or is not visible (no host PID namespace); a value
// without a pod when it is not in one.
Result<std::optional<PodCgroupRef>> ReadProcessCgroup(const std::string& proc_root, uint32_t pid);

}  // namespace gpu_autoscaler::node_agent
