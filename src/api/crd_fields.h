// File: src/api/crd_fields.h
//
// Strict field checking for the project's custom resources, against the
// structural schemas in crds/ (compiled in, so the check and the CRDs cannot
// drift). kube-apiserver silently prunes fields a schema does not declare,
// so a misspelled `enforcment: blockNewGPUPods` would vanish and the Budget
// quietly fall back to `alert`. The webhook and the CLI's file inputs refuse
// such objects instead, naming every unknown field's path, as kubectl's
// strict field validation does.
//
//   Status s = api::CheckKnownFields(yaml_or_json_text, "Budget");
//   // InvalidArgument: unknown field "spec.enforcment" (the Budget schema does not declare it)
//
// apiVersion, kind and metadata are not checked (metadata is ObjectMeta, not
// part of the CRD's schema); status is checked like spec.
//
// Thread-safety: pure functions over immutable compiled-in schemas.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::api {

// The kinds with a compiled-in schema: "Budget", "ClusterBudget", "GPUSharingPolicy",
// "GPUNodePool", ...
std::vector<std::string> KindsWithSchema();

// Paths ("spec.notifications[0].secretRef.nmae") of the fields of `object`
// (YAML or JSON text of one object) that the kind's schema does not declare.
// Errors: unknown kind, or text that does not parse.
Result<std::vector<std::string>> UnknownFields(std::string_view object, std::string_view kind);

// OK, or InvalidArgument naming every unknown field.
Status CheckKnownFields(std::string_view object, std::string_view kind);

}  // namespace gpu_autoscaler::api
