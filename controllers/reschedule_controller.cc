#include "controllers/reschedule_controller.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "api/annotations.h"
#include "autoscale/defrag.h"
#include "autoscale/usage_balance.h"
#include "cost/utilization.h"
#include "kube/conditions.h"
#include "kube/error.h"
#include "kube/event_recorder.h"
#include "kube/meta_time.h"
#include "kube/rest_client.h"
#include "scheduler/gpu_demand.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

constexpr int64_t kHour = 3600;
// kube-scheduler's system-critical priorities start here (system-cluster-critical).
constexpr int32_t kSystemCriticalPriority = 2000000000;

Clock::WallTime WallAt(int64_t s) {
  return Clock::WallTime(std::chrono::seconds(s));
}

// obj[key], or null when obj is not an object or has no such key: status
// comes from outside and is read without trusting its shape.
const json& Field(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::optional<int64_t> SecondsOf(const json& text) {
  if (!text.is_string()) return std::nullopt;
  auto t = kube::ParseRfc3339(text.get<std::string>());
  if (!t.ok()) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count();
}

std::string Fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

std::string GpuList(const std::vector<int>& gpus) {
  std::string out;
  for (int g : gpus)
    out += (out.empty() ? "" : ",") + std::to_string(g);
  return out;
}

bool Finished(const kube::PodView& pod) {
  return pod.phase() == kube::PodPhase::kSucceeded || pod.phase() == kube::PodPhase::kFailed;
}

// Whether the policy lets this pod move (see the header for the rules).
bool Movable(const kube::PodView& pod, const ReschedulePolicySpec& spec) {
  if (pod.node_name().empty() || Finished(pod) || pod.terminating()) return false;
  if (!spec.NamespaceAllowed(pod.ns())) return false;
  // A bare pod has nothing to recreate it elsewhere.
  if (pod.controller_ref() == nullptr || pod.belongs_to_node()) return false;
  if (auto keep = pod.annotation(api::kDoNotDisruptAnnotation); keep && *keep == api::kTrue) {
    return false;
  }
  if (pod.priority().value_or(0) >= kSystemCriticalPriority) return false;
  if (!spec.pod_selector.empty()) {
    std::map<std::string, std::string> labels;
    for (const kube::Label& l : pod.labels())
      labels.emplace(std::string(l.key.view()), std::string(l.value.view()));
    if (!spec.pod_selector.Matches(labels)) return false;
  }
  return true;
}

// The cluster as the placement engine sees it.
struct Model {
  autoscale::ClusterState cluster;
  autoscale::TargetWorkload workload;
  std::vector<autoscale::DefragCandidate> candidates;
  std::vector<const kube::PodView*> candidate_pods;
  std::map<std::string, int, std::less<>> node_index;
};

Model BuildModel(const RescheduleInput& in) {
  Model m;
  std::vector<scheduler::NodeOffer> offers;
  int milli_per_replica = autoscale::kMilliPerGpu;
  for (const auto& node : in.nodes) {
    offers.push_back(scheduler::NodeOfferOf(*node));
    if (offers.back().shared_replicas > 0 && milli_per_replica == autoscale::kMilliPerGpu) {
      milli_per_replica = autoscale::kMilliPerGpu / offers.back().shared_replicas;
    }
  }
  std::map<std::string, int, std::less<>> bound_count;
  for (const auto& pod : in.pods) {
    if (!pod->node_name().empty() && !Finished(*pod)) ++bound_count[std::string(pod->node_name())];
  }
  std::vector<std::pair<std::string, autoscale::NodeSpec>> specs;
  for (size_t i = 0; i < offers.size(); ++i) {
    autoscale::NodeSpec spec = offers[i].spec;
    // A cordoned node keeps its pods but takes no new one.
    if (in.nodes[i]->unschedulable()) {
      auto it = bound_count.find(spec.name);
      spec.max_pods = std::min(spec.max_pods, it == bound_count.end() ? 0 : it->second);
    }
    specs.emplace_back(spec.name, std::move(spec));
  }
  std::sort(specs.begin(), specs.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [name, spec] : specs) {
    if (m.cluster.AddNode(spec).ok()) m.node_index.emplace(name, m.cluster.node_count() - 1);
  }
  // Pods in a stable order (namespace/name), so plans are deterministic.
  std::vector<const kube::PodView*> pods;
  for (const auto& pod : in.pods)
    if (!Finished(*pod) && !pod->terminating()) pods.push_back(pod.get());
  std::sort(pods.begin(), pods.end(), [](const kube::PodView* a, const kube::PodView* b) {
    return std::make_pair(a->ns(), a->name()) < std::make_pair(b->ns(), b->name());
  });
  std::vector<autoscale::PodSpec> typical;
  for (const kube::PodView* pod : pods) {
    scheduler::GpuDemand demand = scheduler::GpuDemandOf(*pod, milli_per_replica);
    if (!demand.error.empty()) continue;
    if (demand.kind == scheduler::GpuKind::kMig) {
      demand.spec.num_gpu = 0;  // MIG GPUs are outside FGD's measure; count CPU and memory only
      demand.spec.gpu_milli = 0;
    }
    typical.push_back(demand.spec);
    if (pod->node_name().empty()) continue;
    auto node = m.node_index.find(pod->node_name());
    if (node == m.node_index.end()) continue;
    const autoscale::PodRequest request = m.cluster.Resolve(demand.spec);
    autoscale::Placement at{.node = node->second, .gpus = {}};
    if (auto pinned = pod->annotation(api::kGpuIndicesAnnotation); pinned && request.uses_gpu()) {
      auto gpus = scheduler::ParseGpuIndices(*pinned);
      if (gpus.ok()) at.gpus = *gpus;
    }
    Result<autoscale::BindingId> bound = m.cluster.Place(request, at);
    if (!bound.ok() && request.uses_gpu()) {
      at.gpus = m.cluster.BestGpus(node->second, request);
      bound = m.cluster.Place(request, at);
    }
    if (!bound.ok()) continue;  // overcommitted by another scheduler: not modelled
    m.candidates.push_back({*bound, request, at});
    m.candidate_pods.push_back(pod);
  }
  m.workload = autoscale::TargetWorkload::FromTrace(typical, m.cluster);
  return m;
}

std::string DefragReason(const autoscale::DefragMove& move,
                         const autoscale::ClusterState& cluster) {
  const std::string from = cluster.spec(move.from_node).name;
  const std::string to = cluster.spec(move.to.node).name;
  std::string where = "pod fits on node " + to;
  if (!move.to.gpus.empty()) {
    where +=
        std::string(move.to.gpus.size() == 1 ? " (GPU " : " (GPUs ") + GpuList(move.to.gpus) + ")";
  }
  std::string out = "GPU defragmentation: ";
  if (move.whole_gpus_freed > 0) {
    out += "frees " + std::to_string(move.whole_gpus_freed) + " whole GPU" +
           (move.whole_gpus_freed == 1 ? "" : "s") + " on node " + from;
  } else if (move.paired) {
    out += "first of two moves that free GPU capacity on node " + from;
  } else {
    out += "makes GPU capacity on node " + from + " usable";
  }
  out += "; " + where + "; usable GPU capacity " + (move.gain_milli >= 0 ? "+" : "") +
         Fixed2(move.gain_milli / 1000.0);
  return out;
}

struct UsageResult {
  std::vector<PlannedEviction> moves;
  bool available = true;
  std::string reason, message;
};

UsageResult PlanUsage(const RescheduleInput& in, const std::set<std::string>& already_moving) {
  UsageResult r;
  const ReschedulePolicySpec& spec = in.policy.spec;
  if (!in.gpu_usage.has_value()) {
    r.available = false;
    r.reason = "NoUsageSource";
    r.message = in.usage_error + "; usage balancing evicts nothing";
    return r;
  }
  std::vector<autoscale::UsageNode> nodes;
  std::map<std::string, int, std::less<>> node_index;
  for (const auto& node : in.nodes) {
    autoscale::UsageNode n;
    n.name = std::string(node->name());
    n.allocatable["cpu"] = static_cast<double>(node->Allocatable("cpu"));
    n.allocatable["memory"] = static_cast<double>(node->Allocatable("memory"));
    n.allocatable["pods"] = static_cast<double>(node->Allocatable("pods"));
    n.allocatable[std::string(api::kGpuResource)] =
        static_cast<double>(scheduler::NodeOfferOf(*node).spec.gpu_count);
    node_index.emplace(n.name, static_cast<int>(nodes.size()));
    nodes.push_back(std::move(n));
  }
  std::vector<autoscale::UsagePod> pods;
  std::vector<const kube::PodView*> views;
  for (const auto& pod : in.pods) {
    if (pod->node_name().empty() || Finished(*pod)) continue;
    auto node = node_index.find(pod->node_name());
    if (node == node_index.end()) continue;
    autoscale::UsagePod p;
    p.ns = std::string(pod->ns());
    p.name = std::string(pod->name());
    p.node = node->second;
    p.priority = pod->priority().value_or(0);
    const std::string key = p.ns + "/" + p.name;
    p.evictable = Movable(*pod, spec) && !already_moving.count(key);
    const bool wants_gpu = pod->Request(api::kGpuResource) > 0 ||
                           pod->Request(api::kSharedGpuResource) > 0 ||
                           scheduler::GpuDemandOf(*pod, autoscale::kMilliPerGpu).wants_gpu();
    if (auto it = in.gpu_usage->find(key); it != in.gpu_usage->end()) {
      p.usage[std::string(api::kGpuResource)] = it->second;
    } else if (!wants_gpu) {
      p.usage[std::string(api::kGpuResource)] = 0;  // holds no GPU: nothing to measure
    }
    pods.push_back(std::move(p));
    views.push_back(pod.get());
  }
  autoscale::UsageBalancePlan plan =
      autoscale::PlanUsageBalance(nodes, pods, spec.thresholds, autoscale::UsageBalanceOptions{});
  if (!plan.unmeasured.empty()) {
    r.available = false;
    r.reason = "UsageMissing";
    r.message = "no usage measured for ";
    for (size_t i = 0; i < plan.unmeasured.size() && i < 5; ++i)
      r.message += (i ? "; " : "") + plan.unmeasured[i];
    if (plan.unmeasured.size() > 5)
      r.message += "; and " + std::to_string(plan.unmeasured.size() - 5) + " more nodes";
    r.message +=
        ". Those nodes are left alone (cpu and memory usage have no source in the "
        "manager; nvidia.com/gpu comes from GPU utilisation)";
  } else {
    r.reason = "UsageMeasured";
    r.message = "every pod on the listed resources has measured usage";
  }
  for (const autoscale::UsageEviction& e : plan.evictions) {
    const kube::PodView* pod = views[e.pod];
    r.moves.push_back({.kind = "UsageBalancing",
                       .ns = std::string(pod->ns()),
                       .pod = std::string(pod->name()),
                       .pod_uid = std::string(pod->uid()),
                       .from_node = nodes[e.node].name,
                       .reason = "Usage balancing: " + e.reason,
                       .result = "Planned"});
  }
  return r;
}

void AddEventsForConditionChanges(const json& before, const json& after,
                                  std::vector<ReschedulePlan::Event>* events) {
  for (const char* type : {"Accepted", "UsageAvailable"}) {
    auto was = kube::FindCondition(before, type);
    auto now = kube::FindCondition(after, type);
    if (!now || (was && was->status == now->status && was->reason == now->reason)) continue;
    const bool bad = now->status == "False";
    if (!was && !bad) continue;
    events->push_back({bad, now->reason, now->message});
  }
}

}  // namespace

