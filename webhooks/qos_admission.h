// File: webhooks/qos_admission.h
//
// QoS admission with Katalyst's pod annotations (kubewharf/katalyst-api
// pkg/consts/qos.go):
//   katalyst.kubewharf.io/qos_level: dedicated_cores | shared_cores |
//                                    reclaimed_cores | system_cores
//   katalyst.kubewharf.io/memory_enhancement: {"numa_binding":"true", ...}
//   katalyst.kubewharf.io/cpu_enhancement:    {"cpuset_pool":"batch", ...}
// A pod without qos_level is shared_cores, Katalyst's default. Enhancement
// values are JSON objects of strings, as Katalyst decodes them.
//
// Checks (ValidateQos; every message names the annotation or field):
//   - the level is one of the four;
//   - numa_binding "true"|"false", "true" only with dedicated_cores;
//     numa_exclusive "true" only with numa_binding "true";
//   - oom_priority an integer in the level's range (reclaimed [-100,0),
//     shared [0,100), dedicated [100,200), system [200,300); -300 and 300
//     are Katalyst's "ignore" and "never");
//   - cpuset_pool only with shared_cores; suppression_tolerance_rate only
//     with reclaimed_cores, a number > 0; cpu_burst_policy one of default,
//     closed, static, dynamic;
//   - the resources fit the level: dedicated_cores is Guaranteed with whole
//     CPUs (every container's cpu and memory request equals its limit, cpu a
//     whole number of cores); reclaimed_cores asks for
//     resource.katalyst.kubewharf.io/reclaimed_millicpu and reclaimed_memory
//     instead of cpu and memory; no other level asks for reclaimed resources.
//
// Consistency (NormalizeQosResources, at /mutate-pods, before validation):
//   - dedicated_cores: cpu request = limit = max(request, limit) rounded up
//     to whole cores; memory request = limit = max(request, limit). Never
//     shrinks what the container could use.
//   - reclaimed_cores: cpu becomes reclaimed_millicpu (millicores, e.g.
//     "2000") and memory reclaimed_memory (bytes), in requests and limits
//     alike (extended resources cannot be overcommitted), sized by the
//     request, else the limit.
// A container it cannot make consistent (dedicated_cores without any cpu)
// is left as is and validation rejects the pod with the reason.
//
//   std::vector<std::string> problems = ValidateQos(pod);
//   PodResourceEdits edits = PodResourceEdits::From(pod);
//   NormalizeQosResources(pod, &edits);
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "webhooks/pod_resources.h"
#include "webhooks/review.h"

namespace gpu_autoscaler::webhooks {

inline constexpr std::string_view kAnnotationQosLevel = "katalyst.kubewharf.io/qos_level";
inline constexpr std::string_view kAnnotationMemoryEnhancement =
    "katalyst.kubewharf.io/memory_enhancement";
inline constexpr std::string_view kAnnotationCpuEnhancement =
    "katalyst.kubewharf.io/cpu_enhancement";
inline constexpr std::string_view kResourceReclaimedMilliCpu =
    "resource.katalyst.kubewharf.io/reclaimed_millicpu";
inline constexpr std::string_view kResourceReclaimedMemory =
    "resource.katalyst.kubewharf.io/reclaimed_memory";

// The pod's level ("shared_cores" when absent); "" when it is not a level.
std::string QosLevelOf(const PodInfo& pod);

// Problems of the QoS annotations and of the resources for the level.
std::vector<std::string> ValidateQos(const PodInfo& pod);

// Edits the resources so they fit the level (see above).
void NormalizeQosResources(const PodInfo& pod, PodResourceEdits* edits);

}  // namespace gpu_autoscaler::webhooks
