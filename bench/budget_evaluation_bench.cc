// Budget evaluation (docs/benchmarks.md, "Budgets").
//
//   BM_BudgetEvaluationPass   one pass of the budget controller's evaluation
//                             over 1,000 Budgets and 30 days of history: the
//                             one shared spend query plus every Budget's
//                             scope match and forecast (target: under 1 s)
//   BM_BudgetEvaluationPassWarm  the same pass as the controller runs it between
//                             full reads: closed hours are cached, the last two
//                             hours are re-read and merged, then every Budget
//                             is evaluated
//   BM_EvaluateOnly           the in-memory half alone (rows already read)
//
// The history is 30 days of a 2,000-pod cluster in 1,000 namespaces and 100
// teams, one sample per pod per 10 minutes (8.6 M samples through the public
// Append, so the 1-minute and 1-hour rollups are the store's own). It is
// built once per run in a temporary SQLite file.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cost/budget.h"
#include "cost/budget_evaluation.h"
#include "cost/sqlite_store.h"
#include "cost/store_factory.h"

namespace gpu_autoscaler::cost {
namespace {

constexpr int64_t kStart = 1'793'491'200;          // 2026-11-01T00:00:00Z
constexpr int64_t kNow = kStart + 30 * 86400 - 1;  // the last second of November
constexpr int kPods = 2000;
constexpr int kBudgets = 1000;

std::filesystem::path DbPath() {
  return std::filesystem::temp_directory_path() /
         ("gpa-budget-bench-" + std::to_string(::getpid()) + ".db");
}

CostStore& History() {
  static std::unique_ptr<CostStore> store = [] {
    const auto path = DbPath();
    for (const char* suffix : {"", "-wal", "-shm"})
      std::filesystem::remove(path.string() + suffix);
    auto opened = OpenCostStore(path.string());
    if (!opened.ok()) std::abort();
    std::vector<CostSample> batch;
    for (int64_t t = kStart; t < kNow; t += 600) {
      batch.clear();
      for (int i = 0; i < kPods; ++i) {
        CostSample s;
        s.pod_uid = "pod-" + std::to_string(i);
        s.pod_name = "worker-" + std::to_string(i);
        s.ns = "ns-" + std::to_string(i % 1000);
        s.team = "team-" + std::to_string(i % 100);
        s.project = "project-" + std::to_string(i % 40);
        s.node = "node-" + std::to_string(i % 250);
        s.gpu_model = "A100-SXM4-80GB";
        s.second = t + (i % 600);
        s.gpu_share = 1;
        s.gpu_cost = 0.0014 * 600;  // the pod's ten minutes, folded into one sample
        s.cpu_cost = 0.0001 * 600;
        batch.push_back(std::move(s));
      }
      if (!(*opened)->Append(batch).ok()) std::abort();
    }
    return std::move(*opened);
  }();
  return *store;
}

// 600 namespace Budgets, 300 team Budgets, 100 cluster-wide or mixed ones;
// monthly, weekly and daily periods.
std::vector<Budget> MakeBudgets() {
  std::vector<Budget> budgets;
  for (int i = 0; i < kBudgets; ++i) {
    Budget b;
    b.ns = "ns-" + std::to_string(i % 1000);
    b.name = "budget-" + std::to_string(i);
    b.spec.amount = 500 + i;
    b.spec.period = i % 3 == 0 ? BudgetPeriod::kMonthly
                               : (i % 3 == 1 ? BudgetPeriod::kWeekly : BudgetPeriod::kDaily);
    if (i < 600) {
      b.spec.scope.namespaces = {b.ns};
    } else if (i < 900) {
      b.spec.scope.match_labels = {{"team", "team-" + std::to_string(i % 100)}};
    } else if (i % 2 == 0) {
      b.spec.scope.namespaces = {"ns-1", "ns-2", "ns-3"};
      b.spec.scope.match_expressions = {{"project", LabelRequirement::Op::kNotIn, {"project-7"}}};
    }
    budgets.push_back(std::move(b));
  }
  return budgets;
}

void BM_BudgetEvaluationPass(benchmark::State& state) {
  CostStore& store = History();
  const std::vector<Budget> budgets = MakeBudgets();
  double checksum = 0;
  for (auto _ : state) {
    auto spend = QueryScopedSpend(store, EarliestPeriodStart(budgets, kNow), kNow);
    if (!spend.ok()) {
      state.SkipWithError(spend.error().ToString().c_str());
      return;
    }
    for (const Budget& b : budgets)
      checksum += EvaluateBudget(b, *spend, kNow).forecast.spent;
  }
  benchmark::DoNotOptimize(checksum);
  state.SetItemsProcessed(state.iterations() * kBudgets);
  state.counters["budgets"] = kBudgets;
}
BENCHMARK(BM_BudgetEvaluationPass)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BudgetEvaluationPassWarm(benchmark::State& state) {
  CostStore& store = History();
  const std::vector<Budget> budgets = MakeBudgets();
  auto full = QueryScopedSpend(store, EarliestPeriodStart(budgets, kNow), kNow);
  if (!full.ok()) {
    state.SkipWithError(full.error().ToString().c_str());
    return;
  }
  double checksum = 0;
  for (auto _ : state) {
    ScopedSpend spend = *full;  // the cached window, as the controller keeps it
    auto fresh = QueryScopedSpend(store, (kNow / 3600 - 1) * 3600, kNow);
    if (!fresh.ok()) {
      state.SkipWithError(fresh.error().ToString().c_str());
      return;
    }
    MergeScopedSpend(spend, *fresh);
    for (const Budget& b : budgets)
      checksum += EvaluateBudget(b, spend, kNow).forecast.spent;
  }
  benchmark::DoNotOptimize(checksum);
  state.SetItemsProcessed(state.iterations() * kBudgets);
}
BENCHMARK(BM_BudgetEvaluationPassWarm)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_EvaluateOnly(benchmark::State& state) {
  const std::vector<Budget> budgets = MakeBudgets();
  auto spend = QueryScopedSpend(History(), EarliestPeriodStart(budgets, kNow), kNow);
  if (!spend.ok()) {
    state.SkipWithError(spend.error().ToString().c_str());
    return;
  }
  double checksum = 0;
  for (auto _ : state) {
    for (const Budget& b : budgets)
      checksum += EvaluateBudget(b, *spend, kNow).forecast.spent;
  }
  benchmark::DoNotOptimize(checksum);
  state.counters["groups"] = static_cast<double>(spend->groups.size());
  state.SetItemsProcessed(state.iterations() * kBudgets);
}
BENCHMARK(BM_EvaluateOnly)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gpu_autoscaler::cost

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  const auto path = gpu_autoscaler::cost::DbPath();
  for (const char* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(path.string() + suffix);
  return 0;
}
