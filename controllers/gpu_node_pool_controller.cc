#include "controllers/gpu_node_pool_controller.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <set>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "api/annotations.h"
#include "api/nvidia.h"
#include "api/resources.h"
#include "common/failpoint.h"
#include "controllers/gpu_node_pool_memory.h"
#include "controllers/gpu_node_pool_predictive.h"
#include "controllers/gpu_node_pool_scale_down.h"
#include "controllers/namespace_labels.h"
#include "controllers/secret_data.h"
#include "kube/conditions.h"
#include "kube/error.h"
#include "kube/event_recorder.h"
#include "kube/meta_time.h"
#include "kube/rest_client.h"
#include "reconcile/logging.h"
#include "scheduler/gpu_demand.h"

namespace gpu_autoscaler::controllers {
namespace {

using autoscale::CapacityTier;
using autoscale::TierIndex;
using nlohmann::json;

constexpr std::string_view kReady = "Ready";
constexpr std::string_view kScalingUp = "ScalingUp";
constexpr std::string_view kAtLimit = "AtLimit";
constexpr std::string_view kProviderError = "ProviderError";
constexpr std::string_view kPredicting = "Predicting";
constexpr std::string_view kScaleDownSpotRequested = "ScaleDownSpotRequested";

bool IsDaemonSetPod(const kube::PodView& pod) {
  const kube::OwnerReference* owner = pod.controller_ref();
  return owner != nullptr && owner->kind.view() == "DaemonSet";
}

bool Terminal(const kube::PodView& pod) {
  return pod.phase() == kube::PodPhase::kSucceeded || pod.phase() == kube::PodPhase::kFailed;
}

std::string Key(const kube::PodView& pod) {
  return std::string(pod.ns()) + "/" + std::string(pod.name());
}

}  // namespace

std::optional<autoscale::PodSpec> PoolDemandOf(const kube::PodView& pod) {
  scheduler::GpuDemand d = scheduler::GpuDemandOf(pod, autoscale::kMilliPerGpu);
  if (!d.wants_gpu() || !d.error.empty()) return std::nullopt;
  if (d.kind == scheduler::GpuKind::kMig) {
    d.spec.num_gpu = 1;
    d.spec.gpu_milli = (d.mig_slices * autoscale::kMilliPerGpu + autoscale::kMigSlicesPerGpu - 1) /
                       autoscale::kMigSlicesPerGpu;
  }
  if (auto model = kube::FindLabel(pod.node_selector(), api::kGpuProductLabel))
    d.spec.gpu_models = {std::string(*model)};
  return d.spec;
}

bool WaitsForCapacity(const kube::PodView& pod) {
  if (pod.terminating() || pod.phase() != kube::PodPhase::kPending) return false;
  for (const kube::Condition& c : pod.conditions()) {
    if (c.type.view() != "PodScheduled") continue;
    return c.status == kube::ConditionStatus::kFalse && c.reason.view() != "SchedulingGated";
  }
  return false;
}

namespace {

std::string Join(const std::vector<std::string>& parts, std::string_view sep = "; ") {
  std::string out;
  for (const std::string& p : parts)
    out += (out.empty() ? "" : std::string(sep)) + p;
  return out;
}

}  // namespace

std::vector<std::string> BudgetsAskingSpotScaleDown(
    const std::vector<json>& budgets, const std::vector<std::string>& namespaces,
    const cost::NamespaceLabelIndex& namespace_labels) {
  std::vector<std::string> out;
  for (const json& b : budgets) {
    const json conditions = b.value("status", json::object()).value("conditions", json::array());
    if (!kube::IsConditionTrue(conditions, kScaleDownSpotRequested)) continue;
    const json meta = b.value("metadata", json::object());
    const std::string own_ns = meta.value("namespace", "");
    const std::string name = meta.value("name", "");
    bool covers = false;
    if (!own_ns.empty()) {
      // A Budget covers its own namespace only (cost::ParseBudget), never the cluster.
      covers = std::find(namespaces.begin(), namespaces.end(), own_ns) != namespaces.end();
      if (covers) out.push_back(own_ns + "/" + name);
      continue;
    }
    // A ClusterBudget: its listed namespaces and namespace selector.
    Result<cost::Budget> parsed = cost::ParseBudget(b.dump(), "ClusterBudget " + name);
    if (!parsed.ok()) continue;  // the budget controller reports it Invalid
    const cost::BudgetScope& scope = parsed->spec.scope;
    for (const std::string& ns : namespaces) {
      if (!scope.namespaces.empty() &&
          std::find(scope.namespaces.begin(), scope.namespaces.end(), ns) == scope.namespaces.end())
        continue;
      if (scope.namespace_selector) {
        auto labels = namespace_labels.find(ns);
        if (labels == namespace_labels.end() || !scope.namespace_selector->Matches(labels->second))
          continue;
      }
      covers = true;
      break;
    }
    if (covers) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<PoolCondition> DecideScaleConditions(const ScaleConditionInput& in) {
  std::vector<PoolCondition> out;
  const int in_flight = std::max(in.desired - in.registered, 0);
  if (in.scaled_up || in_flight > 0 || in.launching > 0) {
    out.push_back({"ScalingUp", true, "Launching",
                   std::to_string(std::max(in_flight, in.launching)) + " nodes launching for " +
                       std::to_string(in.pending) + " pending GPU pods"});
  } else if (in.pending == 0) {
    out.push_back({"ScalingUp", false, "NoPendingPods", "no pending GPU pod needs this pool"});
  } else {
    out.push_back(
        {"ScalingUp", false, "Waiting", std::to_string(in.pending) + " pending GPU pods batched"});
  }
  if (in.limit != autoscale::ScaleUpLimit::kNone) {
    const std::string name(autoscale::ScaleUpLimitName(in.limit));
    out.push_back({"AtLimit", true, name,
                   "pending GPU pods are left unplaced by the pool's " + name + " limit"});
  } else if (in.registered + in_flight >= in.max_nodes) {
    out.push_back({"AtLimit", true, "MaxNodes",
                   "the pool has maxNodes " + std::to_string(in.max_nodes) + " nodes"});
  } else {
    out.push_back({"AtLimit", false, "WithinLimits", "below maxNodes and the cost ceiling"});
  }
  return out;
}

struct GpuNodePoolReconciler::Metrics {
  explicit Metrics(prometheus::Registry& registry)
      : actions(prometheus::BuildCounter()
                    .Name("gpu_autoscaler_node_pool_scale_actions_total")
                    .Help("GPUNodePool actions by pool, action (ScaleUp, Cordon, Evict, "
                          "Terminate, CapacityError) and tier")
                    .Register(registry)),
        pending(prometheus::BuildGauge()
                    .Name("gpu_autoscaler_node_pool_pending_gpu_pods")
                    .Help("Unschedulable GPU pods a GPUNodePool could serve")
                    .Register(registry)),
        nodes(prometheus::BuildGauge()
                  .Name("gpu_autoscaler_node_pool_nodes")
                  .Help("Nodes of a GPUNodePool by tier (registered in the cluster)")
                  .Register(registry)),
        desired(prometheus::BuildGauge()
                    .Name("gpu_autoscaler_node_pool_desired_nodes")
                    .Help("Nodes a GPUNodePool asked its provider for, by tier")
                    .Register(registry)),
        interruptions(prometheus::BuildCounter()
                          .Name("gpu_autoscaler_node_pool_interruption_replacements_total")
                          .Help("Interruption notices a GPUNodePool answered by ordering "
                                "replacement capacity, by pool and the interrupted node's tier")
                          .Register(registry)),
        provider_errors(prometheus::BuildCounter()
                            .Name("gpu_autoscaler_node_pool_provider_errors_total")
                            .Help("GPUNodePool passes that met a provider error, by pool and "
                                  "reason (the ProviderError condition's reason)")
                            .Register(registry)),
        forecast(prometheus::BuildGauge()
                     .Name("gpu_autoscaler_node_pool_forecast_gpus")
                     .Help("Peak GPU demand a GPUNodePool's forecast expects over its horizon "
                           "(spec.predictive; absent while it does not predict)")
                     .Register(registry)),
        floor(prometheus::BuildGauge()
                  .Name("gpu_autoscaler_node_pool_predictive_floor_nodes")
                  .Help("Nodes a GPUNodePool keeps ready or launching for its forecast "
                        "(0 while it does not predict)")
                  .Register(registry)),
        unservable(prometheus::BuildGauge()
                       .Name("gpu_autoscaler_node_pool_unservable_pending_gpu_pods")
                       .Help("Unschedulable GPU pods that no GPUNodePool can serve (no "
                             "instance type holds their GPU request and model)")
                       .Register(registry)
                       .Add({})) {}
  prometheus::Family<prometheus::Counter>& actions;
  prometheus::Family<prometheus::Gauge>& pending;
  prometheus::Family<prometheus::Gauge>& nodes;
  prometheus::Family<prometheus::Gauge>& desired;
  prometheus::Family<prometheus::Counter>& interruptions;
  prometheus::Family<prometheus::Counter>& provider_errors;
  prometheus::Family<prometheus::Gauge>& forecast;
  prometheus::Family<prometheus::Gauge>& floor;
  prometheus::Gauge& unservable;
};

struct GpuNodePoolReconciler::PoolState {
  PoolState(Clock::Duration batch_idle, Clock::Duration batch_max)
      : memory(batch_idle, batch_max) {}
  autoscale::PoolMemory memory;  // what the decision carries between passes
  bool restored = false;         // memory seeded from the pool's status (after a restart)
  std::shared_ptr<cloud::NodeGroupProvider> provider;
  std::string provider_pool_shape;  // the spec the provider was built from (simulated groups)
  // Actions taken whose status write failed (a conflict with a stale cached
  // object): carried into the next write, so a Terminate is never forgotten.
  std::vector<nlohmann::json> unwritten_actions;
  // Ids of Terminate entries this process wrote: the informers may still show
  // the Node and the pool from before the write for a pass.
  std::deque<std::string> recorded_terminations;
  PoolPredictor predictor;  // spec.predictive: the demand history and the floor
};

GpuNodePoolReconciler::GpuNodePoolReconciler(
    const kube::Store<kube::GenericObject>& pools, const kube::Store<kube::NodeView>& nodes,
    const kube::Store<kube::PodView>& pods, const kube::Store<kube::GenericObject>* budgets,
    kube::RestClient& client, Clock& clock, kube::EventRecorder* recorder,
    prometheus::Registry& registry, GpuNodePoolOptions options)
    : pools_(pools),
      nodes_(nodes),
      pods_(pods),
      budgets_(budgets),
      client_(client),
      clock_(clock),
      recorder_(recorder),
      options_(std::move(options)),
      metrics_(std::make_unique<Metrics>(registry)) {}

GpuNodePoolReconciler::~GpuNodePoolReconciler() = default;

GpuNodePoolReconciler::PoolState& GpuNodePoolReconciler::State(const std::string& pool) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = states_[pool];
  if (!slot) {
    slot = std::make_unique<PoolState>(options_.batch_idle, options_.batch_max);
  }
  return *slot;
}

void GpuNodePoolReconciler::ReportUnservable(const std::map<std::string, std::string>& pods) {
  std::vector<std::pair<std::string, std::string>> news;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, reason] : pods) {
      auto it = reported_unservable_.find(key);
      if (it == reported_unservable_.end() || it->second != reason) news.emplace_back(key, reason);
    }
    // Every pool's pass sees the same pods: the set is replaced, not merged,
    // so a pod that became servable (or went away) is told again next time.
    reported_unservable_ = pods;
    metrics_->unservable.Set(static_cast<double>(pods.size()));
  }
  if (recorder_ == nullptr) return;
  for (const auto& [key, reason] : news) {
    const size_t slash = key.find('/');
    recorder_->Record({.api_version = "v1",
                       .kind = "Pod",
                       .ns = key.substr(0, slash),
                       .name = key.substr(slash + 1)},
                      kube::EventType::kWarning, "NoNodePool", reason);
  }
}

