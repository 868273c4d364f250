// File: src/kube/discovery.h
//
// API discovery: which groups, versions and resources the server serves
// (/api, /api/v1, /apis, /apis/<group>/<version>), cached with a TTL on the
// injected clock. Resolves what a user types ("pods", "pod", "Pod", "po",
// "deployments.apps", "Widget.example.gpuautoscaler.io") to a
// GroupVersionResource at the group's preferred version, with its
// namespaced flag. A name that is not in the cache refreshes it once (a CRD
// may have been added since).
//
//   Discovery discovery(*client);
//   GPU_ASSIGN_OR_RETURN(GroupVersionResource gvr, discovery.Resolve("deployments.apps"));
//   client->List({gvr, "default"});
//
// Thread-safety: all methods are safe to call from many threads.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "kube/error.h"
#include "kube/resource.h"

namespace gpu_autoscaler::kube {

class RestClient;

// One entry of an APIResourceList (subresources like "pods/status" excluded).
struct ApiResource {
  GroupVersionResource gvr{};
  std::string kind{};
  std::string singular{};  // singularName, or the lower-cased kind when empty
  std::vector<std::string> short_names{};
  std::vector<std::string> verbs{};
};

// The group version of the Eviction that the server's pods/eviction
// subresource takes, as kubectl drain finds it (CheckEvictionSupport since
// kubectl 1.22): the "pods/eviction" entry of /api/v1 names its group and
// version, policy/v1beta1 before Kubernetes 1.22 and policy/v1 from 1.22.
// The policy group's preferred version is no guide: Kubernetes 1.21 prefers
// policy/v1 (PodDisruptionBudget) yet takes only policy/v1beta1 Evictions.
// An empty GroupVersion when the server lists no pods/eviction entry, or one
// without group and version. One GET, uncached; a failure is returned as is.
Result<GroupVersion> EvictionGroupVersion(RestClient& client);

class Discovery {
 public:
  explicit Discovery(RestClient& client, Clock& clock = RealClock::Instance(),
                     Clock::Duration ttl = std::chrono::minutes(10));

  // Plural, singular, kind or short name, optionally ".<group>". A name
  // the server does not serve is a NotFound error.
  Result<GroupVersionResource> Resolve(std::string_view name);
  // An empty version means the group's preferred version.
  Result<GroupVersionResource> ResolveKind(const GroupVersionKind& gvk);
  // Preferred version of every group, the core group ("", "v1") first.
  Result<std::vector<GroupVersion>> PreferredVersions();
  // Resources of one group version.
  Result<std::vector<ApiResource>> Resources(const GroupVersion& gv);
  // Forgets everything; the next call fetches again.
  void Invalidate();

 private:
  struct Group {
    std::string name;
    std::string preferred;
    std::vector<std::string> versions;
  };
  struct CachedResources {
    std::vector<ApiResource> resources;
    Clock::TimePoint fetched_at;
  };

  Result<std::vector<Group>> GroupsLocked();
  Result<std::vector<ApiResource>> ResourcesLocked(const GroupVersion& gv);
  Result<GroupVersionResource> FindLocked(std::string_view name, std::string_view group);
  bool FreshLocked(Clock::TimePoint fetched_at) const;

  RestClient& client_;
  Clock& clock_;
  const Clock::Duration ttl_;
  std::mutex mu_;
  std::vector<Group> groups_;
  Clock::TimePoint groups_fetched_at_{};
  bool have_groups_ = false;
  std::map<std::string, CachedResources> resources_;  // by apiVersion
};

}  // namespace gpu_autoscaler::kube
