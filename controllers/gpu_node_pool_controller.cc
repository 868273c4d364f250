#include "controllers/gpu_node_pool_controller.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "api/annotations.h"
#include "api/nvidia.h"
#include "api/resources.h"
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

namespace {

std::string Join(const std::vector<std::string>& parts, std::string_view sep = "; ") {
  std::string out;
  for (const std::string& p : parts)
    out += (out.empty() ? "" : std::string(sep)) + p;
  return out;
}

}  // namespace

std::vector<std::string> BudgetsAskingSpotScaleDown(const std::vector<json>& budgets,
                                                    const std::vector<std::string>& namespaces) {
  std::vector<std::string> out;
  for (const json& b : budgets) {
    const json conditions = b.value("status", json::object()).value("conditions", json::array());
    if (!kube::IsConditionTrue(conditions, kScaleDownSpotRequested)) continue;
    const json scope = b.value("spec", json::object()).value("scope", json::object());
    const json listed = scope.value("namespaces", json::array());
    bool covers = !listed.is_array() || listed.empty();
    for (size_t i = 0; !covers && i < listed.size(); ++i) {
      covers = listed[i].is_string() && std::find(namespaces.begin(), namespaces.end(),
                                                  listed[i].get<std::string>()) != namespaces.end();
    }
    if (!covers) continue;
    const json meta = b.value("metadata", json::object());
    out.push_back(meta.value("namespace", "") + "/" + meta.value("name", ""));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string PoolForPod(const kube::PodView& pod,
                       const std::vector<std::pair<std::string, const ParsedNodePool*>>& pools) {
  if (auto named = kube::FindLabel(pod.node_selector(), api::kNodePoolLabel)) {
    for (const auto& [name, pool] : pools)
      if (name == *named) return name;
    return "";
  }
  auto model = kube::FindLabel(pod.node_selector(), api::kGpuProductLabel);
  for (const auto& [name, pool] : pools) {
    if (!model) return name;
    for (const autoscale::PoolInstanceType& it : pool->spec.instance_types)
      if (it.gpu_model == *model) return name;
  }
  return "";
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
                    .Register(registry)) {}
  prometheus::Family<prometheus::Counter>& actions;
  prometheus::Family<prometheus::Gauge>& pending;
  prometheus::Family<prometheus::Gauge>& nodes;
  prometheus::Family<prometheus::Gauge>& desired;
};

struct GpuNodePoolReconciler::PoolState {
  std::unique_ptr<autoscale::PendingBatcher> batcher;
  autoscale::UnavailableOfferings unavailable;
  std::shared_ptr<cloud::NodeGroupProvider> provider;
  PoolProviderSpec provider_spec;
  std::string provider_pool_shape;  // the spec the provider was built from (simulated groups)
  struct Change {
    std::string pods;  // sorted pod keys
    Clock::TimePoint at;
  };
  std::map<std::string, Change> changes;      // node -> when its pods last changed
  std::optional<Clock::TimePoint> last_plan;  // the last scale-up plan
  // Actions taken whose status write failed (a conflict with a stale cached
  // object): carried into the next write, so a Terminate is never forgotten.
  std::vector<nlohmann::json> unwritten_actions;
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
    slot = std::make_unique<PoolState>();
    slot->batcher =
        std::make_unique<autoscale::PendingBatcher>(options_.batch_idle, options_.batch_max);
  }
  return *slot;
}

