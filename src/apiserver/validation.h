// File: src/apiserver/validation.h
//
// Validation of objects on create and update, as kube-apiserver v1.20 does it:
// object names, Pod specs (required fields, DNS-1123 names, immutable fields on
// update) and custom resources against their CRD's structural openAPIV3Schema.
// Failures are 422 Invalid kube::Errors whose details.causes carry one
// reason/message/field entry per problem, exactly like the real server.
//
//   ValidationTarget target{"", "v1", "pods", "Pod", true};
//   auto ok = ValidateCreate(target, pod, nullptr);
//   if (!ok.ok()) return ok.error();   // 422: Pod "x" is invalid: ...
//
//   PruneUnknownFields(crd_schema, cr);  // before validating a custom resource
//
// Thread-safety: pure functions, safe to call concurrently.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json_fwd.hpp>

#include "kube/error.h"

namespace gpu_autoscaler::apiserver {

// What is being validated. `kind` names the object in messages ("Pod",
// "GpuPool"); `group` is "" for the core group.
struct ValidationTarget {
  std::string group;
  std::string version;
  std::string resource;  // plural: "pods"
  std::string kind;
  bool namespaced = true;
  std::string subresource;  // "" or "status"
};

// `crd_schema` is the version's `schema.openAPIV3Schema` for a custom resource,
// null for built-in kinds.
kube::Result<std::monostate> ValidateCreate(const ValidationTarget& target,
                                            const nlohmann::json& obj,
                                            const nlohmann::json* crd_schema);
kube::Result<std::monostate> ValidateUpdate(const ValidationTarget& target,
                                            const nlohmann::json& old,
                                            const nlohmann::json& updated,
                                            const nlohmann::json* crd_schema);

// Removes fields that `schema` does not declare (unless
// x-kubernetes-preserve-unknown-fields), like the real server's pruning of
// custom resources. apiVersion, kind and metadata at the root are kept.
void PruneUnknownFields(const nlohmann::json& schema, nlohmann::json& obj);

// Name checks with the real messages; return "" when valid.
std::string ValidateDns1123Subdomain(std::string_view value);
std::string ValidateDns1123Label(std::string_view value);

}  // namespace gpu_autoscaler::apiserver
