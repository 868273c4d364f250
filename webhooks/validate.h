// File: webhooks/validate.h
//
// Validation for the validating webhooks: GPUSharingPolicy create/update
// (ranges, models and profiles, selectors, and no identical-priority overlap
// with another policy) and pods' sharing annotations.
// Every message names the field and the allowed values, kube-style:
//   spec.strategy.timeSlicing.replicas: Invalid value: 80: must be between 2 and 64
//
//   std::vector<std::string> problems = ValidatePolicy(policy, existing_policies);
//   std::vector<std::string> pod_problems = ValidatePodAnnotations(pod);
//
// Pod QoS (Katalyst's qos_level and enhancements) is webhooks/qos_admission.h.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "webhooks/policy.h"
#include "webhooks/review.h"

namespace gpu_autoscaler::webhooks {

// Problems of `policy` (its parse problems included), checked against the
// other policies in `existing` (a policy with the same name is the one being
// updated and is skipped). Empty when valid.
std::vector<std::string> ValidatePolicy(const GpuSharingPolicy& policy,
                                        const std::vector<GpuSharingPolicy>& existing);

// Problems of the pod's gpuautoscaler.io annotations. Empty when valid.
std::vector<std::string> ValidatePodAnnotations(const PodInfo& pod);

}  // namespace gpu_autoscaler::webhooks
