// Fuzzes preemption (scheduler/preemption.h, ClusterCache::PlanPreemption,
// and with "group" instead of "preemptor", PlanGangPreemption)
// with what the API server hands the scheduler: Nodes, bound Pods (their
// priorities, start times, labels and gpu-indices annotations as anyone may
// write them), PodDisruptionBudgets and a pending preemptor. The input is a
// JSON object {"nodes": [...], "pods": [...], "pdbs": [...], "preemptor": {...}}.
// Any bytes must decode or fail with an error, never crash. A plan must name
// only pods of lower priority, bound on its node, none twice; the dry run must
// leave the cache as it was; a victim off the plan's node goes with its whole
// pod group (and says so), never one of the preemptor's own group; and once
// the victims are gone the preemptor must
// fit on the node (checked where no MIG pod is involved, whose GPUs the cache
// chooses by count, and with fewer than 8 victims, below the pod-count drift
// that makes the cache relearn its workload and re-place every pod).
#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube/object_codec.h"
#include "scheduler/cluster_cache.h"
#include "scheduler/pod_group.h"
#include "scheduler/preemption.h"

using namespace gpu_autoscaler;
using namespace gpu_autoscaler::scheduler;
using nlohmann::json;

namespace {

std::shared_ptr<const kube::PodView> PodOf(const json& j) {
  auto view = kube::DecodePod(j.dump());
  if (!view.ok()) return nullptr;
  return std::make_shared<const kube::PodView>(std::move(view).value());
}

// A victim is on the plan's node unless its whole group goes; it names its
// own group when it does; it is never of the preemptor's group.
bool PlacedAsItSays(const PreemptionVictim& v, const std::string& node,
                    const std::string& preemptor_group) {
  const std::string group = PodGroupOf(*v.pod).key;
  if (!group.empty() && group == preemptor_group) return false;
  if (!v.pod_group.empty() && v.pod_group != group) return false;
  return v.pod->node_name() == node || !v.pod_group.empty();
}

bool UsesMig(const kube::PodView& pod) {
  for (const kube::ContainerResources& c : pod.containers()) {
    for (const kube::ResourceQuantity& q : c.requests)
      if (q.name.view().starts_with("nvidia.com/mig-")) return true;
  }
  return false;
}

// A pod group's plan (ClusterCache::PlanGangPreemption): the dry run leaves
// the cache as it was; every member is placed once; victims rank below every
// member, are bound where the plan says, and appear once; and, once they are
// gone, the members fit one after the other where the plan puts them.
int CheckGangPlan(ClusterCache& cache, const json& group,
                  const std::vector<std::shared_ptr<const kube::PodView>>& pods,
                  const std::vector<DisruptionBudget>& budgets, bool mig) {
  std::vector<std::shared_ptr<const kube::PodView>> members;
  // The API server keeps names unique: a member never shares one with a
  // bound pod (nameless pods in the input all read "/").
  std::set<std::string> names;
  for (const auto& p : pods)
    names.insert(std::string(p->ns()) + "/" + std::string(p->name()));
  int32_t lowest = INT32_MAX;
  for (const json& p : group) {
    auto pod = PodOf(p);
    if (pod == nullptr || !pod->node_name().empty()) continue;
    if (!names.insert(std::string(pod->ns()) + "/" + std::string(pod->name())).second) continue;
    mig = mig || UsesMig(*pod);
    lowest = std::min(lowest, PriorityOf(*pod));
    members.push_back(std::move(pod));
  }
  if (members.empty()) return 0;
  const std::string group_key = PodGroupOf(*members[0]).key;
  for (const auto& p : pods)  // from here on, `names` are the members'
    names.erase(std::string(p->ns()) + "/" + std::string(p->name()));
  const double fragmentation_before = cache.FragmentationRatio();
  const CacheStats stats_before = cache.stats();
  Result<GangPreemptionPlan> plan = cache.PlanGangPreemption(members, budgets);
  const CacheStats stats_after = cache.stats();
  if (cache.FragmentationRatio() != fragmentation_before || stats_after.pods != stats_before.pods ||
      stats_after.unplaceable != stats_before.unplaceable ||
      stats_after.rebuilds != stats_before.rebuilds) {
    std::abort();  // the dry run changed the cache
  }
  if (!plan.ok()) return 0;
  if (plan->members.size() != members.size()) std::abort();
  std::set<std::string> placed, seen;
  for (const auto& m : plan->members) {
    const std::string key = std::string(m.pod->ns()) + "/" + std::string(m.pod->name());
    if (!names.count(key) || !placed.insert(key).second || !cache.HasNode(m.node)) std::abort();
  }
  for (const auto& v : plan->victims) {
    if (v.victim.priority >= lowest || !PlacedAsItSays(v.victim, v.node, group_key)) std::abort();
    if (!seen.insert(std::string(v.victim.pod->ns()) + "/" + std::string(v.victim.pod->name()))
             .second ||
        names.count(std::string(v.preemptor->ns()) + "/" + std::string(v.preemptor->name())) == 0) {
      std::abort();
    }
  }
  if (mig || plan->victims.size() + members.size() >= 8) return 0;
  for (const auto& v : plan->victims)
    cache.DeletePod(v.victim.pod->ns(), v.victim.pod->name());
  for (const auto& m : plan->members) {
    Result<PlacementChoice> choice = cache.PlanOn(*m.pod, m.node, /*predicates=*/true);
    if (!choice.ok() || !cache.Assume(*m.pod, *choice).ok()) std::abort();
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  json input = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (input.is_discarded() || !input.is_object()) return 0;
  auto cache = std::move(ClusterCache::Create({.policy = "FragLookahead"})).value();
  auto list = [&](const char* key) {
    auto it = input.find(key);
    return it != input.end() && it->is_array() ? *it : json::array();
  };
  for (const json& n : list("nodes")) {
    auto view = kube::DecodeNode(n.dump());
    if (view.ok()) cache->UpsertNode(std::make_shared<const kube::NodeView>(std::move(*view)));
  }
  bool mig = false;
  std::vector<std::shared_ptr<const kube::PodView>> pods;
  for (const json& p : list("pods")) {
    if (auto pod = PodOf(p)) {
      mig = mig || UsesMig(*pod);
      cache->UpsertPod(pod);
      pods.push_back(pod);
    }
  }
  std::vector<DisruptionBudget> budgets;
  for (const json& b : list("pdbs")) {
    Result<DisruptionBudget> budget = ParseDisruptionBudget(b.dump());
    if (budget.ok()) budgets.push_back(std::move(budget).value());
  }
  if (auto group = input.find("group"); group != input.end() && group->is_array()) {
    return CheckGangPlan(*cache, *group, pods, budgets, mig);
  }
  auto it = input.find("preemptor");
  if (it == input.end()) return 0;
  auto preemptor = PodOf(*it);
  if (preemptor == nullptr) return 0;
  mig = mig || UsesMig(*preemptor);

  const double fragmentation_before = cache->FragmentationRatio();
  const CacheStats stats_before = cache->stats();
  Result<PreemptionPlan> plan = cache->PlanPreemption(*preemptor, budgets);
  const CacheStats stats_after = cache->stats();
  if (cache->FragmentationRatio() != fragmentation_before ||
      stats_after.pods != stats_before.pods ||
      stats_after.unplaceable != stats_before.unplaceable ||
      stats_after.rebuilds != stats_before.rebuilds) {
    std::abort();  // the dry run changed the cache
  }
  if (!plan.ok()) return 0;
  const int32_t priority = PriorityOf(*preemptor);
  std::set<std::string> seen;
  int violations = 0;
  for (const PreemptionVictim& v : plan->victims) {
    if (v.priority >= priority || PriorityOf(*v.pod) != v.priority) std::abort();
    if (!PlacedAsItSays(v, plan->node, PodGroupOf(*preemptor).key)) std::abort();
    if (!seen.insert(std::string(v.pod->ns()) + "/" + std::string(v.pod->name())).second) {
      std::abort();
    }
    violations += v.violates_budget;
  }
  if (violations != plan->budget_violations) std::abort();
  if (mig || plan->victims.size() >= 8) return 0;
  for (const PreemptionVictim& v : plan->victims)
    cache->DeletePod(v.pod->ns(), v.pod->name());
  if (!cache->PlanOn(*preemptor, plan->node, /*predicates=*/true).ok()) std::abort();
  return 0;
}
