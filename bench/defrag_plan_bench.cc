// A GPU defragmentation plan for the openb cluster (1,213 nodes, 6,212 GPUs)
// filled with FGD to 100% arrived GPU demand (default trace, seed 42): the
// planner's wall time for 1, 10 and 50 moves, with lookahead (the default)
// and without. Target: under 1 s.
//
//   build/default/bench/defrag_plan_bench
#include <benchmark/benchmark.h>

#include "defrag_openb_util.h"
#include "placement_bench_util.h"

namespace gpu_autoscaler::autoscale::bench {
namespace {

const FilledCluster& Filled() {
  static const FilledCluster filled = FillWithFgd(OpenbTrace("default"), 42, 1.0);
  return filled;
}

void BM_DefragPlanOpenb(benchmark::State& state) {
  const FilledCluster& f = Filled();
  const DefragOptions options{.max_moves = static_cast<int>(state.range(0)),
                              .min_gain_milli = 1,
                              .lookahead = static_cast<int>(state.range(1))};
  double recovered = 0;
  size_t moves = 0;
  for (auto _ : state) {
    Result<DefragPlan> plan = PlanDefragmentation(f.cluster, f.placed, f.trace->workload, options);
    if (!plan.ok()) {
      state.SkipWithError(plan.error().ToString().c_str());
      return;
    }
    recovered = plan->recovered_milli();
    moves = plan->moves.size();
  }
  state.counters["moves"] = static_cast<double>(moves);
  state.counters["recovered_gpus"] = recovered / 1000.0;
  state.counters["candidates"] = static_cast<double>(f.placed.size());
}
BENCHMARK(BM_DefragPlanOpenb)
    ->ArgNames({"moves", "lookahead"})
    ->Args({1, 8})
    ->Args({10, 8})
    ->Args({50, 8})
    ->Args({10, 0})
    ->Args({50, 0})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

}  // namespace
}  // namespace gpu_autoscaler::autoscale::bench

BENCHMARK_MAIN();
