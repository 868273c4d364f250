#include "webhooks/policy.h"

#include <algorithm>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/json_read.h"
#include "kube/quantity.h"

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;

std::string Quote(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// Reads an integer field into `out`, recording a problem when it is not an
// integer or is out of [lo, hi].
void ReadInt(const json& obj, const char* key, const std::string& path, int64_t lo, int64_t hi,
             int& out, std::vector<std::string>& problems, bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) problems.push_back(path + ": Required value");
    return;
  }
  if (!it->is_number_integer()) {
    problems.push_back(path + ": Invalid value: " + it->dump() + ": must be an integer");
    return;
  }
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    problems.push_back(path + ": Invalid value: " + std::to_string(v) + ": must be between " +
                       std::to_string(lo) + " and " + std::to_string(hi));
    return;
  }
  out = static_cast<int>(v);
}

void ReadSelector(const json& spec, const char* key, const std::string& path,
                  kube::LabelSelector& out, std::vector<std::string>& problems) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return;
  if (!it->is_object()) {
    problems.push_back(path + ": Invalid value: must be a label selector object");
    return;
  }
  auto sel = kube::LabelSelector::FromJson(it->dump());
  if (!sel.ok()) {
    problems.push_back(path + ": Invalid value: " + sel.error().message());
    return;
  }
  out = std::move(sel).value();
}

void ParseStrategy(const json& strategy, GpuSharingPolicy& p) {
  auto& problems = p.problems;
  const std::string base = "spec.strategy";
  auto type_it = strategy.find("type");
  if (type_it == strategy.end() || !type_it->is_string()) {
    problems.push_back(base +
                       ".type: Required value: one of \"exclusive\", \"timeSlicing\", \"mps\", "
                       "\"mig\"");
    return;
  }
  auto type = ParseStrategyName(type_it->get<std::string>());
  if (!type) {
    problems.push_back(base + ".type: Unsupported value: " + type_it->dump() +
                       ": supported values: \"exclusive\", \"timeSlicing\", \"mps\", \"mig\"");
    return;
  }
  p.strategy = *type;
  auto section = [&](const char* key) -> const json* {
    auto it = strategy.find(key);
    if (it == strategy.end() || it->is_null()) return nullptr;
    if (!it->is_object()) {
      problems.push_back(base + "." + key + ": Invalid value: must be an object");
      return nullptr;
    }
    return &*it;
  };
  switch (p.strategy) {
    case SharingStrategy::kExclusive:
      break;
    case SharingStrategy::kTimeSlicing: {
      const json* ts = section("timeSlicing");
      if (ts == nullptr) {
        problems.push_back(base + ".timeSlicing: Required value: strategy timeSlicing needs it");
        break;
      }
      ReadInt(*ts, "replicas", base + ".timeSlicing.replicas", 2, 64, p.time_slicing.replicas,
              problems, true);
      break;
    }
    case SharingStrategy::kMps: {
      const json* mps = section("mps");
      if (mps == nullptr) {
        problems.push_back(base + ".mps: Required value: strategy mps needs it");
        break;
      }
      ReadInt(*mps, "maxClients", base + ".mps.maxClients", 2, 48, p.mps.max_clients, problems,
              true);
      ReadInt(*mps, "activeThreadPercentage", base + ".mps.activeThreadPercentage", 1, 100,
              p.mps.active_thread_percentage, problems, false);
      if (auto it = mps->find("pinnedMemoryLimit"); it != mps->end() && !it->is_null()) {
        const std::string path = base + ".mps.pinnedMemoryLimit";
        if (!it->is_string()) {
          problems.push_back(path + ": Invalid value: " + it->dump() +
                             ": must be a quantity string such as \"10Gi\"");
        } else {
          auto bytes = kube::ParseQuantity(it->get<std::string>());
          if (!bytes.ok() || *bytes <= 0) {
            problems.push_back(path + ": Invalid value: " + it->dump() +
                               ": must be a positive quantity such as \"10Gi\"");
          } else {
            p.mps.pinned_memory_limit = it->get<std::string>();
            p.mps.pinned_memory_limit_bytes = *bytes;
          }
        }
      }
      break;
    }
    case SharingStrategy::kMig: {
      const json* mig = section("mig");
      const std::string path = base + ".mig.allowedProfiles";
      const json* list = nullptr;
      if (mig != nullptr) {
        auto it = mig->find("allowedProfiles");
        if (it != mig->end() && it->is_array()) list = &*it;
      }
      if (list == nullptr || list->empty()) {
        problems.push_back(path + ": Required value: list the MIG profiles allowed per GPU model");
        break;
      }
      for (size_t i = 0; i < list->size(); ++i) {
        const json& entry = (*list)[i];
        const std::string ep = path + "[" + std::to_string(i) + "]";
        if (!entry.is_object()) {
          problems.push_back(ep + ": Invalid value: must be an object");
          continue;
        }
        MigModelProfiles mp;
        auto model_it = entry.find("gpuModel");
        if (model_it == entry.end() || !model_it->is_string()) {
          problems.push_back(ep + ".gpuModel: Required value");
          continue;
        }
        auto model = gpu::NormalizeGpuProduct(model_it->get<std::string>());
        if (!model.ok()) {
          problems.push_back(ep + ".gpuModel: Unsupported value: " + model_it->dump() +
                             ": supported values: \"A100-SXM4-40GB\", \"A100-80GB\", "
                             "\"H100-80GB\", \"H100-94GB\", \"H200-141GB\"");
          continue;
        }
        mp.gpu_model = *model;
        const gpu::GpuSpec& spec = *gpu::FindGpu(mp.gpu_model);
        auto prof_it = entry.find("profiles");
        if (prof_it == entry.end() || !prof_it->is_array() || prof_it->empty()) {
          problems.push_back(ep + ".profiles: Required value: at least one MIG profile");
          continue;
        }
        for (size_t j = 0; j < prof_it->size(); ++j) {
          const json& name = (*prof_it)[j];
          const std::string pp = ep + ".profiles[" + std::to_string(j) + "]";
          if (!name.is_string() || gpu::FindProfile(spec, name.get<std::string>()) == nullptr) {
            std::string allowed;
            for (const gpu::MigProfile& prof : spec.profiles) {
              allowed += (allowed.empty() ? "" : ", ") + Quote(prof.name);
            }
            problems.push_back(pp + ": Unsupported value: " + name.dump() + ": profiles of " +
                               mp.gpu_model + " are " + allowed);
            continue;
          }
          mp.profiles.push_back(name.get<std::string>());
        }
        p.mig.push_back(std::move(mp));
      }
      // Every model the policy targets needs profiles.
      for (const std::string& model : p.gpu_models) {
        bool listed = std::any_of(p.mig.begin(), p.mig.end(),
                                  [&](const MigModelProfiles& m) { return m.gpu_model == model; });
        if (!listed) {
          problems.push_back(path + ": Required value: no MIG profiles listed for gpuModel " +
                             Quote(model));
        }
      }
      break;
    }
  }
}

