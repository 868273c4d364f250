// File: src/cost/budget_evaluation.h
//
// How much each Budget has spent in its current period, and where it is
// heading, from the cost history. One store query serves any number of
// Budgets: hourly spend per attribution group (namespace, team, project,
// experiment) since the earliest period start. Each Budget then matches its
// scope once per group, not once per row, and sums the matching groups'
// hours, so 1,000 Budgets over 30 days cost one query plus
// Budgets x groups scope checks. The budget controller and
// `gpu-autoscaler budget status` both use it.
//
//   GPU_ASSIGN_OR_RETURN(ScopedSpend spend,
//                        QueryScopedSpend(store, EarliestPeriodStart(budgets, now), now));
//   for (const Budget& b : budgets) {
//     BudgetEvaluation e = EvaluateBudget(b, spend, now);
//     status["currentSpend"] = e.forecast.spent;
//   }
//
// Thread-safety: pure functions, except QueryScopedSpend, which uses the
// (not thread-safe) store it is given. A ScopedSpend is immutable once built
// and may be shared between threads.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "cost/budget.h"
#include "cost/forecast.h"
#include "cost/metering.h"
#include "cost/store.h"

namespace gpu_autoscaler::cost {

// Spend of one attribution group, by hour.
struct SpendGroup {
  std::string key{};  // identity of the group (namespace and label values)
  std::string ns{};
  std::map<std::string, std::string> labels{};  // attribution label key -> value (set ones only)
  bool idle = false;  // idle capacity: counts only for cluster-wide budgets
  std::vector<std::pair<int64_t, double>> hourly{};  // (hour start, cost), ascending
};

struct ScopedSpend {
  int64_t since = 0;
  int64_t until = 0;
  std::vector<SpendGroup> groups{};
};

// Hourly spend in [since, now), grouped by namespace and attribution labels.
Result<ScopedSpend> QueryScopedSpend(CostStore& store, int64_t since, int64_t now,
                                     const AttributionLabels& keys = {});

// Brings `base` up to date with `fresh`, a later query that starts on a whole
// hour inside `base`'s window: `base`'s buckets from fresh.since on are
// replaced, earlier (closed) hours are kept. So a controller re-reads only the
// last hours on each pass, and the whole window now and then for late data.
void MergeScopedSpend(ScopedSpend& base, const ScopedSpend& fresh);

// The earliest current-period start over `budgets` (now when there are none).
int64_t EarliestPeriodStart(std::span<const Budget> budgets, int64_t now);

struct BudgetEvaluation {
  PeriodWindow period{};
  PeriodForecast forecast{};  // forecast.spent is the spend so far this period
  double amount = 0;          // the Budget's amount per period
  // spent / amount x 100 (0 for a non-positive amount).
  double percent() const { return amount > 0 ? forecast.spent / amount * 100 : 0; }
};

// Spend in `budget`'s current period from `spend` (which must cover it).
// `namespaces`: the labels of each Namespace, for a ClusterBudget's
// namespaceSelector (a namespace missing from it is not selected).
BudgetEvaluation EvaluateBudget(const Budget& budget, const ScopedSpend& spend, int64_t now,
                                const NamespaceLabelIndex* namespaces = nullptr);

}  // namespace gpu_autoscaler::cost