ReschedulePlan DecideReschedule(const RescheduleInput& in) {
  ReschedulePlan plan;
  const ReschedulePolicySpec& spec = in.policy.spec;
  const json before = in.status.is_object() ? in.status : json::object();
  plan.status = before;
  json& status = plan.status;
  plan.requeue_after_s = spec.interval_seconds;

  const std::optional<int64_t> last = SecondsOf(Field(Field(before, "lastRun"), "time"));
  const json& observed = Field(before, "observedGeneration");
  const bool same_generation =
      observed.is_number_integer() && observed.get<int64_t>() == spec.generation;
  if (in.policy.problems.empty() && same_generation && last &&
      in.now - *last < spec.interval_seconds) {
    plan.requeue_after_s = spec.interval_seconds - (in.now - *last);
    return plan;  // not due
  }
  plan.due = true;
  status["observedGeneration"] = spec.generation;
  const json before_conditions = Field(before, "conditions");

  // Keep only the last hour's evictions.
  json recent = json::array();
  const json& previous = Field(before, "recentEvictions");
  for (const json& e : previous.is_array() ? previous : json::array()) {
    auto t = SecondsOf(Field(e, "time"));
    if (t && in.now - *t < kHour) recent.push_back(e);
  }
  status["recentEvictions"] = recent;

  if (!in.policy.problems.empty()) {
    plan.accepted = false;
    std::string message;
    for (const std::string& p : in.policy.problems)
      message += (message.empty() ? "" : "; ") + p;
    (void)kube::SetCondition(&status["conditions"],
                             {.type = "Accepted",
                              .status = "False",
                              .reason = "InvalidSpec",
                              .message = message + ". Nothing is evicted.",
                              .observed_generation = spec.generation},
                             WallAt(in.now));
    status["plannedMoves"] = json::array();
    AddEventsForConditionChanges(before_conditions, status["conditions"], &plan.policy_events);
    return plan;
  }
  (void)kube::SetCondition(&status["conditions"],
                           {.type = "Accepted",
                            .status = "True",
                            .reason = "Valid",
                            .message = "the policy is in force",
                            .observed_generation = spec.generation},
                           WallAt(in.now));

  std::set<std::string> moving;
  json last_run_out = {{"time", kube::FormatTime(WallAt(in.now))},
                       {"dryRun", spec.dry_run},
                       {"executed", 0},
                       {"blocked", 0},
                       {"failed", 0}};
  if (spec.defrag_enabled) {
    Model model = BuildModel(in);
    std::vector<autoscale::DefragCandidate> movable;
    std::vector<int> movable_index;
    for (size_t i = 0; i < model.candidates.size(); ++i) {
      if (!Movable(*model.candidate_pods[i], spec)) continue;
      movable.push_back(model.candidates[i]);
      movable_index.push_back(static_cast<int>(i));
    }
    const double idle = static_cast<double>(model.cluster.idle_gpu_milli());
    const double frag = autoscale::ClusterFragmentation(model.cluster, model.workload);
    last_run_out["fragmentationRatio"] = idle > 0 ? std::round(1000.0 * frag / idle) / 10.0 : 0.0;
    auto defrag = autoscale::PlanDefragmentation(
        model.cluster, movable, model.workload,
        {.max_moves = spec.max_moves, .min_gain_milli = static_cast<double>(spec.min_gain_milli)});
    if (defrag.ok()) {
      last_run_out["recoveredMilliGPU"] =
          static_cast<int64_t>(std::llround(defrag->recovered_milli()));
      for (const autoscale::DefragMove& move : defrag->moves) {
        const kube::PodView* pod = model.candidate_pods[movable_index[move.candidate]];
        plan.moves.push_back({.kind = "Defragmentation",
                              .ns = std::string(pod->ns()),
                              .pod = std::string(pod->name()),
                              .pod_uid = std::string(pod->uid()),
                              .from_node = model.cluster.spec(move.from_node).name,
                              .to_node = model.cluster.spec(move.to.node).name,
                              .gain_milli = std::llround(move.gain_milli),
                              .reason = DefragReason(move, model.cluster),
                              .result = "Planned"});
        moving.insert(plan.moves.back().ns + "/" + plan.moves.back().pod);
      }
    }
  }
  if (spec.usage_enabled) {
    UsageResult usage = PlanUsage(in, moving);
    (void)kube::SetCondition(&status["conditions"],
                             {.type = "UsageAvailable",
                              .status = usage.available ? "True" : "False",
                              .reason = usage.reason,
                              .message = usage.message,
                              .observed_generation = spec.generation},
                             WallAt(in.now));
    // Missing usage anywhere: evict nothing for usage (the planner already
    // left unmeasured nodes alone; a failed source gives no plan at all).
    for (PlannedEviction& e : usage.moves)
      plan.moves.push_back(std::move(e));
  } else {
    kube::RemoveCondition(&status["conditions"], "UsageAvailable");
  }

  // Limits. A skipped defragmentation move ends the defragmentation plan:
  // later moves were planned on the cluster after it.
  int hour_budget = spec.per_hour > 0 ? spec.per_hour - static_cast<int>(recent.size())
                                      : std::numeric_limits<int>::max();
  std::map<std::string, int> per_node, per_namespace;
  bool defrag_stopped = false;
  int planned = 0;
  for (PlannedEviction& move : plan.moves) {
    const bool defrag = move.kind == "Defragmentation";
    bool skip = defrag && defrag_stopped;
    if (!skip && hour_budget <= 0) skip = true;
    if (!skip && spec.per_node > 0 && per_node[move.from_node] >= spec.per_node) skip = true;
    if (!skip && spec.per_namespace > 0 && per_namespace[move.ns] >= spec.per_namespace) {
      skip = true;
    }
    if (skip) {
      move.result = "Skipped";
      if (defrag) defrag_stopped = true;
      continue;
    }
    --hour_budget;
    ++per_node[move.from_node];
    ++per_namespace[move.ns];
    ++planned;
  }
  last_run_out["planned"] = planned;
  status["lastRun"] = last_run_out;
  json moves = json::array();
  for (const PlannedEviction& m : plan.moves) {
    json j = {{"kind", m.kind},          {"namespace", m.ns},  {"pod", m.pod},
              {"fromNode", m.from_node}, {"reason", m.reason}, {"result", m.result}};
    if (!m.to_node.empty()) j["toNode"] = m.to_node;
    if (m.kind == "Defragmentation") j["gainMilliGPU"] = m.gain_milli;
    moves.push_back(std::move(j));
  }
  status["plannedMoves"] = moves;
  AddEventsForConditionChanges(before_conditions, status["conditions"], &plan.policy_events);
  return plan;
}

