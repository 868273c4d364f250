// PlanPoolScaleDown and the disruption budget (node_pool.h).
#include <algorithm>
#include <cmath>
#include <functional>

#include "autoscale/consolidation.h"
#include "autoscale/cron.h"
#include "autoscale/node_pool.h"
#include "autoscale/node_pool_internal.h"

namespace gpu_autoscaler::autoscale {

std::string_view DisruptionReasonName(DisruptionReason r) {
  switch (r) {
    case DisruptionReason::kEmpty:
      return "Empty";
    case DisruptionReason::kUnderutilized:
      return "Underutilized";
    case DisruptionReason::kSpotScaleDown:
      return "SpotScaleDown";
  }
  return "Unknown";
}

int AllowedDisruptions(const std::vector<DisruptionBudget>& budgets, int total, int64_t now_unix) {
  int allowed = total;  // no active budget: no bound beyond the pool's size
  for (const DisruptionBudget& b : budgets) {
    if (!b.schedule.empty()) {
      auto cron = CronSchedule::Parse(b.schedule);
      if (!cron.ok() || !cron->InWindow(now_unix, b.duration_seconds)) continue;
    }
    // Karpenter rounds a percentage up: 19 nodes × 20% allow 4.
    const int n = b.percent ? static_cast<int>((int64_t{total} * b.nodes + 99) / 100) : b.nodes;
    allowed = std::min(allowed, n);
  }
  return std::max(allowed, 0);
}

Result<PoolScaleDownPlan> PlanPoolScaleDown(const ScaleDownInput& in) {
  if (in.pool == nullptr) return InvalidArgumentError("no pool");
  const NodePoolSpec& pool = *in.pool;
  PoolScaleDownPlan out;

  std::vector<const PoolNode*> nodes;
  int busy = 0;  // disrupting or not ready: they use up the budget (Karpenter)
  for (const PoolNode& n : in.nodes) {
    if (n.launching) continue;
    if (n.instance_type < 0 || n.instance_type >= static_cast<int>(pool.instance_types.size()))
      return InvalidArgumentError("node " + n.name + " has no instance type of the pool");
    nodes.push_back(&n);
    if (n.disrupting || !n.ready) ++busy;
  }
  const int total = static_cast<int>(nodes.size());
  int staying = 0;
  for (const PoolNode* n : nodes)
    staying += n->disrupting ? 0 : 1;
  out.allowed = std::max(0, AllowedDisruptions(pool.budgets, total, in.now_unix) - busy);
  int allowed = out.allowed;

  std::map<std::string, std::vector<const PoolPod*>> pods_on;
  for (const PoolPod& p : in.pods)
    pods_on[p.node].push_back(&p);
  auto blocker = [&](const PoolNode& n) -> std::string {
    if (n.do_not_disrupt) return "the node has the do-not-disrupt annotation";
    for (const PoolPod* p : pods_on[n.name])
      if (p->do_not_disrupt) return "do-not-disrupt pod " + p->spec.name;
    return "";
  };
  auto settled = [&](const PoolNode& n) {
    return pool.consolidate_after && in.now - n.last_pod_change >= *pool.consolidate_after;
  };
  std::set<std::string> chosen;
  auto consider = [&](const PoolNode& n, DisruptionReason reason) {
    if (chosen.count(n.name) > 0) return;
    if (std::string why = blocker(n); !why.empty()) {
      out.blocked.emplace_back(n.name, why);
    } else if (staying - 1 < pool.min_nodes) {
      out.blocked.emplace_back(n.name, "minNodes " + std::to_string(pool.min_nodes));
    } else if (allowed <= 0) {
      out.blocked.emplace_back(n.name, "disruption budget");
    } else {
      out.disrupt.push_back({n.name, reason});
      chosen.insert(n.name);
      --allowed;
      --staying;
    }
  };
  const auto price = [&](const PoolNode& n) {
    return pool.instance_types[n.instance_type].price[TierIndex(n.tier)].value_or(0);
  };
  // Costliest first, then by name, so plans are stable.
  auto by_price = [&](const PoolNode* a, const PoolNode* b) {
    return price(*a) != price(*b) ? price(*a) > price(*b) : a->name < b->name;
  };

  // 1. Empty nodes that stayed empty for consolidateAfter.
  std::vector<const PoolNode*> empty;
  for (const PoolNode* n : nodes)
    if (!n->disrupting && n->ready && pods_on[n->name].empty() && settled(*n)) empty.push_back(n);
  std::sort(empty.begin(), empty.end(), by_price);
  for (const PoolNode* n : empty)
    consider(*n, DisruptionReason::kEmpty);

  // 2. A Budget asked scaleDownSpot: every spot node, fewest pods first.
  if (in.spot_scale_down) {
    std::vector<const PoolNode*> spot;
    for (const PoolNode* n : nodes)
      if (!n->disrupting && n->tier == CapacityTier::kSpot) spot.push_back(n);
    std::sort(spot.begin(), spot.end(), [&](const PoolNode* a, const PoolNode* b) {
      const size_t pa = pods_on[a->name].size(), pb = pods_on[b->name].size();
      return pa != pb ? pa < pb : a->name < b->name;
    });
    for (const PoolNode* n : spot)
      consider(*n, DisruptionReason::kSpotScaleDown);
  }

  // 3. Underused nodes whose pods fit on the nodes that stay.
  if (pool.policy == ConsolidationPolicy::kWhenUnderutilized && pool.consolidate_after) {
    // The nodes that may take moved pods or go: not disrupting, ready, not chosen above.
    std::vector<PricedNode> priced;
    std::vector<BoundPod> bound;
    std::set<std::string> protected_pods, in_plan;
    for (const PoolNode* n : nodes) {
      if (n->disrupting || !n->ready || chosen.count(n->name) > 0) continue;
      priced.push_back(
          {internal::NodeSpecOf(pool.instance_types[n->instance_type], n->name), price(*n)});
      in_plan.insert(n->name);
    }
    std::map<std::string, int64_t> used_milli;
    for (const PoolPod& p : in.pods) {
      if (in_plan.count(p.node) == 0) continue;
      bound.push_back(BoundPod{.spec = p.spec, .node = p.node, .gpus = p.gpus});
      if (p.do_not_disrupt) protected_pods.insert(p.spec.name);
    }
    {
      // PlanConsolidation wants each pod's GPUs; the cache may not know them
      // (another scheduler bound the pod), so replay the bindings to get valid ones.
      ClusterState replay;
      std::map<std::string, int> at;
      for (const PricedNode& n : priced) {
        GPU_RETURN_IF_ERROR(replay.AddNode(n.spec));
        at[n.spec.name] = replay.node_count() - 1;
      }
      std::vector<BoundPod> kept;
      for (BoundPod& b : bound) {
        const int node = at[b.node];
        const PodRequest req = replay.Resolve(b.spec);
        Placement placement{.node = node, .gpus = b.gpus};
        if (!replay.Place(req, placement).ok()) {
          if (!replay.Fits(node, req)) continue;
          placement.gpus = replay.BestGpus(node, req);
          if (!replay.Place(req, placement).ok()) continue;
        }
        b.gpus = placement.gpus;
        used_milli[b.node] +=
            req.total_gpu_milli() + int64_t{req.mig_slices} * kMilliPerGpu / kMigSlicesPerGpu;
        kept.push_back(std::move(b));
      }
      bound = std::move(kept);
    }
    // Only underused, settled nodes may go: the pods of every other node stay put.
    const auto underused = [&](const PoolNode& n) {
      const PoolInstanceType& it = pool.instance_types[n.instance_type];
      return static_cast<double>(used_milli[n.name]) <
             pool.utilization_threshold * it.gpu_count * kMilliPerGpu;
    };
    for (const PoolNode* n : nodes) {
      if (in_plan.count(n->name) > 0 && (!underused(*n) || !settled(*n))) {
        for (const PoolPod* p : pods_on[n->name])
          protected_pods.insert(p->spec.name);
      }
    }
    GPU_ASSIGN_OR_RETURN(ConsolidationPlan plan,
                         PlanConsolidation(priced, bound, [&](const PodSpec& pod) {
                           return protected_pods.count(pod.name) == 0;
                         }));
    for (const NodeRemoval& r : plan.removals) {
      const PoolNode* n = *std::find_if(nodes.begin(), nodes.end(),
                                        [&](const PoolNode* x) { return x->name == r.node; });
      if (!underused(*n) || !settled(*n)) continue;
      consider(*n, pods_on[n->name].empty() ? DisruptionReason::kEmpty
                                            : DisruptionReason::kUnderutilized);
    }
    // Underused nodes a do-not-disrupt pod kept: say why.
    for (const PoolNode* n : nodes) {
      if (in_plan.count(n->name) == 0 || chosen.count(n->name) > 0 || !settled(*n)) continue;
      if (underused(*n) && !pods_on[n->name].empty()) {
        if (std::string why = blocker(*n); !why.empty()) out.blocked.emplace_back(n->name, why);
      }
    }
  }
  // One entry per node: the first reason found.
  std::set<std::string> said;
  std::erase_if(out.blocked, [&](const auto& b) { return !said.insert(b.first).second; });
  return out;
}

}  // namespace gpu_autoscaler::autoscale
