// The GPUNodePool controller's predictive decision (DecidePredictiveFloor,
// src/autoscale/predictive_floor.h) on a full history: 7 days of 5-minute
// peaks (2,016 points), and the longest history kept (20,160 points: 7 days
// at 30 s), of a daily pattern with noise. Auto retunes 46 forecasters on the
// history; SeasonalNaive, a fixed method, is the peer measured in the same
// run. The controller computes it about once per step per pool (5 minutes by
// default). Target: well under the step, and a small share of a pass.
//
//   build/default/bench/predictive_floor_bench
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "autoscale/predictive_floor.h"

namespace gpu_autoscaler::autoscale {
namespace {

DemandHistory DailyHistory(int64_t step, size_t points) {
  DemandHistory h{.step_seconds = step, .start = 1'764'892'800};
  const double per_day = 86400.0 / static_cast<double>(step);
  uint64_t state = 42;
  for (size_t i = 0; i < points; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const double noise = static_cast<double>(state >> 40) / static_cast<double>(1 << 24);
    const double phase = 2 * M_PI * static_cast<double>(i) / per_day;
    h.gpus.push_back(std::max(0.0, 24 + 16 * std::sin(phase) + 4 * noise));
  }
  return h;
}

NodePoolSpec Pool() {
  NodePoolSpec pool;
  PoolInstanceType it{.name = "p4d", .gpu_model = "A100", .gpu_count = 8};
  it.price[TierIndex(CapacityTier::kOnDemand)] = 32.77;
  pool.instance_types.push_back(it);
  pool.tiers[TierIndex(CapacityTier::kOnDemand)].enabled = true;
  pool.max_nodes = 100;
  return pool;
}

void Run(benchmark::State& state, int64_t step, size_t points, bool auto_method) {
  const DemandHistory h = DailyHistory(step, points);
  PredictiveOptions o{.step_seconds = step, .season_seconds = 86400, .horizon_seconds = 90};
  if (!auto_method) o.method = DemandForecastOptions{.method = ForecastMethod::kSeasonalNaive};
  const NodePoolSpec pool = Pool();
  for (auto _ : state) {
    PredictiveFloor f = DecidePredictiveFloor(h, o, pool, h.end() + 10);
    benchmark::DoNotOptimize(f.floor_nodes);
  }
}

void BM_Auto_7Days5m(benchmark::State& s) {
  Run(s, 300, 2016, true);
}
void BM_SeasonalNaive_7Days5m(benchmark::State& s) {
  Run(s, 300, 2016, false);
}
void BM_Auto_7Days30s(benchmark::State& s) {
  Run(s, 30, 20160, true);
}
void BM_SeasonalNaive_7Days30s(benchmark::State& s) {
  Run(s, 30, 20160, false);
}
BENCHMARK(BM_Auto_7Days5m)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SeasonalNaive_7Days5m)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Auto_7Days30s)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SeasonalNaive_7Days30s)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gpu_autoscaler::autoscale

BENCHMARK_MAIN();
