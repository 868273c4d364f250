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
#include "common/json_read.h"
#include "controllers/gpu_node_pool_internal.h"
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

using node_pool::kScaleDownSpotRequested;

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
  // Preempting: a scheduler is freeing room for it on that node (Karpenter's
  // IsPreempting); new capacity would come too late and stay empty.
  if (!pod.nominated_node_name().empty()) return false;
  for (const kube::Condition& c : pod.conditions()) {
    if (c.type.view() != "PodScheduled") continue;
    return c.status == kube::ConditionStatus::kFalse && c.reason.view() != "SchedulingGated";
  }
  return false;
}

std::vector<std::string> BudgetsAskingSpotScaleDown(
    const std::vector<json>& budgets, const std::vector<std::string>& namespaces,
    const cost::NamespaceLabelIndex& namespace_labels) {
  std::vector<std::string> out;
  for (const json& b : budgets) {
    const json& conditions = json_read::Array(json_read::Object(b, "status"), "conditions");
    if (!kube::IsConditionTrue(conditions, kScaleDownSpotRequested)) continue;
    const json& meta = json_read::Object(b, "metadata");
    const std::string own_ns = json_read::String(meta, "namespace");
    const std::string name = json_read::String(meta, "name");
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

GpuNodePoolReconciler::Metrics::Metrics(prometheus::Registry& registry)
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
      // A DaemonSet's pod or a static pod goes with its node: it neither
      // keeps the node from being empty nor needs a place elsewhere.
      if (pool_node_names.count(node) == 0 || pod->belongs_to_node()) continue;
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
  return Pass(*this, request.name, std::move(*object), cached->generation()).Run();
}

}  // namespace gpu_autoscaler::controllers
