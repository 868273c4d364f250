#include "cost/budget_evaluation.h"

#include <algorithm>
#include <unordered_map>

namespace gpu_autoscaler::cost {

Result<ScopedSpend> QueryScopedSpend(CostStore& store, int64_t since, int64_t now,
                                     const AttributionLabels& keys) {
  // Hour precision is exact when the window starts on a whole hour (daily,
  // weekly and monthly periods do): the hourly rollup includes the current,
  // partial hour, since rollups are written with the samples.
  CostQuery query{.window = {since, std::max(now, since + 1)},
                  .resolution = since % 3600 == 0 ? Resolution::kHour : Resolution::kMinute,
                  .group_by = {Dimension::kNamespace, Dimension::kTeam, Dimension::kProject,
                               Dimension::kExperiment},
                  .bucket = Resolution::kHour};
  GPU_ASSIGN_OR_RETURN(CostReport report, store.Query(query));
  ScopedSpend out;
  out.since = since;
  out.until = now;
  std::unordered_map<std::string, size_t> index;
  std::string key;
  for (const CostRow& row : report.rows) {
    key.clear();
    if (row.idle) {
      key = "\x01idle";
    } else {
      for (const std::string& k : row.keys)
        (key += k) += '\x1f';
    }
    auto [it, inserted] = index.emplace(key, out.groups.size());
    if (inserted) {
      SpendGroup g;
      g.key = key;
      g.idle = row.idle;
      if (!row.idle && row.keys.size() == 4) {
        g.ns = row.keys[0];
        if (!row.keys[1].empty()) g.labels[keys.team] = row.keys[1];
        if (!row.keys[2].empty()) g.labels[keys.project] = row.keys[2];
        if (!row.keys[3].empty()) g.labels[keys.experiment] = row.keys[3];
      }
      out.groups.push_back(std::move(g));
    }
    out.groups[it->second].hourly.emplace_back(row.bucket, row.totals.total_cost());
  }
  for (SpendGroup& g : out.groups)
    std::sort(g.hourly.begin(), g.hourly.end());
  return out;
}

void MergeScopedSpend(ScopedSpend& base, const ScopedSpend& fresh) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < base.groups.size(); ++i) {
    index.emplace(base.groups[i].key, i);
    auto& hourly = base.groups[i].hourly;
    hourly.erase(
        std::lower_bound(hourly.begin(), hourly.end(), std::make_pair(fresh.since, -1e300)),
        hourly.end());
  }
  for (const SpendGroup& g : fresh.groups) {
    auto [it, inserted] = index.emplace(g.key, base.groups.size());
    if (inserted) {
      base.groups.push_back(g);
      continue;
    }
    auto& hourly = base.groups[it->second].hourly;
    hourly.insert(hourly.end(), g.hourly.begin(), g.hourly.end());
  }
  base.until = std::max(base.until, fresh.until);
}

int64_t EarliestPeriodStart(std::span<const Budget> budgets, int64_t now) {
  int64_t earliest = now;
  for (const Budget& b : budgets)
    earliest = std::min(earliest, b.spec.PeriodAt(now).start);
  return earliest;
}

BudgetEvaluation EvaluateBudget(const Budget& budget, const ScopedSpend& spend, int64_t now,
                                const NamespaceLabelIndex* namespaces) {
  BudgetEvaluation out;
  out.period = budget.spec.PeriodAt(now);
  out.amount = budget.spec.amount;
  const bool cluster_wide = budget.spec.scope.cluster_wide();
  std::vector<double> hourly(
      static_cast<size_t>(std::max<int64_t>(0, now - out.period.start + 3599) / 3600), 0.0);
  for (const SpendGroup& g : spend.groups) {
    const LabelMap* ns_labels = nullptr;
    if (namespaces != nullptr && !g.idle) {
      auto it = namespaces->find(g.ns);
      if (it != namespaces->end()) ns_labels = &it->second;
    }
    const bool in_scope =
        g.idle ? cluster_wide : budget.spec.scope.Matches(g.ns, g.labels, ns_labels);
    if (!in_scope) continue;
    auto it =
        std::lower_bound(g.hourly.begin(), g.hourly.end(), std::make_pair(out.period.start, -1.0));
    for (; it != g.hourly.end() && it->first < out.period.end; ++it) {
      const size_t index = static_cast<size_t>((it->first - out.period.start) / 3600);
      if (index >= hourly.size()) hourly.resize(index + 1, 0.0);
      hourly[index] += it->second;
    }
  }
  out.forecast = ForecastPeriod(hourly, 3600, out.period, now);
  return out;
}

}  // namespace gpu_autoscaler::cost
