// File: webhooks/validate.h
//
// Validation for the validating webhooks: GPUSharingPolicy create/update
// (ranges, models and profiles, selectors, and no identical-priority overlap
// with another policy) and pods' sharing and Katalyst-style QoS annotations.
// Every message names the field and the allowed values, kube-style:
//   spec.strategy.timeSlicing.replicas: Invalid value: 80: must be between 2 and 64
//
//   std::vector<std::string> problems = ValidatePolicy(policy, existing_policies);
//   std::vector<std::string> pod_problems = ValidatePodAnnotations(pod);
//
// Pod QoS annotations (after Katalyst's qos_level and cpu/memory enhancements):
//   gpuautoscaler.io/qos-level: dedicated_cores | shared_cores | reclaimed_cores | system_cores
//   gpuautoscaler.io/memory-enhancement: {"numa_binding": "true"}  (dedicated_cores only)
//   gpuautoscaler.io/cpu-enhancement: {"cpuset_pool": "batch"}     (shared_cores only)
// The short forms gpuautoscaler.io/numa_binding and gpuautoscaler.io/cpuset_pool
// are accepted too. A pod without qos-level is shared_cores, Katalyst's default.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "webhooks/policy.h"
#include "webhooks/review.h"

namespace gpu_autoscaler::webhooks {

inline constexpr std::string_view kAnnotationQosLevel = "gpuautoscaler.io/qos-level";
inline constexpr std::string_view kAnnotationMemoryEnhancement =
    "gpuautoscaler.io/memory-enhancement";
inline constexpr std::string_view kAnnotationCpuEnhancement = "gpuautoscaler.io/cpu-enhancement";
inline constexpr std::string_view kAnnotationNumaBinding = "gpuautoscaler.io/numa_binding";
inline constexpr std::string_view kAnnotationCpusetPool = "gpuautoscaler.io/cpuset_pool";

// Problems of `policy` (its parse problems included), checked against the
// other policies in `existing` (a policy with the same name is the one being
// updated and is skipped). Empty when valid.
std::vector<std::string> ValidatePolicy(const GpuSharingPolicy& policy,
                                        const std::vector<GpuSharingPolicy>& existing);

// Problems of the pod's gpuautoscaler.io annotations. Empty when valid.
std::vector<std::string> ValidatePodAnnotations(const PodInfo& pod);

}  // namespace gpu_autoscaler::webhooks
