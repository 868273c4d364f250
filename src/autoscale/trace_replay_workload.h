// File: src/autoscale/trace_replay_workload.h
//
// Workloads for the autoscaling trace replay (trace_replay.h):
//  * from the openb pod lists' creation_time / deletion_time (trace.h's
//    TimedPod): each GPU pod runs for its recorded lifetime once bound;
//  * from a request-rate series (the GenTD26 QPS series): replicas(t) =
//    max(min_replicas, ceil(rate(t) / capacity_per_replica)), one whole-GPU
//    pod per replica; a rise starts replicas, a fall stops the newest ones.
//
//   ReplayWorkload openb = WorkloadFromTimedPods("openb", timed_pods);
//   std::vector<RateSample> qps = SumRatePerBucket(samples, 60);
//   ReplayWorkload genai = WorkloadFromRate("genai", qps, 60, {.capacity_per_replica = 0.5});
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "autoscale/trace.h"
#include "autoscale/trace_replay.h"

namespace gpu_autoscaler::autoscale {

// GPU pods only (num_gpu and gpu_milli above 0) with a positive lifetime,
// sorted by arrival. Times are the trace's (seconds from its start).
ReplayWorkload WorkloadFromTimedPods(std::string name, std::span<const TimedPod> pods);

struct RateSample {
  int64_t time = 0;  // seconds
  double value = 0;  // requests per second
};

// Sums samples into buckets [origin + k·bucket, +bucket), origin = the first
// sample's time rounded down to a bucket; buckets with no sample are 0. The
// result starts at time 0 (times are shifted by -origin). Empty in, empty out.
std::vector<RateSample> SumRatePerBucket(std::span<const RateSample> samples, int64_t bucket);

struct ReplicaOptions {
  double capacity_per_replica = 0.5;  // requests per second one replica serves
  int min_replicas = 1;
};
// `rate` holds one sample per `bucket` seconds, sorted (SumRatePerBucket's
// output). The replica count of a bucket holds for the whole bucket; every
// replica leaves at the end of the series. Replica pods leave at fixed times
// (runs_for_duration = false).
ReplayWorkload WorkloadFromRate(std::string name, std::span<const RateSample> rate, int64_t bucket,
                                const ReplicaOptions& options);

}  // namespace gpu_autoscaler::autoscale
