// File: webhooks/profile_admission.h
//
// Applies ServiceProfile recommendations to new pods, as VPA's admission
// controller does: for a pod whose labels match the status.targetSelector of
// a profile in its namespace with updateMode Initial or Auto, each container
// with a recommendation gets
//   - its cpu and memory requests set to the recommendation's target;
//   - its limits scaled to keep the limit/request ratio it was created with
//     (VPA's proportional limits: new limit = old limit × new request / old
//     request; a limit without a request counts as ratio 1, as the API
//     server's defaulting sets the request to the limit);
//   - for a container asking for nvidia.com/gpu, the recommended GPU share as
//     the pod's gpuautoscaler.io/gpu-memory (and, for MPS, gpu-compute)
//     annotations, unless the pod sets them or opts out of sharing: the GPU
//     sharing rewrite (webhooks/mutate.h) then moves the pod onto a MIG
//     slice, MPS or time-sliced GPU when a GPUSharingPolicy selects it.
// The pod is annotated gpuautoscaler.io/service-profile (the profile) and
// gpuautoscaler.io/original-resources (the requests and limits it had). A
// pod that already carries the profile annotation is left alone, so
// reinvocation is safe.
//
//   ProfileSet profiles(LoadProfileRules(json_texts).rules);
//   if (const ProfileRule* rule = profiles.Match(pod)) ApplyProfile(pod, *rule, &edits);
//
// Thread-safety: values and pure functions; ProfileSet is immutable.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "kube/selector.h"
#include "webhooks/pod_resources.h"
#include "webhooks/review.h"

namespace gpu_autoscaler::webhooks {

struct ProfileContainerTarget {
  std::string cpu{};  // target quantities ("" = none)
  std::string memory{};
  std::string gpu_share{};      // "whole", "mig", "mps", "timeSlicing" ("" = none)
  std::string gpu_memory{};     // the gpu-memory annotation value, e.g. "20GB" or "15360Mi"
  int gpu_compute_percent = 0;  // MPS thread percentage (0 = none)
};

struct ProfileRule {
  std::string ns{};
  std::string name{};
  std::string mode{};  // "Initial" or "Auto"
  kube::LabelSelector selector{};
  std::map<std::string, ProfileContainerTarget> containers{};
};

// A ServiceProfile custom resource (JSON) as a rule; nullopt when it applies
// nothing (mode Off, no selector or no recommendation yet). Errors name the
// object and the field.
Result<std::optional<ProfileRule>> ParseProfileRule(std::string_view json);

struct ProfileRuleLoad {
  std::vector<ProfileRule> rules{};
  std::vector<std::string> errors{};
};
ProfileRuleLoad LoadProfileRules(std::span<const std::string> jsons);

class ProfileSet {
 public:
  ProfileSet() = default;
  explicit ProfileSet(std::vector<ProfileRule> rules);  // sorted by namespace, name
  // The first rule by name in the pod's namespace whose selector matches.
  const ProfileRule* Match(const PodInfo& pod) const;
  size_t size() const { return rules_.size(); }

 private:
  std::vector<ProfileRule> rules_;
};

// Edits `edits` (from PodResourceEdits::From(pod)) as described above.
void ApplyProfile(const PodInfo& pod, const ProfileRule& rule, PodResourceEdits* edits);

}  // namespace gpu_autoscaler::webhooks
