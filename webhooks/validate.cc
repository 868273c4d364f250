#include "webhooks/validate.h"

#include <array>
#include <nlohmann/json.hpp>

#include "gpu/mig.h"
#include "webhooks/mutate.h"

namespace gpu_autoscaler::webhooks {
namespace {

constexpr std::array<std::string_view, 4> kQosLevels = {"dedicated_cores", "shared_cores",
                                                        "reclaimed_cores", "system_cores"};

std::string Field(std::string_view annotation) {
  return "metadata.annotations[" + std::string(annotation) + "]";
}

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

const std::string* Find(const std::map<std::string, std::string>& m, std::string_view key) {
  auto it = m.find(std::string(key));
  return it == m.end() ? nullptr : &it->second;
}

// Reads `key` from an enhancement annotation holding a JSON object of strings
// (Katalyst writes booleans as "true"), or from its short-form annotation.
std::string EnhancementValue(const std::map<std::string, std::string>& ann,
                             std::string_view json_annotation, std::string_view key,
                             std::string_view short_annotation, std::vector<std::string>& problems,
                             std::string& field) {
  if (const std::string* v = Find(ann, short_annotation)) {
    field = Field(short_annotation);
    return *v;
  }
  const std::string* text = Find(ann, json_annotation);
  if (text == nullptr) return {};
  field = Field(json_annotation) + "." + std::string(key);
  nlohmann::json obj = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded() || !obj.is_object()) {
    problems.push_back(Field(json_annotation) + ": Invalid value: " + Quoted(*text) +
                       ": must be a JSON object such as {\"" + std::string(key) + "\": \"...\"}");
    return {};
  }
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_boolean()) return it->get<bool>() ? "true" : "false";
  return it->dump();
}

}  // namespace

std::vector<std::string> ValidatePolicy(const GpuSharingPolicy& policy,
                                        const std::vector<GpuSharingPolicy>& existing) {
  std::vector<std::string> problems = policy.problems;
  for (const GpuSharingPolicy& other : existing) {
    if (other.name == policy.name || other.priority != policy.priority) continue;
    if (!PoliciesMayOverlap(policy, other)) continue;
    problems.push_back("spec.priority: Invalid value: " + std::to_string(policy.priority) +
                       ": GPUSharingPolicy \"" + other.name +
                       "\" has the same priority and may select the same pods; use a different "
                       "priority, or make namespaceSelector, podSelector or gpuModels disjoint");
  }
  return problems;
}

std::vector<std::string> ValidatePodAnnotations(const PodInfo& pod) {
  std::vector<std::string> problems;
  const auto& ann = pod.annotations;
  if (const std::string* v = Find(ann, kAnnotationSharing);
      v && *v != "disabled" && *v != "enabled") {
    problems.push_back(Field(kAnnotationSharing) + ": Unsupported value: " + Quoted(*v) +
                       ": supported values: \"enabled\", \"disabled\"");
  }
  if (const std::string* v = Find(ann, kAnnotationGpuMemory)) {
    auto bytes = ParseGpuMemory(*v);
    int64_t largest = 0;
    for (const gpu::GpuSpec& g : gpu::AllGpus())
      largest = std::max<int64_t>(largest, g.memory_gb);
    if (!bytes.ok()) {
      problems.push_back(Field(kAnnotationGpuMemory) + ": Invalid value: " + Quoted(*v) +
                         ": must be a quantity such as \"10Gi\" or GB such as \"10GB\"");
    } else if (*bytes > largest * (int64_t{1} << 30)) {
      problems.push_back(Field(kAnnotationGpuMemory) + ": Invalid value: " + Quoted(*v) +
                         ": exceeds the largest supported GPU (" + std::to_string(largest) + "GB)");
    }
  }
  if (const std::string* v = Find(ann, kAnnotationGpuCompute); v && !ParseGpuCompute(*v).ok()) {
    problems.push_back(Field(kAnnotationGpuCompute) + ": Invalid value: " + Quoted(*v) +
                       ": must be a whole percent from 1 to 100");
  }
  if (const std::string* v = Find(ann, kAnnotationMigProfile)) {
    bool known = false;
    for (const gpu::GpuSpec& g : gpu::AllGpus())
      known = known || gpu::FindProfile(g, *v);
    if (!known) {
      std::string allowed;
      for (const gpu::GpuSpec& g : gpu::AllGpus()) {
        allowed += (allowed.empty() ? "" : "; ") + std::string(g.name) + ":";
        for (const gpu::MigProfile& p : g.profiles)
          allowed += " " + std::string(p.name);
      }
      problems.push_back(Field(kAnnotationMigProfile) + ": Unsupported value: " + Quoted(*v) +
                         ": not a MIG profile of any supported GPU (" + allowed + ")");
    }
  }

  std::string qos = "shared_cores";  // Katalyst's default QoS level
  if (const std::string* v = Find(ann, kAnnotationQosLevel)) {
    if (std::find(kQosLevels.begin(), kQosLevels.end(), *v) == kQosLevels.end()) {
      problems.push_back(Field(kAnnotationQosLevel) + ": Unsupported value: " + Quoted(*v) +
                         ": supported values: \"dedicated_cores\", \"shared_cores\", "
                         "\"reclaimed_cores\", \"system_cores\"");
      qos.clear();
    } else {
      qos = *v;
    }
  }
  std::string field;
  const std::string numa = EnhancementValue(ann, kAnnotationMemoryEnhancement, "numa_binding",
                                            kAnnotationNumaBinding, problems, field);
  if (!numa.empty()) {
    if (numa != "true" && numa != "false") {
      problems.push_back(field + ": Unsupported value: " + Quoted(numa) +
                         ": supported values: \"true\", \"false\"");
    } else if (numa == "true" && !qos.empty() && qos != "dedicated_cores") {
      problems.push_back(field + ": Forbidden: numa_binding is only allowed with " +
                         std::string(kAnnotationQosLevel) + "=dedicated_cores, not " + qos);
    }
  }
  const std::string pool = EnhancementValue(ann, kAnnotationCpuEnhancement, "cpuset_pool",
                                            kAnnotationCpusetPool, problems, field);
  if (!pool.empty() && !qos.empty() && qos != "shared_cores") {
    problems.push_back(field + ": Forbidden: cpuset_pool is only allowed with " +
                       std::string(kAnnotationQosLevel) + "=shared_cores, not " + qos);
  }
  return problems;
}

}  // namespace gpu_autoscaler::webhooks
