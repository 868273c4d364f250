// Placement decisions per second at scale: 5,000 nodes (the openb node list
// repeated with fresh names) and 150,000 pods resampled from the openb default
// trace, submitted one at a time with no departures. A decision is one
// Scheduler::Select (placed or rejected) plus the ClusterState::Place.
//
//   build/default/bench/placement_throughput_bench
#include <benchmark/benchmark.h>

#include "autoscale/policy.h"
#include "autoscale/random.h"
#include "autoscale/scheduler.h"
#include "placement_bench_util.h"

namespace gpu_autoscaler::autoscale::bench {
namespace {

constexpr int kNodes = 5000;
constexpr int kPods = 150000;

struct Scale {
  ClusterState cluster;
  std::vector<PodRequest> pods;
  TargetWorkload workload;
};

const Scale& ScaleSetup() {
  static const Scale* scale = [] {
    auto* s = new Scale;
    auto nodes = LoadNodeCsv(OpenbPath("openb_node_list_gpu_node.csv"));
    if (!nodes.ok()) std::exit(1);
    for (int i = 0; i < kNodes; ++i) {
      NodeSpec node = (*nodes)[i % nodes->size()];
      node.name = "node-" + std::to_string(i);
      if (!s->cluster.AddNode(node).ok()) std::exit(1);
    }
    const PreparedTrace& trace = OpenbTrace("default");
    s->workload = TargetWorkload::FromTrace(trace.pods, s->cluster);
    Rng rng(7);
    for (int i = 0; i < kPods; ++i) {
      s->pods.push_back(s->cluster.Resolve(trace.pods[rng.Below(trace.pods.size())]));
    }
    return s;
  }();
  return *scale;
}

void BM_Decisions(benchmark::State& state, const std::string& policy_name) {
  const Scale& scale = ScaleSetup();
  int64_t decisions = 0;
  int64_t placed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    ClusterState cluster = scale.cluster;
    auto policy = MakePolicy(policy_name, &scale.workload);
    Scheduler scheduler(cluster, **policy, {}, 42);
    state.ResumeTiming();
    for (const PodRequest& pod : scale.pods) {
      if (std::optional<Placement> p = scheduler.Select(pod)) {
        placed += cluster.Place(pod, *p).ok();
      }
      ++decisions;
    }
  }
  state.counters["decisions_per_s"] =
      benchmark::Counter(static_cast<double>(decisions), benchmark::Counter::kIsRate);
  state.counters["placed_per_run"] = static_cast<double>(placed) / state.iterations();
}

const bool kRegistered = [] {
  for (const std::string& policy : PolicyNames()) {
    benchmark::RegisterBenchmark(("BM_Decisions/" + policy).c_str(), BM_Decisions, policy)
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1);
  }
  return true;
}();

}  // namespace
}  // namespace gpu_autoscaler::autoscale::bench

BENCHMARK_MAIN();
