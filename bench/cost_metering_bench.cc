// Per-second cost metering (docs/benchmarks.md, "Cost metering").
//
//   BM_MeterTick           one second-tick for 150,000 pods on 5,000 GPU
//                          nodes (p4d.24xlarge, built-in catalogue): CPU time
//                          per tick. Target: under 50 ms (5% of a core at 1 Hz).
//   BM_MeterTickShareIdle  the same with idle cost shared out to pods.
//   BM_MeterSetInventory   pricing every node and precomputing every pod's
//                          rates: paid when the inventory changes, not per tick.
//   BM_MeterAppendSamples  turning one tick into storage rows (CostSample).
//   BM_MeterDiffRuns/M     the rows that changed since the last tick, for
//                          the run store: M=0 nothing changed (the steady
//                          state), 1 one utilisation changed, 2 a new inventory.
//   BM_MeterAppendSamplesOverTicks/1000/240
//                          1,000 pods (34 nodes) appended tick after tick
//                          into one fresh vector, as the manager fills one
//                          storage batch over many seconds: the vector must
//                          grow geometrically, not by one tick at a time.
//
// Pod mix per node (30 pods): 2 exclusive single-GPU, 14 MIG 1g.5gb, 8
// time-sliced (4 replicas), 6 CPU-only; half report a GPU utilisation.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "cost/metering.h"
#include "cost/pricing.h"

