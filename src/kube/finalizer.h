// File: src/kube/finalizer.h
//
// Finalizer handling modelled on kube-rs `runtime::finalizer`. Given an
// object and our finalizer name, exactly one of four things happens:
//
//   has finalizer | being deleted | action
//   no            | no            | add the finalizer (JSON Patch guarded by
//                 |               |   `test` on metadata.resourceVersion)
//   yes           | no            | apply: the normal reconcile
//   yes           | yes           | cleanup, then remove the finalizer (JSON
//                 |               |   Patch `test` + `remove` by index)
//   no            | yes           | nothing: not ours to hold up
//
// The `test` guards make a stale object fail the patch (the server answers
// 422 or 409) instead of clobbering a newer one; that comes back as kAborted,
// which callers retry (TransientError) after the cache catches up.
//
//   auto outcome = ReconcileWithFinalizer(client, ref, obj, "gpu-autoscaler.io/cleanup",
//       {.apply = [&](const nlohmann::json& o) { return Sync(o); },
//        .cleanup = [&](const nlohmann::json& o) { return ReleaseGpus(o); }});
//
// Thread-safety: pure functions, and RestClient calls (thread-safe).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "kube/resource.h"

namespace gpu_autoscaler::kube {

class RestClient;

enum class FinalizerAction {
  kAddFinalizer,  // not deleted, finalizer missing
  kApply,         // not deleted, finalizer present
  kCleanup,       // deleted, finalizer present
  kNothing,       // deleted, finalizer absent
};

FinalizerAction DecideFinalizerAction(const nlohmann::json& obj, std::string_view finalizer);

// RFC 6902 patch adding `finalizer`, guarded by the object's resourceVersion.
// Errors when the object has no resourceVersion.
gpu_autoscaler::Result<std::string> AddFinalizerPatch(const nlohmann::json& obj,
                                                      std::string_view finalizer);
// RFC 6902 patch removing `finalizer` at its index, guarded by a `test` of
// that index. NotFound when the object does not carry it.
gpu_autoscaler::Result<std::string> RemoveFinalizerPatch(const nlohmann::json& obj,
                                                         std::string_view finalizer);

enum class FinalizerOutcome {
  kFinalizerAdded,  // patched; the update event will trigger the next reconcile
  kApplied,         // `apply` ran and succeeded
  kCleanedUp,       // `cleanup` ran and the finalizer was removed
  kNothing,
};

struct FinalizerCallbacks {
  std::function<Status(const nlohmann::json& obj)> apply{};
  std::function<Status(const nlohmann::json& obj)> cleanup{};
};

// Decides and acts for `obj` (as read from the cache or the server) at `ref`.
// Callback errors are returned unchanged; a rejected guard is kAborted; other
// API errors are mapped with kube::Error::ToStatus().
gpu_autoscaler::Result<FinalizerOutcome> ReconcileWithFinalizer(
    RestClient& client, const ObjectRef& ref, const nlohmann::json& obj, std::string_view finalizer,
    const FinalizerCallbacks& callbacks);

}  // namespace gpu_autoscaler::kube
