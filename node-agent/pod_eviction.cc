#include "node-agent/pod_eviction.h"

#include <condition_variable>
#include <mutex>

#include <nlohmann/json.hpp>

#include "kube/error.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::node_agent {

std::string_view EvictionResultName(EvictionResult r) {
  switch (r) {
    case EvictionResult::kEvicted:
      return "evicted";
    case EvictionResult::kGone:
      return "gone";
    case EvictionResult::kBlockedByPdb:
      return "blocked_pdb";
    case EvictionResult::kFailed:
      return "failed";
  }
  return "failed";
}

bool SleepFor(Clock& clock, Clock::Duration d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable cv;
  std::stop_callback wake(stop, [&] {
    std::lock_guard<std::mutex> l(mu);
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  const auto deadline = clock.Now() + d;
  while (!stop.stop_requested() && clock.Now() < deadline)
    clock.WaitUntil(lock, cv, deadline);
  return !stop.stop_requested();
}

EvictionOutcome EvictPod(kube::RestClient& client, std::string_view ns, std::string_view name,
                         Clock& clock, Clock::TimePoint deadline, Clock::Duration pdb_retry,
                         std::stop_token stop) {
  while (true) {
    auto evicted = client.Evict(ns, name);
    if (evicted.ok()) return {EvictionResult::kEvicted, ""};
    if (evicted.error().code() == 404) return {EvictionResult::kGone, ""};
    if (!kube::IsTooManyRequests(evicted.error()))
      return {EvictionResult::kFailed, evicted.error().ToString()};
    if (clock.Now() + pdb_retry >= deadline || stop.stop_requested() ||
        !SleepFor(clock, pdb_retry, stop)) {
      return {EvictionResult::kBlockedByPdb, evicted.error().ToString()};
    }
  }
}

}  // namespace gpu_autoscaler::node_agent
