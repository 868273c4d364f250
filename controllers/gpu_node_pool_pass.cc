#include "controllers/gpu_node_pool_internal.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include "api/annotations.h"
#include "api/resources.h"
#include "common/failpoint.h"
#include "common/json_read.h"
#include "common/str_join.h"
#include "controllers/gpu_node_pool_memory.h"
#include "controllers/secret_data.h"
#include "kube/conditions.h"
#include "kube/error.h"
#include "kube/meta_time.h"
#include "kube/rest_client.h"
#include "reconcile/logging.h"
#include "reconcile/write_result.h"

namespace gpu_autoscaler::controllers {
namespace {

using autoscale::CapacityTier;
using nlohmann::json;
using namespace node_pool;

}  // namespace

GpuNodePoolReconciler::Pass::Pass(GpuNodePoolReconciler& reconciler, std::string pool, json object,
                                  int64_t generation)
    : r_(reconciler),
      pool_(std::move(pool)),
      object_(std::move(object)),
      generation_(generation),
      parsed_(ParseNodePool(object_, r_.options_.secret_namespace)),
      spec_(parsed_.spec),
      st_(r_.State(pool_)),
      now_(r_.clock_.Now()),
      wall_(r_.clock_.WallNow()),
      now_unix_(std::chrono::duration_cast<std::chrono::seconds>(wall_.time_since_epoch()).count()),
      event_object_(kube::EventObject::Of(object_)),
      old_status_(json_read::Object(object_, "status")),
      status_(old_status_),
      snap_{.pool = &spec_, .now = now_, .now_unix = now_unix_},
      decide_options_{.resync = r_.options_.resync, .active = r_.options_.active} {
  status_["observedGeneration"] = generation_;
  if (!st_.restored) {
    RestorePoolMemory(old_status_, now_, wall_, &st_.memory);
    st_.restored = true;
  }
  actions_ = json_read::Array(status_, "recentActions");
  // Actions of earlier reconciles that never reached the status, newest first.
  taken_ = std::move(st_.unwritten_actions);
  st_.unwritten_actions.clear();
  for (auto it = taken_.rbegin(); it != taken_.rend(); ++it)
    actions_.insert(actions_.begin(), *it);
}

void GpuNodePoolReconciler::Pass::SetCondition(std::string_view type, bool value,
                                               std::string reason, std::string message) {
  if (type == kProviderError && value)
    r_.metrics_->provider_errors.Add({{"pool", pool_}, {"reason", reason}}).Increment();
  (void)kube::SetCondition(&status_["conditions"],
                           {.type = std::string(type),
                            .status = value ? "True" : "False",
                            .reason = std::move(reason),
                            .message = std::move(message),
                            .observed_generation = generation_},
                           wall_);
}

void GpuNodePoolReconciler::Pass::Record(std::string action, CapacityTier tier, int count,
                                         std::string message, bool warning, std::string id) {
  json entry = {{"time", kube::FormatTime(wall_)},
                {"action", action},
                {"tier", std::string(autoscale::TierKey(tier))},
                {"count", count},
                {"message", message}};
  if (!id.empty()) entry["id"] = std::move(id);
  actions_.insert(actions_.begin(), entry);
  taken_.insert(taken_.begin(), std::move(entry));
  r_.metrics_->actions
      .Add({{"pool", pool_}, {"action", action}, {"tier", std::string(autoscale::TierKey(tier))}})
      .Increment(count);
  if (r_.recorder_ != nullptr) {
    r_.recorder_->Record(event_object_,
                         warning ? kube::EventType::kWarning : kube::EventType::kNormal, action,
                         message);
  }
}

const std::string& GpuNodePoolReconciler::Pass::TypeName(int group) const {
  return spec_.instance_types[snap_.groups[group].instance_type].name;
}

std::string GpuNodePoolReconciler::Pass::OfferingText(int group) const {
  return TypeName(group) + " " + std::string(autoscale::TierKey(snap_.groups[group].tier));
}

// Terminations whose Node goes once the status holds their record.
Status GpuNodePoolReconciler::Pass::DeleteTerminatedNodes() {
  for (const TerminationIntent& t : terminated_)
    GPU_RETURN_IF_ERROR(DeleteTerminatedNode(r_.client_, t));
  return Status::Ok();
}

reconcile::ReconcileResult GpuNodePoolReconciler::Pass::Finish(reconcile::ReconcileResult result) {
  while (static_cast<int>(actions_.size()) > r_.options_.recent_actions)
    actions_.erase(actions_.end() - 1);
  status_["recentActions"] = actions_;
  if (status_ == old_status_) {
    if (Status s = DeleteTerminatedNodes(); !s.ok())
      return reconcile::TransientError{"deleting terminated nodes: " + s.ToString()};
    return result;
  }
  const json& before = json_read::Array(old_status_, "conditions");
  json body = object_;
  body["status"] = status_;
  auto written =
      r_.client_.Replace(kube::ObjectRef{api::kGpuNodePools, "", pool_}.WithSub("status"), body);
  if (!written.ok()) {
    if (kube::IsNotFound(written.error())) return reconcile::Done{};
    st_.unwritten_actions = std::move(taken_);
    return reconcile::WriteFailed("writing status", written.error());
  }
  for (const TerminationIntent& t : terminated_) {
    st_.recorded_terminations.push_back(t.id);
    if (st_.recorded_terminations.size() > 64) st_.recorded_terminations.pop_front();
  }
  // Crash point: the status holds the Terminate records, the Nodes still
  // carry their intents; a restart deletes them without a second record.
  Status recorded = terminated_.empty()
                        ? Status::Ok()
                        : failpoint::Evaluate("gpunodepool.scale_down.after_record");
  if (recorded.ok()) recorded = DeleteTerminatedNodes();
  if (!recorded.ok())
    return reconcile::TransientError{"deleting terminated nodes: " + recorded.ToString()};
  if (r_.recorder_ != nullptr) {
    for (std::string_view type : {kReady, kProviderError, kAtLimit}) {
      auto was = kube::FindCondition(before, type);
      auto is = kube::FindCondition(status_["conditions"], type);
      if (!is || (was && was->status == is->status && was->reason == is->reason)) continue;
      const bool bad = (type == kReady) == (is->status == "False");
      if (!was && !bad) continue;
      r_.recorder_->Record(event_object_,
                           bad ? kube::EventType::kWarning : kube::EventType::kNormal, is->reason,
                           is->message);
    }
  }
  return result;
}

reconcile::ReconcileResult GpuNodePoolReconciler::Pass::Run() {
  // 1. The spec.
  if (!parsed_.problems.empty()) {
    SetCondition(kReady, false, "InvalidSpec", StrJoin(parsed_.problems, "; "));
    kube::RemoveCondition(&status_["conditions"], kScalingUp);
    return Finish(reconcile::RequeueAfter{r_.options_.resync});
  }
  // 2. Credentials and the provider.
  if (Outcome stop = BuildProvider()) return *stop;
  // 3. Observe: the groups, which Node is which instance, the pods.
  if (Outcome stop = ObserveGroups()) return *stop;
  SetCondition(kProviderError, false, "None", "the provider answers");
  // Terminations a killed run left behind (gpu_node_pool_scale_down.h).
  for (const TerminationIntent& intent : FindTerminationIntents(r_.nodes_, pool_))
    CarryOut(intent);
  std::map<std::string, std::string> unservable;
  r_.ObserveNodesAndPods(pool_, parsed_, *provider_, group_of_provider_id_, &snap_, &unservable);
  r_.ReportUnservable(unservable);
  r_.metrics_->pending.Add({{"pool", pool_}}).Set(static_cast<double>(snap_.pending.size()));
  Predict();

  // 4. Decide.
  auto decided = autoscale::DecidePool(snap_, &st_.memory, decide_options_);
  if (!decided.ok()) return reconcile::TransientError{"planning: " + decided.error().ToString()};
  const autoscale::PoolPlan& plan = *decided;
  // With the Interruption entries below, in whichever status write comes first.
  if (st_.memory.interrupted.empty()) {
    status_.erase("answeredInterruptions");
  } else {
    status_["answeredInterruptions"] = AnsweredInterruptionsJson(st_.memory);
  }

  // 5. Apply.
  ApplyShortagesAndInterruptions(plan);
  bool scaled_up = false;
  if (Outcome stop = ScaleUp(plan, &scaled_up)) return *stop;
  if (scaled_up && plan.floor_added > 0 && r_.recorder_ != nullptr) {
    r_.recorder_->Record(event_object_, kube::EventType::kNormal, "PreProvision",
                         "+" + std::to_string(plan.floor_added) +
                             " nodes ahead of demand, to the predictive floor of " +
                             std::to_string(snap_.floor_nodes) + " nodes: " + predicted_.message);
  }
  // Drains, then the new cordons.
  Evict(plan);
  Terminate(plan);
  const int draining = plan.draining + Cordon(plan);

  // 6. Status.
  WriteTotals(plan, scaled_up);
  return Finish(reconcile::RequeueAfter{
      autoscale::RequeueAfter(plan, scaled_up || replan_soon_, draining, now_, decide_options_)});
}

GpuNodePoolReconciler::Pass::Outcome GpuNodePoolReconciler::Pass::BuildProvider() {
  std::optional<SecretData> secret;
  if (!parsed_.provider.secret_name.empty()) {
    auto read = SecretData::Read(r_.client_, parsed_.provider.secret_namespace,
                                 parsed_.provider.secret_name);
    if (!read.ok()) {
      const bool missing = read.error().code() == StatusCode::kNotFound;
      SetCondition(kProviderError, true, missing ? "MissingCredentials" : "CredentialsUnreadable",
                   "credentials Secret " + parsed_.provider.secret_namespace + "/" +
                       parsed_.provider.secret_name + ": " + read.error().message());
      SetCondition(kReady, false, missing ? "MissingCredentials" : "CredentialsUnreadable",
                   "the provider cannot be reached without its credentials");
      return Finish(reconcile::RequeueAfter{r_.options_.resync});
    }
    secret = std::move(*read);
  }
  // Rebuilt when what the provider is made of changes (not on a limit or
  // scale-down edit: the simulated cloud's instances live in the provider).
  const json& spec_json = json_read::Object(object_, "spec");
  const std::string shape = json_read::Member(spec_json, "provider").dump() +
                            json_read::Member(spec_json, "instanceTypes").dump() +
                            std::to_string(spec_.max_nodes);
  if (!st_.provider || st_.provider_pool_shape != shape) {
    auto built = r_.options_.build_provider(
        parsed_,
        {.client = &r_.client_, .clock = &r_.clock_, .secret = secret ? &*secret : nullptr});
    if (!built.ok()) {
      SetCondition(kProviderError, true, "ProviderUnavailable", built.error().message());
      SetCondition(kReady, false, "ProviderUnavailable", built.error().message());
      return Finish(reconcile::RequeueAfter{r_.options_.resync});
    }
    st_.provider = std::move(*built);
    st_.provider_pool_shape = shape;
  }
  provider_ = st_.provider.get();
  return std::nullopt;
}

GpuNodePoolReconciler::Pass::Outcome GpuNodePoolReconciler::Pass::ObserveGroups() {
  for (size_t i = 0; i < spec_.instance_types.size(); ++i) {
    for (int t = 0; t < autoscale::kTierCount; ++t) {
      const auto tier = static_cast<CapacityTier>(t);
      const std::string& group = parsed_.provider.Group(static_cast<int>(i), tier);
      if (group.empty()) continue;
      auto described = provider_->Describe(group);
      if (!described.ok()) {
        const cloud::ProviderErrorKind kind = cloud::ClassifyProviderError(described.error());
        SetCondition(kProviderError, true, std::string(cloud::ProviderErrorKindName(kind)),
                     "describing group " + group + ": " + described.error().message());
        SetCondition(kReady, false, "ProviderError", "the provider's groups cannot be read");
        return Finish(reconcile::RequeueAfter{r_.options_.resync});
      }
      autoscale::GroupObservation g{.instance_type = static_cast<int>(i),
                                    .tier = tier,
                                    .group = group,
                                    .desired = described->desired};
      for (const cloud::Instance& inst : described->instances) {
        if (InstanceShuttingDown(inst)) continue;  // terminated: not capacity any more
        g.instance_ids.push_back(inst.id);
        group_of_provider_id_[inst.provider_id] = static_cast<int>(snap_.groups.size());
      }
      // Asked for more than it has: did the cloud fail to find the capacity
      // after taking the new size (AWS reports it in scaling activities)?
      if (described->desired > static_cast<int>(described->instances.size())) {
        const Status failed = provider_->LaunchFailure(group);
        const auto kind = cloud::ClassifyProviderError(failed);
        if (kind == cloud::ProviderErrorKind::kInsufficientCapacity ||
            kind == cloud::ProviderErrorKind::kQuotaExceeded) {
          g.launch_shortage = failed.message();
        }
      }
      snap_.groups.push_back(std::move(g));
    }
  }
  return std::nullopt;
}

// Steps 2 and 3 of a termination intent (gpu_node_pool_scale_down.h), for
// the ones a killed run left behind and for this pass's new ones.
void GpuNodePoolReconciler::Pass::CarryOut(const TerminationIntent& intent) {
  auto g = std::find_if(snap_.groups.begin(), snap_.groups.end(),
                        [&](const auto& o) { return o.group == intent.group; });
  const bool known = g != snap_.groups.end();
  const bool listed = known && std::find(g->instance_ids.begin(), g->instance_ids.end(),
                                         intent.instance_id) != g->instance_ids.end();
  const TerminationSteps steps = DecideTermination(
      intent,
      {.group_known = known,
       .instance_listed = listed,
       .group_desired = known ? g->desired : 0,
       .recorded = ActionRecorded(actions_, intent.id) ||
                   std::find(st_.recorded_terminations.begin(), st_.recorded_terminations.end(),
                             intent.id) != st_.recorded_terminations.end()});
  if (!known) {
    reconcile::Log(reconcile::LogLevel::kWarn, "termination intent for a group the pool lacks",
                   {{"pool", pool_}, {"node", intent.node}, {"group", intent.group}});
    return;
  }
  // Going either way: not the pool's capacity in this pass's plan.
  std::erase_if(g->instance_ids, [&](const std::string& id) { return id == intent.instance_id; });
  if (steps.call_provider) {
    Status s = provider_->TerminateInstances(g->group, {intent.instance_id},
                                             /*decrement_desired=*/true);
    // Gone meanwhile (not a member any more): nothing left to terminate.
    if (!s.ok() && cloud::ClassifyProviderError(s) == cloud::ProviderErrorKind::kNotFound)
      s = Status::Ok();
    // Crash point: the instance is going, nothing records it yet.
    if (s.ok()) s = failpoint::Evaluate("gpunodepool.scale_down.after_terminate");
    if (!s.ok()) {
      SetCondition(kProviderError, true,
                   std::string(cloud::ProviderErrorKindName(cloud::ClassifyProviderError(s))),
                   "terminating " + intent.instance_id + ": " + s.message());
      return;  // the intent stays; the next pass tries again
    }
    g->desired = std::max(0, g->desired - 1);
  }
  if (steps.record)
    Record("Terminate", intent.tier, 1, TerminationMessage(intent), false, intent.id);
  if (steps.delete_node) terminated_.push_back(intent);
}

// Predictive scaling: record the demand, keep the forecast's floor.
void GpuNodePoolReconciler::Pass::Predict() {
  predicted_ = st_.predictor.Pass(
      r_.client_,
      {.ns = r_.options_.secret_namespace,
       .pool = pool_,
       .uid = json_read::String(json_read::Object(object_, "metadata"), "uid")},
      parsed_.predictive, spec_, generation_, PoolDemandGpus(snap_), now_unix_, wall_);
  snap_.floor_nodes = predicted_.floor_nodes;
  r_.metrics_->floor.Add({{"pool", pool_}}).Set(predicted_.floor_nodes);
  if (predicted_.predicting) {
    r_.metrics_->forecast.Add({{"pool", pool_}}).Set(predicted_.floor.forecast_gpus);
  } else if (r_.metrics_->forecast.Has({{"pool", pool_}})) {
    r_.metrics_->forecast.Remove(&r_.metrics_->forecast.Add({{"pool", pool_}}));
  }
  SetCondition(kPredicting, predicted_.predicting, predicted_.reason, predicted_.message);
  if (predicted_.status.is_null()) {
    status_.erase("predictive");
  } else {
    status_["predictive"] = predicted_.status;
  }
  if (predicted_.warning && r_.recorder_ != nullptr) {
    r_.recorder_->Record(event_object_, kube::EventType::kWarning, "DemandHistoryReset",
                         *predicted_.warning);
  }
}

// Shortages found after a resize: stop asking for what the cloud does not
// have. Interruption notices: replacement capacity is in the plan.
void GpuNodePoolReconciler::Pass::ApplyShortagesAndInterruptions(const autoscale::PoolPlan& plan) {
  for (const autoscale::GroupShortage& s : plan.shortages) {
    const Status shrunk = provider_->ResizeFrom(snap_.groups[s.group].group,
                                                snap_.groups[s.group].desired, s.shrink_to);
    if (shrunk.ok()) snap_.groups[s.group].desired = s.shrink_to;
    Record("CapacityError", snap_.groups[s.group].tier, 1,
           OfferingText(s.group) + " unavailable for 3m: " + s.message, /*warning=*/true);
  }
  for (const autoscale::InterruptionReplacement& r : plan.interruptions) {
    r_.metrics_->interruptions
        .Add({{"pool", pool_}, {"tier", std::string(autoscale::TierKey(r.tier))}})
        .Increment();
    char gpus[32];
    std::snprintf(gpus, sizeof(gpus), "%.2f", r.gpus);
    Record("Interruption", r.tier, 1,
           "node " + r.node + " (" + OfferingText(r.group) + ") will be reclaimed" +
               (r.notice.empty() ? "" : " (" + r.notice + ")") + ": " + OfferingText(r.group) +
               " unavailable for 3m; replacing capacity for " + std::to_string(r.pods) +
               " GPU pods (" + gpus + " GPUs)",
           /*warning=*/true);
  }
}

// A capacity error marks the offering unavailable and the plan is redone at
// once, so spot falls back to on-demand.
GpuNodePoolReconciler::Pass::Outcome GpuNodePoolReconciler::Pass::ScaleUp(
    const autoscale::PoolPlan& plan, bool* scaled_up) {
  const int waiting_pods = plan.pending + plan.replacing;
  std::vector<autoscale::GroupIncrease> increases = plan.increases;
  for (int attempt = 0; !increases.empty() && attempt < 3; ++attempt) {
    bool capacity_error = false;
    for (const autoscale::GroupIncrease& inc : increases) {
      autoscale::GroupObservation& g = snap_.groups[inc.group];
      // Only from the size this plan read: a group someone else resized
      // meanwhile is planned again from what is there, not overwritten.
      Status s = provider_->ResizeFrom(g.group, g.desired, g.desired + inc.count);
      // Crash point (docs/reliability.md): the cloud took the new size, the
      // status does not say so yet; a restart must read it back, not resize again.
      if (s.ok()) s = failpoint::Evaluate("gpunodepool.scale_up.after_resize");
      if (s.ok()) {
        g.desired += inc.count;
        *scaled_up = true;
        Record("ScaleUp", g.tier, inc.count,
               "+" + std::to_string(inc.count) + " " + TypeName(inc.group) + " in group " +
                   g.group + " for " + std::to_string(waiting_pods) + " pending GPU pods" +
                   (attempt == 0 && plan.floor_added > 0
                        ? " and the forecast (" + std::to_string(plan.floor_added) +
                              " nodes ahead of demand)"
                        : ""));
        continue;
      }
      const cloud::ProviderErrorKind kind = cloud::ClassifyProviderError(s);
      if (kind == cloud::ProviderErrorKind::kConflict) {
        replan_soon_ = true;
        Record("ResizeConflict", g.tier, inc.count,
               "+" + std::to_string(inc.count) + " " + TypeName(inc.group) + " in group " +
                   g.group + " not asked: " + s.message() + "; planning again");
      } else if (kind == cloud::ProviderErrorKind::kInsufficientCapacity) {
        st_.memory.unavailable.Mark(TypeName(inc.group), g.tier, now_);
        capacity_error = true;
        Record("CapacityError", g.tier, inc.count,
               OfferingText(inc.group) + " unavailable for 3m: " + s.message(),
               /*warning=*/true);
      } else {
        SetCondition(kProviderError, true, std::string(cloud::ProviderErrorKindName(kind)),
                     "resizing group " + g.group + ": " + s.message());
      }
    }
    if (!capacity_error || attempt == 2) break;
    auto again = autoscale::DecideScaleUp(snap_, st_.memory);  // without the unavailable offering
    if (!again.ok()) return reconcile::TransientError{"planning: " + again.error().ToString()};
    increases = autoscale::IncreasesOnGroups(snap_, *again);
  }
  return std::nullopt;
}

void GpuNodePoolReconciler::Pass::Evict(const autoscale::PoolPlan& plan) {
  for (const autoscale::PodEviction& e : plan.evictions) {
    const size_t slash = e.key.find('/');
    auto evicted = r_.client_.Evict(e.key.substr(0, slash), e.key.substr(slash + 1));
    if (evicted.ok()) {
      Record("Evict", e.tier, 1, "evicted " + e.key + " from " + e.node);
    } else if (kube::IsNotFound(evicted.error())) {
      reconcile::Log(reconcile::LogLevel::kInfo, "pod to evict is gone",
                     {{"pool", pool_}, {"pod", e.key}, {"error", evicted.error().ToString()}});
    } else {
      // 429: a PodDisruptionBudget says not now; retried on the next pass.
      Record("EvictBlocked", e.tier, 1, "evicting " + e.key + ": " + evicted.error().ToString(),
             true);
    }
  }
}

void GpuNodePoolReconciler::Pass::Terminate(const autoscale::PoolPlan& plan) {
  for (const autoscale::InstanceTermination& t : plan.terminations) {
    TerminationIntent intent{.pool = pool_,
                             .group = snap_.groups[t.group].group,
                             .instance_id = t.instance_id,
                             .node = t.node,
                             .tier = t.tier,
                             .interrupted = t.interrupted,
                             .desired_before = snap_.groups[t.group].desired};
    // Step 1, durable before anything irreversible; a conflict: decided again next pass.
    Status written = WriteTerminationIntent(r_.client_, &intent);
    // Crash point: the intent is on the Node, the instance still runs.
    if (written.ok()) written = failpoint::Evaluate("gpunodepool.scale_down.after_intent");
    if (!written.ok()) {
      reconcile::Log(reconcile::LogLevel::kInfo, "termination intent not written",
                     {{"pool", pool_}, {"node", t.node}, {"error", written.ToString()}});
      continue;
    }
    CarryOut(intent);
  }
}

int GpuNodePoolReconciler::Pass::Cordon(const autoscale::PoolPlan& plan) {
  int cordoned_nodes = 0;
  for (const autoscale::NodeCordon& c : plan.cordons) {
    auto node = r_.client_.Get({kube::resources::kNodes, "", c.node});
    if (!node.ok()) continue;
    json& nspec = (*node)["spec"];
    nspec["unschedulable"] = true;
    if (!nspec.contains("taints") || !nspec["taints"].is_array()) nspec["taints"] = json::array();
    nspec["taints"].push_back({{"key", std::string(api::kDisruptionTaint)},
                               {"value", std::string(autoscale::DisruptionReasonName(c.reason))},
                               {"effect", "NoSchedule"}});
    auto cordoned = r_.client_.Replace({kube::resources::kNodes, "", c.node}, *node);
    if (!cordoned.ok()) continue;  // a conflict: the next pass decides again
    ++cordoned_nodes;
    Record("Cordon", c.tier, 1, "cordoned " + c.node + ": " + c.why);
  }
  return cordoned_nodes;
}

void GpuNodePoolReconciler::Pass::WriteTotals(const autoscale::PoolPlan& plan, bool scaled_up) {
  // A terminated node stays registered until its Node goes: count it as before.
  const autoscale::PoolTotals totals = autoscale::TotalsOf(snap_);
  json tiers = json::object();
  for (int t = 0; t < autoscale::kTierCount; ++t) {
    if (!spec_.tiers[t].enabled) continue;
    const auto tier = static_cast<CapacityTier>(t);
    const std::map<std::string, std::string> labels = {
        {"pool", pool_}, {"tier", std::string(autoscale::TierKey(tier))}};
    tiers[std::string(autoscale::TierKey(tier))] = {{"nodes", totals.nodes[t]},
                                                    {"desired", totals.desired[t]},
                                                    {"group", StrJoin(totals.groups[t], ",")}};
    r_.metrics_->nodes.Add(labels).Set(totals.nodes[t]);
    r_.metrics_->desired.Add(labels).Set(totals.desired[t]);
    // Exported at 0 before the first notice, so rate() and alerts see the first one.
    r_.metrics_->interruptions.Add(labels);
  }
  status_["nodes"] = totals.registered;
  status_["desired"] = totals.desired_total;
  status_["tiers"] = tiers;
  status_["pendingGPUPods"] = static_cast<int64_t>(plan.pending);
  status_["hourlyCost"] = std::round(totals.hourly * 1e4) / 1e4;
  status_["unavailableOfferings"] = UnavailableOfferingsJson(st_.memory, now_, wall_);

  for (const PoolCondition& c : DecideScaleConditions({.scaled_up = scaled_up,
                                .launching = plan.launching,
                                .registered = totals.registered,
                                .desired = totals.desired_total,
                                .max_nodes = spec_.max_nodes,
                                .pending = plan.pending,
                                .limit = plan.limit})) {
    SetCondition(c.type, c.status, c.reason, c.message);
  }
  if (!kube::IsConditionTrue(status_["conditions"], kProviderError)) {
    SetCondition(kReady, true, "Reconciled",
                 std::to_string(totals.registered) + " nodes, " +
                     std::to_string(totals.desired_total) + " desired");
  }
}

}  // namespace gpu_autoscaler::controllers
