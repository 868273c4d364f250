#include "autoscale/trace_replay_workload.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace gpu_autoscaler::autoscale {

ReplayWorkload WorkloadFromTimedPods(std::string name, std::span<const TimedPod> pods) {
  ReplayWorkload w;
  w.name = std::move(name);
  for (const TimedPod& p : pods) {
    if (p.spec.num_gpu < 1 || p.spec.gpu_milli < 1) continue;  // CPU-only: not this pool's demand
    if (p.deletion_time <= p.creation_time) continue;
    w.pods.push_back({.arrival = p.creation_time,
                      .departure = p.deletion_time,
                      .num_gpu = p.spec.num_gpu,
                      .gpu_milli = p.spec.gpu_milli,
                      .runs_for_duration = true});
  }
  std::stable_sort(w.pods.begin(), w.pods.end(),
                   [](const ReplayPod& a, const ReplayPod& b) { return a.arrival < b.arrival; });
  return w;
}

std::vector<RateSample> SumRatePerBucket(std::span<const RateSample> samples, int64_t bucket) {
  if (samples.empty() || bucket < 1) return {};
  std::map<int64_t, double> sums;
  for (const RateSample& s : samples) {
    // Floor division, also for negative times.
    int64_t k = s.time / bucket;
    if (s.time % bucket < 0) --k;
    sums[k] += s.value;
  }
  const int64_t first = sums.begin()->first;
  const int64_t last = sums.rbegin()->first;
  std::vector<RateSample> out;
  out.reserve(static_cast<size_t>(last - first + 1));
  for (int64_t k = first; k <= last; ++k) {
    auto it = sums.find(k);
    out.push_back({.time = (k - first) * bucket, .value = it == sums.end() ? 0 : it->second});
  }
  return out;
}

ReplayWorkload WorkloadFromRate(std::string name, std::span<const RateSample> rate, int64_t bucket,
                                const ReplicaOptions& options) {
  ReplayWorkload w;
  w.name = std::move(name);
  if (rate.empty() || bucket < 1 || !(options.capacity_per_replica > 0)) return w;
  const int64_t end = rate.back().time + bucket;
  std::vector<size_t> running;  // indices into w.pods, oldest first
  for (const RateSample& s : rate) {
    const double want = std::ceil(std::max(0.0, s.value) / options.capacity_per_replica - 1e-9);
    const size_t replicas = static_cast<size_t>(std::max<double>(options.min_replicas, want));
    while (running.size() > replicas) {
      w.pods[running.back()].departure = s.time;
      running.pop_back();
    }
    while (running.size() < replicas) {
      running.push_back(w.pods.size());
      w.pods.push_back({.arrival = s.time,
                        .departure = end,
                        .num_gpu = 1,
                        .gpu_milli = 1000,
                        .runs_for_duration = false});
    }
  }
  return w;
}

}  // namespace gpu_autoscaler::autoscale
