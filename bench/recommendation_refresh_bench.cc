// Recommendation refresh (docs/benchmarks.md, "Profiling").
//
//   BM_RefreshRecommendations/10000   one refresh of 10,000 workloads: each
//                                     takes its newest minute of samples (CPU,
//                                     memory, GPU memory, GPU utilisation) into
//                                     its decaying histograms, then gets fresh
//                                     bounds and a GPU share (target: under 1 s
//                                     of CPU)
//   BM_RefreshVpaBaseline/10000       the same with VPA's configuration (daily
//                                     memory peaks, no GPU share search)
//
// Each workload starts with one day of history at one sample per 5 minutes,
// drawn from a seeded generator: an inference-like GPU memory level between 5
// and 60 GB with noise, bursty utilisation, CPU and memory. The refresh cost
// does not depend on how many samples were taken: the histograms have a fixed
// number of buckets.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "gpu/mig.h"
#include "profiling/recommender.h"

namespace gpu_autoscaler::profiling {
namespace {

constexpr int64_t kStart = 1'793'491'200;  // 2026-11-01T00:00:00Z
constexpr int64_t kHistory = 86'400;

struct Workload {
  explicit Workload(const RecommenderConfig& config) : usage(config) {}
  ContainerUsage usage;
  double gpu_memory_level = 0;
  double busy = 0;
};

struct Fleet {
  RecommenderConfig config;
  std::vector<Workload> workloads;
  std::mt19937_64 rng{42};
  int64_t now = kStart + kHistory;

  void Sample(Workload& w, int64_t t) {
    std::uniform_real_distribution<double> unit(0, 1);
    const bool burst = unit(rng) < w.busy;
    w.usage.Add(Resource::kCpu, t, 0.5 + 2 * unit(rng), 1.0);
    w.usage.Add(Resource::kMemory, t, 4e9 + 2e9 * unit(rng));
    w.usage.Add(Resource::kGpuMemory, t, w.gpu_memory_level * (0.9 + 0.1 * unit(rng)));
    w.usage.Add(Resource::kGpuUtilization, t, burst ? 0.6 + 0.4 * unit(rng) : 0.05 * unit(rng));
  }
};

Fleet MakeFleet(const RecommenderConfig& config, int n) {
  Fleet fleet;
  fleet.config = config;
  fleet.workloads.reserve(static_cast<size_t>(n));
  std::uniform_real_distribution<double> unit(0, 1);
  for (int i = 0; i < n; ++i) {
    Workload& w = fleet.workloads.emplace_back(config);
    w.gpu_memory_level = 5e9 + 55e9 * unit(fleet.rng);
    w.busy = 0.3 * unit(fleet.rng);
    for (int64_t t = kStart; t < kStart + kHistory; t += 300)
      fleet.Sample(w, t);
  }
  return fleet;
}

void Refresh(benchmark::State& state, const RecommenderConfig& config) {
  const int n = static_cast<int>(state.range(0));
  Fleet fleet = MakeFleet(config, n);
  const gpu::GpuSpec& gpu = gpu::GetGpu(gpu::GpuModel::kA100_80GB);
  std::vector<Recommendation> out(static_cast<size_t>(n));
  for (auto _ : state) {
    fleet.now += 60;
    for (int i = 0; i < n; ++i) {
      Workload& w = fleet.workloads[static_cast<size_t>(i)];
      fleet.Sample(w, fleet.now);
      out[static_cast<size_t>(i)] = Recommend(w.usage, config, gpu);
    }
    benchmark::DoNotOptimize(out.data());
  }
  int mig = 0;
  for (const Recommendation& r : out)
    mig += r.gpu.kind == GpuShareKind::kMig ? 1 : 0;
  state.counters["workloads"] = n;
  state.counters["mig_shares"] = mig;
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_RefreshRecommendations(benchmark::State& state) {
  Refresh(state, OurConfig());
}
void BM_RefreshVpaBaseline(benchmark::State& state) {
  Refresh(state, VpaConfig());
}

BENCHMARK(BM_RefreshRecommendations)->Arg(10'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RefreshVpaBaseline)->Arg(10'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gpu_autoscaler::profiling

BENCHMARK_MAIN();