reconcile::RequestMapper GpuNodePoolReconciler::AllPools() const {
  return [this](const reconcile::ChangedObject&) {
    std::vector<reconcile::Request> out;
    for (const std::string& key : pools_.ListKeys())
      out.push_back({"", key});
    return out;
  };
}

// The pool's Nodes (matched to the groups' instances by spec.providerID), the
// pods on them, the pending GPU pods it serves, and the Budgets asking its
// pods' namespaces for a spot scale-down.
void GpuNodePoolReconciler::ObserveNodesAndPods(
    const std::string& pool_name, const ParsedNodePool& parsed,
    const cloud::NodeGroupProvider& provider,
    const std::map<std::string, int>& group_of_provider_id, autoscale::PoolSnapshot* snap,
    std::map<std::string, std::string>* unservable) const {
  for (const auto& node : nodes_.List()) {
    auto it = group_of_provider_id.find(std::string(node->provider_id()));
    if (it == group_of_provider_id.end()) continue;
    // Being terminated (an intent, gpu_node_pool_scale_down.h): no longer the pool's.
    if (node->annotation(kTerminationIntentAnnotation)) continue;
    auto id = provider.InstanceIdFromProviderId(node->provider_id());
    if (!id.ok()) continue;
    autoscale::NodeObservation n{.name = std::string(node->name()),
                                 .group = it->second,
                                 .instance_id = *id,
                                 .ready = node->ready() == kube::ConditionStatus::kTrue};
    for (const kube::Taint& taint : node->taints()) {
      n.disrupting = n.disrupting || taint.key.view() == api::kDisruptionTaint;
      n.interrupted = n.interrupted || taint.key.view() == api::kInterruptionTaintKey;
    }
    n.do_not_disrupt = node->annotation(api::kDoNotDisruptAnnotation) == api::kTrue;
    if (auto notice = node->annotation(api::kInterruptionNoticeAnnotation)) {
      n.interrupted = true;
      n.interruption_notice = std::string(*notice);
    }
    snap->nodes.push_back(std::move(n));
  }
  std::set<std::string> pool_node_names;
  for (const autoscale::NodeObservation& n : snap->nodes)
    pool_node_names.insert(n.name);

  std::vector<std::pair<std::string, ParsedNodePool>> all_pools;
  for (const auto& p : pools_.List()) {
    if (std::string(p->name()) == pool_name) {
      all_pools.emplace_back(pool_name, parsed);
      continue;
    }
    auto other = p->Parse();
    if (!other.ok()) continue;
    ParsedNodePool op = ParseNodePool(*other, options_.secret_namespace);
    if (op.problems.empty()) all_pools.emplace_back(std::string(p->name()), std::move(op));
  }
  std::sort(all_pools.begin(), all_pools.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::string, const ParsedNodePool*>> pool_refs;
  for (const auto& [name, p] : all_pools)
    pool_refs.emplace_back(name, &p);

  std::set<std::string> namespaces;
  for (const auto& pod : pods_.List()) {
    if (Terminal(*pod)) continue;
    const std::string node(pod->node_name());
    if (!node.empty()) {
      if (pool_node_names.count(node) == 0 || IsDaemonSetPod(*pod)) continue;
      namespaces.insert(std::string(pod->ns()));
      autoscale::PodObservation p{.key = Key(*pod), .node = node, .demand = PoolDemandOf(*pod)};
      p.do_not_disrupt = pod->annotation(api::kDoNotDisruptAnnotation) == api::kTrue;
      p.terminating = pod->terminating();
      if (auto pin = pod->annotation(api::kGpuIndicesAnnotation)) {
        if (auto gpus = scheduler::ParseGpuIndices(*pin); gpus.ok()) p.gpus = std::move(*gpus);
      }
      snap->pods.push_back(std::move(p));
      continue;
    }
    if (!WaitsForCapacity(*pod)) continue;
    auto planner_pod = PoolDemandOf(*pod);
    if (!planner_pod) continue;
    const PoolChoice choice = ChoosePoolForPod(*pod, pool_refs);
    if (choice.pool.empty() && unservable != nullptr) unservable->emplace(Key(*pod), choice.reason);
    if (choice.pool != pool_name) continue;
    // Only the instance types that can serve the pod may be launched for it.
    if (planner_pod->gpu_models.empty()) {
      std::set<std::string> models;
      for (int i : ServingInstanceTypes(*pod, pool_name, parsed))
        models.insert(parsed.spec.instance_types[i].gpu_model);
      planner_pod->gpu_models.assign(models.begin(), models.end());
    }
    snap->pending.push_back({Key(*pod), std::move(*planner_pod)});
    namespaces.insert(std::string(pod->ns()));
  }

  // Budgets asking scaleDownSpot in this pool's scope.
  std::vector<json> budget_objects;
  if (budgets_ != nullptr) {
    for (const auto& b : budgets_->List()) {
      auto parsed_budget = b->Parse();
      if (parsed_budget.ok()) budget_objects.push_back(std::move(*parsed_budget));
    }
  }
  cost::NamespaceLabelIndex namespace_labels;
  if (options_.cluster_budgets != nullptr) {
    for (const auto& b : options_.cluster_budgets->List()) {
      auto parsed_budget = b->Parse();
      if (parsed_budget.ok()) budget_objects.push_back(std::move(*parsed_budget));
    }
    if (options_.namespaces != nullptr) namespace_labels = NamespaceLabelsOf(*options_.namespaces);
  }
  snap->spot_scale_down_budgets = BudgetsAskingSpotScaleDown(
      budget_objects, std::vector<std::string>(namespaces.begin(), namespaces.end()),
      namespace_labels);
}

reconcile::ReconcileResult GpuNodePoolReconciler::Reconcile(const reconcile::Request& request,
                                                            std::stop_token) {
  auto cached = pools_.Get("", request.name);
  if (cached == nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    states_.erase(request.name);
    return reconcile::Done{};
  }
  auto object = cached->Parse();
  if (!object.ok()) return reconcile::TerminalError{object.error().ToString()};
  const ParsedNodePool parsed = ParseNodePool(*object, options_.secret_namespace);
  const autoscale::NodePoolSpec& spec = parsed.spec;
  PoolState& st = State(request.name);
  const Clock::TimePoint now = clock_.Now();
  const Clock::WallTime wall = clock_.WallNow();
  const int64_t now_unix =
      std::chrono::duration_cast<std::chrono::seconds>(wall.time_since_epoch()).count();
  const int64_t generation = cached->generation();
  const kube::EventObject event_object = kube::EventObject::Of(*object);

  const json old_status = object->value("status", json::object());
  json status = old_status.is_object() ? old_status : json::object();
  status["observedGeneration"] = generation;
  if (!st.restored) {
    RestorePoolMemory(old_status, now, wall, &st.memory);
    st.restored = true;
  }
  json actions = status.value("recentActions", json::array());
  if (!actions.is_array()) actions = json::array();
  // Actions of earlier reconciles that never reached the status, newest first.
  std::vector<json> taken = std::move(st.unwritten_actions);
  st.unwritten_actions.clear();
  for (auto it = taken.rbegin(); it != taken.rend(); ++it)
    actions.insert(actions.begin(), *it);
  auto set_condition = [&](std::string_view type, bool value, std::string reason,
                           std::string message) {
    if (type == kProviderError && value)
      metrics_->provider_errors.Add({{"pool", request.name}, {"reason", reason}}).Increment();
    (void)kube::SetCondition(&status["conditions"],
                             {.type = std::string(type),
                              .status = value ? "True" : "False",
                              .reason = std::move(reason),
                              .message = std::move(message),
                              .observed_generation = generation},
                             wall);
  };
  auto record = [&](std::string action, CapacityTier tier, int count, std::string message,
                    bool warning = false, std::string id = "") {
    json entry = {{"time", kube::FormatTime(wall)},
                  {"action", action},
                  {"tier", std::string(autoscale::TierKey(tier))},
                  {"count", count},
                  {"message", message}};
    if (!id.empty()) entry["id"] = std::move(id);
    actions.insert(actions.begin(), entry);
    taken.insert(taken.begin(), std::move(entry));
    metrics_->actions
        .Add({{"pool", request.name},
              {"action", action},
              {"tier", std::string(autoscale::TierKey(tier))}})
        .Increment(count);
    if (recorder_ != nullptr) {
      recorder_->Record(event_object,
                        warning ? kube::EventType::kWarning : kube::EventType::kNormal, action,
                        message);
    }
  };
  // Terminations whose Node goes once the status holds their record.
  std::vector<TerminationIntent> terminated;
  auto delete_terminated_nodes = [&]() -> Status {
    for (const TerminationIntent& t : terminated)
      GPU_RETURN_IF_ERROR(DeleteTerminatedNode(client_, t));
    return Status::Ok();
  };
  // Writes the status when it changed, with Events for condition changes.
  auto finish = [&](reconcile::ReconcileResult result) -> reconcile::ReconcileResult {
    while (static_cast<int>(actions.size()) > options_.recent_actions)
      actions.erase(actions.end() - 1);
    status["recentActions"] = actions;
    if (status == old_status) {
      if (Status s = delete_terminated_nodes(); !s.ok())
        return reconcile::TransientError{"deleting terminated nodes: " + s.ToString()};
      return result;
    }
    const json before = old_status.value("conditions", json::array());
    json body = *object;
    body["status"] = status;
    auto written = client_.Replace(
        kube::ObjectRef{api::kGpuNodePools, "", request.name}.WithSub("status"), body);
    if (!written.ok()) {
      if (kube::IsNotFound(written.error())) return reconcile::Done{};
      st.unwritten_actions = std::move(taken);
      return reconcile::TransientError{"writing status: " + written.error().ToString()};
    }
    for (const TerminationIntent& t : terminated) {
      st.recorded_terminations.push_back(t.id);
      if (st.recorded_terminations.size() > 64) st.recorded_terminations.pop_front();
    }
    // Crash point: the status holds the Terminate records, the Nodes still
    // carry their intents; a restart deletes them without a second record.
    Status recorded = terminated.empty()
                          ? Status::Ok()
                          : failpoint::Evaluate("gpunodepool.scale_down.after_record");
    if (recorded.ok()) recorded = delete_terminated_nodes();
    if (!recorded.ok())
      return reconcile::TransientError{"deleting terminated nodes: " + recorded.ToString()};
    if (recorder_ != nullptr) {
      for (std::string_view type : {kReady, kProviderError, kAtLimit}) {
        auto was = kube::FindCondition(before, type);
        auto is = kube::FindCondition(status["conditions"], type);
        if (!is || (was && was->status == is->status && was->reason == is->reason)) continue;
        const bool bad = (type == kReady) == (is->status == "False");
        if (!was && !bad) continue;
        recorder_->Record(event_object, bad ? kube::EventType::kWarning : kube::EventType::kNormal,
                          is->reason, is->message);
      }
    }
    return result;
  };

  // 1. The spec.
  if (!parsed.problems.empty()) {
    set_condition(kReady, false, "InvalidSpec", Join(parsed.problems));
    kube::RemoveCondition(&status["conditions"], kScalingUp);
    return finish(reconcile::RequeueAfter{options_.resync});
  }

  // 2. Credentials and the provider (rebuilt when the pool's shape changes).
  std::optional<SecretData> secret;
  if (!parsed.provider.secret_name.empty()) {
    auto read =
        SecretData::Read(client_, parsed.provider.secret_namespace, parsed.provider.secret_name);
    if (!read.ok()) {
      const bool missing = read.error().code() == StatusCode::kNotFound;
      set_condition(kProviderError, true, missing ? "MissingCredentials" : "CredentialsUnreadable",
                    "credentials Secret " + parsed.provider.secret_namespace + "/" +
                        parsed.provider.secret_name + ": " + read.error().message());
      set_condition(kReady, false, missing ? "MissingCredentials" : "CredentialsUnreadable",
                    "the provider cannot be reached without its credentials");
      return finish(reconcile::RequeueAfter{options_.resync});
    }
    secret = std::move(*read);
  }
  // Rebuilt when what the provider is made of changes (not on a limit or
  // scale-down edit: the simulated cloud's instances live in the provider).
  const json& spec_json = (*object)["spec"];
  const std::string shape = spec_json.value("provider", json()).dump() +
                            spec_json.value("instanceTypes", json()).dump() +
                            std::to_string(spec.max_nodes);
  if (!st.provider || st.provider_pool_shape != shape) {
    auto built = options_.build_provider(
        parsed, {.client = &client_, .clock = &clock_, .secret = secret ? &*secret : nullptr});
    if (!built.ok()) {
      set_condition(kProviderError, true, "ProviderUnavailable", built.error().message());
      set_condition(kReady, false, "ProviderUnavailable", built.error().message());
      return finish(reconcile::RequeueAfter{options_.resync});
    }
    st.provider = std::move(*built);
    st.provider_pool_shape = shape;
  }
  cloud::NodeGroupProvider& provider = *st.provider;

  // 3. Observe: the groups, which Node is which instance, the pods.
  autoscale::PoolSnapshot snap{.pool = &spec, .now = now, .now_unix = now_unix};
  std::map<std::string, int> group_of_provider_id;
  for (size_t i = 0; i < spec.instance_types.size(); ++i) {
    for (int t = 0; t < autoscale::kTierCount; ++t) {
      const auto tier = static_cast<CapacityTier>(t);
      const std::string& group = parsed.provider.Group(static_cast<int>(i), tier);
      if (group.empty()) continue;
      auto described = provider.Describe(group);
      if (!described.ok()) {
        const cloud::ProviderErrorKind kind = cloud::ClassifyProviderError(described.error());
        set_condition(kProviderError, true, std::string(cloud::ProviderErrorKindName(kind)),
                      "describing group " + group + ": " + described.error().message());
        set_condition(kReady, false, "ProviderError", "the provider's groups cannot be read");
        return finish(reconcile::RequeueAfter{options_.resync});
      }
      autoscale::GroupObservation g{.instance_type = static_cast<int>(i),
                                    .tier = tier,
                                    .group = group,
                                    .desired = described->desired};
      for (const cloud::Instance& inst : described->instances) {
        if (InstanceShuttingDown(inst)) continue;  // terminated: not capacity any more
        g.instance_ids.push_back(inst.id);
        group_of_provider_id[inst.provider_id] = static_cast<int>(snap.groups.size());
      }
      // Asked for more than it has: did the cloud fail to find the capacity
      // after taking the new size (AWS reports it in scaling activities)?
      if (described->desired > static_cast<int>(described->instances.size())) {
        const Status failed = provider.LaunchFailure(group);
        const auto kind = cloud::ClassifyProviderError(failed);
        if (kind == cloud::ProviderErrorKind::kInsufficientCapacity ||
            kind == cloud::ProviderErrorKind::kQuotaExceeded) {
          g.launch_shortage = failed.message();
        }
      }
      snap.groups.push_back(std::move(g));
    }
  }
  set_condition(kProviderError, false, "None", "the provider answers");

  // Terminations (gpu_node_pool_scale_down.h): steps 2 and 3 of an intent,
  // for the ones a killed run left behind and for this pass's new ones.
  auto carry_out = [&](const TerminationIntent& intent) {
    auto g = std::find_if(snap.groups.begin(), snap.groups.end(),
                          [&](const auto& o) { return o.group == intent.group; });
    const bool known = g != snap.groups.end();
    const bool listed = known && std::find(g->instance_ids.begin(), g->instance_ids.end(),
                                           intent.instance_id) != g->instance_ids.end();
    const TerminationSteps steps = DecideTermination(
        intent,
        {.group_known = known,
         .instance_listed = listed,
         .group_desired = known ? g->desired : 0,
         .recorded = ActionRecorded(actions, intent.id) ||
                     std::find(st.recorded_terminations.begin(), st.recorded_terminations.end(),
                               intent.id) != st.recorded_terminations.end()});
    if (!known) {
      reconcile::Log(reconcile::LogLevel::kWarn, "termination intent for a group the pool lacks",
                     {{"pool", request.name}, {"node", intent.node}, {"group", intent.group}});
      return;
    }
    // Going either way: not the pool's capacity in this pass's plan.
    std::erase_if(g->instance_ids, [&](const std::string& id) { return id == intent.instance_id; });
    if (steps.call_provider) {
      Status s = provider.TerminateInstances(g->group, {intent.instance_id},
                                             /*decrement_desired=*/true);
      // Gone meanwhile (not a member any more): nothing left to terminate.
      if (!s.ok() && cloud::ClassifyProviderError(s) == cloud::ProviderErrorKind::kNotFound)
        s = Status::Ok();
      // Crash point: the instance is going, nothing records it yet.
      if (s.ok()) s = failpoint::Evaluate("gpunodepool.scale_down.after_terminate");
      if (!s.ok()) {
        set_condition(kProviderError, true,
                      std::string(cloud::ProviderErrorKindName(cloud::ClassifyProviderError(s))),
                      "terminating " + intent.instance_id + ": " + s.message());
        return;  // the intent stays; the next pass tries again
      }
      g->desired = std::max(0, g->desired - 1);
    }
    if (steps.record)
      record("Terminate", intent.tier, 1, TerminationMessage(intent), false, intent.id);
    if (steps.delete_node) terminated.push_back(intent);
  };
  for (const TerminationIntent& intent : FindTerminationIntents(nodes_, request.name))
    carry_out(intent);

  std::map<std::string, std::string> unservable;
  ObserveNodesAndPods(request.name, parsed, provider, group_of_provider_id, &snap, &unservable);
  ReportUnservable(unservable);
  metrics_->pending.Add({{"pool", request.name}}).Set(static_cast<double>(snap.pending.size()));

  // Predictive scaling: record the demand, keep the forecast's floor.
  const PredictivePass predicted =
      st.predictor.Pass(client_,
                        {.ns = options_.secret_namespace,
                         .pool = request.name,
                         .uid = object->value("metadata", json::object()).value("uid", "")},
                        parsed.predictive, spec, generation, PoolDemandGpus(snap), now_unix, wall);
  snap.floor_nodes = predicted.floor_nodes;
  metrics_->floor.Add({{"pool", request.name}}).Set(predicted.floor_nodes);
  if (predicted.predicting) {
    metrics_->forecast.Add({{"pool", request.name}}).Set(predicted.floor.forecast_gpus);
  } else if (metrics_->forecast.Has({{"pool", request.name}})) {
    metrics_->forecast.Remove(&metrics_->forecast.Add({{"pool", request.name}}));
  }
  set_condition(kPredicting, predicted.predicting, predicted.reason, predicted.message);
  if (predicted.status.is_null()) {
    status.erase("predictive");
  } else {
    status["predictive"] = predicted.status;
  }
  if (predicted.warning && recorder_ != nullptr) {
    recorder_->Record(event_object, kube::EventType::kWarning, "DemandHistoryReset",
                      *predicted.warning);
  }

  // 4. Decide.
  const autoscale::DecideOptions decide_options{.resync = options_.resync,
                                                .active = options_.active};
  auto decided = autoscale::DecidePool(snap, &st.memory, decide_options);
  if (!decided.ok()) return reconcile::TransientError{"planning: " + decided.error().ToString()};
  const autoscale::PoolPlan& plan = *decided;
  // With the Interruption entries below, in whichever status write comes first.
  if (st.memory.interrupted.empty()) {
    status.erase("answeredInterruptions");
  } else {
    status["answeredInterruptions"] = AnsweredInterruptionsJson(st.memory);
  }
  auto type_name = [&](int group) -> const std::string& {
    return spec.instance_types[snap.groups[group].instance_type].name;
  };
  auto offering_text = [&](int group) {
    return type_name(group) + " " + std::string(autoscale::TierKey(snap.groups[group].tier));
  };

  // 5. Apply. Shortages found after a resize: stop asking for what the cloud
  // does not have.
  for (const autoscale::GroupShortage& s : plan.shortages) {
    const Status shrunk = provider.SetDesiredSize(snap.groups[s.group].group, s.shrink_to);
    if (shrunk.ok()) snap.groups[s.group].desired = s.shrink_to;
    record("CapacityError", snap.groups[s.group].tier, 1,
           offering_text(s.group) + " unavailable for 3m: " + s.message, /*warning=*/true);
  }
  for (const autoscale::InterruptionReplacement& r : plan.interruptions) {
    metrics_->interruptions
        .Add({{"pool", request.name}, {"tier", std::string(autoscale::TierKey(r.tier))}})
        .Increment();
    char gpus[32];
    std::snprintf(gpus, sizeof(gpus), "%.2f", r.gpus);
    record("Interruption", r.tier, 1,
           "node " + r.node + " (" + offering_text(r.group) + ") will be reclaimed" +
               (r.notice.empty() ? "" : " (" + r.notice + ")") + ": " + offering_text(r.group) +
               " unavailable for 3m; replacing capacity for " + std::to_string(r.pods) +
               " GPU pods (" + gpus + " GPUs)",
           /*warning=*/true);
  }

  // Scale-up: a capacity error marks the offering unavailable and the plan
  // is redone at once, so spot falls back to on-demand.
  bool scaled_up = false;
  const int waiting_pods = plan.pending + plan.replacing;
  std::vector<autoscale::GroupIncrease> increases = plan.increases;
  for (int attempt = 0; !increases.empty() && attempt < 3; ++attempt) {
    bool capacity_error = false;
    for (const autoscale::GroupIncrease& inc : increases) {
      autoscale::GroupObservation& g = snap.groups[inc.group];
      Status s = provider.SetDesiredSize(g.group, g.desired + inc.count);
      // Crash point (docs/reliability.md): the cloud took the new size, the
      // status does not say so yet; a restart must read it back, not resize again.
      if (s.ok()) s = failpoint::Evaluate("gpunodepool.scale_up.after_resize");
      if (s.ok()) {
        g.desired += inc.count;
        scaled_up = true;
        record("ScaleUp", g.tier, inc.count,
               "+" + std::to_string(inc.count) + " " + type_name(inc.group) + " in group " +
                   g.group + " for " + std::to_string(waiting_pods) + " pending GPU pods" +
                   (attempt == 0 && plan.floor_added > 0
                        ? " and the forecast (" + std::to_string(plan.floor_added) +
                              " nodes ahead of demand)"
                        : ""));
        continue;
      }
      const cloud::ProviderErrorKind kind = cloud::ClassifyProviderError(s);
      if (kind == cloud::ProviderErrorKind::kInsufficientCapacity) {
        st.memory.unavailable.Mark(type_name(inc.group), g.tier, now);
        capacity_error = true;
        record("CapacityError", g.tier, inc.count,
               offering_text(inc.group) + " unavailable for 3m: " + s.message(),
               /*warning=*/true);
      } else {
        set_condition(kProviderError, true, std::string(cloud::ProviderErrorKindName(kind)),
                      "resizing group " + g.group + ": " + s.message());
      }
    }
    if (!capacity_error || attempt == 2) break;
    auto again = autoscale::DecideScaleUp(snap, st.memory);  // without the unavailable offering
    if (!again.ok()) return reconcile::TransientError{"planning: " + again.error().ToString()};
    increases = autoscale::IncreasesOnGroups(snap, *again);
  }
  autoscale::ScaleUpLimit limit = plan.limit;
  if (scaled_up && plan.floor_added > 0 && recorder_ != nullptr) {
    recorder_->Record(event_object, kube::EventType::kNormal, "PreProvision",
                      "+" + std::to_string(plan.floor_added) +
                          " nodes ahead of demand, to the predictive floor of " +
                          std::to_string(snap.floor_nodes) + " nodes: " + predicted.message);
  }

  // Drains, then the new cordons.
  for (const autoscale::PodEviction& e : plan.evictions) {
    const size_t slash = e.key.find('/');
    auto evicted = client_.Evict(e.key.substr(0, slash), e.key.substr(slash + 1));
    if (evicted.ok()) {
      record("Evict", e.tier, 1, "evicted " + e.key + " from " + e.node);
    } else if (kube::IsNotFound(evicted.error())) {
      reconcile::Log(
          reconcile::LogLevel::kInfo, "pod to evict is gone",
          {{"pool", request.name}, {"pod", e.key}, {"error", evicted.error().ToString()}});
    } else {
      // 429: a PodDisruptionBudget says not now; retried on the next pass.
      record("EvictBlocked", e.tier, 1, "evicting " + e.key + ": " + evicted.error().ToString(),
             true);
    }
  }
  for (const autoscale::InstanceTermination& t : plan.terminations) {
    TerminationIntent intent{.pool = request.name,
                             .group = snap.groups[t.group].group,
                             .instance_id = t.instance_id,
                             .node = t.node,
                             .tier = t.tier,
                             .interrupted = t.interrupted,
                             .desired_before = snap.groups[t.group].desired};
    // Step 1, durable before anything irreversible; a conflict: decided again next pass.
    Status written = WriteTerminationIntent(client_, &intent);
    // Crash point: the intent is on the Node, the instance still runs.
    if (written.ok()) written = failpoint::Evaluate("gpunodepool.scale_down.after_intent");
    if (!written.ok()) {
      reconcile::Log(reconcile::LogLevel::kInfo, "termination intent not written",
                     {{"pool", request.name}, {"node", t.node}, {"error", written.ToString()}});
      continue;
    }
    carry_out(intent);
  }
  int draining = plan.draining;
  for (const autoscale::NodeCordon& c : plan.cordons) {
    auto node = client_.Get({kube::resources::kNodes, "", c.node});
    if (!node.ok()) continue;
    json& nspec = (*node)["spec"];
    nspec["unschedulable"] = true;
    if (!nspec.contains("taints") || !nspec["taints"].is_array()) nspec["taints"] = json::array();
    nspec["taints"].push_back({{"key", std::string(api::kDisruptionTaint)},
                               {"value", std::string(autoscale::DisruptionReasonName(c.reason))},
                               {"effect", "NoSchedule"}});
    auto cordoned = client_.Replace({kube::resources::kNodes, "", c.node}, *node);
    if (!cordoned.ok()) continue;  // a conflict: the next pass decides again
    ++draining;
    record("Cordon", c.tier, 1, "cordoned " + c.node + ": " + c.why);
  }

  // 6. Status.
  // A terminated node stays registered until its Node goes: count it as before.
  const autoscale::PoolTotals totals = autoscale::TotalsOf(snap);
  json tiers = json::object();
  for (int t = 0; t < autoscale::kTierCount; ++t) {
    if (!spec.tiers[t].enabled) continue;
    const auto tier = static_cast<CapacityTier>(t);
    tiers[std::string(autoscale::TierKey(tier))] = {{"nodes", totals.nodes[t]},
                                                    {"desired", totals.desired[t]},
                                                    {"group", Join(totals.groups[t], ",")}};
    metrics_->nodes.Add({{"pool", request.name}, {"tier", std::string(autoscale::TierKey(tier))}})
        .Set(totals.nodes[t]);
    metrics_->desired.Add({{"pool", request.name}, {"tier", std::string(autoscale::TierKey(tier))}})
        .Set(totals.desired[t]);
    // Exported at 0 before the first notice, so rate() and alerts see the first one.
    metrics_->interruptions.Add(
        {{"pool", request.name}, {"tier", std::string(autoscale::TierKey(tier))}});
  }
  status["nodes"] = totals.registered;
  status["desired"] = totals.desired_total;
  status["tiers"] = tiers;
  status["pendingGPUPods"] = static_cast<int64_t>(plan.pending);
  status["hourlyCost"] = std::round(totals.hourly * 1e4) / 1e4;
  status["unavailableOfferings"] = UnavailableOfferingsJson(st.memory, now, wall);

  for (const PoolCondition& c : DecideScaleConditions({.scaled_up = scaled_up,
                                .launching = plan.launching,
                                .registered = totals.registered,
                                .desired = totals.desired_total,
                                .max_nodes = spec.max_nodes,
                                .pending = plan.pending,
                                .limit = limit})) {
    set_condition(c.type, c.status, c.reason, c.message);
  }
  if (!kube::IsConditionTrue(status["conditions"], kProviderError)) {
    set_condition(kReady, true, "Reconciled",
                  std::to_string(totals.registered) + " nodes, " +
                      std::to_string(totals.desired_total) + " desired");
  }
  return finish(reconcile::RequeueAfter{
      autoscale::RequeueAfter(plan, scaled_up, draining, now, decide_options)});
}

}  // namespace gpu_autoscaler::controllers