// The values one label key may take under a list of requirements: either a
// finite allowed set or everything but an excluded set, plus whether the label
// may be absent.
struct KeyDomain {
  bool absent_ok = true;
  bool finite = false;
  std::set<std::string> values;  // allowed when finite, excluded otherwise

  void Apply(const kube::LabelSelector::Requirement& r) {
    using Op = kube::LabelSelector::Op;
    std::set<std::string> rv(r.values.begin(), r.values.end());
    switch (r.op) {
      case Op::kEquals:
      case Op::kIn:
        absent_ok = false;
        Restrict(rv);
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        Exclude(rv);
        break;
      case Op::kExists:
        absent_ok = false;
        break;
      case Op::kDoesNotExist:
        finite = true;
        values.clear();
        break;
    }
  }
  void Restrict(const std::set<std::string>& allowed) {
    std::set<std::string> next;
    for (const std::string& v : allowed) {
      if (finite ? values.count(v) > 0 : values.count(v) == 0) next.insert(v);
    }
    finite = true;
    values = std::move(next);
  }
  void Exclude(const std::set<std::string>& excluded) {
    if (finite) {
      for (const std::string& v : excluded)
        values.erase(v);
    } else {
      values.insert(excluded.begin(), excluded.end());
    }
  }
  bool Empty() const { return !absent_ok && finite && values.empty(); }
};

bool SelectorsMayOverlap(const kube::LabelSelector& a, const kube::LabelSelector& b) {
  std::map<std::string, KeyDomain> domains;
  for (const auto* sel : {&a, &b}) {
    for (const auto& r : sel->requirements())
      domains[r.key].Apply(r);
  }
  return std::none_of(domains.begin(), domains.end(),
                      [](const auto& kv) { return kv.second.Empty(); });
}

}  // namespace

std::string_view StrategyName(SharingStrategy strategy) {
  switch (strategy) {
    case SharingStrategy::kExclusive:
      return "exclusive";
    case SharingStrategy::kTimeSlicing:
      return "timeSlicing";
    case SharingStrategy::kMps:
      return "mps";
    case SharingStrategy::kMig:
      return "mig";
  }
  return "exclusive";
}

std::optional<SharingStrategy> ParseStrategyName(std::string_view name) {
  for (auto s : {SharingStrategy::kExclusive, SharingStrategy::kTimeSlicing, SharingStrategy::kMps,
                 SharingStrategy::kMig}) {
    if (StrategyName(s) == name) return s;
  }
  return std::nullopt;
}

