// File: src/cost/budget_evaluation.h
//
// How much each Budget has spent in its current period, and where it is
// heading, from the cost history. One store query serves any number of
// Budgets: hourly spend per (namespace, team, project, experiment) since the
// earliest period start, then each Budget's scope is matched in memory. The
// budget controller and `gpu-autoscaler budget status` both use it.
//
//   GPU_ASSIGN_OR_RETURN(auto rows, QueryScopedSpend(store, EarliestPeriodStart(budgets, now),
//   now)); for (const Budget& b : budgets) {
//     BudgetEvaluation e = EvaluateBudget(b, rows, now);
//     status["currentSpend"] = e.forecast.spent;
//   }
//
// Thread-safety: pure functions, except QueryScopedSpend, which uses the
// (not thread-safe) store it is given.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "cost/budget.h"
#include "cost/forecast.h"
#include "cost/metering.h"
#include "cost/store.h"

namespace gpu_autoscaler::cost {

// Spend of one attribution group in one hour bucket.
struct ScopedSpendRow {
  std::string ns{};
  std::string team{};
  std::string project{};
  std::string experiment{};
  bool idle = false;   // idle capacity: counts only for cluster-wide budgets
  int64_t bucket = 0;  // start of the hour (Unix seconds)
  double cost = 0;     // total cost in the part of the bucket inside the query window
};

// Hourly spend since `since` up to `now`, grouped by the attribution labels.
Result<std::vector<ScopedSpendRow>> QueryScopedSpend(CostStore& store, int64_t since, int64_t now);

// The earliest current-period start over `budgets` (now when there are none).
int64_t EarliestPeriodStart(std::span<const Budget> budgets, int64_t now);

struct BudgetEvaluation {
  PeriodWindow period{};
  PeriodForecast forecast{};  // forecast.spent is the spend so far this period
  double amount = 0;          // the Budget's amount per period
  // spent / amount x 100 (0 for a non-positive amount).
  double percent() const { return amount > 0 ? forecast.spent / amount * 100 : 0; }
};

// Spend in `budget`'s current period from `rows` (which must cover it).
BudgetEvaluation EvaluateBudget(const Budget& budget, std::span<const ScopedSpendRow> rows,
                                int64_t now, const AttributionLabels& keys = {});

}  // namespace gpu_autoscaler::cost