json StatusAfterApply(const ReschedulePlan& plan, const std::vector<std::string>& results,
                      bool dry_run, int64_t now) {
  json status = plan.status;
  if (!plan.due || !plan.accepted) return status;
  int executed = 0, blocked = 0, failed = 0;
  json& moves = status["plannedMoves"];
  for (size_t i = 0; i < plan.moves.size() && i < results.size(); ++i) {
    const std::string& r = results[i];
    if (i < moves.size()) moves[i]["result"] = r;
    if (r == "Evicted") {
      ++executed;
      status["recentEvictions"].push_back({{"namespace", plan.moves[i].ns},
                                           {"pod", plan.moves[i].pod},
                                           {"node", plan.moves[i].from_node},
                                           {"time", kube::FormatTime(WallAt(now))}});
    } else if (r == "Blocked") {
      ++blocked;
    } else if (r == "Failed") {
      ++failed;
    }
  }
  status["lastRun"]["dryRun"] = dry_run;
  status["lastRun"]["executed"] = executed;
  status["lastRun"]["blocked"] = blocked;
  status["lastRun"]["failed"] = failed;
  return status;
}

RescheduleReconciler::RescheduleReconciler(
    const kube::Store<kube::GenericObject>& policies, const kube::Store<kube::NodeView>& nodes,
    const kube::Store<kube::PodView>& pods, kube::RestClient& client, Clock& clock,
    kube::EventRecorder* recorder, cost::UtilizationSource* usage, std::function<bool()> synced)
    : policies_(policies),
      nodes_(nodes),
      pods_(pods),
      client_(client),
      clock_(clock),
      recorder_(recorder),
      usage_(usage),
      synced_(std::move(synced)) {}

