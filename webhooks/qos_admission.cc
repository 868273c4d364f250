#include "webhooks/qos_admission.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "kube/quantity.h"

namespace gpu_autoscaler::webhooks {
namespace {

constexpr std::array<std::string_view, 4> kLevels = {"dedicated_cores", "shared_cores",
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

// An enhancement annotation as Katalyst decodes it: a JSON object of strings.
// nullopt (with a problem) when it is something else; an empty map when absent.
std::optional<std::map<std::string, std::string>> Enhancement(const PodInfo& pod,
                                                              std::string_view annotation,
                                                              std::string_view example,
                                                              std::vector<std::string>& problems) {
  std::map<std::string, std::string> out;
  const std::string* text = Find(pod.annotations, annotation);
  if (text == nullptr) return out;
  const nlohmann::json obj = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded() || !obj.is_object()) {
    problems.push_back(Field(annotation) + ": Invalid value: " + Quoted(*text) +
                       ": must be a JSON object of strings such as " + std::string(example));
    return std::nullopt;
  }
  for (const auto& [key, value] : obj.items()) {
    if (!value.is_string()) {
      problems.push_back(Field(annotation) + "." + key + ": Invalid value: " + value.dump() +
                         ": must be a string, e.g. " + Quoted(value.dump()));
      continue;
    }
    out[key] = value.get<std::string>();
  }
  return out;
}

std::optional<int64_t> ParseInt(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (*end != '\0' || errno != 0) return std::nullopt;
  return v;
}

// Katalyst's oom_priority range for a level: [lo, hi).
std::pair<int64_t, int64_t> OomRange(std::string_view level) {
  if (level == "reclaimed_cores") return {-100, 0};
  if (level == "dedicated_cores") return {100, 200};
  if (level == "system_cores") return {200, 300};
  return {0, 100};
}

std::optional<int64_t> Milli(const std::string& q) {
  if (q.empty()) return std::nullopt;
  auto v = kube::ParseQuantityMilli(q);
  if (!v.ok()) return std::nullopt;
  return *v;
}
std::optional<int64_t> Bytes(const std::string& q) {
  if (q.empty()) return std::nullopt;
  auto v = kube::ParseQuantity(q);
  if (!v.ok()) return std::nullopt;
  return *v;
}

void CheckResources(const std::vector<ContainerInfo>& list, std::string_view prefix,
                    std::string_view level, std::vector<std::string>& problems) {
  for (size_t i = 0; i < list.size(); ++i) {
    const ContainerInfo& c = list[i];
    const std::string base = std::string(prefix) + "[" + std::to_string(i) + "].resources";
    const std::string cpu_req = CoreQuantity(c.core_requests, "cpu");
    const std::string cpu_lim = CoreQuantity(c.core_limits, "cpu");
    const std::string mem_req = CoreQuantity(c.core_requests, "memory");
    const std::string mem_lim = CoreQuantity(c.core_limits, "memory");
    const bool reclaimed = !CoreQuantity(c.core_requests, kResourceReclaimedMilliCpu).empty() ||
                           !CoreQuantity(c.core_limits, kResourceReclaimedMilliCpu).empty() ||
                           !CoreQuantity(c.core_requests, kResourceReclaimedMemory).empty() ||
                           !CoreQuantity(c.core_limits, kResourceReclaimedMemory).empty();
    if (level == "reclaimed_cores") {
      for (const auto* section : {&c.core_requests, &c.core_limits}) {
        for (const char* r : {"cpu", "memory"}) {
          if (CoreQuantity(*section, r).empty()) continue;
          problems.push_back(base + (section == &c.core_requests ? ".requests[" : ".limits[") + r +
                             "]: Forbidden: reclaimed_cores pods ask for " +
                             std::string(std::string_view(r) == "cpu" ? kResourceReclaimedMilliCpu
                                                                      : kResourceReclaimedMemory) +
                             " instead of " + r);
        }
      }
      continue;
    }
    if (reclaimed) {
      problems.push_back(base + ": Forbidden: reclaimed resources (" +
                         std::string(kResourceReclaimedMilliCpu) + ", " +
                         std::string(kResourceReclaimedMemory) +
                         ") are only for reclaimed_cores pods, not " + std::string(level));
    }
    if (level != "dedicated_cores") continue;
    const auto cr = Milli(cpu_req), cl = Milli(cpu_lim);
    const auto mr = Bytes(mem_req), ml = Bytes(mem_lim);
    std::string why;
    if (!cr || !cl || *cr != *cl) {
      why = "cpu request " + (cpu_req.empty() ? "(none)" : Quoted(cpu_req)) + " and limit " +
            (cpu_lim.empty() ? "(none)" : Quoted(cpu_lim)) + " must be equal";
    } else if (*cr <= 0 || *cr % 1000 != 0) {
      why = "cpu " + Quoted(cpu_req) + " must be a whole number of cores";
    } else if (!mr || !ml || *mr != *ml) {
      why = "memory request " + (mem_req.empty() ? "(none)" : Quoted(mem_req)) + " and limit " +
            (mem_lim.empty() ? "(none)" : Quoted(mem_lim)) + " must be equal";
    }
    if (!why.empty()) {
      problems.push_back(base + ": Invalid value: " + why +
                         ": dedicated_cores needs Guaranteed resources with whole CPUs");
    }
  }
}

void NormalizeContainer(const ContainerInfo& c, std::string_view level,
                        ContainerResourceEdit& edit) {
  const std::string cpu_req = CoreQuantity(c.core_requests, "cpu");
  const std::string cpu_lim = CoreQuantity(c.core_limits, "cpu");
  const std::string mem_req = CoreQuantity(c.core_requests, "memory");
  const std::string mem_lim = CoreQuantity(c.core_limits, "memory");
  if (level == "dedicated_cores") {
    const auto cr = Milli(cpu_req), cl = Milli(cpu_lim);
    if (cr || cl) {
      const int64_t millis = std::max(cr.value_or(0), cl.value_or(0));
      const std::string cores = std::to_string((millis + 999) / 1000);
      if (millis > 0) edit.requests["cpu"] = edit.limits["cpu"] = cores;
    }
    const auto mr = Bytes(mem_req), ml = Bytes(mem_lim);
    if (mr || ml) {
      const std::string& larger = mr.value_or(0) >= ml.value_or(0) ? mem_req : mem_lim;
      edit.requests["memory"] = edit.limits["memory"] = larger;
    }
    return;
  }
  if (level != "reclaimed_cores") return;
  const auto cr = Milli(cpu_req), cl = Milli(cpu_lim);
  if (cr || cl) {
    const std::string millis = std::to_string(cr ? *cr : *cl);
    edit.requests.erase("cpu");
    edit.limits.erase("cpu");
    edit.requests[std::string(kResourceReclaimedMilliCpu)] = millis;
    edit.limits[std::string(kResourceReclaimedMilliCpu)] = millis;
  }
  const auto mr = Bytes(mem_req), ml = Bytes(mem_lim);
  if (mr || ml) {
    const std::string bytes = std::to_string(mr ? *mr : *ml);
    edit.requests.erase("memory");
    edit.limits.erase("memory");
    edit.requests[std::string(kResourceReclaimedMemory)] = bytes;
    edit.limits[std::string(kResourceReclaimedMemory)] = bytes;
  }
}

}  // namespace

std::string QosLevelOf(const PodInfo& pod) {
  const std::string* v = Find(pod.annotations, kAnnotationQosLevel);
  if (v == nullptr) return "shared_cores";  // Katalyst's default
  return std::find(kLevels.begin(), kLevels.end(), *v) == kLevels.end() ? "" : *v;
}

std::vector<std::string> ValidateQos(const PodInfo& pod) {
  std::vector<std::string> problems;
  const std::string level = QosLevelOf(pod);
  if (level.empty()) {
    problems.push_back(Field(kAnnotationQosLevel) + ": Unsupported value: " +
                       Quoted(*Find(pod.annotations, kAnnotationQosLevel)) +
                       ": supported values: \"dedicated_cores\", \"shared_cores\", "
                       "\"reclaimed_cores\", \"system_cores\"");
  }
  auto memory =
      Enhancement(pod, kAnnotationMemoryEnhancement, R"({"numa_binding":"true"})", problems);
  auto cpu = Enhancement(pod, kAnnotationCpuEnhancement, R"({"cpuset_pool":"batch"})", problems);
  const std::string mem_field = Field(kAnnotationMemoryEnhancement);
  const std::string cpu_field = Field(kAnnotationCpuEnhancement);
  auto forbidden = [&](const std::string& field, std::string_view key, std::string_view only) {
    problems.push_back(field + "." + std::string(key) + ": Forbidden: " + std::string(key) +
                       " is only allowed with " + std::string(kAnnotationQosLevel) + "=" +
                       std::string(only) + ", not " + level);
  };
  if (memory) {
    std::string numa;
    if (auto it = memory->find("numa_binding"); it != memory->end()) {
      numa = it->second;
      if (numa != "true" && numa != "false") {
        problems.push_back(mem_field + ".numa_binding: Unsupported value: " + Quoted(numa) +
                           ": supported values: \"true\", \"false\"");
      } else if (numa == "true" && !level.empty() && level != "dedicated_cores") {
        forbidden(mem_field, "numa_binding", "dedicated_cores");
      }
    }
    if (auto it = memory->find("numa_exclusive");
        it != memory->end() && it->second == "true" && numa != "true") {
      problems.push_back(mem_field +
                         ".numa_exclusive: Forbidden: numa_exclusive needs numa_binding \"true\"");
    }
    if (auto it = memory->find("oom_priority"); it != memory->end() && !level.empty()) {
      auto v = ParseInt(it->second);
      const auto [lo, hi] = OomRange(level);
      if (!v) {
        problems.push_back(mem_field + ".oom_priority: Invalid value: " + Quoted(it->second) +
                           ": must be an integer");
      } else if (*v != -300 && *v != 300 && (*v < lo || *v >= hi)) {
        problems.push_back(mem_field + ".oom_priority: Invalid value: " + it->second +
                           ": must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                           ") for " + level + " (or -300, 300)");
      }
    }
  }
  if (cpu) {
    if (auto it = cpu->find("cpuset_pool"); it != cpu->end() && !level.empty()) {
      if (level != "shared_cores") forbidden(cpu_field, "cpuset_pool", "shared_cores");
    }
    if (auto it = cpu->find("suppression_tolerance_rate"); it != cpu->end() && !level.empty()) {
      char* end = nullptr;
      const double rate = std::strtod(it->second.c_str(), &end);
      if (level != "reclaimed_cores") {
        forbidden(cpu_field, "suppression_tolerance_rate", "reclaimed_cores");
      } else if (it->second.empty() || *end != '\0' || !(rate > 0) || !std::isfinite(rate)) {
        problems.push_back(cpu_field + ".suppression_tolerance_rate: Invalid value: " +
                           Quoted(it->second) + ": must be a number greater than 0");
      }
    }
    if (auto it = cpu->find("cpu_burst_policy"); it != cpu->end()) {
      const std::string& p = it->second;
      if (p != "default" && p != "closed" && p != "static" && p != "dynamic") {
        problems.push_back(cpu_field + ".cpu_burst_policy: Unsupported value: " + Quoted(p) +
                           ": supported values: \"default\", \"closed\", \"static\", "
                           "\"dynamic\"");
      }
    }
  }
  if (!level.empty()) {
    CheckResources(pod.containers, "spec.containers", level, problems);
    CheckResources(pod.init_containers, "spec.initContainers", level, problems);
  }
  return problems;
}

void NormalizeQosResources(const PodInfo& pod, PodResourceEdits* edits) {
  const std::string level = QosLevelOf(pod);
  if (level != "dedicated_cores" && level != "reclaimed_cores") return;
  // The edits may already carry a profile's requests: normalise those.
  auto normalize = [&](const std::vector<ContainerInfo>& list,
                       std::vector<ContainerResourceEdit>& edit_list) {
    for (size_t i = 0; i < list.size() && i < edit_list.size(); ++i) {
      ContainerInfo current = list[i];
      current.core_requests.assign(edit_list[i].requests.begin(), edit_list[i].requests.end());
      current.core_limits.assign(edit_list[i].limits.begin(), edit_list[i].limits.end());
      NormalizeContainer(current, level, edit_list[i]);
    }
  };
  normalize(pod.containers, edits->containers);
  normalize(pod.init_containers, edits->init_containers);
}

}  // namespace gpu_autoscaler::webhooks
