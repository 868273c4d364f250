#include "profiling/evaluation.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gpu_autoscaler::profiling {
namespace {

struct Timeline {
  bool empty = true;
  int64_t first = 0;
  int64_t last = 0;
};

Timeline TimelineOf(const PodUsage& pod) {
  Timeline t;
  for (const auto* series : {&pod.gpu_utilization, &pod.gpu_memory, &pod.memory}) {
    for (const TimedValue& s : *series) {
      if (t.empty || s.timestamp < t.first) t.first = s.timestamp;
      if (t.empty || s.timestamp > t.last) t.last = s.timestamp;
      t.empty = false;
    }
  }
  return t;
}

// The cut between learning [first, cut) and scoring [cut, ...).
// Computed in double, so any int64 span works; the cut stays within [first, last].
int64_t CutAt(int64_t first, int64_t last, double fraction) {
  const double lo = static_cast<double>(first);
  const double hi = static_cast<double>(last);
  const double cut = lo + std::ceil(fraction * (hi - lo));
  if (cut >= hi) return last;
  if (cut <= lo) return first;
  return static_cast<int64_t>(cut);
}

bool UsesGpu(const PodUsage& pod) {
  return !pod.gpu_memory.empty() || !pod.gpu_utilization.empty();
}

void Learn(ContainerUsage& usage, const PodUsage& pod, int64_t cut) {
  auto feed = [&](Resource r, const std::vector<TimedValue>& series) {
    for (const TimedValue& s : series) {
      if (s.timestamp < cut) usage.Add(r, s.timestamp, s.value);
    }
  };
  feed(Resource::kGpuUtilization, pod.gpu_utilization);
  feed(Resource::kGpuMemory, pod.gpu_memory);
  feed(Resource::kMemory, pod.memory);
}

// Samples in [from, to) above `limit`.
Exceedance Score(const std::vector<TimedValue>& series, int64_t from, int64_t to, double limit) {
  Exceedance e;
  for (const TimedValue& s : series) {
    if (s.timestamp < from || s.timestamp >= to) continue;
    ++e.test_minutes;
    if (s.value > limit) ++e.exceeded_minutes;
  }
  return e;
}

void Accumulate(Exceedance& into, const Exceedance& e) {
  into.test_minutes += e.test_minutes;
  into.exceeded_minutes += e.exceeded_minutes;
}

Recommendation WholeGpu(const gpu::GpuSpec& gpu) {
  Recommendation r;
  r.gpu.memory_limit_bytes = GpuMemoryBytes(gpu);
  r.gpu.reason = "one whole GPU per pod";
  return r;
}

// Learns from [.., cut) and scores [cut, end) for one method.
PodMethodResult RunMethod(Method method, const PodUsage& pod, const RecommenderConfig& config,
                          const gpu::GpuSpec& gpu, int64_t cut, int64_t end,
                          bool memory_is_fraction) {
  PodMethodResult out;
  if (method == Method::kWholeGpu) {
    out.recommendation = WholeGpu(gpu);
  } else {
    ContainerUsage usage(config);
    Learn(usage, pod, cut);
    out.recommendation = Recommend(usage, config, gpu);
  }
  const Recommendation& r = out.recommendation;
  out.gpu_memory = Score(pod.gpu_memory, cut, end, r.gpu.memory_limit_bytes);
  out.gpu_utilization = Score(pod.gpu_utilization, cut, end, r.gpu.compute_share);
  if (r.memory) {
    out.memory = Score(pod.memory, cut, end, r.memory->target);
  } else if (method == Method::kWholeGpu && memory_is_fraction) {
    out.memory = Score(pod.memory, cut, end, 1.0);  // the pod's own limit
  }
  return out;
}

struct TuningScore {
  Exceedance gpu_memory;
  Exceedance memory;
};

// Nested split of the training part: learn from its first `train_fraction`,
// score the rest of it. Never looks at [cut, ...).
TuningScore ScoreOnTrainingPart(const std::vector<PodUsage>& pods, const RecommenderConfig& config,
                                const gpu::GpuSpec& gpu, const EvaluationOptions& options) {
  TuningScore total;
  for (const PodUsage& pod : pods) {
    const Timeline t = TimelineOf(pod);
    if (t.empty) continue;
    const int64_t cut = CutAt(t.first, t.last, options.train_fraction);
    const int64_t inner = CutAt(t.first, cut, options.train_fraction);
    const PodMethodResult r =
        RunMethod(Method::kOurs, pod, config, gpu, inner, cut, options.memory_is_fraction);
    Accumulate(total.gpu_memory, r.gpu_memory);
    Accumulate(total.memory, r.memory);
  }
  return total;
}

}  // namespace

