#include "controllers/sharing_policy_controller.h"

#include <algorithm>

#include "kube/conditions.h"
#include "kube/event_recorder.h"
#include "kube/rest_client.h"
#include "reconcile/write_result.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

Clock::WallTime WallAt(int64_t s) {
  return Clock::WallTime(std::chrono::seconds(s));
}

}  // namespace

kube::IndexFunc<kube::PodView> PolicyIndexFunc() {
  return [](const kube::PodView& pod, std::vector<std::string>* values) {
    if (pod.phase() == kube::PodPhase::kSucceeded || pod.phase() == kube::PodPhase::kFailed) return;
    if (auto policy = pod.annotation(kPodsByPolicyIndex); policy && !policy->empty())
      values->emplace_back(*policy);
  };
}

SharingPolicyPlan DecideSharingPolicyStatus(const SharingPolicyInput& in) {
  SharingPolicyPlan plan;
  plan.status = in.status.is_object() ? in.status : json::object();
  json& status = plan.status;
  const json before_conditions = status.value("conditions", json::array());
  status["observedGeneration"] = in.generation;
  status["matchedPods"] = in.matched_pods;

  std::string accepted_reason = "Valid", accepted_message = "the policy is in force";
  bool accepted = in.policy.has_value();
  if (!accepted) {
    accepted_reason = "InvalidSpec";
    accepted_message = in.invalid_reason;
  } else if (!in.policy->problems.empty()) {
    accepted = false;
    accepted_reason = "InvalidSpec";
    accepted_message.clear();
    for (const std::string& p : in.policy->problems) {
      if (!accepted_message.empty()) accepted_message += "; ";
      accepted_message += p;
    }
  }
  (void)kube::SetCondition(&status["conditions"],
                           {.type = "Accepted",
                            .status = accepted ? "True" : "False",
                            .reason = accepted_reason,
                            .message = accepted_message,
                            .observed_generation = in.generation},
                           WallAt(in.now));

  std::vector<std::string> conflicts;
  if (accepted) {
    for (const webhooks::GpuSharingPolicy& other : in.others) {
      if (other.name == in.name || !other.problems.empty()) continue;
      if (other.priority == in.policy->priority &&
          webhooks::PoliciesMayOverlap(*in.policy, other)) {
        conflicts.push_back(other.name);
      }
    }
  }
  std::sort(conflicts.begin(), conflicts.end());
  std::string conflict_message = "no other policy matches the same pods at this priority";
  if (!conflicts.empty()) {
    conflict_message = "may match the same pods as ";
    for (size_t i = 0; i < conflicts.size(); ++i)
      conflict_message += (i ? ", " : "") + conflicts[i];
    conflict_message += " at priority " + std::to_string(in.policy->priority) +
                        "; the first by name wins. Give one a higher priority.";
  }
  (void)kube::SetCondition(&status["conditions"],
                           {.type = "Conflicting",
                            .status = conflicts.empty() ? "False" : "True",
                            .reason = conflicts.empty() ? "NoOverlap" : "SamePriorityOverlap",
                            .message = conflict_message,
                            .observed_generation = in.generation},
                           WallAt(in.now));

  // Events when a condition's status changes.
  for (const char* type : {"Accepted", "Conflicting"}) {
    auto was = kube::FindCondition(before_conditions, type);
    auto now = kube::FindCondition(status["conditions"], type);
    if (!now || (was && was->status == now->status)) continue;
    const bool bad = (std::string_view(type) == "Accepted") == (now->status == "False");
    if (!was && !bad) continue;  // first status of a healthy policy: nothing to say
    plan.events.push_back({bad, now->reason, now->message});
  }
  return plan;
}

SharingPolicyReconciler::SharingPolicyReconciler(const kube::Store<kube::GenericObject>& policies,
                                                 const kube::Store<kube::PodView>& pods,
                                                 kube::RestClient& client, Clock& clock,
                                                 kube::EventRecorder* recorder,
                                                 Clock::Duration resync,
                                                 prometheus::Registry* registry)
    : policies_(policies),
      pods_(pods),
      client_(client),
      clock_(clock),
      recorder_(recorder),
      resync_(resync) {
  if (registry != nullptr) {
    pods_gauge_ = &prometheus::BuildGauge()
                       .Name("gpu_autoscaler_sharing_policy_pods")
                       .Help(
                           "Live pods admitted under a GPUSharingPolicy, by policy and its "
                           "strategy (exclusive, timeSlicing, mps, mig)")
                       .Register(*registry);
  }
}

