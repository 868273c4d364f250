// Decoding a 10,000-pod List body (about 50 MB, as kube-apiserver writes it)
// into trimmed PodViews, side by side with nlohmann::json::parse of the same
// bytes; the run ends with the throughput ratio (target: >= 5x).
//
//   BM_DecodePodListViews    simdjson on-demand -> std::vector<PodView>
//   BM_DecodeGenericList     metadata + raw JSON per item (any resource)
//   BM_NlohmannParse         a full DOM parse, the baseline
//   BM_DecodePodEvent        one watch event's object (~5 KB)
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "kube/object_codec.h"
#include "pod_fixture.h"

namespace gpu_autoscaler::kube {
namespace {

constexpr int kPods = 10'000;

const std::string& ListBody() {
  static const std::string body = bench::PodListJson(0, kPods, "4242424", "");
  return body;
}

void SetThroughput(benchmark::State& state, size_t bytes, int objects) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
  state.counters["objects/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * objects, benchmark::Counter::kIsRate);
}

void BM_DecodePodListViews(benchmark::State& state) {
  const std::string& body = ListBody();
  for (auto _ : state) {
    auto list = DecodePodList(body);
    if (!list.ok() || list->items.size() != kPods) {
      state.SkipWithError("decode failed");
      return;
    }
    benchmark::DoNotOptimize(list->items.data());
  }
  SetThroughput(state, body.size(), kPods);
}
BENCHMARK(BM_DecodePodListViews)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DecodeGenericList(benchmark::State& state) {
  const std::string& body = ListBody();
  for (auto _ : state) {
    auto list = DecodeGenericList(body);
    if (!list.ok()) {
      state.SkipWithError("decode failed");
      return;
    }
    benchmark::DoNotOptimize(list->items.data());
  }
  SetThroughput(state, body.size(), kPods);
}
BENCHMARK(BM_DecodeGenericList)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_NlohmannParse(benchmark::State& state) {
  const std::string& body = ListBody();
  for (auto _ : state) {
    nlohmann::json tree = nlohmann::json::parse(body);
    benchmark::DoNotOptimize(tree.size());
  }
  SetThroughput(state, body.size(), kPods);
}
BENCHMARK(BM_NlohmannParse)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DecodePodEvent(benchmark::State& state) {
  const std::string object = bench::PodObject(7).dump();
  for (auto _ : state) {
    auto pod = DecodePod(object);
    benchmark::DoNotOptimize(pod.ok());
  }
  SetThroughput(state, object.size(), 1);
}
BENCHMARK(BM_DecodePodEvent);

// Prints the usual console output, remembering bytes/s per benchmark.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      auto it = run.counters.find("bytes_per_second");
      if (it != run.counters.end()) rates_[run.benchmark_name()] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  double Rate(const std::string& name) const {
    auto it = rates_.find(name);
    return it == rates_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, double> rates_;
};

}  // namespace
}  // namespace gpu_autoscaler::kube

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf(
      "PodList body: %d pods, %.1f MB (%.0f bytes/pod)\n", gpu_autoscaler::kube::kPods,
      gpu_autoscaler::kube::ListBody().size() / 1e6,
      static_cast<double>(gpu_autoscaler::kube::ListBody().size()) / gpu_autoscaler::kube::kPods);
  gpu_autoscaler::kube::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const double views = reporter.Rate("BM_DecodePodListViews/real_time");
  const double nlohmann = reporter.Rate("BM_NlohmannParse/real_time");
  if (views > 0 && nlohmann > 0) {
    std::printf("\nPodView list decode: %.0f MB/s, nlohmann::json::parse: %.0f MB/s, ratio %.1fx\n",
                views / 1e6, nlohmann / 1e6, views / nlohmann);
  }
  benchmark::Shutdown();
  return 0;
}
