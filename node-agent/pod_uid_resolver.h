// File: node-agent/pod_uid_resolver.h
//
// Pod UID -> namespace/name (and container id -> container name) for the
// pods bound to this node, for pod attribution (attribution.h PodResolver).
// Lists pods with fieldSelector spec.nodeName=<node> when asked about a UID
// it has not seen, at most once per `min_relist_interval`, so a node's
// steady state costs no API calls. Static pods are found by their mirror
// pod's kubernetes.io/config.mirror annotation (the cgroup holds the static
// pod's config hash, not the mirror pod's UID).
//
//   PodUidResolver pods(client, {.node_name = "gpu-node-1"});
//   PodResolver resolve = [&](std::string_view uid) { return pods.Resolve(uid); };
//
// Thread-safety: Resolve may be called from any thread.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "node-agent/attribution.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::node_agent {

struct PodUidResolverOptions {
  std::string node_name{};
  std::chrono::milliseconds min_relist_interval{5000};
  Clock* clock = &RealClock::Instance();
};

class PodUidResolver {
 public:
  PodUidResolver(kube::RestClient& client, PodUidResolverOptions options);
  std::optional<ResolvedPod> Resolve(std::string_view uid);
  uint64_t lists() const;  // pod lists made so far

 private:
  kube::RestClient& client_;
  PodUidResolverOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, ResolvedPod, std::less<>> by_uid_;
  std::optional<Clock::TimePoint> last_list_;
  uint64_t lists_ = 0;
};

}  // namespace gpu_autoscaler::node_agent