SharingPolicyReconciler::~SharingPolicyReconciler() = default;

void SharingPolicyReconciler::PublishMatchedPods(const std::string& policy,
                                                 const std::string& strategy, int64_t pods) {
  if (pods_gauge_ == nullptr) return;
  std::lock_guard<std::mutex> lock(gauge_mu_);
  auto it = published_strategy_.find(policy);
  if (it != published_strategy_.end() && it->second != strategy) {
    pods_gauge_->Remove(&pods_gauge_->Add({{"policy", policy}, {"strategy", it->second}}));
    published_strategy_.erase(it);
  }
  if (strategy.empty()) return;  // the policy is gone or unusable
  published_strategy_[policy] = strategy;
  pods_gauge_->Add({{"policy", policy}, {"strategy", strategy}}).Set(static_cast<double>(pods));
}

reconcile::RequestMapper SharingPolicyReconciler::PodMapper() const {
  return [this](const reconcile::ChangedObject& changed) {
    std::vector<reconcile::Request> out;
    auto pod = pods_.Get(changed.ns, changed.name);
    if (pod != nullptr) {
      if (auto policy = pod->annotation(kPodsByPolicyIndex); policy && !policy->empty())
        out.push_back({"", std::string(*policy)});
      return out;
    }
    for (const std::string& key : policies_.ListKeys())
      out.push_back({"", key});
    return out;
  };
}

reconcile::RequestMapper SharingPolicyReconciler::PolicyMapper() const {
  return [this](const reconcile::ChangedObject&) {
    std::vector<reconcile::Request> out;
    for (const std::string& key : policies_.ListKeys())
      out.push_back({"", key});
    return out;
  };
}

reconcile::ReconcileResult SharingPolicyReconciler::Reconcile(const reconcile::Request& request,
                                                              std::stop_token) {
  auto cached = policies_.Get("", request.name);
  if (cached == nullptr) {
    PublishMatchedPods(request.name, "", 0);
    return reconcile::Done{};
  }
  auto object = cached->Parse();
  if (!object.ok()) return reconcile::TerminalError{object.error().ToString()};

  SharingPolicyInput in;
  in.name = request.name;
  in.generation = cached->generation();
  in.status = object->value("status", json::object());
  in.now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.WallNow().time_since_epoch()).count();
  auto parsed = webhooks::ParseGpuSharingPolicy(cached->json());
  if (parsed.ok()) {
    in.policy = std::move(*parsed);
  } else {
    in.invalid_reason = parsed.error().message();
  }
  for (const auto& other : policies_.List()) {
    if (other->name() == request.name) continue;
    auto p = webhooks::ParseGpuSharingPolicy(other->json());
    if (p.ok()) in.others.push_back(std::move(*p));
  }
  in.matched_pods = static_cast<int64_t>(pods_.ByIndex(kPodsByPolicyIndex, request.name).size());
  PublishMatchedPods(request.name,
                     in.policy ? std::string(webhooks::StrategyName(in.policy->strategy)) : "",
                     in.matched_pods);

  SharingPolicyPlan plan = DecideSharingPolicyStatus(in);
  if (plan.status != in.status) {
    json body = *object;
    body["status"] = plan.status;
    auto written = client_.Replace(
        kube::ObjectRef{api::kGpuSharingPolicies, "", request.name}.WithSub("status"), body);
    if (!written.ok()) return reconcile::WriteFailed("writing status", written.error());
    if (recorder_ != nullptr) {
      for (const auto& ev : plan.events) {
        recorder_->Record(kube::EventObject::Of(*written),
                          ev.warning ? kube::EventType::kWarning : kube::EventType::kNormal,
                          ev.reason, ev.message);
      }
    }
  }
  return reconcile::RequeueAfter{resync_};
}

}  // namespace gpu_autoscaler::controllers
