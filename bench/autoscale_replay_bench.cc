// One autoscaling trace replay of the openb default pod list (7,063 GPU pods
// over 149 days, 8-GPU nodes, 90 s provisioning delay, 60 s steps) per
// strategy, and the forecaster tuning on its training half: the work behind
// one row of `autoscale_replay` (docs/predictive-scaling.md), with the
// replay's model and through the controller's DecidePool. Target: fast
// enough for an interactive command (well under a second per replay).
//
//   build/default/bench/autoscale_replay_bench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "autoscale/trace.h"
#include "autoscale/trace_replay.h"
#include "autoscale/trace_replay_workload.h"

namespace gpu_autoscaler::autoscale {
namespace {

const ReplayWorkload& OpenbWorkload() {
  static const ReplayWorkload* w = [] {
    Result<std::vector<TimedPod>> pods = LoadTimedPodCsv(
        std::string(GPA_SOURCE_DIR) + "/bench/data/openb/openb_pod_list_default.csv");
    if (!pods.ok()) std::abort();
    return new ReplayWorkload(WorkloadFromTimedPods("openb", *pods));
  }();
  return *w;
}

ReplayOptions Options() {
  return {.step = 60, .price_per_gpu_hour = 2.0};
}

void BM_TrainPredictive(benchmark::State& state) {
  const ReplayWorkload& w = OpenbWorkload();
  for (auto _ : state) {
    Result<ReplayTraining> t = TrainPredictive(w, Options(), 0.5, 0.9);
    if (!t.ok()) {
      state.SkipWithError(t.error().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(t->tuned.headroom);
  }
}
BENCHMARK(BM_TrainPredictive)->Unit(benchmark::kMillisecond);

void BM_ReplayOpenb(benchmark::State& state, ScalingStrategy strategy, bool through_controller) {
  const ReplayWorkload& w = OpenbWorkload();
  Result<ReplayTraining> t = TrainPredictive(w, Options(), 0.5, 0.9);
  if (!t.ok()) {
    state.SkipWithError(t.error().ToString().c_str());
    return;
  }
  ReplayOptions o = Options();
  o.report_from = t->split_time;
  o.forecast = t->tuned.options;
  o.headroom_gpus = t->tuned.headroom;
  o.through_controller = through_controller;
  int64_t pods = 0;
  for (auto _ : state) {
    Result<ReplayResult> r = ReplayTrace(w, strategy, o);
    if (!r.ok()) {
      state.SkipWithError(r.error().ToString().c_str());
      return;
    }
    pods += static_cast<int64_t>(w.pods.size());
    state.counters["gpu_hours"] = r->gpu_hours;
  }
  state.counters["pods_per_s"] =
      benchmark::Counter(static_cast<double>(pods), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_ReplayOpenb, reactive, ScalingStrategy::kReactive, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ReplayOpenb, predictive, ScalingStrategy::kPredictive, false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ReplayOpenb, oracle, ScalingStrategy::kOracle, false)
    ->Unit(benchmark::kMillisecond);
// The same replays decided by the GPUNodePool controller's DecidePool
// (autoscale_replay --through-controller): the price of the real decision.
BENCHMARK_CAPTURE(BM_ReplayOpenb, reactive_controller, ScalingStrategy::kReactive, true)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ReplayOpenb, predictive_controller, ScalingStrategy::kPredictive, true)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ReplayOpenb, oracle_controller, ScalingStrategy::kOracle, true)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gpu_autoscaler::autoscale

BENCHMARK_MAIN();