namespace gpu_autoscaler::cost {
namespace {

constexpr int kNodes = 5'000;
constexpr int kPodsPerNode = 30;  // 150,000 pods

struct Cluster {
  std::unique_ptr<CatalogPricingSource> pricing;
  std::vector<MeteredNode> nodes;
  std::vector<MeteredPod> pods;
};

// `pod_count` pods, kPodsPerNode to a node (the last node may hold fewer).
std::unique_ptr<Cluster> MakeCluster(int pod_count) {
  auto c = std::make_unique<Cluster>();
  c->pricing = CatalogPricingSource::Builtin().value();
  const int node_count = (pod_count + kPodsPerNode - 1) / kPodsPerNode;
  c->nodes.reserve(node_count);
  c->pods.reserve(pod_count);
  for (int n = 0; n < node_count; ++n) {
    std::string node = "gpu-node-" + std::to_string(n);
    c->nodes.push_back({.name = node,
                        .instance_type = "p4d.24xlarge",
                        .tier = n % 3 == 0 ? CapacityTier::kSpot : CapacityTier::kOnDemand,
                        .gpu_model = "NVIDIA-A100-SXM4-40GB",
                        .gpus = 8,
                        .cpu_cores = 95.5,
                        .memory_bytes = 1100.0 * (1 << 30)});
    for (int i = 0; i < kPodsPerNode && n * kPodsPerNode + i < pod_count; ++i) {
      MeteredPod p;
      p.uid = node + "-pod-" + std::to_string(i);
      p.name = "pod-" + std::to_string(i);
      p.ns = "ns-" + std::to_string((n * kPodsPerNode + i) % 1000);
      p.labels = {{"team", "team-" + std::to_string(n % 50)},
                  {"project", "project-" + std::to_string(n % 200)}};
      p.node = node;
      p.cpu_cores = 2;
      p.memory_bytes = 8.0 * (1 << 30);
      if (i < 2) {
        p.gpus = 1;
      } else if (i < 16) {
        p.gpus = 1;
        p.sharing = {.mode = SharingMode::kMig, .mig_profile = "1g.5gb"};
      } else if (i < 24) {
        p.gpus = 1;
        p.sharing = {.mode = SharingMode::kTimeSlicing, .replicas = 4};
      }
      p.gpu_utilization = i % 2 == 0 ? 0.6 : -1;
      c->pods.push_back(std::move(p));
    }
  }
  return c;
}

const Cluster& TheCluster() {
  static const Cluster* cluster = MakeCluster(kNodes * kPodsPerNode).release();
  return *cluster;
}

void RunTick(benchmark::State& state, bool share_idle) {
  const Cluster& c = TheCluster();
  MeterOptions options;
  options.share_idle = share_idle;
  Meter meter(*c.pricing, options);
  InventoryReport report = meter.SetInventory(c.nodes, c.pods);
  if (!report.unpriced_nodes.empty() || !report.bad_pods.empty()) {
    state.SkipWithError("inventory has unpriced nodes or bad pods");
    return;
  }
  TickResult tick;
  meter.Tick(0, tick);  // warm: buffers sized
  int64_t second = 1'700'000'000;
  for (auto _ : state) {
    meter.Tick(second++, tick);
    benchmark::DoNotOptimize(tick.allocated_cost);
  }
  state.counters["pods"] = static_cast<double>(tick.pods.size());
  state.counters["nodes"] = static_cast<double>(tick.nodes.size());
  state.counters["pods/s"] =
      benchmark::Counter(static_cast<double>(tick.pods.size()), benchmark::Counter::kIsRate);
}

void BM_MeterTick(benchmark::State& state) {
  RunTick(state, false);
}
void BM_MeterTickShareIdle(benchmark::State& state) {
  RunTick(state, true);
}

void BM_MeterSetInventory(benchmark::State& state) {
  const Cluster& c = TheCluster();
  Meter meter(*c.pricing);
  for (auto _ : state) {
    InventoryReport r = meter.SetInventory(c.nodes, c.pods);
    benchmark::DoNotOptimize(r);
  }
}

void BM_MeterAppendSamples(benchmark::State& state) {
  const Cluster& c = TheCluster();
  Meter meter(*c.pricing);
  meter.SetInventory(c.nodes, c.pods);
  TickResult tick;
  meter.Tick(0, tick);
  std::vector<CostSample> samples;
  for (auto _ : state) {
    samples.clear();
    meter.AppendSamples(tick, samples);
    benchmark::DoNotOptimize(samples.data());
  }
  state.counters["samples"] = static_cast<double>(samples.size());
}

void BM_MeterAppendSamplesOverTicks(benchmark::State& state) {
  const std::unique_ptr<Cluster> c = MakeCluster(static_cast<int>(state.range(0)));
  const int64_t ticks = state.range(1);
  Meter meter(*c->pricing);
  meter.SetInventory(c->nodes, c->pods);
  TickResult tick;
  size_t rows = 0;
  for (auto _ : state) {
    std::vector<CostSample> samples;  // fresh each time, as a cold storage batch
    for (int64_t second = 0; second < ticks; ++second) {
      meter.Tick(1'700'000'000 + second, tick);
      meter.AppendSamples(tick, samples);
    }
    rows = samples.size();
    benchmark::DoNotOptimize(samples.data());
  }
  state.counters["rows"] = static_cast<double>(rows);
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsIterationInvariantRate);
}

// DiffRuns after one tick: `mode` 0 = nothing changed since the last call
// (the steady state), 1 = one pod's utilisation changed (every pod is
// compared, one row built), 2 = a new inventory (every pod looked up by uid).
void BM_MeterDiffRuns(benchmark::State& state) {
  const Cluster& c = TheCluster();
  Meter meter(*c.pricing);
  meter.SetInventory(c.nodes, c.pods);
  TickResult tick;
  meter.Tick(0, tick);
  RunChanges changes;
  meter.DiffRuns(tick, changes);  // the first call lists everything
  double utilization = 0.5;
  size_t rows = 0;
  for (auto _ : state) {
    state.PauseTiming();
    if (state.range(0) == 1) {
      utilization = utilization == 0.5 ? 0.25 : 0.5;
      meter.SetUtilization(0, utilization);
    }
    if (state.range(0) == 2) meter.SetInventory(c.nodes, c.pods);
    meter.Tick(1'700'000'000, tick);
    changes.Clear();
    state.ResumeTiming();
    meter.DiffRuns(tick, changes);
    rows = changes.started.size();
  }
  state.counters["rows"] = static_cast<double>(rows);
}

BENCHMARK(BM_MeterTick)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();
BENCHMARK(BM_MeterTickShareIdle)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();
BENCHMARK(BM_MeterSetInventory)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();
BENCHMARK(BM_MeterAppendSamples)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();
// Fixed iterations: each one also runs an untimed 150,000-pod tick.
BENCHMARK(BM_MeterDiffRuns)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(20)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();
BENCHMARK(BM_MeterAppendSamplesOverTicks)
    ->Args({1'000, 240})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();

}  // namespace
}  // namespace gpu_autoscaler::cost

BENCHMARK_MAIN();
