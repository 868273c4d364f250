// File: webhooks/mutate.h
//
// Pod rewriting for GPU sharing: given a decoded pod and the policy that
// matches it, the smallest RFC 6902 JSONPatch that moves the pod's GPU request
// onto the shared resource (MIG profile, time-sliced or MPS GPU), pins it to
// the policy's GPU models and sharing mode with a required node affinity, and
// records the decision in annotations.
//
//   MutationOptions opts;                          // excluded namespaces...
//   PodMutation m = MutatePod(pod, policies, opts);
//   if (m.denied) ... m.message ...
//   else if (!m.patch.empty()) ... base64(m.patch) ...
//
// Idempotent: a pod that carries `gpuautoscaler.io/mode` was already decided
// and gets no patch, so reinvocation (reinvocationPolicy: IfNeeded) is safe.
// Pure: no I/O, no clock; dry-run requests get the same patch.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/annotations.h"
#include "api/nvidia.h"
#include "common/status.h"
#include "webhooks/policy.h"
#include "webhooks/review.h"

namespace gpu_autoscaler::webhooks {

// Annotations and labels admission reads or writes.
// (aliases of the shared keys in src/api/annotations.h)
inline constexpr std::string_view kAnnotationSharing = api::kSharingAnnotation;
inline constexpr std::string_view kAnnotationGpuMemory = api::kGpuMemoryAnnotation;
inline constexpr std::string_view kAnnotationGpuCompute = api::kGpuComputeAnnotation;
inline constexpr std::string_view kAnnotationOriginalRequest = api::kOriginalRequestAnnotation;
inline constexpr std::string_view kAnnotationPolicy = api::kPolicyAnnotation;
inline constexpr std::string_view kAnnotationMode = api::kModeAnnotation;
inline constexpr std::string_view kAnnotationMigProfile = api::kMigProfileAnnotation;
// Read by the cost engine (src/cost/metering.h) and the scheduler to bill or
// place a share, not a whole GPU: time-slicing replicas or MPS clients per
// GPU, and the MPS thread percentage.
inline constexpr std::string_view kAnnotationReplicas = api::kReplicasAnnotation;
inline constexpr std::string_view kAnnotationMpsThreadPercentage =
    api::kMpsThreadPercentageAnnotation;
// (aliases of the NVIDIA names in src/api/nvidia.h)
inline constexpr std::string_view kResourceGpu = api::kGpuResource;
inline constexpr std::string_view kResourceSharedGpu = api::kSharedGpuResource;
inline constexpr std::string_view kLabelGpuProduct = api::kGpuProductLabel;
inline constexpr std::string_view kLabelSharingStrategy = api::kSharingStrategyLabel;
inline constexpr std::string_view kLabelMigStrategy = api::kMigStrategyLabel;

// What a pod asks of one GPU through the sharing annotations.
struct GpuRequirement {
  int64_t memory_bytes = 0;  // 0 = not given
  int compute_percent = 0;   // 0 = not given
};

// Parses `gpuautoscaler.io/gpu-memory` ("10Gi", "10G", "10GB"/"10gb" as in
// NVIDIA profile names, i.e. GiB; a bare number is GB) and
// `gpuautoscaler.io/gpu-compute` ("50" or "50%", 1..100). Errors name the
// annotation and the accepted forms.
Result<int64_t> ParseGpuMemory(std::string_view text);
Result<int> ParseGpuCompute(std::string_view text);
Result<GpuRequirement> ParseGpuRequirement(const std::map<std::string, std::string>& annotations);

struct MigChoice {
  std::string profile;                  // "1g.10gb"
  std::vector<std::string> gpu_models;  // canonical models where it is the choice
};

// The smallest allowed profile (by memory, then compute, `+me` last) that
// gives at least `req`; ties across models keep every model that offers that
// profile as its own smallest fit. `pinned_model` ("" = any) restricts models.
// NotFound, naming the largest allowed profile, when nothing fits.
Result<MigChoice> ChooseMigProfile(const GpuSharingPolicy& policy, const GpuRequirement& req,
                                   std::string_view pinned_model = {});

struct MutationOptions {
  std::vector<std::string> excluded_namespaces{};
  const std::map<std::string, std::string>* namespace_labels = nullptr;
};

struct PodMutation {
  bool denied = false;
  std::string message{};                     // why denied
  std::string patch{};                       // JSONPatch array text; "" = no change
  const GpuSharingPolicy* policy = nullptr;  // the policy applied, if any
  std::vector<std::string> warnings{};
};

// Picks the pod's policy from `policies` and rewrites the pod.
PodMutation MutatePod(const PodInfo& pod, const PolicySet& policies, const MutationOptions& opts);
// Rewrites the pod for `policy` (already chosen).
PodMutation MutatePodWithPolicy(const PodInfo& pod, const GpuSharingPolicy& policy);

// Escapes one RFC 6901 reference token: "~" -> "~0", "/" -> "~1".
std::string EscapeJsonPointerToken(std::string_view token);

}  // namespace gpu_autoscaler::webhooks
