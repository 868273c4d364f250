#include "profiling/recommender.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gpu_autoscaler::profiling {
namespace {

constexpr double kSamplesPerDay = 60 * 24;
constexpr double kSecondsPerDay = 24 * 3600;

// VPA's confidence multipliers: upper (1 + 1/c)^1, lower (1 + 0.001/c)^-2.
double ConfidenceScale(double value, double multiplier, double exponent, double confidence) {
  if (confidence <= 0) {
    return exponent > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  }
  return value * std::pow(1 + multiplier / confidence, exponent);
}

}  // namespace

std::string_view ResourceName(Resource r) {
  switch (r) {
    case Resource::kCpu:
      return "cpu";
    case Resource::kMemory:
      return "memory";
    case Resource::kGpuMemory:
      return "gpu_memory";
    case Resource::kGpuUtilization:
      return "gpu_utilization";
  }
  return "unknown";
}

std::string_view GpuShareKindName(GpuShareKind k) {
  switch (k) {
    case GpuShareKind::kWholeGpu:
      return "whole";
    case GpuShareKind::kMig:
      return "mig";
    case GpuShareKind::kMps:
      return "mps";
    case GpuShareKind::kTimeSlicing:
      return "time-slicing";
  }
  return "unknown";
}

RecommenderConfig VpaConfig() {
  RecommenderConfig c;
  ResourcePolicy& cpu = c.policy(Resource::kCpu);
  cpu.buckets = ExponentialBuckets::CpuCores();
  cpu.min_value = 0.025;  // --pod-recommendation-min-cpu-millicores 25
  ResourcePolicy& memory = c.policy(Resource::kMemory);
  memory.buckets = ExponentialBuckets::MemoryBytes();
  memory.min_value = 250e6;  // --pod-recommendation-min-memory-mb 250
  memory.daily_peaks = true;
  ResourcePolicy& gpu_memory = c.policy(Resource::kGpuMemory);
  gpu_memory = memory;
  gpu_memory.buckets = ExponentialBuckets::GpuMemoryBytes();
  gpu_memory.min_value = 0;
  c.policy(Resource::kGpuUtilization).buckets = ExponentialBuckets::Fraction();
  c.share.consider_compute = false;
  c.share.allow_mig = false;
  return c;
}

RecommenderConfig OurConfig() {
  RecommenderConfig c = VpaConfig();
  for (Resource r : {Resource::kMemory, Resource::kGpuMemory}) {
    ResourcePolicy& p = c.policy(r);
    p.daily_peaks = false;
    p.target_percentile = 1.0;
    p.upper_percentile = 1.0;
  }
  ResourcePolicy& util = c.policy(Resource::kGpuUtilization);
  util.target_percentile = 0.95;
  util.upper_percentile = 0.99;
  c.share = GpuShareConfig{};
  return c;
}

ContainerUsage::ContainerUsage(const RecommenderConfig& config) {
  states_.reserve(kResourceCount);
  for (const ResourcePolicy& p : config.resources) {
    State& s = states_.emplace_back(p, config.half_life_seconds);
    s.daily_peaks = p.daily_peaks;
    s.interval = std::max<int64_t>(1, p.peak_interval);
  }
}

void ContainerUsage::Add(Resource r, int64_t timestamp, double value, double weight) {
  if (!std::isfinite(value) || value < 0) return;
  State& s = state(r);
  if (s.daily_peaks && s.samples > 0 && timestamp < s.last) return;
  if (s.samples == 0 || timestamp < s.first) s.first = timestamp;
  if (s.samples == 0 || timestamp > s.last) s.last = timestamp;
  ++s.samples;
  s.max_value = std::max(s.max_value, value);
  if (!s.daily_peaks) {
    s.histogram.AddSample(value, weight, timestamp);
    return;
  }
  // VPA container.go: one peak per interval, stored at the interval's end;
  // a higher sample in the same interval replaces the stored peak.
  if (s.samples > 1 && timestamp < s.window_end) {
    if (value <= s.window_peak) return;
    s.histogram.SubtractSample(s.window_peak, 1.0, s.window_end);
  } else {
    if (s.samples == 1) s.window_end = timestamp;
    const int64_t behind = timestamp - s.window_end;
    s.window_end += behind / s.interval * s.interval + s.interval;
  }
  s.window_peak = value;
  s.histogram.AddSample(value, 1.0, s.window_end);
}

