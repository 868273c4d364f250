#include "webhooks/budget_admission.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "api/nvidia.h"
#include "common/json_read.h"

namespace gpu_autoscaler::webhooks {
namespace {

Status StatusError(std::string_view source, const std::string& path, const std::string& problem) {
  return InvalidArgumentError(std::string(source) + ": " + path + ": " + problem);
}

// A Kubernetes quantity of devices ("1", "2", "500m" is not a device count but
// is still more than nothing). Unparsable: 1, since the pod asked for something.
double DeviceQuantity(const std::string& q) {
  char* end = nullptr;
  double v = std::strtod(q.c_str(), &end);
  if (q.empty() || end == q.c_str() || !std::isfinite(v) || v < 0) return 1;
  if (*end == 'm') v /= 1000;
  return v;
}

bool IsGpuResource(std::string_view name) {
  return name == api::kGpuResource || name == api::kSharedGpuResource ||
         name.starts_with(api::kMigResourcePrefix);
}

double ContainerGpus(const ContainerInfo& c) {
  double limits = 0, requests = 0;
  for (const auto& [name, q] : c.limits) {
    if (IsGpuResource(name)) limits += DeviceQuantity(q);
  }
  for (const auto& [name, q] : c.requests) {
    if (IsGpuResource(name)) requests += DeviceQuantity(q);
  }
  return limits > 0 ? limits : requests;
}

int64_t UnixNow(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.WallNow().time_since_epoch())
      .count();
}

}  // namespace

Result<BudgetObject> ParseBudgetObject(std::string_view json, std::string_view source_name,
                                       const cost::AttributionLabels& keys) {
  BudgetObject out;
  GPU_ASSIGN_OR_RETURN(out.budget, cost::ParseBudget(json, source_name, keys));
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgumentError(std::string(source_name) + ": not a JSON object");
  }
  if (auto meta = doc.find("metadata"); meta != doc.end() && meta->is_object()) {
    if (auto g = meta->find("generation"); g != meta->end() && g->is_number_integer()) {
      out.generation = g->get<int64_t>();
    }
  }
  auto st = doc.find("status");
  if (st == doc.end() || st->is_null()) return out;
  if (!st->is_object()) return StatusError(source_name, "status", "expected an object");
  auto spend = st->find("currentSpend");
  auto start = st->find("periodStart");
  auto end = st->find("periodEnd");
  if (spend == st->end() || start == st->end() || end == st->end()) {
    return out;  // not evaluated yet: nothing to enforce
  }
  BudgetStatus status;
  if (!spend->is_number() || !std::isfinite(spend->get<double>())) {
    return StatusError(source_name, "status.currentSpend", "expected a number");
  }
  status.current_spend = spend->get<double>();
  for (auto [node, path, field] : {std::tuple{start, "status.periodStart", &status.period_start},
                                   std::tuple{end, "status.periodEnd", &status.period_end}}) {
    if (!node->is_string()) return StatusError(source_name, path, "expected an RFC 3339 time");
    auto t = cost::ParseRfc3339(node->get<std::string>());
    if (!t.ok()) return StatusError(source_name, path, t.error().message());
    *field = *t;
  }
  if (status.period_end <= status.period_start) {
    return StatusError(source_name, "status.periodEnd", "must be after status.periodStart");
  }
  if (auto g = st->find("observedGeneration"); g != st->end() && !g->is_null()) {
    if (!g->is_number_integer()) {
      return StatusError(source_name, "status.observedGeneration", "expected an integer");
    }
    status.observed_generation = g->get<int64_t>();
  }
  out.status = status;
  return out;
}

BudgetLoad LoadBudgets(std::span<const std::string> jsons, const cost::AttributionLabels& keys) {
  BudgetLoad load;
  for (const std::string& json : jsons) {
    // Name the object in errors even when its spec is what fails.
    std::string source = "Budget";
    nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (json_read::String(doc, "kind") == "ClusterBudget") source = "ClusterBudget";
    if (const nlohmann::json* meta = json_read::Find(doc, "metadata");
        meta != nullptr && meta->is_object()) {
      const std::string ns = json_read::String(*meta, "namespace");
      const std::string name = json_read::String(*meta, "name");
      source += " " + (ns.empty() ? name : ns + "/" + name);
    }
    auto parsed = ParseBudgetObject(json, source, keys);
    if (!parsed.ok()) {
      load.errors.push_back(parsed.error().message());
      continue;
    }
    load.budgets.push_back(std::move(parsed).value());
  }
  return load;
}

