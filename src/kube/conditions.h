// File: src/kube/conditions.h
//
// metav1.Condition helpers for status.conditions arrays held as JSON, with
// the apimachinery meta.SetStatusCondition semantics: lastTransitionTime
// changes only when status changes; reason, message and observedGeneration
// are always refreshed.
//
//   SetCondition(&obj["status"]["conditions"],
//                {.type = "Ready", .status = "True", .reason = "NodesReady",
//                 .message = "3/3 nodes ready", .observed_generation = gen},
//                clock.WallNow());
//   if (IsConditionTrue(obj["status"]["conditions"], "Ready")) ...
//
// Thread-safety: pure functions over caller-owned JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::kube {

struct ObjectCondition {
  std::string type{};
  std::string status{};  // "True", "False", "Unknown"
  std::string reason{};  // CamelCase, required by the API
  std::string message{};
  int64_t observed_generation = 0;
  std::string last_transition_time{};  // RFC 3339; set by SetCondition
};

// Sets (adds or updates) `condition` in `conditions` (a JSON array, or null,
// which becomes an array). Returns true when anything changed. An invalid
// array or condition (empty type, status not True/False/Unknown) is an error
// and leaves `conditions` untouched.
gpu_autoscaler::Result<bool> SetCondition(nlohmann::json* conditions,
                                          const ObjectCondition& condition, Clock::WallTime now);

// The condition of `type`, or nullopt (also when `conditions` is malformed).
std::optional<ObjectCondition> FindCondition(const nlohmann::json& conditions,
                                             std::string_view type);
bool IsConditionTrue(const nlohmann::json& conditions, std::string_view type);
bool IsConditionFalse(const nlohmann::json& conditions, std::string_view type);
// Removes the condition of `type`; true when one was removed.
bool RemoveCondition(nlohmann::json* conditions, std::string_view type);

}  // namespace gpu_autoscaler::kube