std::array<ResourceCheckpoint, kResourceCount> ContainerUsage::Save() const {
  std::array<ResourceCheckpoint, kResourceCount> out;
  for (size_t i = 0; i < states_.size(); ++i) {
    const State& s = states_[i];
    out[i] = {.reference = s.histogram.reference_timestamp(),
              .buckets = s.histogram.histogram().NonEmptyBuckets(),
              .samples = s.samples,
              .first = s.first,
              .last = s.last,
              .max_value = s.max_value,
              .window_end = s.window_end,
              .window_peak = s.window_peak};
  }
  return out;
}

void ContainerUsage::Restore(const std::array<ResourceCheckpoint, kResourceCount>& checkpoint) {
  for (size_t i = 0; i < states_.size(); ++i) {
    State& s = states_[i];
    const ResourceCheckpoint& c = checkpoint[i];
    s.histogram.Restore(c.reference, c.buckets);
    s.samples = c.samples;
    s.first = c.first;
    s.last = c.last;
    s.max_value = c.max_value;
    s.window_end = c.window_end;
    s.window_peak = c.window_peak;
  }
}

double ContainerUsage::Confidence(Resource r) const {
  const State& s = state(r);
  if (s.samples == 0) return 0;
  const double lifespan_days = static_cast<double>(s.last - s.first) / kSecondsPerDay;
  return std::min(lifespan_days, static_cast<double>(s.samples) / kSamplesPerDay);
}

std::optional<Estimate> EstimateResource(const ContainerUsage& usage, Resource r,
                                         const ResourcePolicy& policy) {
  const DecayingHistogram& h = usage.histogram(r);
  if (usage.samples(r) == 0 || h.IsEmpty()) return std::nullopt;
  const double scale = 1 + policy.margin;
  const double confidence = usage.Confidence(r);
  Estimate e;
  e.target = h.Percentile(policy.target_percentile) * scale;
  e.lower = ConfidenceScale(h.Percentile(policy.lower_percentile) * scale, 0.001, -2, confidence);
  e.upper = ConfidenceScale(h.Percentile(policy.upper_percentile) * scale, 1.0, 1, confidence);
  e.lower = std::max(e.lower, policy.min_value);
  e.target = std::max(e.target, policy.min_value);
  e.upper = std::max(e.upper, policy.min_value);
  return e;
}

double GpuMemoryBytes(const gpu::GpuSpec& gpu) {
  return gpu.memory_gb * 1e9;
}
double MigMemoryBytes(const gpu::MigProfile& profile) {
  return profile.memory_gb * 1e9;
}