double GpuCount(const PodInfo& pod) {
  double sum = 0;
  for (const ContainerInfo& c : pod.containers)
    sum += ContainerGpus(c);
  double init = 0;
  for (const ContainerInfo& c : pod.init_containers)
    init = std::max(init, ContainerGpus(c));
  sum = std::max(sum, init);
  if (sum <= 0 && (pod.annotations.contains(std::string(api::kGpuMemoryAnnotation)) ||
                   pod.annotations.contains(std::string(api::kGpuComputeAnnotation)))) {
    sum = 1;
  }
  return sum;
}

BudgetGate::BudgetGate(Clock* clock, cost::AttributionLabels keys)
    : clock_(clock), keys_(keys), enforcer_(std::move(keys)) {}

void BudgetGate::SetBudgets(std::vector<BudgetObject> budgets) {
  std::lock_guard<std::mutex> lock(mu_);
  budgets_ = std::move(budgets);
  Rebuild(UnixNow(*clock_));
}

void BudgetGate::Rebuild(int64_t now) const {
  int64_t from = std::numeric_limits<int64_t>::min();
  int64_t until = std::numeric_limits<int64_t>::max();
  std::vector<cost::BudgetSnapshot> exhausted;
  for (const BudgetObject& b : budgets_) {
    if (b.budget.spec.enforcement != cost::Enforcement::kBlockNewGpuPods || !b.status) continue;
    const BudgetStatus& s = *b.status;
    // Status written for an older spec (amount or scope since edited): wait.
    if (s.observed_generation && *s.observed_generation < b.generation) continue;
    if (now < s.period_start) {
      until = std::min(until, s.period_start);
      continue;
    }
    if (now >= s.period_end) {
      from = std::max(from, s.period_end);
      continue;
    }
    from = std::max(from, s.period_start);
    until = std::min(until, s.period_end);
    // A Budget's scope is already pinned to its own namespace (cost::ParseBudget);
    // only a ClusterBudget reaches pods in other namespaces.
    cost::BudgetSnapshot snap{b.budget, s.current_spend, {s.period_start, s.period_end}};
    if (snap.exhausted()) exhausted.push_back(std::move(snap));
  }
  any_exhausted_.store(!exhausted.empty());
  enforcer_.SetBudgets(std::move(exhausted));
  valid_from_.store(from);
  valid_until_.store(until);
}

void BudgetGate::RefreshIfNeeded() const {
  int64_t now = UnixNow(*clock_);
  if (now >= valid_from_.load() && now < valid_until_.load()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (now >= valid_from_.load() && now < valid_until_.load()) return;
  Rebuild(now);
}

bool BudgetGate::MayDeny() const {
  RefreshIfNeeded();
  return any_exhausted_.load();
}

std::optional<std::string> BudgetGate::Check(
    const PodInfo& pod, const std::map<std::string, std::string>& namespace_labels) const {
  if (!MayDeny()) return std::nullopt;
  auto exempt = pod.annotations.find(std::string(api::kBudgetExemptAnnotation));
  if (exempt != pod.annotations.end() && exempt->second == api::kTrue) return std::nullopt;
  auto ns_exempt = namespace_labels.find(std::string(api::kBudgetExemptNamespaceLabel));
  if (ns_exempt != namespace_labels.end() && ns_exempt->second == api::kTrue) return std::nullopt;
  cost::PodAdmissionInfo info{.ns = pod.ns,
                              .labels = pod.labels,
                              .gpus = GpuCount(pod),
                              .namespace_labels = namespace_labels};
  cost::AdmissionDecision d = enforcer_.MayStart(info);
  if (d.allowed) return std::nullopt;
  return "GPU pod denied: " + d.reason + " (enforcement blockNewGPUPods)";
}

}  // namespace gpu_autoscaler::webhooks
