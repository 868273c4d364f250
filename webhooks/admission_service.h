// File: webhooks/admission_service.h
//
// The admission logic behind the webhook server: decodes one AdmissionReview
// body for an endpoint, applies ServiceProfile recommendations and Katalyst
// QoS consistency (webhooks/profile_admission.h, qos_admission.h) and then
// the GPUSharingPolicy rules (pod rewrite, pod validation, policy
// validation), Budget enforcement on new GPU pods (/validate-pods) and
// Budget validation, and encodes the answer.
//
//   AdmissionService service(AdmissionConfig{});
//   service.SetPolicies(std::move(policies));   // e.g. from a GPUSharingPolicy informer
//   AdmissionOutcome out = service.Review(AdmissionEndpoint::kMutatePods, body);
//   // out.http_status: 200 with an AdmissionReview, or 400 with a plain reason
//
// Thread-safety: Review() is const and may run on many threads at once;
// SetPolicies() atomically swaps an immutable snapshot and may race with it.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "webhooks/admission.h"
#include "webhooks/budget_admission.h"
#include "webhooks/policy.h"
#include "webhooks/profile_admission.h"

namespace gpu_autoscaler::webhooks {

struct AdmissionConfig {
  // Pods in these namespaces are never mutated nor denied.
  std::vector<std::string> excluded_namespaces = {"kube-system", "gpu-autoscaler-system"};
  // Labels of a namespace, for namespaceSelector (an AdmissionReview does not
  // carry them). Unset: `kubernetes.io/metadata.name=<ns>` is the only label.
  std::function<std::map<std::string, std::string>(std::string_view ns)> namespace_labels{};
  // Called once per pod that a policy rewrote, except for dry-run requests,
  // e.g. to count status.matchedPods. Must be thread-safe.
  std::function<void(std::string_view policy_name)> on_pod_matched{};
  // Budgets that may deny new GPU pods at /validate-pods (CREATE only, dry-run
  // included). Null: no budget enforcement.
  std::shared_ptr<const BudgetGate> budgets{};
};

class AdmissionService {
 public:
  explicit AdmissionService(AdmissionConfig config);
  ~AdmissionService();
  AdmissionService(const AdmissionService&) = delete;
  AdmissionService& operator=(const AdmissionService&) = delete;

  AdmissionOutcome Review(AdmissionEndpoint endpoint, std::string_view body) const;

  // Replaces the policies that mutation and overlap validation use.
  void SetPolicies(std::vector<GpuSharingPolicy> policies);
  // Replaces the ServiceProfiles whose recommendations new pods get.
  void SetProfiles(std::vector<ProfileRule> rules);

  // A GPUSharingPolicy from its custom resource JSON (as an informer has it).
  static Result<GpuSharingPolicy> ParsePolicy(std::string_view json);

 private:
  std::shared_ptr<const PolicySet> Snapshot() const;
  // config_.namespace_labels(ns) plus kubernetes.io/metadata.name=<ns>.
  std::map<std::string, std::string> NamespaceLabels(std::string_view ns) const;

  AdmissionConfig config_;
  std::atomic<std::shared_ptr<const PolicySet>> policies_;
  std::atomic<std::shared_ptr<const ProfileSet>> profiles_;
};

}  // namespace gpu_autoscaler::webhooks
