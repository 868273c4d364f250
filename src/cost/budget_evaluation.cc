#include "cost/budget_evaluation.h"

#include <algorithm>
#include <map>

namespace gpu_autoscaler::cost {

Result<std::vector<ScopedSpendRow>> QueryScopedSpend(CostStore& store, int64_t since, int64_t now) {
  CostQuery query{.window = {since, std::max(now, since + 1)},
                  .resolution = Resolution::kMinute,
                  .group_by = {Dimension::kNamespace, Dimension::kTeam, Dimension::kProject,
                               Dimension::kExperiment},
                  .bucket = Resolution::kHour};
  GPU_ASSIGN_OR_RETURN(CostReport report, store.Query(query));
  std::vector<ScopedSpendRow> rows;
  rows.reserve(report.rows.size());
  for (CostRow& row : report.rows) {
    ScopedSpendRow out;
    out.idle = row.idle;
    if (!row.idle && row.keys.size() == 4) {
      out.ns = std::move(row.keys[0]);
      out.team = std::move(row.keys[1]);
      out.project = std::move(row.keys[2]);
      out.experiment = std::move(row.keys[3]);
    }
    out.bucket = row.bucket;
    out.cost = row.totals.total_cost();
    rows.push_back(std::move(out));
  }
  return rows;
}

int64_t EarliestPeriodStart(std::span<const Budget> budgets, int64_t now) {
  int64_t earliest = now;
  for (const Budget& b : budgets)
    earliest = std::min(earliest, b.spec.PeriodAt(now).start);
  return earliest;
}

BudgetEvaluation EvaluateBudget(const Budget& budget, std::span<const ScopedSpendRow> rows,
                                int64_t now, const AttributionLabels& keys) {
  BudgetEvaluation out;
  out.period = budget.spec.PeriodAt(now);
  out.amount = budget.spec.amount;
  const bool cluster_wide = budget.spec.scope.cluster_wide();
  std::vector<double> hourly(
      static_cast<size_t>(std::max<int64_t>(0, now - out.period.start + 3599) / 3600), 0.0);
  std::map<std::string, std::string> labels;
  for (const ScopedSpendRow& row : rows) {
    if (row.bucket < out.period.start || row.bucket >= out.period.end) continue;
    bool in_scope;
    if (row.idle) {
      in_scope = cluster_wide;
    } else {
      labels.clear();
      if (!row.team.empty()) labels[keys.team] = row.team;
      if (!row.project.empty()) labels[keys.project] = row.project;
      if (!row.experiment.empty()) labels[keys.experiment] = row.experiment;
      in_scope = budget.spec.scope.Matches(row.ns, labels);
    }
    if (!in_scope) continue;
    const size_t index = static_cast<size_t>((row.bucket - out.period.start) / 3600);
    if (index >= hourly.size()) hourly.resize(index + 1, 0.0);
    hourly[index] += row.cost;
  }
  out.forecast = ForecastPeriod(hourly, 3600, out.period, now);
  return out;
}

}  // namespace gpu_autoscaler::cost
