#include "webhooks/mutate.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include "kube/quantity.h"
#include "webhooks/json_patch_builder.h"

namespace gpu_autoscaler::webhooks {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kMiB = int64_t{1} << 20;

using PatchBuilder = JsonPatchBuilder;

std::string JsonString(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

struct Expression {
  std::string key;
  std::vector<std::string> values;  // operator In
};

std::string ExpressionJson(const Expression& e) {
  std::string out = R"({"key":)" + JsonString(e.key) + R"(,"operator":"In","values":[)";
  for (size_t i = 0; i < e.values.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(out, e.values[i]);
  }
  out += "]}";
  return out;
}

std::string ExpressionsJson(const std::vector<const Expression*>& exprs) {
  std::string out = "[";
  for (size_t i = 0; i < exprs.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += ExpressionJson(*exprs[i]);
  }
  out.push_back(']');
  return out;
}

bool TermHas(const NodeSelectorTermInfo& term, const Expression& e) {
  return std::any_of(term.match_expressions.begin(), term.match_expressions.end(),
                     [&](const NodeSelectorRequirementInfo& r) {
                       return r.key == e.key && r.op == "In" &&
                              std::set<std::string>(r.values.begin(), r.values.end()) ==
                                  std::set<std::string>(e.values.begin(), e.values.end());
                     });
}

void AddNodeAffinity(const PodInfo& pod, const std::vector<Expression>& exprs,
                     PatchBuilder& patch) {
  if (exprs.empty()) return;
  std::vector<const Expression*> all;
  for (const Expression& e : exprs)
    all.push_back(&e);
  const std::string term = R"({"matchExpressions":)" + ExpressionsJson(all) + "}";
  const std::string terms = "[" + term + "]";
  const std::string required = R"({"nodeSelectorTerms":)" + terms + "}";
  const std::string node_affinity =
      R"({"requiredDuringSchedulingIgnoredDuringExecution":)" + required + "}";
  if (!pod.has_affinity) {
    patch.Add("/spec/affinity", R"({"nodeAffinity":)" + node_affinity + "}");
  } else if (!pod.has_node_affinity) {
    patch.Add("/spec/affinity/nodeAffinity", node_affinity);
  } else if (!pod.has_required) {
    patch.Add("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution",
              required);
  } else if (!pod.has_terms || pod.terms.empty()) {
    patch.Add(
        "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/"
        "nodeSelectorTerms",
        terms);
  } else {
    // Terms are ORed: every term must carry the expressions.
    for (size_t i = 0; i < pod.terms.size(); ++i) {
      const NodeSelectorTermInfo& t = pod.terms[i];
      std::vector<const Expression*> missing;
      for (const Expression& e : exprs) {
        if (!TermHas(t, e)) missing.push_back(&e);
      }
      if (missing.empty()) continue;
      const std::string base =
          "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/"
          "nodeSelectorTerms/" +
          std::to_string(i) + "/matchExpressions";
      if (!t.has_match_expressions) {
        patch.Add(base, ExpressionsJson(missing));
      } else {
        for (const Expression* e : missing)
          patch.Add(base + "/-", ExpressionJson(*e));
      }
    }
  }
}

std::string_view FindResource(const std::vector<std::pair<std::string, std::string>>& list,
                              std::string_view name) {
  for (const auto& [k, v] : list) {
    if (k == name) return v;
  }
  return {};
}

bool HasResource(const std::vector<std::pair<std::string, std::string>>& list,
                 std::string_view name) {
  return std::any_of(list.begin(), list.end(), [&](const auto& kv) { return kv.first == name; });
}

bool RequestsWholeGpu(const ContainerInfo& c) {
  return HasResource(c.limits, kResourceGpu) || HasResource(c.requests, kResourceGpu);
}

bool HasAnyNvidiaResource(const PodInfo& pod) {
  for (const auto* list : {&pod.containers, &pod.init_containers}) {
    for (const ContainerInfo& c : *list) {
      if (!c.limits.empty() || !c.requests.empty()) return true;
    }
  }
  return false;
}

std::string MibLimit(int64_t bytes, int64_t gpus) {
  const int64_t mib = (bytes + kMiB - 1) / kMiB;
  std::string out;
  for (int64_t i = 0; i < std::max<int64_t>(gpus, 1); ++i) {
    if (i > 0) out.push_back(',');
    out += std::to_string(i) + "=" + std::to_string(mib) + "M";
  }
  return out;
}

std::string FormatGiB(int64_t bytes) {
  if (bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "Gi";
  return std::to_string((bytes + kMiB - 1) / kMiB) + "Mi";
}

PodMutation Deny(std::string message) {
  PodMutation m;
  m.denied = true;
  m.message = std::move(message);
  return m;
}

bool IsExcluded(const std::vector<std::string>& excluded, std::string_view ns) {
  return std::find(excluded.begin(), excluded.end(), ns) != excluded.end();
}

std::string PinnedModel(const PodInfo& pod) {
  if (pod.node_selector_gpu_product.empty()) return {};
  auto model = gpu::NormalizeGpuProduct(pod.node_selector_gpu_product);
  // A GPU we do not know stays as it is, so that no model list matches it.
  return model.ok() ? *model : pod.node_selector_gpu_product;
}

}  // namespace

std::string EscapeJsonPointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size() + 2);
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<int64_t> ParseGpuMemory(std::string_view text) {
  const std::string what =
      std::string(kAnnotationGpuMemory) + ": invalid value \"" + std::string(text) + "\"";
  const std::string forms =
      ": use a quantity such as \"10Gi\" or \"10240Mi\", or GB as in MIG "
      "profile names such as \"10GB\"";
  std::string_view number = text;
  bool nominal_gb = false;
  if (number.size() > 2 && (number.ends_with("GB") || number.ends_with("gb"))) {
    number.remove_suffix(2);
    nominal_gb = true;
  } else if (!number.empty() && std::all_of(number.begin(), number.end(), [](char c) {
               return std::isdigit(static_cast<unsigned char>(c)) != 0;
             })) {
    nominal_gb = true;  // a bare number is GB
  }
  if (nominal_gb) {
    if (number.empty() || number.size() > 6 ||
        !std::all_of(number.begin(), number.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
      return InvalidArgumentError(what + forms);
    }
    const int64_t gb = std::stoll(std::string(number));
    if (gb <= 0) return InvalidArgumentError(what + ": must be greater than zero");
    return gb * kGiB;
  }
  auto bytes = kube::ParseQuantity(text);
  if (!bytes.ok()) return InvalidArgumentError(what + forms);
  if (*bytes <= 0) return InvalidArgumentError(what + ": must be greater than zero");
  return *bytes;
}

Result<int> ParseGpuCompute(std::string_view text) {
  std::string_view number = text;
  if (number.ends_with('%')) number.remove_suffix(1);
  const std::string what = std::string(kAnnotationGpuCompute) + ": invalid value \"" +
                           std::string(text) +
                           "\": must be a whole percent of one GPU from 1 to 100, e.g. \"50\"";
  if (number.empty() || number.size() > 3 || !std::all_of(number.begin(), number.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      })) {
    return InvalidArgumentError(what);
  }
  const int percent = std::stoi(std::string(number));
  if (percent < 1 || percent > 100) return InvalidArgumentError(what);
  return percent;
}

Result<GpuRequirement> ParseGpuRequirement(const std::map<std::string, std::string>& annotations) {
  GpuRequirement req;
  if (auto it = annotations.find(std::string(kAnnotationGpuMemory)); it != annotations.end()) {
    GPU_ASSIGN_OR_RETURN(req.memory_bytes, ParseGpuMemory(it->second));
  }
  if (auto it = annotations.find(std::string(kAnnotationGpuCompute)); it != annotations.end()) {
    GPU_ASSIGN_OR_RETURN(req.compute_percent, ParseGpuCompute(it->second));
  }
  return req;
}

Result<MigChoice> ChooseMigProfile(const GpuSharingPolicy& policy, const GpuRequirement& req,
                                   std::string_view pinned_model) {
  const int compute_slices_needed = (req.compute_percent * gpu::kComputeSlices + 99) / 100;
  auto key = [](const gpu::MigProfile& p) {
    return std::tuple(p.memory_gb, p.compute_slices, p.media_extensions);
  };
  const gpu::MigProfile* best = nullptr;
  std::vector<std::pair<std::string, const gpu::MigProfile*>> per_model;
  const gpu::MigProfile* largest = nullptr;
  for (const MigModelProfiles& allowed : policy.mig) {
    if (!pinned_model.empty() && allowed.gpu_model != pinned_model) continue;
    if (!policy.gpu_models.empty() && std::find(policy.gpu_models.begin(), policy.gpu_models.end(),
                                                allowed.gpu_model) == policy.gpu_models.end()) {
      continue;
    }
    const gpu::GpuSpec* spec = gpu::FindGpu(allowed.gpu_model);
    if (spec == nullptr) continue;
    const gpu::MigProfile* model_best = nullptr;
    for (const std::string& name : allowed.profiles) {
      const gpu::MigProfile* p = gpu::FindProfile(*spec, name);
      if (p == nullptr) continue;
      if (largest == nullptr || key(*largest) < key(*p)) largest = p;
      if (p->memory_gb * kGiB < req.memory_bytes || p->compute_slices < compute_slices_needed) {
        continue;
      }
      if (model_best == nullptr || key(*p) < key(*model_best)) model_best = p;
    }
    if (model_best == nullptr) continue;
    per_model.emplace_back(allowed.gpu_model, model_best);
    if (best == nullptr || key(*model_best) < key(*best)) best = model_best;
  }
  if (best == nullptr) {
    std::string msg = "no MIG profile allowed by GPUSharingPolicy \"" + policy.name + "\"";
    if (!pinned_model.empty()) msg += " for GPU model " + std::string(pinned_model);
    msg += " fits the request (";
    msg += req.memory_bytes > 0 ? "memory " + FormatGiB(req.memory_bytes) : "any memory";
    if (req.compute_percent > 0) msg += ", compute " + std::to_string(req.compute_percent) + "%";
    msg += ")";
    if (largest != nullptr) msg += "; the largest allowed is " + std::string(largest->name);
    return NotFoundError(msg);
  }
  MigChoice choice;
  choice.profile = std::string(best->name);
  for (const auto& [model, p] : per_model) {
    if (p->name == best->name) choice.gpu_models.push_back(model);
  }
  return choice;
}

PodMutation MutatePodWithPolicy(const PodInfo& pod, const GpuSharingPolicy& policy) {
  PodMutation m;
  m.policy = &policy;
  auto req = ParseGpuRequirement(pod.annotations);
  if (!req.ok()) return Deny(req.error().message());
  const std::string pinned = PinnedModel(pod);

  std::string resource(kResourceGpu);
  std::string mig_profile;
  std::vector<std::string> models;
  for (const std::string& model : policy.gpu_models) {
    if (pinned.empty() || model == pinned) models.push_back(model);
  }
  std::optional<Expression> mode_expression;
  switch (policy.strategy) {
    case SharingStrategy::kExclusive:
      break;
    case SharingStrategy::kTimeSlicing:
      resource = kResourceSharedGpu;
      mode_expression = Expression{std::string(kLabelSharingStrategy), {"time-slicing"}};
      break;
    case SharingStrategy::kMps:
      resource = kResourceSharedGpu;
      mode_expression = Expression{std::string(kLabelSharingStrategy), {"mps"}};
      break;
    case SharingStrategy::kMig: {
      if (req->memory_bytes == 0 && req->compute_percent == 0) {
        m.policy = nullptr;
        m.warnings.push_back("GPUSharingPolicy \"" + policy.name +
                             "\" shares GPUs with MIG, but the pod sets neither " +
                             std::string(kAnnotationGpuMemory) + " nor " +
                             std::string(kAnnotationGpuCompute) + "; it keeps whole GPUs");
        return m;
      }
      auto choice = ChooseMigProfile(policy, *req, pinned);
      if (!choice.ok()) return Deny(choice.error().message());
      mig_profile = choice->profile;
      resource = gpu::MigResourceName(mig_profile);
      models = choice->gpu_models;
      mode_expression = Expression{std::string(kLabelMigStrategy), {"mixed"}};
      break;
    }
  }

  // MPS limits: the pod's annotations, bounded by the policy.
  int thread_percent = 0;
  int64_t pinned_bytes = 0;
  if (policy.strategy == SharingStrategy::kMps) {
    thread_percent = policy.mps.active_thread_percentage;
    if (req->compute_percent > 0) {
      if (thread_percent > 0 && req->compute_percent > thread_percent) {
        return Deny(std::string(kAnnotationGpuCompute) + " " +
                    std::to_string(req->compute_percent) + "% exceeds the " +
                    std::to_string(thread_percent) +
                    "% activeThreadPercentage of GPUSharingPolicy \"" + policy.name + "\"");
      }
      thread_percent = req->compute_percent;
    }
    pinned_bytes = policy.mps.pinned_memory_limit_bytes;
    if (req->memory_bytes > 0) {
      if (pinned_bytes > 0 && req->memory_bytes > pinned_bytes) {
        return Deny(std::string(kAnnotationGpuMemory) + " " + FormatGiB(req->memory_bytes) +
                    " exceeds the pinnedMemoryLimit " + policy.mps.pinned_memory_limit +
                    " of GPUSharingPolicy \"" + policy.name + "\"");
      }
      pinned_bytes = req->memory_bytes;
    }
  }

  PatchBuilder patch;
  std::string original = "{";
  bool any_gpu_container = false;
  auto rewrite = [&](const std::vector<ContainerInfo>& list, std::string_view prefix) {
    for (size_t i = 0; i < list.size(); ++i) {
      const ContainerInfo& c = list[i];
      if (!RequestsWholeGpu(c)) continue;
      any_gpu_container = true;
      const std::string base = std::string(prefix) + std::to_string(i) + "/resources/";
      std::string_view count = FindResource(c.limits, kResourceGpu);
      if (count.empty()) count = FindResource(c.requests, kResourceGpu);
      if (original.size() > 1) original.push_back(',');
      AppendJsonString(original, c.name);
      original += ":{";
      AppendJsonString(original, kResourceGpu);
      original.push_back(':');
      AppendJsonString(original, count);
      original.push_back('}');
      if (resource != kResourceGpu) {
        for (const auto& [section, entries] :
             {std::pair{"limits", &c.limits}, std::pair{"requests", &c.requests}}) {
          std::string_view qty = FindResource(*entries, kResourceGpu);
          if (qty.empty() && !HasResource(*entries, kResourceGpu)) continue;
          const std::string dir = base + section + "/";
          patch.Remove(dir + EscapeJsonPointerToken(kResourceGpu));
          patch.Add(dir + EscapeJsonPointerToken(resource), JsonString(qty));
        }
      }
      if (policy.strategy == SharingStrategy::kMps) {
        auto gpus = kube::ParseQuantity(count);
        std::vector<std::pair<std::string, std::string>> env;
        if (thread_percent > 0) {
          env.emplace_back("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", std::to_string(thread_percent));
        }
        if (pinned_bytes > 0) {
          env.emplace_back("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT",
                           MibLimit(pinned_bytes, gpus.ok() ? *gpus : 1));
        }
        std::erase_if(env, [&](const auto& kv) {
          return std::find(c.env_names.begin(), c.env_names.end(), kv.first) != c.env_names.end();
        });
        auto var = [](const std::pair<std::string, std::string>& kv) {
          return R"({"name":)" + JsonString(kv.first) + R"(,"value":)" + JsonString(kv.second) +
                 "}";
        };
        const std::string env_path = std::string(prefix) + std::to_string(i) + "/env";
        if (!c.has_env && !env.empty()) {
          std::string list_json = "[";
          for (size_t k = 0; k < env.size(); ++k)
            list_json += (k ? "," : "") + var(env[k]);
          patch.Add(env_path, list_json + "]");
        } else {
          for (const auto& kv : env)
            patch.Add(env_path + "/-", var(kv));
        }
      }
    }
  };
  rewrite(pod.init_containers, "/spec/initContainers/");
  rewrite(pod.containers, "/spec/containers/");
  original.push_back('}');

  if (!any_gpu_container) {
    // Only the sharing annotations ask for a GPU: give the first container one.
    if (pod.containers.empty() || HasAnyNvidiaResource(pod)) return m;
    const ContainerInfo& c = pod.containers[0];
    const std::string one = "{" + JsonString(resource) + R"(:"1"})";
    const std::string base = "/spec/containers/0/resources";
    if (!c.has_resources) {
      patch.Add(base, R"({"limits":)" + one + R"(,"requests":)" + one + "}");
    } else {
      for (auto [section, present] :
           {std::pair{"limits", c.has_limits}, std::pair{"requests", c.has_requests}}) {
        if (present) {
          patch.Add(base + "/" + section + "/" + EscapeJsonPointerToken(resource), R"("1")");
        } else {
          patch.Add(base + "/" + section, one);
        }
      }
    }
  }

  std::vector<Expression> exprs;
  if (!models.empty()) {
    std::set<std::string> products;
    for (const std::string& model : models) {
      if (const gpu::GpuSpec* spec = gpu::FindGpu(model)) {
        for (std::string_view label : spec->product_labels)
          products.emplace(label);
      }
    }
    exprs.push_back(Expression{std::string(kLabelGpuProduct), {products.begin(), products.end()}});
  }
  if (mode_expression) exprs.push_back(*mode_expression);
  AddNodeAffinity(pod, exprs, patch);

  std::vector<std::pair<std::string_view, std::string>> notes = {
      {kAnnotationPolicy, policy.name},
      {kAnnotationMode, std::string(StrategyName(policy.strategy))},
      {kAnnotationOriginalRequest, original},
  };
  if (!mig_profile.empty()) notes.emplace_back(kAnnotationMigProfile, mig_profile);
  if (policy.strategy == SharingStrategy::kTimeSlicing) {
    notes.emplace_back(kAnnotationReplicas, std::to_string(policy.time_slicing.replicas));
  } else if (policy.strategy == SharingStrategy::kMps) {
    notes.emplace_back(kAnnotationReplicas, std::to_string(policy.mps.max_clients));
    if (policy.mps.active_thread_percentage > 0) {
      notes.emplace_back(kAnnotationMpsThreadPercentage,
                         std::to_string(policy.mps.active_thread_percentage));
    }
  }
  // Annotations already right stay untouched, and the first original request
  // is never overwritten: a second pass over a rewritten pod adds nothing.
  std::erase_if(notes, [&](const auto& note) {
    auto it = pod.annotations.find(std::string(note.first));
    if (it == pod.annotations.end()) return false;
    return note.first == kAnnotationOriginalRequest || it->second == note.second;
  });
  if (notes.empty()) {
    // nothing to record
  } else if (!pod.has_annotations) {
    std::string map = "{";
    for (size_t i = 0; i < notes.size(); ++i) {
      if (i > 0) map.push_back(',');
      AppendJsonString(map, notes[i].first);
      map.push_back(':');
      AppendJsonString(map, notes[i].second);
    }
    map.push_back('}');
    if (pod.has_metadata) {
      patch.Add("/metadata/annotations", map);
    } else {
      patch.Add("/metadata", R"({"annotations":)" + map + "}");
    }
  } else {
    for (const auto& [key, value] : notes) {
      patch.Add("/metadata/annotations/" + EscapeJsonPointerToken(key), JsonString(value));
    }
  }
  m.patch = std::move(patch).Finish();
  return m;
}

PodMutation MutatePod(const PodInfo& pod, const PolicySet& policies, const MutationOptions& opts) {
  PodMutation none;
  if (!pod.shape_ok || IsExcluded(opts.excluded_namespaces, pod.ns)) return none;
  const auto& ann = pod.annotations;
  if (auto it = ann.find(std::string(kAnnotationSharing));
      it != ann.end() && it->second == "disabled") {
    return none;
  }
  if (ann.count(std::string(kAnnotationMode)) > 0) return none;  // already decided
  const bool wants_gpu =
      ann.count(std::string(kAnnotationGpuMemory)) > 0 ||
      ann.count(std::string(kAnnotationGpuCompute)) > 0 ||
      std::any_of(pod.containers.begin(), pod.containers.end(), RequestsWholeGpu) ||
      std::any_of(pod.init_containers.begin(), pod.init_containers.end(), RequestsWholeGpu);
  if (!wants_gpu) return none;
  const std::string pinned = PinnedModel(pod);
  PodSubject subject{opts.namespace_labels, &pod.labels, pinned};
  const GpuSharingPolicy* policy = policies.Match(subject);
  if (policy == nullptr) return none;
  return MutatePodWithPolicy(pod, *policy);
}

}  // namespace gpu_autoscaler::webhooks
