// File: controllers/service_profile_controller.h
//
// The ServiceProfile controller (`--controllers` name "service-profile").
// For each profile, every `interval`:
//   1. resolves spec.targetRef (Deployment, StatefulSet, Job, or any kind with
//      a scale subresource) to its label selector, desired replicas and pod
//      template containers: the object's spec.selector, else its /scale
//      subresource's status.selector;
//   2. finds the workload's pods in the pod cache by that selector;
//   3. feeds their containers' usage (ProfileUsageSource: Prometheus) into a
//      profiling::WorkloadProfile (decaying histograms per container name);
//   4. writes status: recommendations per container, targetSelector (what the
//      admission webhook matches new pods with), pods (how many matched),
//      observedGeneration,
//      lastRecommendationTime and the conditions
//        RecommendationProvided  False with TargetNotFound, InvalidSpec or
//                                MetricsMissing: no recommendation is written
//        MetricsAvailable        False with QueryFailed while Prometheus fails
//                                (the history so far still recommends);
//   5. checkpoints the histograms in a ConfigMap (below);
//   6. under updateMode Auto, evicts drifted pods within VPA's limits
//      (controllers/profile_updater.h) through the Eviction API, with Events.
//
// Checkpoints. The histograms live in the ConfigMap
// "serviceprofile-<name>-checkpoint" next to the profile (key
// checkpoint.json, owner reference to the profile so it goes with it), read
// once when the manager first sees the profile. Why a ConfigMap: like VPA's
// VerticalPodAutoscalerCheckpoint it keeps a few kilobytes of state that is
// nobody's API out of the object users and the webhook read; as a status
// field every webhook informer would carry and re-decode it, and as an
// annotation on the profile every write would wake the profile's watchers.
// A ConfigMap needs no new CRD and is readable with kubectl for debugging.
// It is written at most every checkpointInterval, and only when new samples
// arrived.
//
// Besides the profile's own events and the periodic refresh, a pod's add,
// delete or relevant change enqueues the profile whose target owns the pod
// (controllers/profile_pod_events.h), so status.pods and the sample set
// follow pods promptly.
//
// Decide/apply: DecideServiceProfileStatus is pure; Reconcile reads caches,
// Prometheus and the API, and writes.
//
//   ServiceProfileReconciler r(profiles->store(), pods->store(), nodes->store(),
//                              *client, usage_source, clock, &recorder, options);
//   Controller c({.name = "service-profile"}, r);
//   c.For(profile_source);
//   c.Watches(pod_source, ProfilesOwningPod(profiles->store()));
//
// Thread-safety: Reconcile may run on several workers (never twice for one
// profile); the per-profile state map is guarded by a mutex.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/resources.h"
#include "common/clock.h"
#include "controllers/profile_updater.h"
#include "controllers/profile_usage_source.h"
#include "kube/discovery.h"
#include "kube/generic_object.h"
#include "kube/node_view.h"
#include "kube/pod_view.h"
#include "kube/resource.h"
#include "kube/store.h"
#include "profiling/service_profile.h"
#include "profiling/workload_profile.h"
#include "reconcile/reconciler.h"

namespace gpu_autoscaler::kube {
class EventRecorder;
class RestClient;
}  // namespace gpu_autoscaler::kube

namespace gpu_autoscaler::controllers {

inline const kube::GroupVersionResource& kServiceProfiles = api::kServiceProfiles;
inline constexpr std::string_view kCheckpointKey = "checkpoint.json";
std::string CheckpointConfigMapName(std::string_view profile);

struct ServiceProfileInput {
  int64_t generation = 0;
  nlohmann::json status = nullptr;  // current status (may be null)
  std::optional<profiling::ServiceProfileSpec> spec{};
  std::string invalid_reason{};  // when spec is empty
  // The target: found, or why not ("deployments.apps \"web\" not found").
  bool target_found = false;
  std::string target_problem{};
  std::string selector{};                 // the target's label selector
  std::vector<std::string> containers{};  // of its pod template; empty = unknown
  int64_t matched_pods = 0;
  std::optional<std::string> metrics_error{};
  std::map<std::string, profiling::Recommendation> recommendations{};  // from history
  std::map<std::string, uint64_t> samples{};                           // per container
  double gpu_memory_bytes = 0;
  int64_t now = 0;  // Unix seconds
};

struct ServiceProfilePlan {
  nlohmann::json status = nlohmann::json::object();
  struct Event {
    bool warning = false;
    std::string reason{};
    std::string message{};
  };
  std::vector<Event> events{};
};

ServiceProfilePlan DecideServiceProfileStatus(const ServiceProfileInput& input);

// The bounds the updater compares requests with, from status.recommendations.
std::map<std::string, ContainerBounds> BoundsFromStatus(const nlohmann::json& status);

struct ServiceProfileOptions {
  Clock::Duration interval = std::chrono::minutes(1);
  Clock::Duration checkpoint_interval = std::chrono::minutes(1);
  Clock::Duration updater_interval = std::chrono::minutes(1);
  UpdaterLimits limits{};
};

class ServiceProfileReconciler final : public reconcile::Reconciler {
 public:
  // `usage` may be null: every profile then reports MetricsMissing.
  ServiceProfileReconciler(const kube::Store<kube::GenericObject>& profiles,
                           const kube::Store<kube::PodView>& pods,
                           const kube::Store<kube::NodeView>& nodes, kube::RestClient& client,
                           std::shared_ptr<ProfileUsageSource> usage, Clock& clock,
                           kube::EventRecorder* recorder, ServiceProfileOptions options);

  reconcile::ReconcileResult Reconcile(const reconcile::Request& request,
                                       std::stop_token stop) override;

 private:
  struct Target;
  struct Entry {
    std::unique_ptr<profiling::WorkloadProfile> profile;
    int64_t half_life = 0;
    Clock::TimePoint last_checkpoint{};
    bool dirty = false;  // samples since the last checkpoint
    Clock::TimePoint last_update_pass{};
  };
  Result<Target> ResolveTarget(const std::string& ns, const profiling::TargetRef& ref);
  Entry& LoadEntry(const std::string& ns, const std::string& name,
                   const profiling::RecommenderConfig& config, int64_t half_life);
  Status WriteCheckpoint(const std::string& ns, const std::string& name,
                         const nlohmann::json& owner, const nlohmann::json& checkpoint);
  std::string GpuModelOf(const std::vector<std::shared_ptr<const kube::PodView>>& pods) const;

  const kube::Store<kube::GenericObject>& profiles_;
  const kube::Store<kube::PodView>& pods_;
  const kube::Store<kube::NodeView>& nodes_;
  kube::RestClient& client_;
  std::shared_ptr<ProfileUsageSource> usage_;
  Clock& clock_;
  kube::EventRecorder* recorder_;
  ServiceProfileOptions options_;
  kube::Discovery discovery_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // "ns/name"; guarded by mu_
};

}  // namespace gpu_autoscaler::controllers
