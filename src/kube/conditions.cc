#include "kube/conditions.h"

#include <nlohmann/json.hpp>

#include "kube/meta_time.h"

namespace gpu_autoscaler::kube {

using json = nlohmann::json;

namespace {

std::string StringField(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json::iterator FindByType(json& conditions, std::string_view type) {
  for (auto it = conditions.begin(); it != conditions.end(); ++it) {
    if (it->is_object() && StringField(*it, "type") == type) return it;
  }
  return conditions.end();
}

}  // namespace

gpu_autoscaler::Result<bool> SetCondition(json* conditions, const ObjectCondition& condition,
                                          Clock::WallTime now) {
  if (condition.type.empty()) return InvalidArgumentError("condition type is empty");
  if (condition.status != "True" && condition.status != "False" && condition.status != "Unknown") {
    return InvalidArgumentError("condition " + condition.type + ": status \"" + condition.status +
                                "\" is not True, False or Unknown");
  }
  if (conditions->is_null()) *conditions = json::array();
  if (!conditions->is_array()) return InvalidArgumentError("status.conditions is not an array");

  auto existing = FindByType(*conditions, condition.type);
  if (existing == conditions->end()) {
    json c = {{"type", condition.type},
              {"status", condition.status},
              {"reason", condition.reason},
              {"message", condition.message},
              {"lastTransitionTime", condition.last_transition_time.empty()
                                         ? FormatTime(now)
                                         : condition.last_transition_time}};
    if (condition.observed_generation != 0) {
      c["observedGeneration"] = condition.observed_generation;
    }
    conditions->push_back(std::move(c));
    return true;
  }

  json& c = *existing;
  const json before = c;
  if (StringField(c, "status") != condition.status) {
    c["status"] = condition.status;
    c["lastTransitionTime"] =
        condition.last_transition_time.empty() ? FormatTime(now) : condition.last_transition_time;
  }
  c["reason"] = condition.reason;
  c["message"] = condition.message;
  if (condition.observed_generation != 0) {
    c["observedGeneration"] = condition.observed_generation;
  } else {
    c.erase("observedGeneration");
  }
  return c != before;
}

std::optional<ObjectCondition> FindCondition(const json& conditions, std::string_view type) {
  if (!conditions.is_array()) return std::nullopt;
  for (const json& c : conditions) {
    if (!c.is_object() || StringField(c, "type") != type) continue;
    ObjectCondition out;
    out.type = std::string(type);
    out.status = StringField(c, "status");
    out.reason = StringField(c, "reason");
    out.message = StringField(c, "message");
    out.last_transition_time = StringField(c, "lastTransitionTime");
    auto gen = c.find("observedGeneration");
    if (gen != c.end() && gen->is_number_integer()) out.observed_generation = gen->get<int64_t>();
    return out;
  }
  return std::nullopt;
}

bool IsConditionTrue(const json& conditions, std::string_view type) {
  auto c = FindCondition(conditions, type);
  return c && c->status == "True";
}

bool IsConditionFalse(const json& conditions, std::string_view type) {
  auto c = FindCondition(conditions, type);
  return c && c->status == "False";
}

bool RemoveCondition(json* conditions, std::string_view type) {
  if (!conditions->is_array()) return false;
  auto it = FindByType(*conditions, type);
  if (it == conditions->end()) return false;
  conditions->erase(it);
  return true;
}

}  // namespace gpu_autoscaler::kube
