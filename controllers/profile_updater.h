// File: controllers/profile_updater.h
//
// The Auto-mode updater of ServiceProfiles, after VPA's updater
// (vertical-pod-autoscaler/pkg/updater): a running pod whose CPU or memory
// request lies outside its container's recommended [lowerBound, upperBound]
// has drifted and is evicted, so that the admission webhook recreates it with
// the target; within VPA's limits:
//   - nothing while fewer than `min_replicas` pods of the workload run
//     (VPA's --min-replicas, default 2);
//   - per pass, at most tolerance × replicas pods (VPA's --eviction-tolerance,
//     default 0.5): pods may be evicted while running − evicted exceeds
//     replicas − int(replicas × tolerance), and one pod may go when all
//     replicas run even if that product rounds to zero;
//   - at most `rate_tokens` evictions per pass (the manager's token bucket;
//     negative means unlimited, VPA's --eviction-rate-limit default -1).
// Pods furthest outside their bounds go first. The plan is a list; the
// manager evicts through the Eviction API (PodDisruptionBudgets apply) and
// records an Event on each pod.
//
//   EvictionPlan plan = DecideProfileEvictions(input);
//   for (const DriftEviction& e : plan.evictions) client.Evict(ns, e.pod) ...
//
// Thread-safety: pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gpu_autoscaler::controllers {

// Bounds of one resource; upper absent while there is no history.
struct RequestBounds {
  double lower = 0;
  std::optional<double> upper{};
};

struct ContainerBounds {
  std::optional<RequestBounds> cpu_millis{};
  std::optional<RequestBounds> memory_bytes{};
};

struct UpdaterPod {
  std::string name{};
  bool running = false;  // phase Running and not terminating
  // container name -> request (millicores / bytes); absent = no request.
  std::map<std::string, int64_t> cpu_millis{};
  std::map<std::string, int64_t> memory_bytes{};
};

struct UpdaterLimits {
  int64_t min_replicas = 2;
  double eviction_tolerance = 0.5;
  int64_t rate_tokens = -1;  // < 0: unlimited
};

struct UpdaterInput {
  std::map<std::string, ContainerBounds> bounds{};  // by container name
  std::vector<UpdaterPod> pods{};
  int64_t replicas = 0;  // the workload's desired replicas (0: the live pods)
  UpdaterLimits limits{};
};

struct DriftEviction {
  std::string pod{};
  std::string message{};  // "container server: cpu request 2000m outside [120m, 460m]"
};

struct EvictionPlan {
  std::vector<DriftEviction> evictions{};
  std::string held_back{};  // why drifted pods were left alone; "" when none were
};

EvictionPlan DecideProfileEvictions(const UpdaterInput& input);

}  // namespace gpu_autoscaler::controllers
