// File: src/apiserver/priority_admission.h
//
// scheduling.k8s.io PriorityClasses as kube-apiserver v1.20 uses them: the two
// system classes it bootstraps, the reserved "system-" names, and the Priority
// admission plugin's pod half (plugin/pkg/admission/priority, admitPod on
// CREATE), which resolves spec.priorityClassName into spec.priority and
// spec.preemptionPolicy.
//
//   PriorityClassLookup classes{.find = ..., .global_default = ...};
//   if (auto why = AdmitPodPriority(pod, classes)) {
//     // 403: pods "<name>" is forbidden: <*why>
//   }
//
// Thread-safety: pure functions; the lookup's functions are called on the
// caller's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::apiserver {

// scheduling.HighestUserDefinablePriority: the most a class not named
// "system-..." may have.
inline constexpr int64_t kHighestUserDefinablePriority = 1'000'000'000;
inline constexpr std::string_view kSystemPriorityClassPrefix = "system-";

// system-node-critical (2000001000) and system-cluster-critical (2000000000),
// as kube-apiserver's post-start hook creates them (before defaulting, so
// without preemptionPolicy).
std::vector<nlohmann::json> SystemPriorityClasses();

// Whether `name` is one of the system classes (which may not be deleted).
bool IsSystemPriorityClass(std::string_view name);

// IsKnownSystemPriorityClass: "" when `name` is one of the system classes
// with its value and globalDefault, else kube's reason ("value of
// system-node-critical PriorityClass must be 2000001000", "x is not a known
// system priority class").
std::string SystemPriorityClassError(std::string_view name, int64_t value, bool global_default);

// The PriorityClasses the plugin reads. `find` answers the class of that name;
// `global_default` the one marked globalDefault (the lowest value when a race
// left several). Either returns null when there is none.
struct PriorityClassLookup {
  std::function<nlohmann::json(const std::string& name)> find;
  std::function<nlohmann::json()> global_default;
};

// Picks the global default among `classes` (getDefaultPriorityClass); null when
// none is marked.
nlohmann::json GlobalDefaultPriorityClass(const std::vector<nlohmann::json>& classes);

// What a server without stored classes would answer: the system classes, no
// global default.
const PriorityClassLookup& SystemPriorityClassLookup();

// admitPod on CREATE. A pod without spec.priorityClassName gets the global
// default class (its name, value and preemptionPolicy), else priority 0 and
// PreemptLowerPriority; a named class must exist. A spec.priority or
// spec.preemptionPolicy the client sent must equal what the class gives.
// Returns why the pod is forbidden (the text after "is forbidden: "), and then
// leaves `pod` untouched; nullopt when admitted.
std::optional<std::string> AdmitPodPriority(nlohmann::json& pod,
                                            const PriorityClassLookup& classes);

}  // namespace gpu_autoscaler::apiserver
