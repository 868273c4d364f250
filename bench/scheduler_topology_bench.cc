// What inter-pod affinity and topology spread cost the standalone scheduler
// per decision (docs/benchmarks.md, "Scheduler"): ClusterCache::Select for a
// pod without rules, against the same pod with required anti-affinity on the
// host, with required affinity to a zone, and with a zone spread constraint,
// in the same run.
//
// The cluster: 1,000 or 5,000 nodes of 8 whole GPUs in 10 zones, half the
// GPUs taken by pods of 1 or 2 GPUs (about 2.7 pods a node), each pod one of
// 100 apps. With `anti:1`, one pod in a hundred also has required
// anti-affinity to its own app on the host, so every decision checks those
// (the existing pods' side of InterPodAffinity). `first_decision_ms` and
// `kept_bytes_per_pod` are what the first decision costs and leaves
// allocated: the cache's placement state, and for a pod with rules the label
// index it builds for the key its selector names.
//
//   build/default/bench/scheduler_topology_bench --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <malloc.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "kube/object_codec.h"
#include "pod_fixture.h"
#include "scheduler/cluster_cache.h"

namespace gpu_autoscaler::scheduler {
namespace {

using nlohmann::json;

using bench::Mix;

json AntiAffinity(const std::string& app, const std::string& key) {
  return {{"podAntiAffinity",
           {{"requiredDuringSchedulingIgnoredDuringExecution",
             {{{"labelSelector", {{"matchLabels", {{"app", app}}}}}, {"topologyKey", key}}}}}}};
}

json GpuPod(const std::string& name, int gpus, const std::string& app) {
  return {
      {"metadata",
       {{"name", name}, {"namespace", "svc"}, {"uid", "uid-" + name}, {"labels", {{"app", app}}}}},
      {"spec",
       {{"containers",
         {{{"name", "main"},
           {"resources",
            {{"requests",
              {{"cpu", std::to_string(4 * gpus)},
               {"memory", std::to_string(32 * gpus) + "Gi"},
               {"nvidia.com/gpu", std::to_string(gpus)}}},
             {"limits", {{"nvidia.com/gpu", std::to_string(gpus)}}}}}}}}}},
      {"status", {{"phase", "Pending"}}}};
}

template <typename View>
std::shared_ptr<const View> Decode(const json& j) {
  auto view = [&] {
    if constexpr (std::is_same_v<View, kube::PodView>) {
      return kube::DecodePod(j.dump());
    } else {
      return kube::DecodeNode(j.dump());
    }
  }();
  if (!view.ok()) std::abort();
  return std::make_shared<const View>(std::move(view).value());
}

std::unique_ptr<ClusterCache> HalfFullCluster(int nodes, bool anti) {
  auto cache = std::move(ClusterCache::Create({.policy = "FragLookahead"})).value();
  for (int n = 0; n < nodes; ++n) {
    const std::string node = "gpu-" + std::to_string(n);
    cache->UpsertNode(Decode<kube::NodeView>(
        {{"metadata",
          {{"name", node}, {"labels", {{"host", node}, {"zone", "z" + std::to_string(n % 10)}}}}},
         {"status",
          {{"allocatable",
            {{"cpu", "96"}, {"memory", "1024Gi"}, {"pods", "110"}, {"nvidia.com/gpu", "8"}}},
           {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}}));
    for (int gpu = 0, k = 0; gpu < 4; ++k) {
      const uint64_t r = Mix(static_cast<uint64_t>(n) * 64 + k);
      const int size = gpu == 3 ? 1 : 1 + static_cast<int>(r % 2);
      const std::string app = "app-" + std::to_string((r >> 8) % 100);
      json pod = GpuPod(node + "-" + std::to_string(k), size, app);
      pod["metadata"]["annotations"] = {
          {"gpuautoscaler.io/gpu-indices",
           size == 1 ? std::to_string(gpu) : std::to_string(gpu) + "," + std::to_string(gpu + 1)}};
      if (anti && (r >> 20) % 100 == 0) pod["spec"]["affinity"] = AntiAffinity(app, "host");
      if ((r >> 28) % 100 == 0) pod["metadata"]["labels"]["exclusive"] = "true";
      pod["spec"]["nodeName"] = node;
      pod["status"] = {{"phase", "Running"}};
      cache->UpsertPod(Decode<kube::PodView>(pod));
      gpu += size;
    }
  }
  return cache;
}

enum Rules { kNone, kAnti, kAffinity, kSpread, kAntiByKey };

void BM_Select(benchmark::State& state) {
  auto cache = HalfFullCluster(static_cast<int>(state.range(0)), state.range(2) != 0);
  json pod = GpuPod("incoming", 1, "app-7");
  switch (static_cast<Rules>(state.range(1))) {
    case kNone:
      break;
    case kAnti:
      pod["spec"]["affinity"] = AntiAffinity("app-7", "host");
      break;
    case kAffinity:
      pod["spec"]["affinity"] = {{"podAffinity",
                                  {{"requiredDuringSchedulingIgnoredDuringExecution",
                                    {{{"labelSelector", {{"matchLabels", {{"app", "app-3"}}}}},
                                      {"topologyKey", "zone"}}}}}}};
      break;
    case kSpread:
      pod["spec"]["topologySpreadConstraints"] = {
          {{"maxSkew", 5},
           {"topologyKey", "zone"},
           {"whenUnsatisfiable", "DoNotSchedule"},
           {"labelSelector", {{"matchLabels", {{"app", "app-7"}}}}}}};
      break;
    case kAntiByKey:  // off any host running a pod labelled "exclusive" (1 in 100)
      pod["spec"]["affinity"] = {
          {"podAntiAffinity",
           {{"requiredDuringSchedulingIgnoredDuringExecution",
             {{{"labelSelector",
                {{"matchExpressions", {{{"key", "exclusive"}, {"operator", "Exists"}}}}}},
               {"topologyKey", "host"}}}}}}};
      break;
  }
  auto view = Decode<kube::PodView>(pod);
  // What the first decision costs and leaves allocated: the cache's placement
  // state, and for a pod with rules the label index it builds.
  const size_t before = mallinfo2().uordblks;
  const auto start = std::chrono::steady_clock::now();
  benchmark::DoNotOptimize(cache->Select(*view, true));
  state.counters["first_decision_ms"] =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  state.counters["kept_bytes_per_pod"] =
      static_cast<double>(mallinfo2().uordblks - before) / cache->stats().pods;
  for (auto _ : state) {
    Result<PlacementChoice> choice = cache->Select(*view, true);
    if (!choice.ok()) state.SkipWithError(choice.error().message().c_str());
    benchmark::DoNotOptimize(choice);
  }
}

BENCHMARK(BM_Select)
    ->ArgsProduct({{1000, 5000}, {kNone, kAnti, kAffinity, kSpread, kAntiByKey}, {0, 1}})
    ->ArgNames({"nodes", "rules", "anti"})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gpu_autoscaler::scheduler

BENCHMARK_MAIN();