GpuShare ChooseGpuShare(double gpu_memory_bytes, double compute, double median_utilization,
                        const gpu::GpuSpec& gpu, const GpuShareConfig& config) {
  const double total = GpuMemoryBytes(gpu);
  const double memory_share = gpu_memory_bytes / total;
  GpuShare whole;
  whole.memory_limit_bytes = total;
  if (!config.consider_compute) {
    // Sized by memory alone: time-slicing with a memory budget.
    if (memory_share >= 1) {
      whole.reason = "GPU memory need fills the GPU";
      return whole;
    }
    GpuShare naive;
    naive.kind = GpuShareKind::kTimeSlicing;
    naive.memory_limit_bytes = gpu_memory_bytes;
    naive.compute_share = memory_share;
    naive.gpu_fraction = memory_share;
    naive.reason = "sized by GPU memory alone";
    return naive;
  }
  compute = std::clamp(compute, config.min_compute_share, 1.0);
  if (memory_share >= config.whole_gpu_memory) {
    whole.reason = "GPU memory need is at least " +
                   std::to_string(static_cast<int>(config.whole_gpu_memory * 100)) + "% of the GPU";
    return whole;
  }
  if (compute >= config.whole_gpu_compute) {
    whole.reason = "compute need is at least " +
                   std::to_string(static_cast<int>(config.whole_gpu_compute * 100)) +
                   "% of the GPU";
    return whole;
  }

  // MPS or time-slicing: a memory limit and a compute share.
  GpuShare shared;
  const int step = std::max(1, config.thread_percent_step);
  const int percent =
      std::min(100, static_cast<int>(std::ceil(compute * 100 / step - 1e-9)) * step);
  shared.compute_share = percent / 100.0;
  shared.memory_limit_bytes = gpu_memory_bytes;
  shared.gpu_fraction = std::max(shared.compute_share, memory_share);
  if (median_utilization < config.time_slicing_median_utilization) {
    shared.kind = GpuShareKind::kTimeSlicing;
    shared.reason = "mostly idle (median utilisation under " +
                    std::to_string(static_cast<int>(
                        std::lround(config.time_slicing_median_utilization * 100))) +
                    "%): time-sliced";
  } else {
    shared.kind = GpuShareKind::kMps;
    shared.mps_thread_percent = percent;
    shared.reason = "steady compute: MPS with a thread limit";
  }

  if (config.allow_mig) {
    const gpu::MigProfile* best = nullptr;
    double best_fraction = 2;
    for (const gpu::MigProfile& p : gpu.profiles) {
      if (p.media_extensions || MigMemoryBytes(p) < gpu_memory_bytes) continue;
      if (gpu::ComputeFraction(p) < compute) continue;
      const double fraction = std::max(gpu::ComputeFraction(p), gpu::MemoryFraction(p));
      if (fraction < best_fraction) {
        best = &p;
        best_fraction = fraction;
      }
    }
    if (best != nullptr && best_fraction < 1 &&
        best_fraction <= shared.gpu_fraction + config.mig_preference) {
      GpuShare mig;
      mig.kind = GpuShareKind::kMig;
      mig.mig_profile = std::string(best->name);
      mig.compute_share = gpu::ComputeFraction(*best);
      mig.memory_limit_bytes = MigMemoryBytes(*best);
      mig.gpu_fraction = best_fraction;
      mig.reason = "fits a MIG slice with headroom";
      return mig;
    }
  }
  return shared;
}

Recommendation Recommend(const ContainerUsage& usage, const RecommenderConfig& config,
                         const gpu::GpuSpec& gpu) {
  Recommendation r;
  r.cpu = EstimateResource(usage, Resource::kCpu, config.policy(Resource::kCpu));
  r.memory = EstimateResource(usage, Resource::kMemory, config.policy(Resource::kMemory));
  r.gpu_memory = EstimateResource(usage, Resource::kGpuMemory, config.policy(Resource::kGpuMemory));
  r.gpu_utilization =
      EstimateResource(usage, Resource::kGpuUtilization, config.policy(Resource::kGpuUtilization));
  if (!r.gpu_memory) {
    r.gpu.memory_limit_bytes = GpuMemoryBytes(gpu);
    r.gpu.reason = "no GPU memory history";
    return r;
  }
  // Without utilisation history the compute need is unknown: assume all of it.
  const double compute = r.gpu_utilization ? r.gpu_utilization->target : 1.0;
  const double median =
      r.gpu_utilization ? usage.histogram(Resource::kGpuUtilization).Percentile(0.5) : 1.0;
  r.gpu = ChooseGpuShare(r.gpu_memory->target, compute, median, gpu, config.share);
  return r;
}

}  // namespace gpu_autoscaler::profiling
