// Memory of the informer cache: heap bytes per cached trimmed PodView in a
// Store (typical GPU pod: 6 labels, 4 annotations, 1-2 containers; target
// <= 2 KiB), and process RSS with 150,000 pods cached (target < 400 MiB).
//
// Heap is measured exactly: this program replaces operator new/delete with
// versions that count malloc_usable_size() plus the 8-byte chunk header of
// every live block. Everything a cached pod costs is included: the view and
// its shared_ptr control block, its arena and arrays, its share of the
// interned strings, and the store's hash-map node and key.
//
//   informer_memory_bench [pods]     (default 150000)
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "kube/indexer.h"
#include "kube/interned_string.h"
#include "kube/object_codec.h"
#include "kube/store.h"
#include "pod_fixture.h"

namespace {

std::atomic<int64_t> g_live_bytes{0};

void* CountedAlloc(size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  g_live_bytes.fetch_add(static_cast<int64_t>(malloc_usable_size(p) + 8),
                         std::memory_order_relaxed);
  return p;
}

void CountedFree(void* p) {
  if (p == nullptr) return;
  g_live_bytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(p) + 8),
                         std::memory_order_relaxed);
  std::free(p);
}

int64_t RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

}  // namespace

void* operator new(size_t size) {
  return CountedAlloc(size);
}
void* operator new[](size_t size) {
  return CountedAlloc(size);
}
void operator delete(void* p) noexcept {
  CountedFree(p);
}
void operator delete[](void* p) noexcept {
  CountedFree(p);
}
void operator delete(void* p, size_t) noexcept {
  CountedFree(p);
}
void operator delete[](void* p, size_t) noexcept {
  CountedFree(p);
}

int main(int argc, char** argv) {
  using namespace gpu_autoscaler;
  const int pods = argc > 1 ? std::atoi(argv[1]) : 150'000;
  constexpr int kPage = 500;
  std::printf("caching %d pods (pages of %d)\n", pods, kPage);
  const int64_t rss_start = RssKiB();
  const int64_t heap_start = g_live_bytes.load();
  const auto t0 = std::chrono::steady_clock::now();

  // Decode page by page, as an informer does; the page text is freed each time.
  std::vector<std::shared_ptr<const kube::PodView>> views;
  views.reserve(pods);
  size_t json_bytes = 0;
  for (int first = 0; first < pods; first += kPage) {
    const int count = std::min(kPage, pods - first);
    std::string page = bench::PodListJson(first, count, "999", "");
    json_bytes += page.size();
    auto list = kube::DecodePodList(page);
    if (!list.ok()) {
      std::fprintf(stderr, "decode: %s\n", list.error().ToString().c_str());
      return 1;
    }
    for (kube::PodView& v : list->items) {
      views.push_back(std::make_shared<const kube::PodView>(std::move(v)));
    }
  }
  const int64_t heap_views = g_live_bytes.load() - heap_start;
  size_t owned = 0;
  for (const auto& v : views)
    owned += sizeof(kube::PodView) + v->OwnedBytes();

  kube::Store<kube::PodView> store;
  store.Replace(std::move(views), "999");
  views = {};
  const int64_t heap_store = g_live_bytes.load() - heap_start;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const int64_t rss_before_trim = RssKiB();
  malloc_trim(0);
  const int64_t rss = RssKiB();

  std::printf("source JSON: %.0f bytes/pod\n", static_cast<double>(json_bytes) / pods);
  std::printf("PodView payload (object + arena + arrays, no allocator overhead): %.0f bytes/pod\n",
              static_cast<double>(owned) / pods);
  std::printf("heap, decoded views (+ shared_ptr blocks, interned strings): %.0f bytes/pod\n",
              static_cast<double>(heap_views) / pods);
  std::printf("heap, cached in Store (+ hash map node and key): %.0f bytes/pod  [target <= 2048]\n",
              static_cast<double>(heap_store) / pods);
  std::printf("interned strings: %zu distinct\n", kube::InternedStringCount());
  std::printf(
      "RSS: start %.1f MiB, cached %.1f MiB (%.1f MiB before malloc_trim)  [target < 400]\n",
      rss_start / 1024.0, rss / 1024.0, rss_before_trim / 1024.0);
  std::printf("build time: %.1f s (generating JSON included)\n", secs);
  if (store.size() != static_cast<size_t>(pods)) {
    std::fprintf(stderr, "store holds %zu pods, expected %d\n", store.size(), pods);
    return 1;
  }
  return 0;
}
