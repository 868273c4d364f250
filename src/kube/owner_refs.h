// File: src/kube/owner_refs.h
//
// metav1.OwnerReference helpers on JSON objects: build a controller
// reference from an owner, set it on an owned object (refusing to steal an
// object another controller owns, like controllerutil.SetControllerReference),
// and find an object's controller.
//
//   auto ref = ControllerReferenceFor(pool_json);          // from the owner
//   GPU_RETURN_IF_ERROR(SetControllerReference(&pod_json, *ref));
//   auto owner = GetControllerOf(pod_json);                // -> GpuPool "p1"
//
// Thread-safety: pure functions over caller-owned JSON.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace gpu_autoscaler::kube {

struct OwnerRef {
  std::string api_version{};
  std::string kind{};
  std::string name{};
  std::string uid{};
  bool controller = false;
  bool block_owner_deletion = false;
  friend bool operator==(const OwnerRef&, const OwnerRef&) = default;
};

// A controller reference (controller and blockOwnerDeletion true) to `owner`,
// which must carry apiVersion, kind, metadata.name and metadata.uid.
gpu_autoscaler::Result<OwnerRef> ControllerReferenceFor(const nlohmann::json& owner);

nlohmann::json OwnerRefToJson(const OwnerRef& ref);

// Adds `ref` to `obj`'s metadata.ownerReferences, or updates the entry for the
// same owner (matched by uid, else by apiVersion group + kind + name). An
// object whose controller is someone else is an AlreadyExists error.
Status SetControllerReference(nlohmann::json* obj, const OwnerRef& ref);
// Adds or updates a non-controller owner reference.
Status SetOwnerReference(nlohmann::json* obj, const OwnerRef& ref);

// The owner reference with controller=true, if any.
std::optional<OwnerRef> GetControllerOf(const nlohmann::json& obj);
// All owner references (malformed entries skipped).
std::vector<OwnerRef> GetOwnerReferences(const nlohmann::json& obj);
// True when `obj` has an owner reference to `owner` (matched by uid).
bool IsOwnedBy(const nlohmann::json& obj, const nlohmann::json& owner);

}  // namespace gpu_autoscaler::kube
