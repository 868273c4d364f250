// File: webhooks/admission.h
//
// The contract between the admission logic (policy matching, pod rewriting,
// validation) and the HTTPS server that carries AdmissionReviews. The server
// knows nothing about pods or policies: it hands the raw request body of one
// endpoint to an AdmissionService and writes back what it returns.
//
//   AdmissionService service(AdmissionConfig{});
//   service.SetPolicies(policies);                       // from the informer
//   AdmissionOutcome out = service.Review(AdmissionEndpoint::kMutatePods, body);
//   writer.Respond(out.http_status, "application/json", out.body);
//
// Thread-safety: Review() may be called from many threads at once;
// SetPolicies() swaps an immutable snapshot and may race with Review().
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace gpu_autoscaler::webhooks {

enum class AdmissionEndpoint {
  kMutatePods,
  kValidatePods,
  kValidateGpuSharingPolicies,
  kValidateBudgets,
};

// What the server should count in its metrics for one review.
enum class AdmissionVerdict {
  kAllowed,     // allowed, no patch
  kPatched,     // allowed with a JSONPatch
  kDenied,      // allowed=false with a message
  kBadRequest,  // malformed or unknown review: HTTP 400, body is a plain reason
};

// Why a review was denied (kDenied only), for the denials metric.
enum class AdmissionDenialReason {
  kNone,
  kBudget,         // an exhausted blockNewGPUPods Budget covers the pod
  kInvalidObject,  // a pod's annotations, a policy or a Budget failed validation
  kSharingPolicy,  // the selected GPUSharingPolicy cannot serve the pod (e.g. no MIG profile)
};
inline constexpr int kAdmissionDenialReasons = 4;

struct AdmissionOutcome {
  int http_status = 200;
  std::string body;  // an admission.k8s.io/v1 AdmissionReview, or the 400 reason
  AdmissionVerdict verdict = AdmissionVerdict::kAllowed;
  AdmissionDenialReason denial_reason = AdmissionDenialReason::kNone;
};

}  // namespace gpu_autoscaler::webhooks
