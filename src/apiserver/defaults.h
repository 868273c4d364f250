// File: src/apiserver/defaults.h
//
// Defaulting of built-in objects, as kube-apiserver v1.20 does it, in the
// three stages the real server runs them:
//
//   1. ApplyDecodeDefaults    - API defaulting while decoding any write body
//                               (dnsPolicy, imagePullPolicy, requests from
//                               limits...). managedFields see these fields.
//   2. ApplyAdmissionDefaults - the built-in mutating admission plugins on
//                               create: ServiceAccount, Priority,
//                               DefaultTolerationSeconds. Priority here knows
//                               only the system PriorityClasses; the server
//                               resolves a pod's priority from its stored
//                               classes first (priority_admission.h).
//   3. PrepareForCreate       - the registry strategy on create: the initial
//                               status (Pod phase/qosClass, PDB counters, CRD
//                               storedVersions, Namespace finalizers...).
//   (PrepareForValidation     - after uid and name are set: a Job's selector.)
//
//   nlohmann::json pod = ...;          // decoded POST body
//   ApplyDecodeDefaults("", "Pod", pod);
//   UpdateManagedFields(nullptr, pod, manager, ctx);   // patch.h
//   ApplyAdmissionDefaults("", "Pod", pod);
//   PrepareForCreate("", "Pod", pod);
//   // or, when managedFields fidelity does not matter: ApplyDefaults("", "Pod", pod);
//
// Stages 2 and 3 only fill what is absent (a status the server carried over
// from the stored object is kept), so ApplyDefaults is also safe on updates,
// where the real server runs stage 1 only. Server-owned metadata (uid, resourceVersion,
// creationTimestamp, generation) is not set here; see TracksGeneration. Unknown
// kinds (custom resources) are left untouched. Every function is idempotent.
//
// Thread-safety: pure functions, safe to call concurrently.
#pragma once

#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace gpu_autoscaler::apiserver {

// What the registry strategy does inside Validate on create, once the server
// has set metadata.uid and name: a Job's generated selector and template
// labels (controller-uid, job-name). Other kinds are left untouched.
void PrepareForValidation(std::string_view group, std::string_view kind, nlohmann::json& obj);

// Everything a create does: stages 1, 2 and 3. `group` is "" for the core
// group; `kind` e.g. "Pod", "Namespace", "PodDisruptionBudget".
void ApplyDefaults(std::string_view group, std::string_view kind, nlohmann::json& obj);

void ApplyDecodeDefaults(std::string_view group, std::string_view kind, nlohmann::json& obj);
void ApplyAdmissionDefaults(std::string_view group, std::string_view kind, nlohmann::json& obj);
void PrepareForCreate(std::string_view group, std::string_view kind, nlohmann::json& obj);

// The QoS class of a pod spec: "Guaranteed", "Burstable" or "BestEffort".
std::string_view PodQosClass(const nlohmann::json& pod_spec);

// Whether the real server sets metadata.generation (1 on create, +1 when the
// spec changes) for objects of this kind. True for custom resources.
bool TracksGeneration(std::string_view group, std::string_view kind);

// What the CRD controller does shortly after a CRD is created: accepts the
// names and marks it NamesAccepted and Established at `time` (RFC 3339).
void MarkCrdEstablished(nlohmann::json& crd, std::string_view time);

}  // namespace gpu_autoscaler::apiserver
