#include "webhooks/validate.h"

#include <array>
#include <nlohmann/json.hpp>

#include "gpu/mig.h"
#include "webhooks/mutate.h"

namespace gpu_autoscaler::webhooks {
namespace {

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

  return problems;
}

}  // namespace gpu_autoscaler::webhooks
