// Idle-GPU report over a per-pod GPU duty-cycle trace (GenTD26 layout:
// value,timestamp_anon,container_ip; value in percent), plain or gzipped.
// Each pod (container_ip) is taken to hold one whole GPU for as long as it
// reports; samples are fed in time order to cost::IdleGpuDetector. Used for
// docs/cost.md, "Idle GPUs in the GenTD26 trace".
//
// Usage: gpu_waste_report [--threshold PCT] [--window MIN] [--max-gap SEC]
//                         [--gpu-hourly PRICE] [--top N] [FILE]
//   FILE defaults to the excerpt in tests/data/genai/.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "bench/gzip_file.h"
#include "common/status.h"
#include "cost/usage_trace.h"
#include "cost/waste.h"

namespace cost = gpu_autoscaler::cost;
using gpu_autoscaler::Result;

namespace {

struct Options {
  double threshold_percent = 5;
  double window_minutes = 30;
  int64_t max_gap_seconds = 300;
  double gpu_hourly = 0;
  size_t top = 10;
  std::string file =
      std::string(GPA_SOURCE_DIR) + "/tests/data/genai/pod_gpu_duty_cycle_excerpt.csv";
};

struct Run {
  cost::WasteTotals totals;
  std::vector<cost::PodWaste> pods;
  size_t pods_ever_idle = 0;
  int idle_periods = 0;
};

Run Detect(const cost::UsageTrace& trace, const std::vector<size_t>& order, double threshold,
           int64_t window, int64_t max_gap, double gpu_hourly) {
  cost::IdleGpuDetector detector(
      {.threshold = threshold, .window_seconds = window, .max_gap_seconds = max_gap});
  for (const std::string& pod : trace.pods)
    detector.SetAllocation(pod, 1.0, gpu_hourly / 3600);
  std::vector<cost::IdleEvent> events;
  for (size_t i : order) {
    const cost::UsageTraceSample& s = trace.samples[i];
    detector.Observe(trace.pods[s.pod], s.timestamp, s.value / 100, events);
  }
  Run r;
  r.totals = detector.Totals();
  r.pods = detector.AllWaste();
  for (const auto& p : r.pods) {
    r.pods_ever_idle += p.idle_periods > 0 ? 1 : 0;
    r.idle_periods += p.idle_periods;
  }
  return r;
}

int Usage() {
  std::fprintf(stderr,
               "usage: gpu_waste_report [--threshold PCT] [--window MIN] [--max-gap SEC]\n"
               "                        [--gpu-hourly PRICE] [--top N] [FILE]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--threshold" && (v = next())) {
      o.threshold_percent = std::atof(v);
    } else if (a == "--window" && (v = next())) {
      o.window_minutes = std::atof(v);
    } else if (a == "--max-gap" && (v = next())) {
      o.max_gap_seconds = std::atoll(v);
    } else if (a == "--gpu-hourly" && (v = next())) {
      o.gpu_hourly = std::atof(v);
    } else if (a == "--top" && (v = next())) {
      o.top = static_cast<size_t>(std::atoll(v));
    } else if (a == "-h" || a == "--help") {
      return Usage();
    } else if (!a.empty() && a[0] != '-') {
      o.file = std::string(a);
    } else {
      return Usage();
    }
  }

  auto text = gpu_autoscaler::bench::ReadMaybeGzip(o.file);
  if (!text.ok()) {
    std::fprintf(stderr, "gpu_waste_report: %s\n", text.error().ToString().c_str());
    return 1;
  }
  const std::string name = o.file.substr(o.file.find_last_of('/') + 1);
  auto trace = cost::ParseUsageTraceCsv(*text, name);
  if (!trace.ok()) {
    std::fprintf(stderr, "gpu_waste_report: %s\n", trace.error().ToString().c_str());
    return 1;
  }
  // Time order, file order within a second.
  std::vector<size_t> order(trace->samples.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return trace->samples[a].timestamp < trace->samples[b].timestamp;
  });
  int64_t first = 0, last = 0;
  if (!order.empty()) {
    first = trace->samples[order.front()].timestamp;
    last = trace->samples[order.back()].timestamp;
  }

  const int64_t window = static_cast<int64_t>(o.window_minutes * 60);
  const Run run =
      Detect(*trace, order, o.threshold_percent / 100, window, o.max_gap_seconds, o.gpu_hourly);
  const auto& t = run.totals;
  std::printf("file: %s\n", name.c_str());
  std::printf("samples: %zu, pods (one whole GPU each): %zu, span: %.2f h\n", trace->samples.size(),
              trace->pods.size(), static_cast<double>(last - first) / 3600);
  std::printf("idle = below %.4g %% for at least %.4g min (gaps over %lld s not measured)\n",
              o.threshold_percent, o.window_minutes, static_cast<long long>(o.max_gap_seconds));
  std::printf("measured GPU-hours: %.2f\n", t.measured_gpu_seconds / 3600);
  std::printf("idle GPU-hours:     %.2f (%.1f %%)\n", t.idle_gpu_seconds / 3600,
              t.measured_gpu_seconds > 0 ? 100 * t.idle_gpu_seconds / t.measured_gpu_seconds : 0);
  std::printf("pods ever idle: %zu of %zu; idle periods: %d; idle at the end: %zu\n",
              run.pods_ever_idle, t.pods, run.idle_periods, t.idle_pods);
  if (o.gpu_hourly > 0) {
    std::printf("cost at %.4g per GPU-hour: measured %.2f, idle %.2f\n", o.gpu_hourly,
                t.measured_cost, t.idle_cost);
  }

  std::vector<cost::PodWaste> pods = run.pods;
  std::sort(pods.begin(), pods.end(), [](const auto& a, const auto& b) {
    return a.idle_gpu_seconds != b.idle_gpu_seconds ? a.idle_gpu_seconds > b.idle_gpu_seconds
                                                    : a.pod < b.pod;
  });
  std::printf("\nmost idle pods:\n%-34s %10s %10s %7s %8s\n", "POD", "GPU-HOURS", "IDLE-HOURS",
              "IDLE%", "PERIODS");
  for (size_t i = 0; i < pods.size() && i < o.top; ++i) {
    const auto& p = pods[i];
    std::printf("%-34s %10.2f %10.2f %6.1f%% %8d\n", p.pod.c_str(), p.measured_gpu_seconds / 3600,
                p.idle_gpu_seconds / 3600,
                p.measured_gpu_seconds > 0 ? 100 * p.idle_gpu_seconds / p.measured_gpu_seconds : 0,
                p.idle_periods);
  }

  std::printf("\nidle GPU-hours by threshold and window:\n%-10s", "threshold");
  const double windows[] = {10, 30, 60, 120};
  for (double w : windows)
    std::printf(" %9.0fmin", w);
  std::printf("\n");
  for (double th : {1.0, 5.0, 10.0}) {
    std::printf("%8.0f %%", th);
    for (double w : windows) {
      const Run r =
          Detect(*trace, order, th / 100, static_cast<int64_t>(w * 60), o.max_gap_seconds, 0);
      std::printf(" %12.2f", r.totals.idle_gpu_seconds / 3600);
    }
    std::printf("\n");
  }
  return 0;
}
