// File: src/profiling/workload_profile.h
//
// The usage history of one profiled workload (one ServiceProfile): a
// ContainerUsage per container name, fed with samples from any of its pods,
// as VPA aggregates all pods of a workload per container name. Samples are
// deduplicated by (pod, container, resource) timestamp, so polling the same
// Prometheus evaluation twice counts once. The whole state round-trips
// through a JSON checkpoint (the manager keeps it in a ConfigMap, see
// controllers/service_profile_controller.h).
//
//   WorkloadProfile profile(OurConfig());
//   profile.Ingest({{"web-1", "server", Resource::kCpu, 1700000000, 0.21, 1.0}});
//   std::map<std::string, Recommendation> recs = profile.Recommend(gpu_spec);
//   nlohmann::json saved = profile.Checkpoint();
//   auto back = WorkloadProfile::FromCheckpoint(saved, OurConfig());
//
// Checkpoint layout (version 1):
//   {"version":1, "halfLifeSeconds":86400,
//    "buckets":{"cpu":[first,ratio,n], ...},            // layout guard
//    "containers":{"server":{"cpu":{"reference":..,"buckets":[[b,w],..],"samples":..,
//                                   "first":..,"last":..,"max":..,"windowEnd":..,
//                                   "windowPeak":..}, ...}},
//    "lastSeen":{"<pod>/<container>/<resource>": unix seconds}}
// A checkpoint whose version, half-life or bucket layout differs from the
// configuration is rejected (FailedPrecondition): its weights would land in
// the wrong buckets, as VPA's SupportedCheckpointVersion guards against.
//
// Thread-safety: a value; not safe for concurrent mutation.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "gpu/mig.h"
#include "profiling/recommender.h"

namespace gpu_autoscaler::profiling {

inline constexpr int kProfileCheckpointVersion = 1;

struct UsageSample {
  std::string pod{};
  std::string container{};
  Resource resource = Resource::kCpu;
  int64_t timestamp = 0;  // Unix seconds of the measurement
  double value = 0;       // cores, bytes, or 0..1 GPU utilisation
  double weight = 1;      // CPU: the request in cores, at least 0.1 (VPA)
};

class WorkloadProfile {
 public:
  explicit WorkloadProfile(RecommenderConfig config);

  // Adds the samples newer than the last one seen for their (pod, container,
  // resource); returns how many were added.
  int Ingest(std::span<const UsageSample> samples);
  // Drops the dedup entries of pods not in `live_pods` (history stays).
  void ForgetPodsExcept(const std::set<std::string>& live_pods);

  const std::map<std::string, ContainerUsage>& containers() const { return containers_; }
  uint64_t total_samples() const;
  // One recommendation per container with any history.
  std::map<std::string, Recommendation> Recommend(const gpu::GpuSpec& gpu) const;

  nlohmann::json Checkpoint() const;
  // InvalidArgument for a malformed checkpoint, FailedPrecondition for one
  // saved with another version, half-life or bucket layout. Never throws.
  static Result<WorkloadProfile> FromCheckpoint(const nlohmann::json& checkpoint,
                                                RecommenderConfig config);
  // The parts a decoded checkpoint holds.
  static WorkloadProfile FromParts(
      RecommenderConfig config,
      const std::map<std::string, std::array<ResourceCheckpoint, kResourceCount>>& containers,
      std::map<std::string, int64_t> last_seen);

 private:
  RecommenderConfig config_;
  std::map<std::string, ContainerUsage> containers_;
  std::map<std::string, int64_t> last_seen_;  // "<pod>/<container>/<resource>"
};

}  // namespace gpu_autoscaler::profiling
