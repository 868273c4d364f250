#include "webhooks/admission_service.h"

#include <algorithm>
#include <exception>
#include <utility>

#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "api/crd_fields.h"
#include "common/json_read.h"
#include "cost/budget.h"
#include "webhooks/json_patch_builder.h"
#include "webhooks/mutate.h"
#include "webhooks/pod_resources.h"
#include "webhooks/qos_admission.h"
#include "webhooks/review.h"
#include "webhooks/validate.h"

namespace gpu_autoscaler::webhooks {
namespace {

std::string JoinProblems(std::string_view head, const std::vector<std::string>& problems) {
  std::string out(head);
  for (size_t i = 0; i < problems.size(); ++i) {
    out += i == 0 ? ": " : "; ";
    out += problems[i];
  }
  return out;
}

AdmissionOutcome Allowed(std::string_view uid, const std::vector<std::string>& warnings = {}) {
  return {200, EncodeAllowed(uid, {}, warnings), AdmissionVerdict::kAllowed};
}

AdmissionOutcome Denied(std::string_view uid, int code, std::string_view message,
                        AdmissionDenialReason reason) {
  return {200, EncodeDenied(uid, code, message), AdmissionVerdict::kDenied, reason};
}

bool Contains(const std::vector<std::string>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace

AdmissionService::AdmissionService(AdmissionConfig config)
    : config_(std::move(config)),
      policies_(std::make_shared<const PolicySet>()),
      profiles_(std::make_shared<const ProfileSet>()) {}

AdmissionService::~AdmissionService() = default;

std::shared_ptr<const PolicySet> AdmissionService::Snapshot() const {
  return policies_.load();
}

void AdmissionService::SetPolicies(std::vector<GpuSharingPolicy> policies) {
  policies_.store(std::make_shared<const PolicySet>(std::move(policies)));
}

void AdmissionService::SetProfiles(std::vector<ProfileRule> rules) {
  profiles_.store(std::make_shared<const ProfileSet>(std::move(rules)));
}

Result<GpuSharingPolicy> AdmissionService::ParsePolicy(std::string_view json) {
  GPU_ASSIGN_OR_RETURN(GpuSharingPolicy policy, ParseGpuSharingPolicy(json));
  if (!policy.problems.empty()) {
    return InvalidArgumentError(
        JoinProblems("GPUSharingPolicy \"" + policy.name + "\" is invalid", policy.problems));
  }
  return policy;
}

std::map<std::string, std::string> AdmissionService::NamespaceLabels(std::string_view ns) const {
  std::map<std::string, std::string> labels;
  if (config_.namespace_labels) labels = config_.namespace_labels(ns);
  labels.emplace(api::kNamespaceNameLabel, ns);
  return labels;
}

AdmissionOutcome AdmissionService::Review(AdmissionEndpoint endpoint, std::string_view body) const {
  try {
    const bool policy_endpoint = endpoint == AdmissionEndpoint::kValidateGpuSharingPolicies;
    const bool budget_endpoint = endpoint == AdmissionEndpoint::kValidateBudgets;
    auto decoded = DecodeAdmissionReview(
        body, policy_endpoint || budget_endpoint ? ObjectDecoding::kRaw : ObjectDecoding::kPod);
    if (!decoded.ok()) {
      return {400, decoded.error().message(), AdmissionVerdict::kBadRequest};
    }
    const DecodedReview& review = *decoded;
    const std::string_view uid = review.uid;
    if (!review.sub_resource.empty() || !review.has_object) return Allowed(uid);

    if (policy_endpoint) {
      if (review.kind != "GPUSharingPolicy" ||
          (review.operation != "CREATE" && review.operation != "UPDATE")) {
        return Allowed(uid);
      }
      if (Status strict = api::CheckKnownFields(review.object_json, "GPUSharingPolicy");
          !strict.ok()) {
        return Denied(uid, 422,
                      "GPUSharingPolicy \"" + review.name + "\" is invalid: " + strict.message(),
                      AdmissionDenialReason::kInvalidObject);
      }
      auto policy = ParseGpuSharingPolicy(review.object_json);
      if (!policy.ok()) {
        return Denied(uid, 400, policy.error().message(), AdmissionDenialReason::kInvalidObject);
      }
      auto snapshot = Snapshot();
      std::vector<std::string> problems = ValidatePolicy(*policy, snapshot->policies());
      if (problems.empty()) return Allowed(uid);
      return Denied(uid, 422,
                    JoinProblems("GPUSharingPolicy \"" + policy->name + "\" is invalid", problems),
                    AdmissionDenialReason::kInvalidObject);
    }

    if (budget_endpoint) {
      // Budgets and ClusterBudgets share a spec and a validation.
      if ((review.kind != "Budget" && review.kind != "ClusterBudget") ||
          review.group != "gpuautoscaler.io" ||
          (review.operation != "CREATE" && review.operation != "UPDATE")) {
        return Allowed(uid);
      }
      // A CREATE with generateName has no name yet; cost::ParseBudget wants one.
      // A CREATE's body may also leave the namespace out; the review names it,
      // and a Budget's scope is checked against it.
      std::string object = review.object_json;
      std::string name = review.name;
      nlohmann::json doc = nlohmann::json::parse(object, nullptr, /*allow_exceptions=*/false);
      if (doc.is_object() && doc["metadata"].is_object()) {
        bool changed = false;
        if (!doc["metadata"].contains("name")) {
          name = json_read::String(doc["metadata"], "generateName") + "*";
          doc["metadata"]["name"] = name;
          changed = true;
        }
        if (!doc.contains("kind")) {
          doc["kind"] = review.kind;
          changed = true;
        }
        if (review.kind == "Budget" && !review.ns.empty() &&
            !doc["metadata"].contains("namespace")) {
          doc["metadata"]["namespace"] = review.ns;
          changed = true;
        }
        if (changed) object = doc.dump();
      }
      std::string source = review.kind + " \"" +
                           (review.ns.empty() ? name : review.ns + "/" + name) + "\" is invalid";
      cost::AttributionLabels keys =
          config_.budgets ? config_.budgets->keys() : cost::AttributionLabels{};
      if (Status strict = api::CheckKnownFields(object, review.kind); !strict.ok()) {
        return Denied(uid, 422, source + ": " + strict.message(),
                      AdmissionDenialReason::kInvalidObject);
      }
      auto budget = cost::ParseBudget(object, source, keys);
      if (budget.ok()) return Allowed(uid);
      return Denied(uid, 422, budget.error().message(), AdmissionDenialReason::kInvalidObject);
    }

    if (review.kind != "Pod" || !review.group.empty() || !review.pod) return Allowed(uid);
    const PodInfo& pod = *review.pod;
    if (Contains(config_.excluded_namespaces, pod.ns)) return Allowed(uid);

    if (endpoint == AdmissionEndpoint::kValidatePods) {
      if (review.operation != "CREATE" && review.operation != "UPDATE") return Allowed(uid);
      // What we would check may not be what the API server stores (another
      // parser may take the other duplicate). Only hand-made reviews get here.
      if (!pod.shape_ok) {
        return Denied(uid, 422,
                      "pod is ambiguous: it has duplicate keys, or a field of the wrong JSON "
                      "type, where admission reads it",
                      AdmissionDenialReason::kInvalidObject);
      }
      std::vector<std::string> problems = ValidatePodAnnotations(pod);
      if (!problems.empty()) {
        return Denied(uid, 422, JoinProblems("pod annotations are invalid", problems),
                      AdmissionDenialReason::kInvalidObject);
      }
      problems = ValidateQos(pod);
      if (!problems.empty()) {
        auto level = pod.annotations.find(std::string(kAnnotationQosLevel));
        const std::string head =
            "pod does not fit its QoS level (" + std::string(kAnnotationQosLevel) + "=" +
            (level == pod.annotations.end() ? std::string("shared_cores") : level->second) + ")";
        return Denied(uid, 422, JoinProblems(head, problems),
                      AdmissionDenialReason::kInvalidObject);
      }
      // Budgets only gate pods that are about to start: running pods (UPDATE)
      // are left alone. Dry-run requests are denied the same way; a denial has
      // no side effects.
      if (review.operation == "CREATE" && config_.budgets && config_.budgets->MayDeny() &&
          GpuCount(pod) > 0) {
        if (auto why = config_.budgets->Check(pod, NamespaceLabels(pod.ns))) {
          return Denied(uid, 403, *why, AdmissionDenialReason::kBudget);
        }
      }
      return Allowed(uid);
    }

    // kMutatePods
    if (review.operation != "CREATE") return Allowed(uid);
    // A hand-made review whose fields the patch would write under have the
    // wrong type or duplicate keys: the patch could land on another reading
    // of the pod than the one decided on (PodInfo::shape_ok). Leave it alone.
    if (!pod.shape_ok) return Allowed(uid);
    std::map<std::string, std::string> ns_labels = NamespaceLabels(pod.ns);
    MutationOptions opts;
    opts.namespace_labels = &ns_labels;
    // A profile's recommendation, then QoS consistency, in one resource
    // patch; the GPU sharing rewrite sees the pod as that patch leaves it.
    PodResourceEdits edits = PodResourceEdits::From(pod);
    auto profiles = profiles_.load();
    if (const ProfileRule* rule = profiles->Match(pod)) ApplyProfile(pod, *rule, &edits);
    NormalizeQosResources(pod, &edits);
    PodInfo after;
    const std::string resource_patch = ResourcePatch(pod, edits, &after);
    auto snapshot = Snapshot();
    PodMutation m = MutatePod(after, *snapshot, opts);
    if (m.denied) return Denied(uid, 403, m.message, AdmissionDenialReason::kSharingPolicy);
    const std::string patch = ConcatJsonPatches(resource_patch, m.patch);
    if (patch.empty()) return Allowed(uid, m.warnings);
    // Dry-run requests get the same patch but must have no side effects.
    if (!review.dry_run && config_.on_pod_matched && m.policy != nullptr && !m.patch.empty()) {
      config_.on_pod_matched(m.policy->name);
    }
    return {200, EncodeAllowed(uid, patch, m.warnings), AdmissionVerdict::kPatched};
  } catch (const std::exception& e) {
    return {500, std::string("internal error: ") + e.what(), AdmissionVerdict::kBadRequest};
  }
}

}  // namespace gpu_autoscaler::webhooks
