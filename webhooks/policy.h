// File: webhooks/policy.h
//
// GPUSharingPolicy (gpuautoscaler.io/v1alpha1, cluster scope): how GPU pods
// that it selects share GPUs, parsed from the custom resource's JSON, and the
// rule that picks one policy for a pod.
//
//   auto policy = ParseGpuSharingPolicy(cr_json);           // Result<GpuSharingPolicy>
//   PolicySet set(std::move(policies));                     // sorted once
//   const GpuSharingPolicy* p = set.Match(pod_subject);     // highest priority wins
//
// Matching: namespaceSelector against the namespace's labels, podSelector
// against the pod's labels, and gpuModels (empty = any) against the model the
// pod pins with a `nvidia.com/gpu.product` nodeSelector, if any. Among matches
// the highest `priority` wins; equal priorities go to the name that sorts first.
//
// Thread-safety: policies and PolicySet are immutable values once built.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "gpu/mig.h"
#include "kube/selector.h"

namespace gpu_autoscaler::webhooks {

enum class SharingStrategy { kExclusive, kTimeSlicing, kMps, kMig };

// "exclusive", "timeSlicing", "mps", "mig" (the CRD's spec.strategy.type).
std::string_view StrategyName(SharingStrategy strategy);
std::optional<SharingStrategy> ParseStrategyName(std::string_view name);

struct TimeSlicingSettings {
  int replicas = 2;  // 2..64
};

struct MpsSettings {
  int max_clients = 2;                // 2..48
  int active_thread_percentage = 0;   // 1..100; 0 = unset
  std::string pinned_memory_limit{};  // quantity ("10Gi"); "" = unset
  int64_t pinned_memory_limit_bytes = 0;
};

// The MIG profiles a policy allows on one GPU model.
struct MigModelProfiles {
  std::string gpu_model{};              // canonical name ("A100-80GB")
  std::vector<std::string> profiles{};  // "1g.10gb", ...
};

struct GpuSharingPolicy {
  std::string name{};
  int64_t generation = 0;
  int32_t priority = 0;
  kube::LabelSelector namespace_selector{};  // empty = every namespace
  kube::LabelSelector pod_selector{};        // empty = every pod
  std::vector<std::string> gpu_models{};     // canonical names; empty = any
  SharingStrategy strategy = SharingStrategy::kExclusive;
  TimeSlicingSettings time_slicing{};
  MpsSettings mps{};
  std::vector<MigModelProfiles> mig{};  // for kMig

  // Problems found while parsing that validation reports (unknown model or
  // profile names, out-of-range numbers...). Parsing keeps going so that the
  // validating webhook can name every bad field at once.
  std::vector<std::string> problems{};
};

// Parses a GPUSharingPolicy object (the whole CR: apiVersion, kind, metadata,
// spec). Structural errors (not JSON, not an object, wrong kind, bad selector)
// are InvalidArgument; semantic problems are collected in `problems`.
Result<GpuSharingPolicy> ParseGpuSharingPolicy(std::string_view json);

// What matching needs to know about a pod.
struct PodSubject {
  const std::map<std::string, std::string>* namespace_labels = nullptr;
  const std::map<std::string, std::string>* pod_labels = nullptr;
  std::string_view pinned_gpu_model{};  // canonical, or "" when not pinned
};

bool PolicyMatches(const GpuSharingPolicy& policy, const PodSubject& pod);

// Policies ordered by (priority desc, name asc), so Match is the first hit.
class PolicySet {
 public:
  PolicySet() = default;
  explicit PolicySet(std::vector<GpuSharingPolicy> policies);

  const GpuSharingPolicy* Match(const PodSubject& pod) const;
  const std::vector<GpuSharingPolicy>& policies() const { return policies_; }

 private:
  std::vector<GpuSharingPolicy> policies_;
};

// True unless the two policies provably select disjoint pods (contradictory
// requirements on one label key, or disjoint non-empty gpuModels).
bool PoliciesMayOverlap(const GpuSharingPolicy& a, const GpuSharingPolicy& b);

}  // namespace gpu_autoscaler::webhooks
