// File: controllers/sharing_policy_controller.h
//
// The GPUSharingPolicy status controller. For each policy it writes
//   status.observedGeneration,
//   conditions Accepted (False with the reason when the spec is unusable) and
//   Conflicting (True naming the other policies that may match the same pods
//   at the same priority: admission then picks by name, which is rarely what
//   anyone meant),
//   status.matchedPods: live pods the webhook admitted under this policy,
//   counted from the `gpuautoscaler.io/policy` annotation it writes,
// and records Events when Accepted or Conflicting change. With a registry it
// also exports gpu_autoscaler_sharing_policy_pods{policy, strategy} (matched pods).
//
//   SharingPolicyReconciler r(policies->store(), pods->store(), *client, clock, &recorder);
//   Controller c({.name = "sharing-policy"}, r);
//   c.For(policy_source);
//   c.Watches(pod_source, r.PodMapper());
//
// Decide/apply: DecideSharingPolicyStatus is pure; Reconcile reads the caches
// and writes /status guarded by resourceVersion.
//
// Thread-safety: Reconcile may run on several workers (never twice for one
// policy). The pod store needs the index from PolicyIndexFunc before it starts.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "api/resources.h"
#include "common/clock.h"
#include "kube/generic_object.h"
#include "kube/indexer.h"
#include "kube/pod_view.h"
#include "kube/resource.h"
#include "kube/store.h"
#include "reconcile/controller.h"
#include "reconcile/reconciler.h"
#include "webhooks/policy.h"

namespace gpu_autoscaler::kube {
class EventRecorder;
class RestClient;
}  // namespace gpu_autoscaler::kube

namespace gpu_autoscaler::controllers {

inline constexpr std::string_view kPodsByPolicyIndex = api::kPolicyAnnotation;

// Indexes live pods by the policy annotation the webhook wrote.
kube::IndexFunc<kube::PodView> PolicyIndexFunc();

struct SharingPolicyInput {
  std::string name{};
  int64_t generation = 0;
  nlohmann::json status = nullptr;
  // This policy parsed, or the reason it cannot be used.
  std::optional<webhooks::GpuSharingPolicy> policy{};
  std::string invalid_reason{};
  std::vector<webhooks::GpuSharingPolicy> others{};  // every other parsed policy
  int64_t matched_pods = 0;
  int64_t now = 0;
};

struct SharingPolicyPlan {
  nlohmann::json status = nlohmann::json::object();
  struct Event {
    bool warning = false;
    std::string reason{};
    std::string message{};
  };
  std::vector<Event> events{};
};

SharingPolicyPlan DecideSharingPolicyStatus(const SharingPolicyInput& input);

class SharingPolicyReconciler final : public reconcile::Reconciler {
 public:
  SharingPolicyReconciler(const kube::Store<kube::GenericObject>& policies,
                          const kube::Store<kube::PodView>& pods, kube::RestClient& client,
                          Clock& clock, kube::EventRecorder* recorder,
                          Clock::Duration resync = std::chrono::seconds(30),
                          prometheus::Registry* registry = nullptr);
  ~SharingPolicyReconciler() override;

  reconcile::ReconcileResult Reconcile(const reconcile::Request& request,
                                       std::stop_token stop) override;

  // A changed pod -> the policy its annotation names (and every policy when
  // the pod is gone from the cache, since its annotation is unknown then).
  reconcile::RequestMapper PodMapper() const;
  // A changed policy -> every other policy (their Conflicting may change).
  reconcile::RequestMapper PolicyMapper() const;

 private:
  // Sets the policy's series; an empty strategy removes it.
  void PublishMatchedPods(const std::string& policy, const std::string& strategy, int64_t pods);

  const kube::Store<kube::GenericObject>& policies_;
  const kube::Store<kube::PodView>& pods_;
  kube::RestClient& client_;
  Clock& clock_;
  kube::EventRecorder* recorder_;
  Clock::Duration resync_;
  // gpu_autoscaler_sharing_policy_pods{policy, strategy}; null without a registry.
  prometheus::Family<prometheus::Gauge>* pods_gauge_ = nullptr;
  std::mutex gauge_mu_;
  std::map<std::string, std::string> published_strategy_;  // policy -> strategy label
};

}  // namespace gpu_autoscaler::controllers
