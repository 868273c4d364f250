// The GPUNodePool planner at size (architecture.md: a plan in under 1 s):
//  * scale-up: 5,000 pending pods (time-sliced quarter and half shares,
//    whole 1/2/4/8-GPU pods) against a pool of 40 instance types (T4, A10G,
//    A100, H100 × 1/2/4/8 GPUs × 2 CPU/memory shapes) with spot, on-demand
//    and reserved prices, a spot tier limit of 60 nodes, a reserved limit of
//    20 and a pool maximum of 5,000 nodes, so the cross-offering limit rounds
//    of PlanPoolScaleUp run;
//  * scale-down: 500 registered 8-GPU nodes, one in five underused, with
//    PlanConsolidation deciding which can go.
//
//   build/default/bench/node_pool_planner_bench
#include <benchmark/benchmark.h>

#include "autoscale/node_pool.h"
#include "autoscale/random.h"

namespace gpu_autoscaler::autoscale::bench {
namespace {

constexpr int kSpot = TierIndex(CapacityTier::kSpot);
constexpr int kOnDemand = TierIndex(CapacityTier::kOnDemand);
constexpr int kReserved = TierIndex(CapacityTier::kReserved);

NodePoolSpec MakePool() {
  NodePoolSpec pool;
  pool.name = "bench";
  const std::pair<const char*, double> models[] = {
      {"T4", 0.53}, {"A10G", 1.01}, {"A100", 4.10}, {"H100", 6.98}};
  for (const auto& [model, per_gpu] : models) {
    for (int gpus : {1, 2, 4, 8}) {
      for (int shape = 0; shape < 2; ++shape) {
        PoolInstanceType it;
        it.name = std::string(model) + "-x" + std::to_string(gpus) + "-s" + std::to_string(shape);
        it.gpu_model = model;
        it.gpu_count = gpus;
        it.cpu_milli = int64_t{8000} * gpus * (shape + 1);
        it.memory_mib = int64_t{32768} * gpus * (shape + 1);
        const double on_demand = per_gpu * gpus * (1.0 + 0.15 * shape);
        it.price[kOnDemand] = on_demand;
        it.price[kSpot] = on_demand * 0.35;
        it.price[kReserved] = on_demand * 0.6;
        pool.instance_types.push_back(it);
      }
    }
  }
  pool.max_nodes = 5000;
  pool.tiers[kSpot] = {.enabled = true, .weight = 1.0, .max_nodes = 60};
  pool.tiers[kOnDemand] = {.enabled = true, .weight = 1.0, .max_nodes = kUnlimitedNodes};
  pool.tiers[kReserved] = {.enabled = true, .weight = 0.9, .max_nodes = 20};
  return pool;
}

std::vector<PodSpec> MakePending(int n) {
  Rng rng(7);
  const char* models[] = {"T4", "A10G", "A100", "H100"};
  std::vector<PodSpec> pods;
  for (int i = 0; i < n; ++i) {
    PodSpec p;
    p.name = "ml/p" + std::to_string(i);
    p.cpu_milli = 1000 + 500 * static_cast<int64_t>(rng.Below(4));
    p.memory_mib = 4096 * (1 + static_cast<int64_t>(rng.Below(3)));
    const int kind = static_cast<int>(rng.Below(10));
    if (kind < 4) {
      p.num_gpu = 1;
      p.gpu_milli = kind < 2 ? 250 : 500;  // time-sliced 4- and 2-way
    } else {
      p.num_gpu = 1 << std::min(kind - 4, 3);
      p.gpu_milli = kMilliPerGpu;
    }
    p.gpu_models = {models[rng.Below(4)]};
    pods.push_back(std::move(p));
  }
  return pods;
}

void BM_PoolScaleUp(benchmark::State& state) {
  const NodePoolSpec pool = MakePool();
  const std::vector<PodSpec> pending = MakePending(static_cast<int>(state.range(0)));
  int nodes = 0, unplaced = 0;
  for (auto _ : state) {
    auto plan = PlanPoolScaleUp({.pool = &pool, .pending = pending, .now = Clock::TimePoint{}});
    if (!plan.ok()) {
      state.SkipWithError(plan.error().ToString().c_str());
      return;
    }
    nodes = plan->new_nodes();
    unplaced = static_cast<int>(plan->unplaced.size());
    benchmark::DoNotOptimize(plan);
  }
  state.counters["new_nodes"] = nodes;
  state.counters["unplaced"] = unplaced;
}
BENCHMARK(BM_PoolScaleUp)->Arg(500)->Arg(5000)->Unit(benchmark::kMillisecond);

// The peer: one PlanScaleUp call on the same offerings and pods with the
// tier limits given per offering only (what the pool planner starts from).
// BM_PoolScaleUp / BM_PlanScaleUpOnce is the cost of the pool's limit rounds.
void BM_PlanScaleUpOnce(benchmark::State& state) {
  const NodePoolSpec pool = MakePool();
  const std::vector<PodSpec> pending = MakePending(static_cast<int>(state.range(0)));
  std::vector<Offering> offerings;
  for (const PoolInstanceType& it : pool.instance_types) {
    Offering o;
    o.instance_type = it.name;
    o.gpu_model = it.gpu_model;
    o.gpu_count = it.gpu_count;
    o.cpu_milli = it.cpu_milli;
    o.memory_mib = it.memory_mib;
    o.max_pods = it.max_pods;
    o.max_nodes = pool.max_nodes;
    for (int t = 0; t < kTierCount; ++t)
      o.tiers[t] = {.price_per_hour = it.price[t], .max_nodes = pool.tiers[t].max_nodes};
    offerings.push_back(std::move(o));
  }
  ScaleUpOptions options;
  for (int t = 0; t < kTierCount; ++t)
    options.tier_weights[t] = pool.tiers[t].weight;
  ClusterState empty;
  int nodes = 0;
  for (auto _ : state) {
    auto plan = PlanScaleUp(empty, pending, offerings, options);
    if (!plan.ok()) {
      state.SkipWithError(plan.error().ToString().c_str());
      return;
    }
    nodes = static_cast<int>(plan->new_nodes.size());
    benchmark::DoNotOptimize(plan);
  }
  state.counters["new_nodes"] = nodes;
}
BENCHMARK(BM_PlanScaleUpOnce)->Arg(5000)->Unit(benchmark::kMillisecond);

void BM_PoolScaleDown(benchmark::State& state) {
  NodePoolSpec pool = MakePool();
  pool.budgets = {{.nodes = 10, .percent = true}};
  const int n = static_cast<int>(state.range(0));
  std::vector<PoolNode> nodes;
  std::vector<PoolPod> pods;
  const int a100x8 = 22;  // "A100-x8-s0"
  for (int i = 0; i < n; ++i) {
    PoolNode node;
    node.name = "n" + std::to_string(i);
    node.instance_type = a100x8;
    node.tier = i % 3 == 0 ? CapacityTier::kSpot : CapacityTier::kOnDemand;
    nodes.push_back(node);
    const int used = i % 5 == 0 ? 2 : 6;  // one in five underused
    for (int g = 0; g < used; ++g) {
      PoolPod p;
      p.spec.name = "ml/" + node.name + "-" + std::to_string(g);
      p.spec.cpu_milli = 4000;
      p.spec.memory_mib = 16384;
      p.spec.num_gpu = 1;
      p.spec.gpu_milli = kMilliPerGpu;
      p.node = node.name;
      pods.push_back(std::move(p));
    }
  }
  int disrupt = 0;
  for (auto _ : state) {
    auto plan = PlanPoolScaleDown({.pool = &pool,
                                   .nodes = nodes,
                                   .pods = pods,
                                   .now = Clock::TimePoint(std::chrono::hours(1)),
                                   .now_unix = 1796378400});
    if (!plan.ok()) {
      state.SkipWithError(plan.error().ToString().c_str());
      return;
    }
    disrupt = static_cast<int>(plan->disrupt.size());
    benchmark::DoNotOptimize(plan);
  }
  state.counters["disrupt"] = disrupt;
}
BENCHMARK(BM_PoolScaleDown)->Arg(500)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gpu_autoscaler::autoscale::bench

BENCHMARK_MAIN();