Result<GpuSharingPolicy> ParseGpuSharingPolicy(std::string_view text) {
  json obj = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded()) return InvalidArgumentError("GPUSharingPolicy is not valid JSON");
  if (!obj.is_object()) return InvalidArgumentError("GPUSharingPolicy must be a JSON object");
  GpuSharingPolicy p;
  try {
    if (auto kind = obj.find("kind"); kind != obj.end() && *kind != "GPUSharingPolicy") {
      return InvalidArgumentError("kind: expected GPUSharingPolicy, got " + kind->dump());
    }
    const json& meta = json_read::Object(obj, "metadata");
    p.name = json_read::String(meta, "name");
    p.generation = json_read::Integer(meta, "generation");
    if (p.name.empty()) p.problems.push_back("metadata.name: Required value");
    auto spec_it = obj.find("spec");
    if (spec_it == obj.end() || !spec_it->is_object()) {
      p.problems.push_back("spec: Required value");
      return p;
    }
    const json& spec = *spec_it;
    int priority = 0;
    ReadInt(spec, "priority", "spec.priority", -1'000'000, 1'000'000, priority, p.problems, false);
    p.priority = priority;
    ReadSelector(spec, "namespaceSelector", "spec.namespaceSelector", p.namespace_selector,
                 p.problems);
    ReadSelector(spec, "podSelector", "spec.podSelector", p.pod_selector, p.problems);
    if (auto it = spec.find("gpuModels"); it != spec.end() && !it->is_null()) {
      if (!it->is_array()) {
        p.problems.push_back("spec.gpuModels: Invalid value: must be a list of GPU models");
      } else {
        for (size_t i = 0; i < it->size(); ++i) {
          const json& m = (*it)[i];
          auto model = m.is_string() ? gpu::NormalizeGpuProduct(m.get<std::string>())
                                     : Result<std::string>(InvalidArgumentError("not a string"));
          if (!model.ok()) {
            p.problems.push_back("spec.gpuModels[" + std::to_string(i) +
                                 "]: Unsupported value: " + m.dump() +
                                 ": supported values: \"A100-SXM4-40GB\", \"A100-80GB\", "
                                 "\"H100-80GB\", \"H100-94GB\", \"H200-141GB\"");
            continue;
          }
          if (std::find(p.gpu_models.begin(), p.gpu_models.end(), *model) == p.gpu_models.end()) {
            p.gpu_models.push_back(*model);
          }
        }
      }
    }
    auto strategy = spec.find("strategy");
    if (strategy == spec.end() || !strategy->is_object()) {
      p.problems.push_back("spec.strategy: Required value");
    } else {
      ParseStrategy(*strategy, p);
    }
  } catch (const json::exception& e) {
    return InvalidArgumentError(std::string("GPUSharingPolicy: ") + e.what());
  }
  return p;
}

bool PolicyMatches(const GpuSharingPolicy& policy, const PodSubject& pod) {
  static const std::map<std::string, std::string> kEmpty;
  if (!policy.gpu_models.empty() && !pod.pinned_gpu_model.empty() &&
      std::find(policy.gpu_models.begin(), policy.gpu_models.end(), pod.pinned_gpu_model) ==
          policy.gpu_models.end()) {
    return false;
  }
  const auto& ns_labels = pod.namespace_labels != nullptr ? *pod.namespace_labels : kEmpty;
  const auto& pod_labels = pod.pod_labels != nullptr ? *pod.pod_labels : kEmpty;
  return policy.namespace_selector.Matches(ns_labels) && policy.pod_selector.Matches(pod_labels);
}

PolicySet::PolicySet(std::vector<GpuSharingPolicy> policies) : policies_(std::move(policies)) {
  std::sort(policies_.begin(), policies_.end(),
            [](const GpuSharingPolicy& a, const GpuSharingPolicy& b) {
              if (a.priority != b.priority) return a.priority > b.priority;
              return a.name < b.name;
            });
}

const GpuSharingPolicy* PolicySet::Match(const PodSubject& pod) const {
  for (const GpuSharingPolicy& p : policies_) {
    if (PolicyMatches(p, pod)) return &p;
  }
  return nullptr;
}

bool PoliciesMayOverlap(const GpuSharingPolicy& a, const GpuSharingPolicy& b) {
  if (!a.gpu_models.empty() && !b.gpu_models.empty()) {
    bool shared = std::any_of(a.gpu_models.begin(), a.gpu_models.end(), [&](const std::string& m) {
      return std::find(b.gpu_models.begin(), b.gpu_models.end(), m) != b.gpu_models.end();
    });
    if (!shared) return false;
  }
  return SelectorsMayOverlap(a.namespace_selector, b.namespace_selector) &&
         SelectorsMayOverlap(a.pod_selector, b.pod_selector);
}

}  // namespace gpu_autoscaler::webhooks
