// File: node-agent/pod_eviction.h
//
// Evicting one pod through the Eviction API, shared by the spot-interruption
// drain and the PSI evictor: an accepted eviction and a pod that is already
// gone both count as evicted; a PodDisruptionBudget's refusal (429) is
// retried every `pdb_retry` until `deadline` (pass the current time to try
// once); any other error is returned as failed.
//
//   EvictionOutcome out = EvictPod(client, "ns", "web-1", clock, clock.Now() + 30s, 1s, stop);
//   if (out.result == EvictionResult::kBlockedByPdb) ...
//
// Thread-safety: EvictPod may run on many threads at once (RestClient is
// thread-safe).
#pragma once

#include <stop_token>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::node_agent {

enum class EvictionResult { kEvicted, kGone, kBlockedByPdb, kFailed };
// "evicted", "gone", "blocked_pdb", "failed": the metrics' result label.
std::string_view EvictionResultName(EvictionResult r);

struct EvictionOutcome {
  EvictionResult result = EvictionResult::kFailed;
  std::string error{};  // for kBlockedByPdb and kFailed
};

EvictionOutcome EvictPod(kube::RestClient& client, std::string_view ns, std::string_view name,
                         Clock& clock, Clock::TimePoint deadline, Clock::Duration pdb_retry,
                         std::stop_token stop = {});

// Sleeps on `clock` for `d`; false when `stop` fired first.
bool SleepFor(Clock& clock, Clock::Duration d, std::stop_token stop);

}  // namespace gpu_autoscaler::node_agent
