// File: webhooks/budget_admission.h
//
// Budget enforcement at pod admission: a new GPU pod in the scope of a Budget
// or ClusterBudget whose spec.enforcement is blockNewGPUPods and whose spend,
// as the manager's budget controller last wrote it in the status, has reached
// spec.amount in the current period is denied.
//
//   BudgetLoad load = LoadBudgets(json_texts);   // Budget and ClusterBudget informers' stores
//   auto gate = std::make_shared<BudgetGate>();
//   gate->SetBudgets(std::move(load.budgets));
//   std::optional<std::string> why = gate->Check(pod, namespace_labels);
//   // why: "GPU pod denied: budget ml/gpu-monthly is exhausted (1012.40 of 1000.00 USD ...)"
//   //   or  "GPU pod denied: ClusterBudget org-gpu is exhausted (...)"
//
// The status contract (written by the controller, read here):
//   status.currentSpend        number, spend in scope during [periodStart, periodEnd)
//   status.periodStart/End     RFC 3339
//   status.observedGeneration  the metadata.generation the spend was computed for
// A Budget counts as exhausted only while now is in [periodStart, periodEnd),
// currentSpend >= spec.amount, and the status is not older than the spec
// (observedGeneration, when written, >= metadata.generation). Stale data never
// blocks: a new period or an edited spec waits for the controller.
// Scope matching and the message come from cost::BudgetEnforcer.
//
// Exempt: pods annotated gpuautoscaler.io/budget-exempt: "true", pods in
// namespaces labelled gpuautoscaler.io/budget-exempt=true (src/api/annotations.h),
// and pods that request no GPU.
//
// Thread-safety: LoadBudgets and GpuCount are pure. BudgetGate's methods may
// be called from any thread; SetBudgets swaps a snapshot under a lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "cost/budget.h"
#include "webhooks/review.h"

namespace gpu_autoscaler::webhooks {

// What the budget controller last wrote in a Budget's status.
struct BudgetStatus {
  double current_spend = 0;
  int64_t period_start = 0;  // Unix seconds
  int64_t period_end = 0;
  std::optional<int64_t> observed_generation{};
};

// A Budget custom resource as the webhook needs it.
struct BudgetObject {
  cost::Budget budget{};
  int64_t generation = 0;                // metadata.generation (0 if absent)
  std::optional<BudgetStatus> status{};  // absent until the controller wrote one
};

// Parses a Budget or ClusterBudget (JSON as the API server sends it). The spec
// goes through cost::ParseBudget, so errors name the field
// ("<source>: spec.thresholds[1]: ..."). A status that is missing, or lacks
// currentSpend/periodStart/periodEnd, leaves `status` empty; a status with a
// field of the wrong type or an unparsable time is an error.
Result<BudgetObject> ParseBudgetObject(std::string_view json, std::string_view source_name,
                                       const cost::AttributionLabels& keys = {});

struct BudgetLoad {
  std::vector<BudgetObject> budgets{};
  std::vector<std::string> errors{};  // one per object that did not parse, naming it
};

// Parses every object; the ones that do not parse are reported and skipped.
BudgetLoad LoadBudgets(std::span<const std::string> jsons,
                       const cost::AttributionLabels& keys = {});

// GPUs (or MIG devices, or shared GPU replicas) a pod asks for: the sum over
// containers of nvidia.com/gpu, nvidia.com/gpu.shared and nvidia.com/mig-*
// (limits, else requests), at least the largest init container's, and 1 for a
// pod that only carries gpu-memory/gpu-compute annotations. 0: not a GPU pod.
double GpuCount(const PodInfo& pod);

class BudgetGate {
 public:
  // A Budget blocks only pods in its own namespace, as a ResourceQuota does
  // (cost::ParseBudget pins its scope there), so that whoever may create a
  // Budget in one namespace cannot stop GPU pods in others; a ClusterBudget
  // blocks pods in every namespace its scope covers.
  explicit BudgetGate(Clock* clock = &RealClock::Instance(), cost::AttributionLabels keys = {});

  // Replaces the budgets (e.g. on every Budget or ClusterBudget informer event).
  void SetBudgets(std::vector<BudgetObject> budgets);

  // Why `pod` may not start, or nullopt when it may. `namespace_labels` are the
  // labels of the pod's namespace (for the exemption label and ClusterBudget
  // namespace selectors).
  std::optional<std::string> Check(
      const PodInfo& pod, const std::map<std::string, std::string>& namespace_labels) const;

  // True when some Budget could deny a pod right now (cheap; lets callers skip
  // the namespace label lookup).
  bool MayDeny() const;

  const cost::AttributionLabels& keys() const { return keys_; }

 private:
  // Feeds the enforcer the budgets that are exhausted at `now` and records
  // the window [valid_from_, valid_until_) in which that set cannot change.
  void Rebuild(int64_t now) const;
  void RefreshIfNeeded() const;

  Clock* clock_;
  cost::AttributionLabels keys_;
  mutable std::mutex mu_;
  std::vector<BudgetObject> budgets_;  // guarded by mu_
  mutable cost::BudgetEnforcer enforcer_;
  mutable std::atomic<int64_t> valid_from_{0};
  mutable std::atomic<int64_t> valid_until_{0};
  mutable std::atomic<bool> any_exhausted_{false};
};

}  // namespace gpu_autoscaler::webhooks
