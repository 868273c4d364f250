// File: src/profiling/recommender.h
//
// Right-sizing recommendations for one container (or pod) from its usage:
// CPU, memory and GPU memory as lower / target / upper bounds with the VPA
// recommender's formula, and the GPU share to ask for: a whole GPU, a MIG
// profile of the node's GPU model, MPS with a thread percentage, or
// time-slicing. The VPA baseline (its published constants, daily memory
// peaks, no notion of a GPU share) is one configuration of the same code.
//
//   ContainerUsage usage(OurConfig());
//   for (const auto& s : samples) usage.Add(Resource::kGpuMemory, s.timestamp, s.bytes);
//   Recommendation r = Recommend(usage, OurConfig(), gpu::GetGpu(gpu::GpuModel::kA100_80GB));
//   if (r.gpu.kind == GpuShareKind::kMig) UseProfile(r.gpu.mig_profile);
//
// VPA formula (kubernetes/autoscaler vertical-pod-autoscaler recommender):
//   value      = percentile of the decaying histogram (target p90, lower p50, upper p95)
//   × (1 + margin)                                   (margin 0.15)
//   upper      × (1 + 1/confidence)                  (no history: unbounded)
//   lower      × (1 + 0.001/confidence)^-2
//   max(value, per-resource minimum)                 (25 millicores, 250 MB)
// with confidence = min(days between first and last sample, samples / 1440).
// VPA's memory histogram holds one sample per 24 h interval, the interval's
// peak; `ResourcePolicy::daily_peaks` selects that aggregation.
//
// Units: CPU in cores, memory and GPU memory in bytes, GPU utilisation as a
// fraction of the GPU's time (0..1). A trace that reports memory as a
// fraction of the limit uses ExponentialBuckets::Fraction() and a zero minimum.
//
// Thread-safety: ContainerUsage is a value, not safe for concurrent mutation;
// Recommend is pure.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gpu/mig.h"
#include "profiling/histogram.h"

namespace gpu_autoscaler::profiling {

enum class Resource { kCpu = 0, kMemory, kGpuMemory, kGpuUtilization };
inline constexpr int kResourceCount = 4;
std::string_view ResourceName(Resource r);  // "cpu", "memory", "gpu_memory", "gpu_utilization"

struct ResourcePolicy {
  ExponentialBuckets buckets = ExponentialBuckets::Fraction();
  double lower_percentile = 0.5;
  double target_percentile = 0.9;
  double upper_percentile = 0.95;
  double margin = 0.15;      // safety margin on all three
  double min_value = 0;      // floor of every bound
  bool daily_peaks = false;  // VPA memory: one sample per interval, its peak
  int64_t peak_interval = 24 * 3600;
};

struct GpuShareConfig {
  double whole_gpu_compute = 0.9;  // compute share at or above which a whole GPU is asked for
  double whole_gpu_memory = 0.9;   // same for the GPU-memory limit over the GPU's memory
  // Prefer a MIG profile (hard memory and fault isolation) when its share of
  // the GPU exceeds the MPS / time-slicing share by at most this much.
  double mig_preference = 0.125;
  // Median utilisation under this: the GPU is mostly idle, so time-slicing
  // (no compute partition) rather than MPS.
  double time_slicing_median_utilization = 0.05;
  double min_compute_share = 0.05;
  int thread_percent_step = 5;  // MPS thread percentage rounded up to this
  // With false, the share is sized by GPU memory alone as time-slicing (the
  // naive share a memory-only recommender implies); MIG and MPS are not used.
  bool consider_compute = true;
  bool allow_mig = true;
};

struct RecommenderConfig {
  std::array<ResourcePolicy, kResourceCount> resources{};
  int64_t half_life_seconds = kDefaultHalfLifeSeconds;
  GpuShareConfig share{};
  const ResourcePolicy& policy(Resource r) const { return resources[static_cast<size_t>(r)]; }
  ResourcePolicy& policy(Resource r) { return resources[static_cast<size_t>(r)]; }
};

// VPA's published defaults (facts: target p90, bounds p50/p95, margin 0.15,
// 24 h half-life, daily memory peaks, 25 millicores / 250 MB minimums),
// applied to GPU memory like memory and to GPU utilisation like CPU.
RecommenderConfig VpaConfig();
// Ours: VPA for CPU; memory and GPU memory size the limit on the peak of
// per-minute samples (exceeding them is an OOM, so no percentile below 1);
// GPU utilisation p95 gives the compute share.
RecommenderConfig OurConfig();

// What a checkpoint keeps of one resource's history (ContainerUsage::Save).
struct ResourceCheckpoint {
  int64_t reference = 0;                          // the histogram's reference time
  std::vector<std::pair<int, double>> buckets{};  // non-empty buckets
  uint64_t samples = 0;
  int64_t first = 0;
  int64_t last = 0;
  double max_value = 0;
  int64_t window_end = 0;  // daily peaks: the open interval and its peak
  double window_peak = 0;
};

// The usage history of one container.
class ContainerUsage {
 public:
  explicit ContainerUsage(const RecommenderConfig& config);

