#include "webhooks/profile_admission.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "api/nvidia.h"
#include "common/json_read.h"
#include "kube/quantity.h"
#include "webhooks/mutate.h"

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;

// "2g.20gb" -> "20GB": what ChooseMigProfile reads back as the slice's memory.
std::string MigMemory(const std::string& profile) {
  const size_t dot = profile.find('.');
  const size_t gb = profile.find("gb", dot == std::string::npos ? 0 : dot);
  if (dot == std::string::npos || gb == std::string::npos || gb <= dot + 1) return {};
  return profile.substr(dot + 1, gb - dot - 1) + "GB";
}

// Bytes as whole MiB, rounded up (ParseGpuMemory reads any quantity).
std::string MiB(const std::string& bytes) {
  auto v = kube::ParseQuantity(bytes);
  if (!v.ok() || *v <= 0) return {};
  return std::to_string((*v + (int64_t{1} << 20) - 1) >> 20) + "Mi";
}

// new limit = old limit × new request / old request, rounded up.
std::string ScaledLimit(const std::string& old_limit, const std::string& old_request,
                        const std::string& new_request, bool milli) {
  auto parse = [milli](const std::string& q) -> std::optional<double> {
    if (q.empty()) return std::nullopt;
    auto v = milli ? kube::ParseQuantityMilli(q) : kube::ParseQuantity(q);
    if (!v.ok()) return std::nullopt;
    return static_cast<double>(*v);
  };
  const auto limit = parse(old_limit), request = parse(old_request), target = parse(new_request);
  if (!limit || !target) return old_limit;
  const double ratio = request && *request > 0 ? *limit / *request : 1.0;
  const int64_t scaled = static_cast<int64_t>(std::ceil(*target * ratio - 1e-6));
  return milli ? std::to_string(scaled) + "m" : std::to_string(scaled);
}

bool AsksForWholeGpu(const ContainerInfo& c) {
  auto has = [](const auto& list) {
    return std::any_of(list.begin(), list.end(),
                       [](const auto& kv) { return kv.first == api::kGpuResource; });
  };
  return has(c.limits) || has(c.requests);
}

}  // namespace

Result<std::optional<ProfileRule>> ParseProfileRule(std::string_view text) {
  const json obj = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!obj.is_object()) return InvalidArgumentError("ServiceProfile: not a JSON object");
  const json& meta = json_read::Object(obj, "metadata");
  ProfileRule rule;
  rule.ns = json_read::String(meta, "namespace");
  rule.name = json_read::String(meta, "name");
  const std::string where = "ServiceProfile " + rule.ns + "/" + rule.name;
  rule.mode = json_read::String(json_read::Object(obj, "spec"), "updateMode");
  if (rule.mode != "Initial" && rule.mode != "Auto") return std::optional<ProfileRule>();
  const json& status = json_read::Object(obj, "status");
  const std::string selector = json_read::String(status, "targetSelector");
  if (selector.empty()) return std::optional<ProfileRule>();
  auto parsed = kube::LabelSelector::Parse(selector);
  if (!parsed.ok()) {
    return InvalidArgumentError(where + ": status.targetSelector: " + parsed.error().message());
  }
  rule.selector = std::move(*parsed);
  const json* recs_member = json_read::Find(status, "recommendations");
  if (recs_member != nullptr && !recs_member->is_array())
    return InvalidArgumentError(where + ": status.recommendations: not a list");
  const json& recs = json_read::Array(status, "recommendations");
  for (size_t i = 0; i < recs.size(); ++i) {
    const json& r = recs[i];
    const std::string name = json_read::String(r, "containerName");
    if (name.empty()) continue;
    ProfileContainerTarget t;
    t.cpu = json_read::String(json_read::Object(r, "cpu"), "target");
    t.memory = json_read::String(json_read::Object(r, "memory"), "target");
    for (const std::string* q : {&t.cpu, &t.memory}) {
      if (!q->empty() && !kube::ParseQuantity(*q).ok()) {
        return InvalidArgumentError(where + ": status.recommendations[" + std::to_string(i) +
                                    "]: target \"" + *q + "\" is not a quantity");
      }
    }
    const json& gpu = json_read::Object(r, "gpu");
    t.gpu_share = json_read::String(gpu, "share");
    if (t.gpu_share == "mig") {
      t.gpu_memory = MigMemory(json_read::String(gpu, "migProfile"));
    } else if (t.gpu_share == "mps" || t.gpu_share == "timeSlicing") {
      t.gpu_memory = MiB(json_read::String(gpu, "gpuMemoryLimit"));
      if (const json* percent = json_read::Find(gpu, "mpsThreadPercent");
          t.gpu_share == "mps" && percent != nullptr && percent->is_number_integer()) {
        t.gpu_compute_percent = static_cast<int>(
            std::clamp<int64_t>(json_read::Integer(gpu, "mpsThreadPercent"), 1, 100));
      }
    }
    rule.containers[name] = std::move(t);
  }
  if (rule.containers.empty()) return std::optional<ProfileRule>();
  return std::optional<ProfileRule>(std::move(rule));
}