reconcile::RequestMapper GpuNodePoolReconciler::AllPools() const {
  return [this](const reconcile::ChangedObject&) {
    std::vector<reconcile::Request> out;
    for (const std::string& key : pools_.ListKeys())
      out.push_back({"", key});
    return out;
  };
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
  json actions = status.value("recentActions", json::array());
  if (!actions.is_array()) actions = json::array();
  // Actions of earlier reconciles that never reached the status, newest first.
  std::vector<json> taken = std::move(st.unwritten_actions);
  st.unwritten_actions.clear();
  for (auto it = taken.rbegin(); it != taken.rend(); ++it)
    actions.insert(actions.begin(), *it);
  auto set_condition = [&](std::string_view type, bool value, std::string reason,
                           std::string message) {
    (void)kube::SetCondition(&status["conditions"],
                             {.type = std::string(type),
                              .status = value ? "True" : "False",
                              .reason = std::move(reason),
                              .message = std::move(message),
                              .observed_generation = generation},
                             wall);
  };
  auto record = [&](std::string action, CapacityTier tier, int count, std::string message,
                    bool warning = false) {
    json entry = {{"time", kube::FormatTime(wall)},
                  {"action", action},
                  {"tier", std::string(autoscale::TierKey(tier))},
                  {"count", count},
                  {"message", message}};
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
  // Writes the status when it changed, with Events for condition changes.
  auto finish = [&](reconcile::ReconcileResult result) -> reconcile::ReconcileResult {
    while (static_cast<int>(actions.size()) > options_.recent_actions)
      actions.erase(actions.end() - 1);
    status["recentActions"] = actions;
    if (status == old_status) return result;
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

  // 3. The groups, and which Node is which instance.
  struct Offering {
    int instance_type;
    CapacityTier tier;
    std::string group;
    cloud::NodeGroup described;
  };
  std::vector<Offering> offerings;
  std::map<std::string, int> offering_of_provider_id;
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
      // Asked for more than it has: did the cloud fail to find the capacity
      // after taking the new size (AWS reports it in scaling activities)?
      if (described->desired > static_cast<int>(described->instances.size())) {
        const Status failed = provider.LaunchFailure(group);
        const auto kind = cloud::ClassifyProviderError(failed);
        if (kind == cloud::ProviderErrorKind::kInsufficientCapacity ||
            kind == cloud::ProviderErrorKind::kQuotaExceeded) {
          const std::string& it_name = spec.instance_types[i].name;
          st.unavailable.Mark(it_name, tier, now);
          // Stop asking the cloud for what it does not have; the plan below
          // falls back to the next offering.
          const int have = static_cast<int>(described->instances.size());
          const Status shrunk = provider.SetDesiredSize(group, have);
          if (shrunk.ok()) described->desired = have;
          record("CapacityError", tier, 1,
                 it_name + " " + std::string(autoscale::TierKey(tier)) +
                     " unavailable for 3m: " + failed.message(),
                 /*warning=*/true);
        }
      }
      offerings.push_back({static_cast<int>(i), tier, group, std::move(*described)});
      for (const cloud::Instance& inst : offerings.back().described.instances)
        offering_of_provider_id[inst.provider_id] = static_cast<int>(offerings.size()) - 1;
    }
  }
  set_condition(kProviderError, false, "None", "the provider answers");

  std::vector<autoscale::PoolNode> pool_nodes;
  std::map<std::string, std::pair<int, std::string>> node_instance;  // node -> (offering, id)
  std::set<std::string> registered_ids;
  for (const auto& node : nodes_.List()) {
    auto it = offering_of_provider_id.find(std::string(node->provider_id()));
    if (it == offering_of_provider_id.end()) continue;
    const Offering& o = offerings[it->second];
    auto id = provider.InstanceIdFromProviderId(node->provider_id());
    if (!id.ok()) continue;
    registered_ids.insert(std::string(node->provider_id()));
    autoscale::PoolNode n;
    n.name = std::string(node->name());
    n.instance_type = o.instance_type;
    n.tier = o.tier;
    n.ready = node->ready() == kube::ConditionStatus::kTrue;
    for (const kube::Taint& taint : node->taints())
      n.disrupting = n.disrupting || taint.key.view() == api::kDisruptionTaint;
    node_instance[n.name] = {it->second, *id};
    pool_nodes.push_back(std::move(n));
  }
  int launching = 0;
  for (const Offering& o : offerings) {
    for (const cloud::Instance& inst : o.described.instances) {
      if (registered_ids.count(inst.provider_id) > 0) continue;
      autoscale::PoolNode n;
      n.name = "launching/" + inst.id;
      n.instance_type = o.instance_type;
      n.tier = o.tier;
      n.launching = true;
      pool_nodes.push_back(std::move(n));
      ++launching;
    }
    // Asked for but not even an instance yet (a cloud still deciding).
    for (int k = static_cast<int>(o.described.instances.size()); k < o.described.desired; ++k) {
      autoscale::PoolNode n;
      n.name = "requested/" + o.group + "/" + std::to_string(k);
      n.instance_type = o.instance_type;
      n.tier = o.tier;
      n.launching = true;
      pool_nodes.push_back(std::move(n));
      ++launching;
    }
  }

  // 4. Pods: those on the pool's nodes, and the pending ones this pool serves.
  std::vector<std::pair<std::string, ParsedNodePool>> all_pools;
  for (const auto& p : pools_.List()) {
    if (std::string(p->name()) == request.name) {
      all_pools.emplace_back(request.name, parsed);
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

  std::vector<autoscale::PoolPod> bound;
  std::map<std::string, std::vector<std::shared_ptr<const kube::PodView>>> pods_on;
  std::vector<autoscale::PodSpec> pending;
  std::vector<std::string> pending_keys;
  std::set<std::string> namespaces;
  for (const auto& pod : pods_.List()) {
    if (Terminal(*pod)) continue;
    const std::string node(pod->node_name());
    if (!node.empty()) {
      if (node_instance.count(node) == 0 || IsDaemonSetPod(*pod)) continue;
      pods_on[node].push_back(pod);
      namespaces.insert(std::string(pod->ns()));
      auto planner_pod = PoolDemandOf(*pod);
      if (!planner_pod) continue;
      autoscale::PoolPod p;
      p.spec = std::move(*planner_pod);
      p.node = node;
      p.do_not_disrupt = pod->annotation(api::kDoNotDisruptAnnotation) == api::kTrue;
      if (auto pin = pod->annotation(api::kGpuIndicesAnnotation)) {
        if (auto gpus = scheduler::ParseGpuIndices(*pin); gpus.ok()) p.gpus = std::move(*gpus);
      }
      bound.push_back(std::move(p));
      continue;
    }
    if (pod->terminating() || pod->phase() != kube::PodPhase::kPending ||
        pod->condition("PodScheduled") != kube::ConditionStatus::kFalse) {
      continue;
    }
    auto planner_pod = PoolDemandOf(*pod);
    if (!planner_pod || PoolForPod(*pod, pool_refs) != request.name) continue;
    pending.push_back(std::move(*planner_pod));
    pending_keys.push_back(Key(*pod));
    namespaces.insert(std::string(pod->ns()));
  }
  metrics_->pending.Add({{"pool", request.name}}).Set(static_cast<double>(pending.size()));

  // When each node's pods last changed: consolidateAfter counts from there.
  std::map<std::string, size_t> index_of;  // registered nodes by name
  for (size_t i = 0; i < pool_nodes.size(); ++i) {
    autoscale::PoolNode& n = pool_nodes[i];
    if (n.launching) continue;
    index_of[n.name] = i;
    std::vector<std::string> keys;
    for (const auto& pod : pods_on[n.name])
      keys.push_back(Key(*pod));
    std::sort(keys.begin(), keys.end());
    const std::string fingerprint = Join(keys, ",");
    auto [it, fresh] = st.changes.try_emplace(n.name, PoolState::Change{fingerprint, now});
    if (!fresh && it->second.pods != fingerprint) it->second = {fingerprint, now};
    n.last_pod_change = it->second.at;
  }
  std::erase_if(st.changes, [&](const auto& kv) { return index_of.count(kv.first) == 0; });

  // Budgets asking scaleDownSpot in this pool's scope.
  std::vector<json> budget_objects;
  if (budgets_ != nullptr) {
    for (const auto& b : budgets_->List()) {
      auto parsed_budget = b->Parse();
      if (parsed_budget.ok()) budget_objects.push_back(std::move(*parsed_budget));
    }
  }
  const std::vector<std::string> spot_budgets = BudgetsAskingSpotScaleDown(
      budget_objects, std::vector<std::string>(namespaces.begin(), namespaces.end()));
  const bool spot_scale_down = !spot_budgets.empty();

  // 5. Scale-up, after the batching window.
  std::optional<Clock::TimePoint> wake;
  auto wake_at = [&](Clock::TimePoint t) {
    if (!wake || t < *wake) wake = t;
  };
  std::map<int, int> desired_now;  // offering -> desired after this pass
  for (size_t o = 0; o < offerings.size(); ++o)
    desired_now[static_cast<int>(o)] = offerings[o].described.desired;
  autoscale::ScaleUpLimit limit = autoscale::ScaleUpLimit::kNone;
  bool scaled_up = false;
  st.batcher->Observe(pending_keys, now);
  // Planned at the end of a batch, and again each resync while pods still
  // wait (a limit may have lifted, an offering come back).
  if (!pending.empty() &&
      (st.batcher->Due(now) || (st.last_plan && now - *st.last_plan >= options_.resync))) {
    st.last_plan = now;
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto plan = autoscale::PlanPoolScaleUp({.pool = &spec,
                                              .nodes = pool_nodes,
                                              .pods = bound,
                                              .pending = pending,
                                              .unavailable = &st.unavailable,
                                              .spot_scale_down = spot_scale_down,
                                              .now = now});
      if (!plan.ok()) return reconcile::TransientError{"planning: " + plan.error().ToString()};
      limit = plan->limit;
      bool capacity_error = false;
      for (const autoscale::TierIncrease& inc : plan->increases) {
        int o = -1;
        for (size_t k = 0; k < offerings.size(); ++k)
          if (offerings[k].instance_type == inc.instance_type && offerings[k].tier == inc.tier)
            o = static_cast<int>(k);
        if (o < 0) continue;
        const std::string& it_name = spec.instance_types[inc.instance_type].name;
        Status s = provider.SetDesiredSize(offerings[o].group, desired_now[o] + inc.count);
        if (s.ok()) {
          desired_now[o] += inc.count;
          scaled_up = true;
          record("ScaleUp", inc.tier, inc.count,
                 "+" + std::to_string(inc.count) + " " + it_name + " in group " +
                     offerings[o].group + " for " + std::to_string(pending.size()) +
                     " pending GPU pods");
          for (int k = 0; k < inc.count; ++k) {
            autoscale::PoolNode n;
            n.name = "asked/" + offerings[o].group + "/" + std::to_string(k);
            n.instance_type = inc.instance_type;
            n.tier = inc.tier;
            n.launching = true;
            pool_nodes.push_back(std::move(n));
          }
          continue;
        }
        const cloud::ProviderErrorKind kind = cloud::ClassifyProviderError(s);
        if (kind == cloud::ProviderErrorKind::kInsufficientCapacity) {
          st.unavailable.Mark(it_name, inc.tier, now);
          capacity_error = true;
          record("CapacityError", inc.tier, inc.count,
                 it_name + " " + std::string(autoscale::TierKey(inc.tier)) +
                     " unavailable for 3m: " + s.message(),
                 /*warning=*/true);
        } else {
          set_condition(kProviderError, true, std::string(cloud::ProviderErrorKindName(kind)),
                        "resizing group " + offerings[o].group + ": " + s.message());
        }
      }
      if (!capacity_error) break;  // else plan again without the unavailable offering
    }
    st.batcher->Flush();
  } else if (auto due = st.batcher->DueAt()) {
    wake_at(*due);
  }

  // 6. Scale-down: continue drains, then start new ones (not while pods wait).
  int draining = 0;
  for (autoscale::PoolNode& n : pool_nodes) {
    if (n.launching || !n.disrupting) continue;
    ++draining;
    bool waiting = false;
    for (const auto& pod : pods_on[n.name]) {
      if (pod->annotation(api::kDoNotDisruptAnnotation) == api::kTrue) {
        waiting = true;  // never evicted; the node waits for it
        continue;
      }
      waiting = true;
      if (pod->terminating()) continue;
      auto evicted = client_.Evict(pod->ns(), pod->name());
      if (evicted.ok()) {
        record("Evict", n.tier, 1, "evicted " + Key(*pod) + " from " + n.name);
      } else if (kube::IsNotFound(evicted.error())) {
        reconcile::Log(
            reconcile::LogLevel::kInfo, "pod to evict is gone",
            {{"pool", request.name}, {"pod", Key(*pod)}, {"error", evicted.error().ToString()}});
      } else {
        // 429: a PodDisruptionBudget says not now; retried on the next pass.
        record("EvictBlocked", n.tier, 1,
               "evicting " + Key(*pod) + ": " + evicted.error().ToString(), true);
      }
    }
    if (waiting) continue;
    const auto& [o, id] = node_instance[n.name];
    Status s = provider.TerminateInstances(offerings[o].group, {id}, /*decrement_desired=*/true);
    if (s.ok()) {
      desired_now[o] = std::max(0, desired_now[o] - 1);
      record("Terminate", n.tier, 1,
             "terminated " + n.name + " (" + id + ") in group " + offerings[o].group);
    } else {
      set_condition(kProviderError, true,
                    std::string(cloud::ProviderErrorKindName(cloud::ClassifyProviderError(s))),
                    "terminating " + id + ": " + s.message());
    }
  }
  if (pending.empty() || spot_scale_down) {
    auto plan = autoscale::PlanPoolScaleDown({.pool = &spec,
                                              .nodes = pool_nodes,
                                              .pods = bound,
                                              .spot_scale_down = spot_scale_down,
                                              .now = now,
                                              .now_unix = now_unix});
    if (!plan.ok()) return reconcile::TransientError{"planning: " + plan.error().ToString()};
    for (const autoscale::NodeDisruption& d : plan->disrupt) {
      autoscale::PoolNode* n = &pool_nodes[index_of[d.node]];
      auto node = client_.Get({kube::resources::kNodes, "", d.node});
      if (!node.ok()) continue;
      json& nspec = (*node)["spec"];
      nspec["unschedulable"] = true;
      if (!nspec.contains("taints") || !nspec["taints"].is_array()) nspec["taints"] = json::array();
      nspec["taints"].push_back({{"key", std::string(api::kDisruptionTaint)},
                                 {"value", std::string(autoscale::DisruptionReasonName(d.reason))},
                                 {"effect", "NoSchedule"}});
      auto cordoned = client_.Replace({kube::resources::kNodes, "", d.node}, *node);
      if (!cordoned.ok()) continue;  // a conflict: the next pass decides again
      n->disrupting = true;
      ++draining;
      std::string why = std::string(autoscale::DisruptionReasonName(d.reason));
      if (d.reason == autoscale::DisruptionReason::kSpotScaleDown)
        why += " (" + Join(spot_budgets, ", ") + ")";
      record("Cordon", n->tier, 1, "cordoned " + d.node + ": " + why);
    }
    // Wake when the next node settles past consolidateAfter.
    if (spec.consolidate_after) {
      for (const autoscale::PoolNode& n : pool_nodes) {
        if (n.launching || n.disrupting) continue;
        const Clock::TimePoint settles = n.last_pod_change + *spec.consolidate_after;
        if (settles > now) wake_at(settles);
      }
    }
  }

  // 7. Status.
  std::array<int, autoscale::kTierCount> tier_nodes{}, tier_desired{};
  std::array<std::vector<std::string>, autoscale::kTierCount> tier_groups{};
  double hourly = 0;
  int registered = 0;
  for (const autoscale::PoolNode& n : pool_nodes) {
    if (n.launching) continue;
    ++registered;
    ++tier_nodes[TierIndex(n.tier)];
    hourly += spec.instance_types[n.instance_type].price[TierIndex(n.tier)].value_or(0);
  }
  int desired_total = 0;
  for (size_t o = 0; o < offerings.size(); ++o) {
    tier_desired[TierIndex(offerings[o].tier)] += desired_now[static_cast<int>(o)];
    tier_groups[TierIndex(offerings[o].tier)].push_back(offerings[o].group);
    desired_total += desired_now[static_cast<int>(o)];
  }
  json tiers = json::object();
  for (int t = 0; t < autoscale::kTierCount; ++t) {
    if (!spec.tiers[t].enabled) continue;
    const auto tier = static_cast<CapacityTier>(t);
    tiers[std::string(autoscale::TierKey(tier))] = {{"nodes", tier_nodes[t]},
                                                    {"desired", tier_desired[t]},
                                                    {"group", Join(tier_groups[t], ",")}};
    metrics_->nodes.Add({{"pool", request.name}, {"tier", std::string(autoscale::TierKey(tier))}})
        .Set(tier_nodes[t]);
    metrics_->desired.Add({{"pool", request.name}, {"tier", std::string(autoscale::TierKey(tier))}})
        .Set(tier_desired[t]);
  }
  status["nodes"] = registered;
  status["desired"] = desired_total;
  status["tiers"] = tiers;
  status["pendingGPUPods"] = static_cast<int64_t>(pending.size());
  status["hourlyCost"] = std::round(hourly * 1e4) / 1e4;
  json unavailable = json::array();
  for (const auto& [key, until] : st.unavailable.Live(now)) {
    unavailable.push_back(
        {{"instanceType", key.first},
         {"tier", std::string(autoscale::TierKey(key.second))},
         {"until", kube::FormatTime(wall + std::chrono::duration_cast<Clock::WallTime::duration>(
                                               until - now))}});
  }
  status["unavailableOfferings"] = unavailable;

  for (const PoolCondition& c : DecideScaleConditions({.scaled_up = scaled_up,
                                .launching = launching,
                                .registered = registered,
                                .desired = desired_total,
                                .max_nodes = spec.max_nodes,
                                .pending = static_cast<int>(pending.size()),
                                .limit = limit})) {
    set_condition(c.type, c.status, c.reason, c.message);
  }
  if (!kube::IsConditionTrue(status["conditions"], kProviderError)) {
    set_condition(
        kReady, true, "Reconciled",
        std::to_string(registered) + " nodes, " + std::to_string(desired_total) + " desired");
  }

  if (launching > 0 || draining > 0 || scaled_up) wake_at(now + options_.active);
  Clock::Duration after = options_.resync;
  if (wake) after = std::clamp<Clock::Duration>(*wake - now, std::chrono::milliseconds(50), after);
  return finish(reconcile::RequeueAfter{after});
}

}  // namespace gpu_autoscaler::controllers
