// File: webhooks/pod_resources.h
//
// The CPU, memory and Katalyst reclaimed resources of a pod's containers as
// an editable value, and the JSONPatch that turns the pod into the edited
// version. Profile admission (recommended requests) and QoS admission
// (Guaranteed whole CPUs, reclaimed resources) edit the same value in turn,
// so the pod gets one consistent patch and later steps see earlier ones.
//
//   PodResourceEdits edits = PodResourceEdits::From(pod);
//   edits.containers[0].requests["cpu"] = "250m";
//   edits.annotations["gpuautoscaler.io/service-profile"] = "web";
//   PodInfo after;
//   std::string patch = ResourcePatch(pod, edits, &after);  // "" when nothing changed
//
// The patch adds a missing resources / requests / limits object whole,
// otherwise adds, replaces or removes single entries; nvidia.com/* entries
// are never touched. `after` is `pod` with the edits applied (flags,
// annotations and core resources), for the GPU sharing rewrite that follows.
//
// Thread-safety: values and pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "webhooks/review.h"

namespace gpu_autoscaler::webhooks {

struct ContainerResourceEdit {
  std::map<std::string, std::string> requests{};  // core resources only
  std::map<std::string, std::string> limits{};
};

struct PodResourceEdits {
  std::vector<ContainerResourceEdit> containers{};
  std::vector<ContainerResourceEdit> init_containers{};
  std::map<std::string, std::string> annotations{};  // to set

  static PodResourceEdits From(const PodInfo& pod);
};

std::string ResourcePatch(const PodInfo& pod, const PodResourceEdits& edits, PodInfo* after);

// The quantity of `name` in a core resource list ("" when absent).
std::string CoreQuantity(const std::vector<std::pair<std::string, std::string>>& list,
                         std::string_view name);

}  // namespace gpu_autoscaler::webhooks
