// Workqueue throughput: add/get/done cycles per second.
//
//   BM_AddGetDone/threads:1   one thread, steady state (keys recycled)
//   BM_AddGetDone/threads:2   two threads sharing one queue
//   BM_AddGetDoneWithMetrics  as above with a Prometheus registry attached
//   BM_MultiProducer/P        P producer threads, one consumer (contended)
//   BM_Depth/N/ranked:R       one add/get/done with N keys waiting, first-in
//                             first-out (R=0) or ranked by a priority looked up
//                             as the standalone scheduler does (R=1)
#include <benchmark/benchmark.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kube/workqueue.h"

namespace gpu_autoscaler::kube {
namespace {

std::vector<std::string> MakeKeys(int n, const std::string& prefix) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (int i = 0; i < n; ++i)
    keys.push_back(prefix + "/pod-" + std::to_string(i));
  return keys;
}

WorkQueue* shared_queue = nullptr;

void BM_AddGetDone(benchmark::State& state) {
  if (state.thread_index() == 0) shared_queue = new WorkQueue();
  const auto keys = MakeKeys(1024, "ns-" + std::to_string(state.thread_index()));
  size_t i = 0;
  std::string key;
  for (auto _ : state) {
    shared_queue->Add(keys[i++ & 1023]);
    // Non-blocking: with two threads the other one may have taken the key.
    if (shared_queue->TryGet(&key)) shared_queue->Done(key);
  }
  state.SetItemsProcessed(state.iterations());
  // Every thread has left its loop here (the benchmark library joins them at a barrier).
  if (state.thread_index() == 0) {
    delete shared_queue;
    shared_queue = nullptr;
  }
}
BENCHMARK(BM_AddGetDone)->Threads(1)->Threads(2)->UseRealTime();

void BM_AddGetDoneWithMetrics(benchmark::State& state) {
  prometheus::Registry registry;
  WorkQueue queue({.name = "bench", .metrics = &registry});
  const auto keys = MakeKeys(1024, "ns");
  size_t i = 0;
  std::string key;
  for (auto _ : state) {
    queue.Add(keys[i++ & 1023]);
    if (queue.Get(&key)) queue.Done(key);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AddGetDoneWithMetrics);

// Distinct keys per producer so every add is processed exactly once.
void BM_MultiProducer(benchmark::State& state) {
  const int producers = static_cast<int>(state.range(0));
  constexpr int kPerProducer = 50'000;
  std::vector<std::vector<std::string>> keys;
  for (int p = 0; p < producers; ++p)
    keys.push_back(MakeKeys(kPerProducer, "p" + std::to_string(p)));
  int64_t processed = 0;
  for (auto _ : state) {
    WorkQueue queue;
    std::thread consumer([&] {
      std::string key;
      for (int n = 0; n < producers * kPerProducer; ++n) {
        if (!queue.Get(&key)) break;
        queue.Done(key);
        ++processed;
      }
    });
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([&, p] {
        for (const auto& k : keys[p])
          queue.Add(k);
      });
    }
    for (auto& t : threads)
      t.join();
    consumer.join();
  }
  state.SetItemsProcessed(processed);
}
BENCHMARK(BM_MultiProducer)->Arg(1)->Arg(2)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Depth(benchmark::State& state) {
  const int depth = static_cast<int>(state.range(0));
  const bool ranked = state.range(1) != 0;
  const auto keys = MakeKeys(depth + 1, "ns");
  std::mutex mu;
  std::unordered_map<std::string, int32_t> priorities;
  std::mt19937 rng(42);
  for (const std::string& k : keys)
    priorities[k] = static_cast<int32_t>(rng() % 4) * 1000;  // a few PriorityClasses
  WorkQueueOptions options;
  if (ranked) {
    options.priority = [&](const std::string& key) -> int64_t {
      std::lock_guard<std::mutex> lock(mu);
      auto it = priorities.find(key);
      return it == priorities.end() ? 0 : it->second;
    };
  }
  WorkQueue queue(std::move(options));
  for (int i = 0; i < depth; ++i)
    queue.Add(keys[i]);
  std::string spare = keys[depth];
  std::string key;
  for (auto _ : state) {
    queue.Add(spare);
    queue.TryGet(&key);
    queue.Done(key);
    spare = key;  // back in next time
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Depth)->ArgsProduct({{1'000, 100'000}, {0, 1}})->ArgNames({"depth", "ranked"});

}  // namespace
}  // namespace gpu_autoscaler::kube

BENCHMARK_MAIN();