std::string_view MethodName(Method m) {
  switch (m) {
    case Method::kOurs:
      return "ours";
    case Method::kVpa:
      return "vpa";
    case Method::kWholeGpu:
      return "whole-gpu";
  }
  return "unknown";
}

RecommenderConfig EvaluationConfig(Method m, const EvaluationOptions& options) {
  RecommenderConfig c = m == Method::kVpa ? VpaConfig() : OurConfig();
  if (options.memory_is_fraction) {
    ResourcePolicy& memory = c.policy(Resource::kMemory);
    memory.buckets = ExponentialBuckets::Fraction();
    memory.min_value = 0;
  }
  return c;
}

Result<EvaluationReport> Evaluate(const std::vector<PodUsage>& pods,
                                  const EvaluationOptions& options) {
  if (!(options.train_fraction > 0 && options.train_fraction < 1)) {
    return InvalidArgumentError("train fraction " + std::to_string(options.train_fraction) +
                                " is outside (0, 1)");
  }
  const gpu::GpuSpec& gpu = gpu::GetGpu(options.gpu_model);
  EvaluationReport report;
  report.gpu_model = std::string(gpu.name);
  report.train_fraction = options.train_fraction;

  RecommenderConfig configs[kMethodCount] = {EvaluationConfig(Method::kOurs, options),
                                             EvaluationConfig(Method::kVpa, options),
                                             EvaluationConfig(Method::kWholeGpu, options)};
  RecommenderConfig& ours = configs[static_cast<int>(Method::kOurs)];
  if (options.margin) {
    ours.policy(Resource::kGpuMemory).margin = *options.margin;
    ours.policy(Resource::kMemory).margin = *options.margin;
  } else if (!options.margin_grid.empty()) {
    std::vector<double> grid = options.margin_grid;
    std::sort(grid.begin(), grid.end());
    double gpu_margin = grid.back();
    double memory_margin = grid.back();
    bool gpu_found = false;
    bool memory_found = false;
    for (double m : grid) {
      RecommenderConfig c = ours;
      c.policy(Resource::kGpuMemory).margin = m;
      c.policy(Resource::kMemory).margin = m;
      const TuningScore s = ScoreOnTrainingPart(pods, c, gpu, options);
      if (!gpu_found && s.gpu_memory.pct() <= options.tuning_target_pct) {
        gpu_margin = m;
        gpu_found = true;
      }
      if (!memory_found && s.memory.pct() <= options.tuning_target_pct) {
        memory_margin = m;
        memory_found = true;
      }
      if (gpu_found && memory_found) break;
    }
    ours.policy(Resource::kGpuMemory).margin = gpu_margin;
    ours.policy(Resource::kMemory).margin = memory_margin;
    report.margins_tuned = true;
  }
  report.gpu_memory_margin = ours.policy(Resource::kGpuMemory).margin;
  report.memory_margin = ours.policy(Resource::kMemory).margin;

  for (int m = 0; m < kMethodCount; ++m)
    report.methods[m].method = static_cast<Method>(m);
  report.pod_results.reserve(pods.size());
  for (const PodUsage& pod : pods) {
    const Timeline t = TimelineOf(pod);
    if (t.empty) continue;
    PodResult result;
    result.name = pod.name;
    result.uses_gpu = UsesGpu(pod);
    const int64_t cut = CutAt(t.first, t.last, options.train_fraction);
    result.train_seconds = cut - t.first;
    result.test_seconds = t.last - cut;
    for (const TimedValue& s : pod.gpu_memory) {
      if (s.timestamp < cut)
        result.train_gpu_memory_peak = std::max(result.train_gpu_memory_peak, s.value);
    }
    for (int m = 0; m < kMethodCount; ++m) {
      PodMethodResult r =
          RunMethod(static_cast<Method>(m), pod, configs[m], gpu, cut,
                    std::numeric_limits<int64_t>::max(), options.memory_is_fraction);
      MethodSummary& sum = report.methods[m];
      Accumulate(sum.gpu_memory, r.gpu_memory);
      Accumulate(sum.memory, r.memory);
      Accumulate(sum.gpu_utilization, r.gpu_utilization);
      if (result.uses_gpu) {
        sum.gpu_fraction_sum += r.recommendation.gpu.gpu_fraction;
        ++sum.share_counts[static_cast<int>(r.recommendation.gpu.kind)];
      }
      result.methods[m] = std::move(r);
    }
    ++report.pods;
    if (result.uses_gpu) ++report.gpu_pods;
    report.pod_results.push_back(std::move(result));
  }
  if (report.pods == 0) return InvalidArgumentError("no pod has usage samples");
  for (MethodSummary& sum : report.methods) {
    sum.gpus_saved_pct =
        report.gpu_pods > 0 ? 100.0 * (1 - sum.gpu_fraction_sum / report.gpu_pods) : 0.0;
  }
  return report;
}

}  // namespace gpu_autoscaler::profiling
