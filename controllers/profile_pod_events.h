// File: controllers/profile_pod_events.h
//
// How a pod event reaches the ServiceProfile that profiles its workload,
// without listing anything: the profile cache is indexed by target
// ("ns/Kind/name" of spec.targetRef), and a pod's owner references name the
// candidate targets:
//   Pod -> Job, StatefulSet, DaemonSet or any other controller: that object;
//   Pod -> ReplicaSet: the ReplicaSet, and the Deployment whose name is the
//          ReplicaSet's less its "-<pod-template-hash>" suffix (the name the
//          Deployment controller gives its ReplicaSets; the hash alphabet has
//          no '-'), so no ReplicaSet cache is needed.
// A pod without owners reaches no profile here; the periodic refresh still
// counts it when the target's selector matches it.
//
// Pod updates that change nothing a profile reads (status conditions,
// container statuses, resyncs) are dropped at the source, so a busy
// workload does not turn every kubelet status write into a reconcile.
//
//   profiles->store().AddIndex(kProfilesByTargetIndex, ProfileTargetIndexFunc());
//   ProfilePodSource pod_source(pods_informer);
//   controller.Watches(pod_source, ProfilesOwningPod(profiles->store()));
//
// Thread-safety: the functions are pure; the source's callbacks run on the
// informer's dispatch thread; the mapper reads the (thread-safe) store.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kube/generic_object.h"
#include "kube/indexer.h"
#include "kube/pod_view.h"
#include "kube/shared_informer.h"
#include "kube/store.h"
#include "reconcile/controller.h"

namespace gpu_autoscaler::controllers {

inline constexpr std::string_view kProfilesByTargetIndex = "spec.targetRef";

// "ns/Kind/name": the key both the index and the pod side produce.
std::string ProfileTargetKey(std::string_view ns, std::string_view kind, std::string_view name);

// Indexes a ServiceProfile by its spec.targetRef (nothing when it has none).
kube::IndexFunc<kube::GenericObject> ProfileTargetIndexFunc();

// The target keys of the workloads that may own a pod with `owners`:
// controller references only, or every reference when none is marked.
std::vector<std::string> PodTargetKeys(std::string_view ns,
                                       std::span<const reconcile::OwnerInfo> owners);

// Whether an update of a pod changes what its profile reads: labels (the
// selector), phase and termination (the updater's running pods), node (the
// GPU model) or owners.
bool PodChangeMatters(const kube::PodView& before, const kube::PodView& after);

// The pod informer as an EventSource: every add and delete, and the
// updates PodChangeMatters keeps.
class ProfilePodSource final : public reconcile::EventSource {
 public:
  explicit ProfilePodSource(std::shared_ptr<kube::SharedInformer<kube::PodView>> informer)
      : informer_(std::move(informer)) {}
  void Subscribe(std::function<void(const reconcile::ChangedObject&)> on_change) override;
  bool HasSynced() const override { return informer_->HasSynced(); }

 private:
  std::shared_ptr<kube::SharedInformer<kube::PodView>> informer_;
};

// Maps a changed pod to the profiles (from `profiles`, which must carry
// kProfilesByTargetIndex) whose target owns it.
reconcile::RequestMapper ProfilesOwningPod(const kube::Store<kube::GenericObject>& profiles);

}  // namespace gpu_autoscaler::controllers
