#include "scheduler/preemption.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::scheduler {
namespace {

// A pod not started yet sorts as starting now: after every started pod.
int64_t StartOrLatest(const kube::PodView& pod) {
  return pod.start_time() == kube::kNoTime ? std::numeric_limits<int64_t>::max() : pod.start_time();
}

bool Protects(const DisruptionBudget& budget, const kube::PodView& pod) {
  if (budget.ns != pod.ns() || budget.selector.empty()) return false;
  std::string scratch;
  return budget.selector.Matches([&](std::string_view key) -> const std::string* {
    std::optional<std::string_view> value = pod.label(key);
    if (!value) return nullptr;
    scratch.assign(*value);
    return &scratch;
  });
}

// The earliest start among the victims of the highest priority.
int64_t EarliestStartOfTop(const std::vector<PreemptionVictim>& victims) {
  int64_t earliest = std::numeric_limits<int64_t>::max();
  if (victims.empty()) return earliest;
  const int32_t top = victims.front().priority;  // most important first
  for (const PreemptionVictim& v : victims) {
    if (v.priority == top) earliest = std::min(earliest, StartOrLatest(*v.pod));
  }
  return earliest;
}

}  // namespace

int32_t PriorityOf(const kube::PodView& pod) {
  return pod.priority().value_or(0);
}

Result<DisruptionBudget> ParseDisruptionBudget(std::string_view text) {
  nlohmann::json object = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded() || !object.is_object()) {
    return InvalidArgumentError("PodDisruptionBudget: not a JSON object");
  }
  DisruptionBudget budget;
  const nlohmann::json& meta = object.value("metadata", nlohmann::json::object());
  if (!meta.is_object()) return InvalidArgumentError("PodDisruptionBudget: bad metadata");
  // A field of the wrong type reads as absent (json::value would throw).
  auto text_of = [&meta](const char* key) {
    auto it = meta.find(key);
    return it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  budget.ns = text_of("namespace");
  budget.name = text_of("name");
  if (budget.ns.empty() || budget.name.empty()) {
    return InvalidArgumentError(
        "PodDisruptionBudget: metadata.namespace and metadata.name must be "
        "strings");
  }
  const nlohmann::json spec = object.value("spec", nlohmann::json::object());
  if (spec.is_object() && spec.contains("selector") && spec["selector"].is_object()) {
    Result<kube::LabelSelector> selector = kube::LabelSelector::FromJson(spec["selector"].dump());
    if (!selector.ok()) {
      return InvalidArgumentError("PodDisruptionBudget " + budget.ns + "/" + budget.name +
                                  ": spec.selector: " + selector.error().message());
    }
    budget.selector = std::move(selector).value();
  }
  const nlohmann::json status = object.value("status", nlohmann::json::object());
  if (status.is_object()) {
    if (auto it = status.find("disruptionsAllowed");
        it != status.end() && it->is_number_integer()) {
      budget.disruptions_allowed = it->get<int64_t>();
    }
    if (auto it = status.find("disruptedPods"); it != status.end() && it->is_object()) {
      for (const auto& [name, when] : it->items())
        budget.disrupted_pods.insert(name);
    }
  }
  return budget;
}

bool MoreImportant(const PreemptionVictim& a, const PreemptionVictim& b) {
  if (a.priority != b.priority) return a.priority > b.priority;
  return StartOrLatest(*a.pod) < StartOrLatest(*b.pod);
}

int MarkBudgetViolations(std::vector<PreemptionVictim>* victims,
                         const std::vector<DisruptionBudget>& budgets) {
  std::stable_sort(victims->begin(), victims->end(), MoreImportant);
  std::vector<int64_t> allowed;
  allowed.reserve(budgets.size());
  for (const DisruptionBudget& b : budgets)
    allowed.push_back(b.disruptions_allowed);
  int marked = 0;
  for (PreemptionVictim& v : *victims) {
    v.violates_budget = false;
    for (size_t i = 0; i < budgets.size(); ++i) {
      if (!Protects(budgets[i], *v.pod)) continue;
      // Already disrupted through the API server: counted in the status.
      if (budgets[i].disrupted_pods.count(std::string(v.pod->name()))) continue;
      if (--allowed[i] < 0) v.violates_budget = true;
    }
    marked += v.violates_budget;
  }
  return marked;
}

void ChargeBudgets(std::vector<DisruptionBudget>* budgets, const kube::PodView& victim) {
  for (DisruptionBudget& b : *budgets) {
    if (!Protects(b, victim)) continue;
    if (b.disrupted_pods.insert(std::string(victim.name())).second) --b.disruptions_allowed;
  }
}

int CompareByVictims(const PreemptionCandidate& a, const PreemptionCandidate& b) {
  auto order = [](auto x, auto y) { return x < y ? -1 : (x > y ? 1 : 0); };
  if (int c = order(a.budget_violations, b.budget_violations)) return c;
  auto highest = [](const PreemptionCandidate& c) {
    return c.victims.empty() ? std::numeric_limits<int64_t>::min()
                             : static_cast<int64_t>(c.victims.front().priority);
  };
  if (int c = order(highest(a), highest(b))) return c;
  // Shifted so that negative priorities still add up to more with more pods.
  auto sum = [](const PreemptionCandidate& c) {
    int64_t total = 0;
    for (const PreemptionVictim& v : c.victims)
      total += static_cast<int64_t>(v.priority) + std::numeric_limits<int32_t>::max() + 1;
    return total;
  };
  if (int c = order(sum(a), sum(b))) return c;
  if (int c = order(a.victims.size(), b.victims.size())) return c;
  return order(EarliestStartOfTop(b.victims), EarliestStartOfTop(a.victims));  // later wins
}

bool PreemptsBetter(const PreemptionCandidate& a, const PreemptionCandidate& b) {
  if (int c = CompareByVictims(a, b)) return c < 0;
  if (a.score != b.score) return a.score > b.score;
  return a.order < b.order;
}

}  // namespace gpu_autoscaler::scheduler