  // A checkpoint of every resource (by Resource), and back. Restore expects
  // the same RecommenderConfig buckets the checkpoint was saved with.
  std::array<ResourceCheckpoint, kResourceCount> Save() const;
  void Restore(const std::array<ResourceCheckpoint, kResourceCount>& checkpoint);

  // `weight` as VPA's CPU samples (the request, at least 0.1); 1 otherwise.
  // Samples older than the last one of the same daily-peak resource are dropped.
  void Add(Resource r, int64_t timestamp, double value, double weight = 1.0);

  const DecayingHistogram& histogram(Resource r) const { return state(r).histogram; }
  uint64_t samples(Resource r) const { return state(r).samples; }
  double max_value(Resource r) const { return state(r).max_value; }
  // VPA's confidence in days: min(lifespan days, samples / (60 × 24)); 0 without samples.
  double Confidence(Resource r) const;

 private:
  struct State {
    explicit State(const ResourcePolicy& p, int64_t half_life) : histogram(p.buckets, half_life) {}
    DecayingHistogram histogram;
    uint64_t samples = 0;
    int64_t first = 0;
    int64_t last = 0;
    double max_value = 0;
    bool daily_peaks = false;
    int64_t interval = 0;
    int64_t window_end = 0;
    double window_peak = 0;
  };
  const State& state(Resource r) const { return states_[static_cast<size_t>(r)]; }
  State& state(Resource r) { return states_[static_cast<size_t>(r)]; }
  std::vector<State> states_;  // by Resource
};

struct Estimate {
  double lower = 0;
  double target = 0;
  double upper = 0;  // +infinity with no confidence
};

enum class GpuShareKind { kWholeGpu, kMig, kMps, kTimeSlicing };
std::string_view GpuShareKindName(GpuShareKind k);  // "whole", "mig", "mps", "time-slicing"

struct GpuShare {
  GpuShareKind kind = GpuShareKind::kWholeGpu;
  std::string mig_profile;        // kMig: "3g.40gb"
  int mps_thread_percent = 100;   // kMps: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE
  double compute_share = 1;       // of the GPU's SMs / time
  double memory_limit_bytes = 0;  // what the pod may use: the MIG slice's memory, the limit
  // Its share of one GPU for counting GPUs: a MIG profile's
  // max(compute/7, memory/8); MPS and time-slicing max(compute, memory limit
  // / GPU memory); a whole GPU 1.
  double gpu_fraction = 1;
  std::string reason;
};

struct Recommendation {
  std::optional<Estimate> cpu;
  std::optional<Estimate> memory;
  std::optional<Estimate> gpu_memory;
  std::optional<Estimate> gpu_utilization;  // target = the compute share before rounding
  GpuShare gpu;
};

// A percentile-based estimate of one resource (nullopt without samples).
std::optional<Estimate> EstimateResource(const ContainerUsage& usage, Resource r,
                                         const ResourcePolicy& policy);

// The GPU share for a GPU-memory need (bytes) and a compute need (0..1) on
// `gpu`; `median_utilization` picks time-slicing over MPS.
GpuShare ChooseGpuShare(double gpu_memory_bytes, double compute, double median_utilization,
                        const gpu::GpuSpec& gpu, const GpuShareConfig& config);

// Everything `usage` supports. Without GPU-memory samples the share is a whole GPU.
Recommendation Recommend(const ContainerUsage& usage, const RecommenderConfig& config,
                         const gpu::GpuSpec& gpu);

// Bytes of a GPU (nominal GB × 1e9: at most the real capacity, as NVIDIA's
// "80GB" is 79.2 GiB) and of a MIG profile.
double GpuMemoryBytes(const gpu::GpuSpec& gpu);
double MigMemoryBytes(const gpu::MigProfile& profile);

}  // namespace gpu_autoscaler::profiling
