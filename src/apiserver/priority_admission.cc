#include "apiserver/priority_admission.h"

namespace gpu_autoscaler::apiserver {
namespace {

using json = nlohmann::json;

struct SystemClass {
  const char* name;
  int64_t value;
  const char* description;
};

// pkg/apis/scheduling/v1 systemPriorityClasses (SystemCriticalPriority is 2e9).
constexpr SystemClass kSystemClasses[] = {
    {"system-node-critical", 2'000'001'000,
     "Used for system critical pods that must not be moved from their current node."},
    {"system-cluster-critical", 2'000'000'000,
     "Used for system critical pods that must run in the cluster, but can be moved to another "
     "node if necessary."},
};

std::string GoInt(const json& v) {
  return v.is_number_integer() ? std::to_string(v.get<int64_t>()) : v.dump();
}

}  // namespace

std::vector<json> SystemPriorityClasses() {
  std::vector<json> out;
  for (const SystemClass& c : kSystemClasses) {
    out.push_back({{"apiVersion", "scheduling.k8s.io/v1"},
                   {"kind", "PriorityClass"},
                   {"metadata", {{"name", c.name}}},
                   {"value", c.value},
                   {"description", c.description}});
  }
  return out;
}

bool IsSystemPriorityClass(std::string_view name) {
  for (const SystemClass& c : kSystemClasses) {
    if (name == c.name) return true;
  }
  return false;
}

std::string SystemPriorityClassError(std::string_view name, int64_t value, bool global_default) {
  for (const SystemClass& c : kSystemClasses) {
    if (name != c.name) continue;
    if (value != c.value) {
      return "value of " + std::string(name) + " PriorityClass must be " + std::to_string(c.value);
    }
    if (global_default)
      return "globalDefault of " + std::string(name) + " PriorityClass must be false";
    return "";
  }
  return std::string(name) + " is not a known system priority class";
}

json GlobalDefaultPriorityClass(const std::vector<json>& classes) {
  const json* best = nullptr;
  for (const json& pc : classes) {
    if (!pc.is_object() || pc.value("globalDefault", false) != true) continue;
    if (best == nullptr || best->value("value", int64_t{0}) > pc.value("value", int64_t{0})) {
      best = &pc;
    }
  }
  return best != nullptr ? *best : json();
}

const PriorityClassLookup& SystemPriorityClassLookup() {
  static const PriorityClassLookup kLookup{
      .find = [](const std::string& name) -> json {
        for (json& pc : SystemPriorityClasses()) {
          if (pc["metadata"]["name"] == name) return pc;
        }
        return json();
      },
      .global_default = [] { return json(); },
  };
  return kLookup;
}

std::optional<std::string> AdmitPodPriority(json& pod, const PriorityClassLookup& classes) {
  if (!pod.is_object()) return std::nullopt;
  static const json kEmpty = json::object();
  auto spec_it = pod.find("spec");
  const json& spec = spec_it == pod.end() || spec_it->is_null() ? kEmpty : *spec_it;
  if (!spec.is_object()) return std::nullopt;  // validation reports it
  const std::string class_name = spec.value("priorityClassName", json()).is_string()
                                     ? spec["priorityClassName"].get<std::string>()
                                     : "";
  json pc;
  if (class_name.empty()) {
    if (classes.global_default) pc = classes.global_default();
  } else {
    if (classes.find) pc = classes.find(class_name);
    if (!pc.is_object()) return "no PriorityClass with name " + class_name + " was found";
  }
  // Without a default class: DefaultPriorityWhenNoDefaultClassExists (0), and
  // PreemptLowerPriority as if a class had said so.
  const bool from_class = pc.is_object();
  const int64_t priority = from_class ? pc.value("value", int64_t{0}) : 0;
  json policy = from_class ? pc.value("preemptionPolicy", json()) : json("PreemptLowerPriority");
  const json sent_priority = spec.value("priority", json());
  if (!sent_priority.is_null() &&
      !(sent_priority.is_number_integer() && sent_priority.get<int64_t>() == priority)) {
    return "the integer value of priority (" + GoInt(sent_priority) +
           ") must not be provided in pod spec; priority admission controller computed " +
           std::to_string(priority) + " from the given PriorityClass name";
  }
  const json sent_policy = spec.value("preemptionPolicy", json());
  if (policy.is_string() && !sent_policy.is_null() && sent_policy != policy) {
    return "the string value of PreemptionPolicy (" +
           (sent_policy.is_string() ? sent_policy.get<std::string>() : sent_policy.dump()) +
           ") must not be provided in pod spec; priority admission controller computed " +
           policy.get<std::string>() + " from the given PriorityClass name";
  }
  json& out = pod["spec"];  // an absent or null spec becomes an object
  if (from_class && class_name.empty()) {
    out["priorityClassName"] = pc["metadata"]["name"];
  } else if (out.value("priorityClassName", json()) == "") {
    out.erase("priorityClassName");  // omitempty: Go never writes ""
  }
  out["priority"] = priority;
  if (policy.is_string()) out["preemptionPolicy"] = std::move(policy);
  return std::nullopt;
}

}  // namespace gpu_autoscaler::apiserver
