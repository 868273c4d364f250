#include "controllers/reschedule_policy_spec.h"

#include <algorithm>

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

// Reads an integer field with a default; a wrong type or a value out of
// [min, max] is a problem.
int64_t IntField(const json& parent, const char* key, int64_t fallback, int64_t min, int64_t max,
                 const std::string& path, std::vector<std::string>* problems) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) {
    problems->push_back(path + " must be an integer");
    return fallback;
  }
  const int64_t v = it->get<int64_t>();
  if (v < min || v > max) {
    problems->push_back(path + " is " + std::to_string(v) + "; it must be between " +
                        std::to_string(min) + " and " + std::to_string(max));
    return fallback;
  }
  return v;
}

bool BoolField(const json& parent, const char* key, bool fallback, const std::string& path,
               std::vector<std::string>* problems) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    problems->push_back(path + " must be true or false");
    return fallback;
  }
  return it->get<bool>();
}

const json& ObjectField(const json& parent, const char* key, const std::string& path,
                        std::vector<std::string>* problems) {
  static const json kEmpty = json::object();
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return kEmpty;
  if (!it->is_object()) {
    problems->push_back(path + " must be an object");
    return kEmpty;
  }
  return *it;
}

std::map<std::string, double> PercentMap(const json& parent, const char* key,
                                         const std::string& path,
                                         std::vector<std::string>* problems) {
  std::map<std::string, double> out;
  for (const auto& [resource, value] : ObjectField(parent, key, path, problems).items()) {
    if (!value.is_number()) {
      problems->push_back(path + "." + resource + " must be a number (percent)");
      continue;
    }
    out[resource] = value.get<double>();
  }
  return out;
}

std::vector<std::string> StringList(const json& parent, const char* key, const std::string& path,
                                    std::vector<std::string>* problems) {
  std::vector<std::string> out;
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return out;
  if (!it->is_array()) {
    problems->push_back(path + " must be a list of names");
    return out;
  }
  for (const json& v : *it) {
    if (v.is_string()) {
      out.push_back(v.get<std::string>());
    } else {
      problems->push_back(path + " must be a list of names");
    }
  }
  return out;
}

}  // namespace

bool ReschedulePolicySpec::NamespaceAllowed(std::string_view ns) const {
  if (ns == "kube-system") return false;
  if (std::find(exclude_namespaces.begin(), exclude_namespaces.end(), ns) !=
      exclude_namespaces.end()) {
    return false;
  }
  return include_namespaces.empty() ||
         std::find(include_namespaces.begin(), include_namespaces.end(), ns) !=
             include_namespaces.end();
}

ParsedReschedulePolicy ParseReschedulePolicy(const json& object) {
  ParsedReschedulePolicy out;
  ReschedulePolicySpec& s = out.spec;
  std::vector<std::string>* problems = &out.problems;
  if (!object.is_object()) {
    problems->push_back("a ReschedulePolicy must be a JSON object");
    return out;
  }
  const json& meta = ObjectField(object, "metadata", "metadata", problems);
  if (meta.contains("name") && meta["name"].is_string()) s.name = meta["name"].get<std::string>();
  if (meta.contains("generation") && meta["generation"].is_number_integer())
    s.generation = meta["generation"].get<int64_t>();
  const json& spec = ObjectField(object, "spec", "spec", problems);
  s.dry_run = BoolField(spec, "dryRun", false, "spec.dryRun", problems);
  s.interval_seconds =
      IntField(spec, "intervalSeconds", 300, 1, 86400 * 7, "spec.intervalSeconds", problems);
  s.respect_pdbs = BoolField(spec, "respectPDBs", true, "spec.respectPDBs", problems);

  const json& defrag = ObjectField(spec, "defragmentation", "spec.defragmentation", problems);
  s.defrag_enabled = BoolField(defrag, "enabled", true, "spec.defragmentation.enabled", problems);
  s.max_moves = static_cast<int>(IntField(defrag, "maxMovesPerRun", 5, 0, 1000,
                                          "spec.defragmentation.maxMovesPerRun", problems));
  s.min_gain_milli = static_cast<int>(IntField(defrag, "minGainMilliGPU", 100, 0, 16000,
                                               "spec.defragmentation.minGainMilliGPU", problems));

  const json& usage = ObjectField(spec, "usageBalancing", "spec.usageBalancing", problems);
  s.usage_enabled = BoolField(usage, "enabled", false, "spec.usageBalancing.enabled", problems);
  s.thresholds.thresholds =
      PercentMap(usage, "thresholds", "spec.usageBalancing.thresholds", problems);
  s.thresholds.target_thresholds =
      PercentMap(usage, "targetThresholds", "spec.usageBalancing.targetThresholds", problems);
  if (s.usage_enabled) {
    Status valid = autoscale::ValidateUsageThresholds(s.thresholds);
    if (!valid.ok()) problems->push_back("spec.usageBalancing: " + valid.message());
  }

  const json& limits = ObjectField(spec, "evictionLimits", "spec.evictionLimits", problems);
  s.per_node = static_cast<int>(
      IntField(limits, "perNode", 1, 0, 100000, "spec.evictionLimits.perNode", problems));
  s.per_namespace = static_cast<int>(
      IntField(limits, "perNamespace", 0, 0, 100000, "spec.evictionLimits.perNamespace", problems));
  s.per_hour = static_cast<int>(
      IntField(limits, "perHour", 10, 0, 100000, "spec.evictionLimits.perHour", problems));

  const json& namespaces = ObjectField(spec, "namespaces", "spec.namespaces", problems);
  s.include_namespaces = StringList(namespaces, "include", "spec.namespaces.include", problems);
  s.exclude_namespaces = StringList(namespaces, "exclude", "spec.namespaces.exclude", problems);
  auto selector = spec.find("podSelector");
  if (selector != spec.end() && !selector->is_null()) {
    auto parsed = kube::LabelSelector::FromJson(selector->dump());
    if (parsed.ok()) {
      s.pod_selector = std::move(*parsed);
    } else {
      problems->push_back("spec.podSelector: " + parsed.error().message());
    }
  }
  if (!s.defrag_enabled && !s.usage_enabled) {
    problems->push_back(
        "neither spec.defragmentation nor spec.usageBalancing is enabled: nothing to do");
  }
  return out;
}

}  // namespace gpu_autoscaler::controllers
