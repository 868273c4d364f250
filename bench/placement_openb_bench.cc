// One openb default experiment (1,213 nodes, ~10.8k pods, seed 42) per
// policy: wall time of the whole run, including workload generation and
// per-event metrics. The paper's Go simulator needs about 10 minutes per run.
// OPENB_TRACE picks another pod list, OPENB_DATA another folder (a variant
// built by bench/openb_variants.py).
//
//   build/default/bench/placement_openb_bench
//   OPENB_DATA=/tmp/variants OPENB_TRACE=cpu300 build/default/bench/placement_openb_bench
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "autoscale/policy.h"
#include "placement_bench_util.h"

namespace gpu_autoscaler::autoscale::bench {
namespace {

// The pod list under test: OPENB_TRACE (default "default"), from OPENB_DATA
// when set, else from the checked-in folder.
const char* VariantUnderTest() {
  const char* variant = std::getenv("OPENB_TRACE");
  return variant != nullptr ? variant : "default";
}

const PreparedTrace& TraceUnderTest() {
  const char* data = std::getenv("OPENB_DATA");
  if (data == nullptr) return OpenbTrace(VariantUnderTest());
  static const PreparedTrace trace = [&] {
    auto loaded = LoadOpenbVariant(data, VariantUnderTest());
    if (!loaded.ok()) {
      std::fprintf(stderr, "%s\n", loaded.error().ToString().c_str());
      std::exit(1);
    }
    return std::move(*loaded);
  }();
  return trace;
}

void BM_OpenbDefaultRun(benchmark::State& state, const std::string& policy) {
  const PreparedTrace& trace = TraceUnderTest();
  state.SetLabel(VariantUnderTest());
  int64_t pods = 0;
  for (auto _ : state) {
    Result<RunResult> run = Simulate(trace, policy, 42);
    if (!run.ok()) {
      state.SkipWithError(run.error().ToString().c_str());
      return;
    }
    pods += run->pods;
    state.counters["alloc_pct_130"] = run->alloc_pct[130];
  }
  state.counters["pods_per_s"] =
      benchmark::Counter(static_cast<double>(pods), benchmark::Counter::kIsRate);
}

const bool kRegistered = [] {
  for (const std::string& policy : PolicyNames()) {
    benchmark::RegisterBenchmark(("BM_OpenbDefaultRun/" + policy).c_str(), BM_OpenbDefaultRun,
                                 policy)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(2.0);
  }
  return true;
}();

}  // namespace
}  // namespace gpu_autoscaler::autoscale::bench

BENCHMARK_MAIN();