reconcile::ReconcileResult RescheduleReconciler::Reconcile(const reconcile::Request& request,
                                                           std::stop_token) {
  auto cached = policies_.Get("", request.name);
  if (cached == nullptr) return reconcile::Done{};
  if (synced_ && !synced_()) return reconcile::RequeueAfter{std::chrono::seconds(1)};
  auto object = cached->Parse();
  if (!object.ok()) return reconcile::TerminalError{object.error().ToString()};

  RescheduleInput in;
  in.policy = ParseReschedulePolicy(*object);
  in.status = object->value("status", json::object());
  in.now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.WallNow().time_since_epoch()).count();
  in.nodes = nodes_.List();
  in.pods = pods_.List();
  const bool wants_usage = in.policy.problems.empty() && in.policy.spec.usage_enabled;
  if (wants_usage && usage_ == nullptr) {
    in.usage_error =
        "no GPU utilisation source (start the manager with --prometheus-url for dcgm-exporter "
        "series)";
  } else if (wants_usage) {
    auto fetched = usage_->Fetch();
    if (!fetched.ok()) {
      in.usage_error = "GPU utilisation unavailable: " + fetched.error().ToString();
    } else {
      std::map<std::string, double> busy;
      for (const cost::PodGpuUsage& u : *fetched) {
        const double share = u.ShareUtilization();
        if (share >= 0) busy[u.ns + "/" + u.pod] = share * u.gpus;
      }
      in.gpu_usage = std::move(busy);
    }
  }

  ReschedulePlan plan = DecideReschedule(in);
  const auto requeue = reconcile::RequeueAfter{std::chrono::seconds(plan.requeue_after_s)};
  if (!plan.due) return requeue;

  const bool dry_run = in.policy.spec.dry_run;
  std::vector<std::string> results;
  for (const PlannedEviction& move : plan.moves) {
    kube::EventObject pod{
        .api_version = "v1", .kind = "Pod", .ns = move.ns, .name = move.pod, .uid = move.pod_uid};
    if (move.result == "Skipped") {
      results.push_back("Skipped");
      continue;
    }
    if (dry_run) {
      results.push_back("Planned");
      if (recorder_) {
        recorder_->Record(
            pod, kube::EventType::kNormal, "ReschedulePlanned",
            "dry run (ReschedulePolicy " + request.name + "), would evict: " + move.reason);
      }
      continue;
    }
    auto done = in.policy.spec.respect_pdbs
                    ? client_.Evict(move.ns, move.pod)
                    : client_.Delete(kube::ObjectRef{kube::resources::kPods, move.ns, move.pod});
    if (done.ok()) {
      results.push_back("Evicted");
      if (recorder_) {
        recorder_->Record(pod, kube::EventType::kNormal, "Rescheduled",
                          move.reason + " (ReschedulePolicy " + request.name + ")");
      }
    } else if (kube::IsTooManyRequests(done.error())) {
      results.push_back("Blocked");
      if (recorder_) {
        recorder_->Record(pod, kube::EventType::kWarning, "RescheduleBlocked",
                          "eviction refused: " + done.error().message() + " (" + move.reason + ")");
      }
    } else if (kube::IsNotFound(done.error())) {
      results.push_back("Gone");
    } else {
      results.push_back("Failed");
      if (recorder_) {
        recorder_->Record(pod, kube::EventType::kWarning, "RescheduleFailed",
                          "eviction failed: " + done.error().ToString());
      }
    }
  }
  json status = StatusAfterApply(plan, results, dry_run, in.now);
  // An invalid policy is decided on every reconcile; writing an unchanged
  // status would wake this reconciler again through the informer.
  if (status == in.status) return requeue;

  // Evictions are done: the status must land, or the next run would not
  // know them. A conflict re-reads the object and writes again.
  const kube::ObjectRef ref =
      kube::ObjectRef{api::kReschedulePolicies, "", request.name}.WithSub("status");
  json body = *object;
  body["status"] = status;
  auto written = client_.Replace(ref, body);
  for (int attempt = 0; attempt < 2 && !written.ok() && kube::IsConflict(written.error());
       ++attempt) {
    auto fresh = client_.Get(kube::ObjectRef{api::kReschedulePolicies, "", request.name});
    if (!fresh.ok()) break;
    body = *fresh;
    body["status"] = status;
    written = client_.Replace(ref, body);
  }
  if (!written.ok()) {
    return reconcile::TransientError{"writing status: " + written.error().ToString()};
  }
  if (recorder_ != nullptr) {
    for (const auto& ev : plan.policy_events) {
      recorder_->Record(kube::EventObject::Of(*written),
                        ev.warning ? kube::EventType::kWarning : kube::EventType::kNormal,
                        ev.reason, ev.message);
    }
  }
  return requeue;
}

}  // namespace gpu_autoscaler::controllers
