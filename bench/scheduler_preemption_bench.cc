// The scheduler's preemption decision on a full cluster (docs/benchmarks.md,
// "Scheduler"): ClusterCache::PlanPreemption, a dry run on every node
// (standalone), and the extender's /preempt over kube-scheduler's candidate
// nodes, against ClusterCache::Select for the same pod, the failed fit check
// that comes before it, in the same run.
//
// The cluster: 1,000 or 5,000 nodes of 8 whole GPUs, every GPU taken by a
// pod of 1, 2 or 4 GPUs whose priority is 0, 100, 1000 or 10000, each with a
// start time. The preemptor has priority 5000 and asks for 1, 2, 4 or 8 GPUs
// (rotating), so on each node some pods are victims and some are not. With
// gangs (BM_PlanPreemption's second argument), the 4-GPU pods of every four
// neighbouring nodes are one running pod group of one priority: evicting
// one member takes the whole group.
//
//   build/default/bench/scheduler_preemption_bench --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kube/object_codec.h"
#include "pod_fixture.h"
#include "scheduler/cluster_cache.h"
#include "scheduler/extender.h"

namespace gpu_autoscaler::scheduler {
namespace {

using nlohmann::json;

using bench::Mix;

std::shared_ptr<const kube::PodView> Decode(const json& pod) {
  auto view = kube::DecodePod(pod.dump());
  if (!view.ok()) std::abort();
  return std::make_shared<const kube::PodView>(std::move(view).value());
}

std::shared_ptr<const kube::NodeView> DecodeNodeJson(const json& node) {
  auto view = kube::DecodeNode(node.dump());
  if (!view.ok()) std::abort();
  return std::make_shared<const kube::NodeView>(std::move(view).value());
}

json GpuPod(const std::string& name, int gpus, int priority) {
  return {{"metadata", {{"name", name}, {"namespace", "batch"}, {"uid", "uid-" + name}}},
          {"spec",
           {{"priority", priority},
            {"containers",
             {{{"name", "main"},
               {"resources",
                {{"requests",
                  {{"cpu", std::to_string(4 * gpus)},
                   {"memory", std::to_string(32 * gpus) + "Gi"},
                   {"nvidia.com/gpu", std::to_string(gpus)}}},
                 {"limits", {{"nvidia.com/gpu", std::to_string(gpus)}}}}}}}}}},
          {"status", {{"phase", "Pending"}}}};
}

std::unique_ptr<ClusterCache> FullCluster(int nodes, bool gangs = false) {
  auto cache = std::move(ClusterCache::Create({.policy = "FragLookahead"})).value();
  const int priorities[] = {0, 100, 1000, 10000};
  for (int n = 0; n < nodes; ++n) {
    const std::string node = "gpu-" + std::to_string(n);
    cache->UpsertNode(DecodeNodeJson(
        {{"metadata", {{"name", node}, {"labels", {{"nvidia.com/gpu.product", "NVIDIA-H100"}}}}},
         {"status",
          {{"allocatable",
            {{"cpu", "96"}, {"memory", "1024Gi"}, {"pods", "110"}, {"nvidia.com/gpu", "8"}}},
           {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}}));
    for (int gpu = 0, k = 0; gpu < 8; ++k) {
      const uint64_t r = Mix(static_cast<uint64_t>(n) * 64 + k);
      int size = 1 << (r % 3);  // 1, 2 or 4 GPUs
      while (gpu % size != 0 || gpu + size > 8)
        size /= 2;
      std::string indices;
      for (int g = gpu; g < gpu + size; ++g)
        indices += (indices.empty() ? "" : ",") + std::to_string(g);
      const bool member = gangs && size == 4;
      const int priority = member ? priorities[Mix(n / 4) % 4] : priorities[(r >> 8) % 4];
      json pod = GpuPod(node + "-" + std::to_string(k), size, priority);
      pod["metadata"]["annotations"] = {{"gpuautoscaler.io/gpu-indices", indices}};
      if (member) {
        pod["metadata"]["annotations"]["gpuautoscaler.io/pod-group"] =
            "job-" + std::to_string(n / 4);
      }
      pod["spec"]["nodeName"] = node;
      pod["status"] = {
          {"phase", "Running"},
          {"startTime", "2026-11-" + std::to_string(10 + (r >> 16) % 18) + "T00:00:00Z"}};
      cache->UpsertPod(Decode(pod));
      gpu += size;
    }
  }
  return cache;
}

std::vector<std::shared_ptr<const kube::PodView>> Preemptors() {
  std::vector<std::shared_ptr<const kube::PodView>> pods;
  for (int gpus : {1, 2, 4, 8})
    pods.push_back(Decode(GpuPod("urgent-" + std::to_string(gpus), gpus, 5000)));
  return pods;
}

void BM_PlanPreemption(benchmark::State& state) {
  auto cache = FullCluster(static_cast<int>(state.range(0)), state.range(1) != 0);
  auto preemptors = Preemptors();
  size_t i = 0;
  int64_t victims = 0;
  for (auto _ : state) {
    Result<PreemptionPlan> plan = cache->PlanPreemption(*preemptors[i++ % preemptors.size()], {});
    if (!plan.ok()) state.SkipWithError(plan.error().message().c_str());
    victims += static_cast<int64_t>(plan->victims.size());
  }
  state.counters["victims_per_plan"] = static_cast<double>(victims) / state.iterations();
}

// The extender's /preempt for the same pods, body to answer: kube-scheduler
// offers its candidates, max(100, 10% of the nodes) by default
// (DefaultPreemptionArgs), each with one victim by UID, in the cache form.
void BM_ExtenderPreempt(benchmark::State& state) {
  const int nodes = static_cast<int>(state.range(0));
  auto cache = FullCluster(nodes);
  const int candidates = std::max(100, nodes / 10);
  std::vector<std::string> bodies;
  for (int gpus : {1, 2, 4, 8}) {
    json offered = json::object();
    for (int c = 0; c < candidates; ++c) {
      const int n = static_cast<int>(Mix(static_cast<uint64_t>(gpus) * 100003 + c) % nodes);
      const std::string node = "gpu-" + std::to_string(n);
      offered[node] = {{"Pods", {{{"UID", "uid-" + node + "-0"}}}}, {"NumPDBViolations", 0}};
    }
    bodies.push_back(json{
        {"Pod", GpuPod("urgent-" + std::to_string(gpus), gpus, 5000)},
        {"NodeNameToVictims", nullptr},
        {"NodeNameToMetaVictims",
         offered}}.dump());
  }
  Extender extender(*cache, {});
  size_t i = 0;
  int64_t answered = 0;
  for (auto _ : state) {
    ExtenderReply reply = extender.Handle("preempt", bodies[i++ % bodies.size()]);
    if (reply.status != 200) state.SkipWithError(reply.body.c_str());
    answered += reply.body.size() > 30;  // a node and its victims
  }
  state.counters["candidates"] = candidates;
  state.counters["answered_share"] = static_cast<double>(answered) / state.iterations();
}

// A gang of priority 5000: 8 one-GPU members (a data-parallel job), or 32
// members of 8 GPUs (a large training job). PlanGangPreemption plans them
// one after the other, each member's dry run over every node.
void BM_PlanGangPreemption(benchmark::State& state) {
  auto cache = FullCluster(static_cast<int>(state.range(0)));
  const int members = static_cast<int>(state.range(1));
  const int gpus = static_cast<int>(state.range(2));
  std::vector<std::shared_ptr<const kube::PodView>> gang;
  for (int i = 0; i < members; ++i)
    gang.push_back(Decode(GpuPod("worker-" + std::to_string(i), gpus, 5000)));
  int64_t victims = 0;
  for (auto _ : state) {
    Result<GangPreemptionPlan> plan = cache->PlanGangPreemption(gang, {});
    if (!plan.ok()) state.SkipWithError(plan.error().message().c_str());
    victims += static_cast<int64_t>(plan->victims.size());
  }
  state.counters["victims_per_plan"] = static_cast<double>(victims) / state.iterations();
}

// The fit check that fails before preemption is tried: the same pods.
void BM_SelectThatFails(benchmark::State& state) {
  auto cache = FullCluster(static_cast<int>(state.range(0)));
  auto preemptors = Preemptors();
  size_t i = 0;
  for (auto _ : state) {
    Result<PlacementChoice> choice = cache->Select(*preemptors[i++ % preemptors.size()], true);
    if (choice.ok()) state.SkipWithError("the cluster is not full");
  }
}

BENCHMARK(BM_PlanPreemption)
    ->Args({1000, 0})
    ->Args({5000, 0})
    ->Args({1000, 1})
    ->Args({5000, 1})
    ->ArgNames({"nodes", "gangs"})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SelectThatFails)->Arg(1000)->Arg(5000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ExtenderPreempt)->Arg(1000)->Arg(5000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlanGangPreemption)
    ->Args({1000, 8, 1})
    ->Args({5000, 8, 1})
    ->Args({1000, 32, 8})
    ->Args({5000, 32, 8})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gpu_autoscaler::scheduler

BENCHMARK_MAIN();
