// File: scheduler/pod_group.h
//
// Which gang a pod belongs to: gpuautoscaler.io/pod-group (or Volcano's
// scheduling.k8s.io/group-name) names the group within the pod's namespace,
// and gpuautoscaler.io/pod-group-min-member how many members it needs.
//
//   PodGroupRef group = PodGroupOf(pod);
//   if (!group.key.empty()) ...   // "ns/group"
//
// Thread-safety: a pure function over an immutable view.
#pragma once

#include <string>

#include "kube/pod_view.h"

namespace gpu_autoscaler::scheduler {

// The pod-group key ("ns/group") and minimum member count (0: all seen) of a
// pod; empty key when the pod is not in a gang.
struct PodGroupRef {
  std::string key{};
  std::string name{};
  int min_member = 0;
  std::string error{};  // a malformed min-member annotation
};
PodGroupRef PodGroupOf(const kube::PodView& pod);

}  // namespace gpu_autoscaler::scheduler
