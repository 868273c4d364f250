// Paginated lists on the embedded API server's store: 150,000 pods in 50
// namespaces listed cluster-wide in pages of 500 (300 pages), as an informer
// or kubectl does with limit=500. Each page fills metadata.remainingItemCount.
//
//   BM_PagedListCurrent   pages of the current state (no writes since page 1)
//   BM_PagedListSnapshot  pages of an older resourceVersion: 1,000 pods were
//                         updated or deleted after the first page, so every
//                         page is reconstructed from the event log (a soak's
//                         continue tokens take this path)
//
// The pods are small (~300 bytes): listing copies pointers, so what a page
// costs depends on how many keys it touches, not on object size.
//
//   build/default/bench/apiserver_list_bench
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "apiserver/store.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

constexpr int kPods = 150'000;
constexpr int kNamespaces = 50;
constexpr int kPageSize = 500;
constexpr int kChurn = 1'000;

json SmallPod(int i) {
  char name[32];
  std::snprintf(name, sizeof(name), "trainer-%06d", i);
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", "team-" + std::to_string(i % kNamespaces)},
            {"labels", {{"app", "trainer"}}}}},
          {"spec", {{"nodeName", "gpu-node-" + std::to_string(i % 997)}}},
          {"status", {{"phase", "Running"}}}};
}

struct Fixture {
  Store store{/*max_history=*/10'000};
  uint64_t snapshot_rv = 0;  // the state before the churn

  Fixture() {
    const std::vector<std::string> fields = {"spec.nodeName", "status.phase"};
    for (int i = 0; i < kPods; ++i)
      (void)store.Create("/pods", SmallPod(i), fields);
    snapshot_rv = store.current_resource_version();
    // Churn after the first page: half updates, half deletes, spread over the keys.
    for (int i = 0; i < kChurn; ++i) {
      int pod = (i * 149) % kPods;
      json obj = SmallPod(pod);
      std::string key = obj["metadata"]["namespace"].get<std::string>() + "/" +
                        obj["metadata"]["name"].get<std::string>();
      if (i % 2 == 0) {
        obj["status"]["phase"] = "Succeeded";
        (void)store.Update("/pods", key, 0, obj, fields);
      } else {
        (void)store.Delete("/pods", key, 0);
      }
    }
  }
};

Fixture& Shared() {
  static Fixture fixture;
  return fixture;
}

// Lists every page; returns the items seen and the first page's remaining count.
bool ListAllPages(Store& store, uint64_t at, int64_t* items, int64_t* first_remaining) {
  ListRequest req{.storage_key = "/pods", .at_resource_version = at, .limit = kPageSize};
  *items = 0;
  *first_remaining = -1;
  while (true) {
    auto page = store.List(req);
    if (!page.ok()) return false;
    *items += static_cast<int64_t>(page->items.size());
    if (*first_remaining < 0) *first_remaining = page->remaining;
    if (!page->more) return true;
    req.start_after = page->last_key;
    req.at_resource_version = page->resource_version;
  }
}

void RunPagedList(benchmark::State& state, bool snapshot) {
  Fixture& f = Shared();
  const uint64_t at = snapshot ? f.snapshot_rv : 0;
  const int64_t want = snapshot ? kPods : kPods - kChurn / 2;
  for (auto _ : state) {
    int64_t items = 0, first_remaining = 0;
    if (!ListAllPages(f.store, at, &items, &first_remaining) || items != want ||
        first_remaining != want - kPageSize) {
      state.SkipWithError("wrong list");
      return;
    }
    benchmark::DoNotOptimize(items);
  }
  state.counters["pages"] = static_cast<double>((want + kPageSize - 1) / kPageSize);
}

void BM_PagedListCurrent(benchmark::State& state) {
  RunPagedList(state, /*snapshot=*/false);
}
BENCHMARK(BM_PagedListCurrent)->Unit(benchmark::kMillisecond);

void BM_PagedListSnapshot(benchmark::State& state) {
  RunPagedList(state, /*snapshot=*/true);
}
BENCHMARK(BM_PagedListSnapshot)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gpu_autoscaler::apiserver

BENCHMARK_MAIN();