ProfileRuleLoad LoadProfileRules(std::span<const std::string> jsons) {
  ProfileRuleLoad load;
  for (const std::string& text : jsons) {
    auto rule = ParseProfileRule(text);
    if (!rule.ok()) {
      load.errors.push_back(rule.error().message());
    } else if (rule->has_value()) {
      load.rules.push_back(std::move(**rule));
    }
  }
  return load;
}

ProfileSet::ProfileSet(std::vector<ProfileRule> rules) : rules_(std::move(rules)) {
  std::sort(rules_.begin(), rules_.end(), [](const ProfileRule& a, const ProfileRule& b) {
    return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
  });
}

const ProfileRule* ProfileSet::Match(const PodInfo& pod) const {
  auto it = std::lower_bound(rules_.begin(), rules_.end(), pod.ns,
                             [](const ProfileRule& r, const std::string& ns) { return r.ns < ns; });
  for (; it != rules_.end() && it->ns == pod.ns; ++it) {
    if (!it->selector.empty() && it->selector.Matches(pod.labels)) return &*it;
  }
  return nullptr;
}

void ApplyProfile(const PodInfo& pod, const ProfileRule& rule, PodResourceEdits* edits) {
  if (pod.annotations.contains(std::string(api::kServiceProfileAnnotation))) return;
  json original = json::object();
  std::string gpu_memory;
  int gpu_compute = 0;
  bool applied = false;
  for (size_t i = 0; i < pod.containers.size() && i < edits->containers.size(); ++i) {
    const ContainerInfo& c = pod.containers[i];
    auto target = rule.containers.find(c.name);
    if (target == rule.containers.end()) continue;
    ContainerResourceEdit& edit = edits->containers[i];
    const ContainerResourceEdit before = edit;
    for (const auto& [resource, value, milli] :
         {std::tuple{"cpu", target->second.cpu, true},
          std::tuple{"memory", target->second.memory, false}}) {
      if (value.empty()) continue;
      const std::string old_request =
          before.requests.contains(resource) ? before.requests.at(resource) : "";
      edit.requests[resource] = value;
      if (auto limit = before.limits.find(resource); limit != before.limits.end()) {
        edit.limits[resource] = ScaledLimit(limit->second, old_request, value, milli);
      }
    }
    if (edit.requests != before.requests || edit.limits != before.limits) {
      applied = true;
      json& o = original[c.name];
      o = json::object();
      if (!before.requests.empty()) o["requests"] = before.requests;
      if (!before.limits.empty()) o["limits"] = before.limits;
    }
    if (AsksForWholeGpu(c) && !target->second.gpu_memory.empty()) {
      // The largest need among the pod's GPU containers.
      auto bytes = ParseGpuMemory(target->second.gpu_memory);
      auto current = gpu_memory.empty() ? Result<int64_t>(0) : ParseGpuMemory(gpu_memory);
      if (bytes.ok() && current.ok() && *bytes > *current) gpu_memory = target->second.gpu_memory;
      gpu_compute = std::max(gpu_compute, target->second.gpu_compute_percent);
    }
  }
  const bool sharing_off = pod.annotations.contains(std::string(api::kSharingAnnotation)) &&
                           pod.annotations.at(std::string(api::kSharingAnnotation)) == "disabled";
  const bool user_gpu_hint = pod.annotations.contains(std::string(api::kGpuMemoryAnnotation)) ||
                             pod.annotations.contains(std::string(api::kGpuComputeAnnotation));
  bool gpu_applied = false;
  if (!gpu_memory.empty() && !sharing_off && !user_gpu_hint) {
    edits->annotations[std::string(api::kGpuMemoryAnnotation)] = gpu_memory;
    if (gpu_compute > 0) {
      edits->annotations[std::string(api::kGpuComputeAnnotation)] = std::to_string(gpu_compute);
    }
    gpu_applied = true;
  }
  if (!applied && !gpu_applied) return;
  edits->annotations[std::string(api::kServiceProfileAnnotation)] = rule.name;
  if (applied) edits->annotations[std::string(api::kOriginalResourcesAnnotation)] = original.dump();
}

}  // namespace gpu_autoscaler::webhooks
