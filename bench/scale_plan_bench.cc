// Scale-up planning at size: 5,000 pending pods against 400 offerings (5 GPU
// models × GPU counts 1/2/4/8 × 20 CPU/memory variants, each with reserved,
// spot and on-demand prices and limited reserved/spot availability), and an
// empty cluster. Pods mix time-sliced shares, whole-GPU pods of 1/2/4/8 GPUs
// and model-pinned pods. Reports the plan's cost gap to the proven lower
// bound (gap_pct) alongside the time per plan.
//
//   build/default/bench/scale_plan_bench
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "autoscale/random.h"
#include "autoscale/scale_plan.h"

namespace gpu_autoscaler::autoscale::bench {
namespace {

constexpr int kPods = 5000;

struct Model {
  const char* name;
  double on_demand_per_gpu;
};
constexpr Model kModels[] = {
    {"T4", 0.53}, {"A10G", 1.01}, {"V100", 3.06}, {"A100", 4.10}, {"H100", 6.98}};

std::vector<Offering> MakeOfferings(Rng& rng) {
  std::vector<Offering> offerings;
  for (const Model& model : kModels) {
    for (int gpus : {1, 2, 4, 8}) {
      for (int variant = 0; variant < 20; ++variant) {
        Offering o;
        o.instance_type =
            std::string(model.name) + "-x" + std::to_string(gpus) + "-v" + std::to_string(variant);
        o.gpu_model = model.name;
        o.gpu_count = gpus;
        const int cpu_per_gpu = 4 + 2 * (variant % 6);  // 4..14 cores per GPU
        o.cpu_milli = int64_t{1000} * cpu_per_gpu * gpus;
        o.memory_mib = int64_t{4096} * cpu_per_gpu * gpus * (1 + variant % 2);
        o.max_nodes = variant % 4 == 0 ? 20 : kUnlimitedNodes;
        // Price grows with GPUs and a little with CPU/memory; ±8% region jitter.
        const double jitter = 0.92 + static_cast<double>(rng.Below(17)) / 100.0;
        const double on_demand =
            gpus * (model.on_demand_per_gpu + 0.012 * cpu_per_gpu * (1 + variant % 2)) * jitter;
        o.tiers[TierIndex(CapacityTier::kOnDemand)].price_per_hour = on_demand;
        o.tiers[TierIndex(CapacityTier::kSpot)] = {on_demand * 0.35, 8};
        if (variant % 5 == 0) o.tiers[TierIndex(CapacityTier::kReserved)] = {on_demand * 0.6, 4};
        offerings.push_back(o);
      }
    }
  }
  return offerings;
}

std::vector<PodSpec> MakePods(Rng& rng) {
  std::vector<PodSpec> pods;
  for (int i = 0; i < kPods; ++i) {
    PodSpec p;
    p.name = "pod-" + std::to_string(i);
    const uint64_t kind = rng.Below(100);
    if (kind < 40) {  // shared: time-sliced with 2, 3 or 4 replicas, or a fixed share
      constexpr int kShares[] = {500, 333, 250, 200};
      p.num_gpu = 1;
      p.gpu_milli = kShares[rng.Below(4)];
    } else {
      p.num_gpu = kind < 75 ? 1 : kind < 88 ? 2 : kind < 96 ? 4 : 8;
      p.gpu_milli = kMilliPerGpu;
    }
    const int64_t cores = 1 + static_cast<int64_t>(rng.Below(4 * p.num_gpu));
    p.cpu_milli = cores * 1000;
    p.memory_mib = cores * 4096;
    if (rng.Below(5) == 0) p.gpu_models = {kModels[2 + rng.Below(3)].name};  // pinned
    pods.push_back(p);
  }
  return pods;
}

void BM_ScaleUp(benchmark::State& state) {
  Rng rng(11);
  const std::vector<Offering> offerings = MakeOfferings(rng);
  const std::vector<PodSpec> pods = MakePods(rng);
  const ClusterState empty;
  ScaleUpPlan plan;
  for (auto _ : state) {
    Result<ScaleUpPlan> result = PlanScaleUp(empty, pods, offerings, {});
    if (!result.ok()) {
      state.SkipWithError(result.error().ToString().c_str());
      return;
    }
    plan = *std::move(result);
    benchmark::DoNotOptimize(plan);
  }
  state.counters["gap_pct"] = 100 * plan.gap();
  state.counters["cost_per_h"] = plan.effective_cost;
  state.counters["bound_per_h"] = plan.lower_bound;
  state.counters["new_nodes"] = static_cast<double>(plan.new_nodes.size());
  state.counters["unplaced"] = static_cast<double>(plan.unplaced.size());
  state.counters["offerings"] = static_cast<double>(offerings.size());
}
BENCHMARK(BM_ScaleUp)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gpu_autoscaler::autoscale::bench

BENCHMARK_MAIN();
