// File: src/apiserver/patch.h
//
// Patch semantics of the embedded API server, matching kube-apiserver v1.20:
// JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch for
// core types, server-side apply, and the `metadata.managedFields` bookkeeping
// that every write performs. Pure functions: no I/O, no clock (timestamps come
// in through ApplyContext).
//
//   auto patched = ApplyJsonPatch(pod, R"([{"op":"test","path":"/a","value":1}])");
//   if (!patched.ok()) return patched.error();  // 422 Invalid, 400 BadRequest...
//
//   ApplyContext ctx{.time = "2021-01-01T00:00:00Z", .api_version = "v1"};
//   auto applied = ApplyServerSide(existing_or_null, yaml_body, "kubectl", false, ctx);
//
// Errors are kube::Error values shaped like the real server's metav1.Status
// (code, reason, message, details.causes); nothing throws. Patches and objects
// nested deeper than 1000 levels are refused with 400 BadRequest.
//
// Thread-safety: pure functions, safe to call concurrently.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "kube/error.h"

namespace gpu_autoscaler::apiserver {

// RFC 6902 JSON patch (add/remove/replace/move/copy/test, ~0 ~1 escapes, "-"
// append). A failed `test` gives 422 Invalid; a body that is not a JSON array of
// operations, or an operation that cannot apply (missing path...), gives the
// status the real server returns for it (400 BadRequest or 422 Invalid).
kube::Result<nlohmann::json> ApplyJsonPatch(const nlohmann::json& doc, std::string_view patch);

// RFC 7386 JSON merge patch. A body that is not JSON gives 400 BadRequest.
kube::Result<nlohmann::json> ApplyMergePatch(const nlohmann::json& doc, std::string_view patch);

// Strategic merge patch for built-in `kind`s ("Pod", "ConfigMap", ...): lists
// with a patch merge key (containers by name, ports by containerPort, ...) merge
// element-wise; `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/<f>` and
// `$setElementOrder/<f>` directives are honoured. Unknown kinds behave like a
// merge patch (the server rejects custom resources with 415 before calling this).
kube::Result<nlohmann::json> ApplyStrategicMergePatch(const nlohmann::json& doc,
                                                      std::string_view patch,
                                                      std::string_view kind);

// Everything about one write that the managedFields entry records.
struct ApplyContext {
  std::string time;         // RFC 3339 UTC, e.g. "2021-02-03T04:05:06Z"
  std::string api_version;  // apiVersion of the request, e.g. "v1" or "apps/v1"
  std::string subresource;  // "" or "status"; v1.20 does not record it in entries
};

// Server-side apply (PATCH with application/apply-patch+yaml). `existing` is the
// stored object or null when the apply creates it; `body` is YAML or JSON and
// must name apiVersion == ctx.api_version. The configuration is merged into the
// live object (associative lists by key); fields this manager applied before and
// no longer applies, and that nobody else owns, are removed. Fields owned by
// another manager whose value would change give 409 Conflict with one
// FieldManagerConflict cause per field unless `force`, which takes them over.
// Returns the new object with metadata.managedFields updated (operation Apply).
// Other metadata is merged like any field: the caller enforces server-owned
// metadata (uid, creationTimestamp...) and the resourceVersion precondition as
// it does for an update. An empty `field_manager` is 422 (PatchOptions invalid).
kube::Result<nlohmann::json> ApplyServerSide(const nlohmann::json* existing, std::string_view body,
                                             std::string_view field_manager, bool force,
                                             const ApplyContext& ctx);

// Maintains metadata.managedFields of `updated` for an ordinary Create, Update
// or non-apply Patch (operation "Update"): the fields that were added or
// changed relative to `old` (null on create; compared with the kind's empty
// object) become owned by `manager` ("unknown" when empty) and leave other
// managers' sets; removed fields leave every set; empty entries are dropped.
// Managed fields sent in `updated` are used as the starting point when present
// (so clients can edit them); absent or `[]` keeps `old`'s; `[{}]` resets them.
// Call it after decode defaulting and before admission/strategy defaulting
// (see defaults.h) to match the real server's entries exactly.
void UpdateManagedFields(const nlohmann::json* old, nlohmann::json& updated,
                         std::string_view manager, const ApplyContext& ctx);

// The manager name the real server derives when no `fieldManager` query is
// given: the User-Agent up to its first '/' ("kubectl/v1.20 (linux)" ->
// "kubectl"), or "unknown" when there is no User-Agent.
std::string FieldManagerFromUserAgent(std::string_view user_agent);

}  // namespace gpu_autoscaler::apiserver
