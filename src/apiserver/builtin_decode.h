// File: src/apiserver/builtin_decode.h
//
// The JSON types of the built-in kinds' fields, as kube-apiserver's decoder
// enforces them before any validation runs: a Lease whose
// `spec.leaseDurationSeconds` is 1.5 or 2^40, a ConfigMap whose `data` holds an
// object, a Pod whose `spec.priority` is a string. kube-apiserver cannot decode
// such a body into its Go type and answers 400 BadRequest ("Lease in version
// \"v1\" cannot be handled as a Lease: json: cannot unmarshal ..."); a patch
// whose result cannot be decoded gets 422 Invalid on the field `patch`.
//
// Covers ObjectMeta on every kind passed in (callers pass built-in kinds) and
// the fields of the kinds this project's programs, tests and demo write:
// ConfigMap, Secret, Pod, Node, Lease, Event and PodDisruptionBudget. Fields outside the table are
// not checked (the structural validation that follows still is). Custom resources are checked
// against their CRD schema instead (validation.h).
//
//   if (auto why = BuiltinDecodeError("coordination.k8s.io", "Lease", body))
//     return BadRequest("Lease in version \"v1\" cannot be handled as a Lease: " + *why);
//
// Thread-safety: a pure function over a constant table.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace gpu_autoscaler::apiserver {

// The decoder's message for the first field of `obj` whose JSON type the Go
// type of kind `kind` in API group `group` ("" for core) cannot hold, in the
// wording of Go's encoding/json ("json: cannot unmarshal string into Go struct
// field LeaseSpec.spec.leaseDurationSeconds of type int32"); nullopt when every
// known field decodes. Null decodes into every type, as in Go.
std::optional<std::string> BuiltinDecodeError(std::string_view group, std::string_view kind,
                                              const nlohmann::json& obj);

}  // namespace gpu_autoscaler::apiserver
