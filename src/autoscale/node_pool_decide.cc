#include "autoscale/node_pool_decide.h"

#include <algorithm>
#include <cmath>

#include "common/str_join.h"

namespace gpu_autoscaler::autoscale {
namespace {

// The planner's nodes: registered ones (interrupted ones as disrupting: their
// capacity is going), then per group the instances without a Node and the
// sizes asked for that are not instances yet.
std::vector<PoolNode> PoolNodesOf(const PoolSnapshot& s, const PoolMemory& memory) {
  std::vector<PoolNode> out;
  std::set<std::string> registered;
  for (const NodeObservation& o : s.nodes) {
    const GroupObservation& g = s.groups[o.group];
    registered.insert(o.instance_id);
    PoolNode n;
    n.name = o.name;
    n.instance_type = g.instance_type;
    n.tier = g.tier;
    n.ready = o.ready;
    n.disrupting = o.disrupting || o.interrupted;
    n.do_not_disrupt = o.do_not_disrupt;
    if (auto it = memory.changes.find(o.name); it != memory.changes.end())
      n.last_pod_change = it->second.at;
    out.push_back(std::move(n));
  }
  for (const GroupObservation& g : s.groups) {
    for (const std::string& id : g.instance_ids) {
      if (registered.count(id) > 0) continue;
      PoolNode n;
      n.name = "launching/" + id;
      n.instance_type = g.instance_type;
      n.tier = g.tier;
      n.launching = true;
      out.push_back(std::move(n));
    }
    for (int k = static_cast<int>(g.instance_ids.size()); k < g.desired; ++k) {
      PoolNode n;
      n.name = "requested/" + g.group + "/" + std::to_string(k);
      n.instance_type = g.instance_type;
      n.tier = g.tier;
      n.launching = true;
      out.push_back(std::move(n));
    }
  }
  return out;
}

std::vector<PoolPod> BoundPodsOf(const PoolSnapshot& s) {
  std::vector<PoolPod> out;
  for (const PodObservation& p : s.pods) {
    if (!p.demand) continue;
    out.push_back(
        {.spec = *p.demand, .node = p.node, .gpus = p.gpus, .do_not_disrupt = p.do_not_disrupt});
  }
  return out;
}

std::set<std::string> InterruptedNodes(const PoolSnapshot& s) {
  std::set<std::string> out;
  for (const NodeObservation& n : s.nodes)
    if (n.interrupted) out.insert(n.name);
  return out;
}

// Pending pods, then the GPU pods still on interrupted nodes: they need
// capacity elsewhere before they are evicted. An evicted (terminating) pod is
// left out: its replacement, if any, shows up as pending.
std::vector<PodSpec> DemandToPlace(const PoolSnapshot& s, int* replacing) {
  std::vector<PodSpec> out;
  for (const PendingPod& p : s.pending)
    out.push_back(p.demand);
  const std::set<std::string> interrupted = InterruptedNodes(s);
  int n = 0;
  for (const PodObservation& p : s.pods) {
    if (!p.demand || p.terminating || interrupted.count(p.node) == 0) continue;
    out.push_back(*p.demand);
    ++n;
  }
  if (replacing != nullptr) *replacing = n;
  return out;
}

}  // namespace

Result<PoolScaleUpPlan> DecideScaleUp(const PoolSnapshot& snapshot, const PoolMemory& memory) {
  return PlanPoolScaleUp({.pool = snapshot.pool,
                          .nodes = PoolNodesOf(snapshot, memory),
                          .pods = BoundPodsOf(snapshot),
                          .pending = DemandToPlace(snapshot, nullptr),
                          .unavailable = &memory.unavailable,
                          .spot_scale_down = !snapshot.spot_scale_down_budgets.empty(),
                          .now = snapshot.now});
}

std::vector<GroupIncrease> IncreasesOnGroups(const PoolSnapshot& snapshot,
                                             const PoolScaleUpPlan& plan) {
  std::vector<GroupIncrease> out;
  for (const TierIncrease& inc : plan.increases) {
    int g = -1;
    for (size_t k = 0; k < snapshot.groups.size(); ++k) {
      if (snapshot.groups[k].instance_type == inc.instance_type &&
          snapshot.groups[k].tier == inc.tier) {
        g = static_cast<int>(k);
      }
    }
    if (g >= 0) out.push_back({g, inc.count});
  }
  return out;
}

Result<PoolPlan> DecidePool(const PoolSnapshot& snapshot, PoolMemory* memory,
                            const DecideOptions& options) {
  if (snapshot.pool == nullptr) return InvalidArgumentError("no pool");
  const NodePoolSpec& spec = *snapshot.pool;
  for (const NodeObservation& n : snapshot.nodes) {
    if (n.group < 0 || n.group >= static_cast<int>(snapshot.groups.size()))
      return InvalidArgumentError("node " + n.name + " has no group of the pool");
  }
  for (const GroupObservation& g : snapshot.groups) {
    if (g.instance_type < 0 || g.instance_type >= static_cast<int>(spec.instance_types.size()))
      return InvalidArgumentError("group " + g.group + " has no instance type of the pool");
  }
  const Clock::TimePoint now = snapshot.now;
  PoolPlan plan;
  PoolSnapshot s = snapshot;  // with the shortages' groups shrunk

  // 1. Shortages the cloud found after a resize: the offering is unavailable
  // for the TTL, and the group stops asking for what it does not have.
  for (size_t g = 0; g < s.groups.size(); ++g) {
    GroupObservation& group = s.groups[g];
    const int have = static_cast<int>(group.instance_ids.size());
    if (!group.launch_shortage || group.desired <= have) continue;
    memory->unavailable.Mark(spec.instance_types[group.instance_type].name, group.tier, now);
    plan.shortages.push_back({static_cast<int>(g), have, *group.launch_shortage});
    group.desired = have;
  }

  // 2. When each node's pods last changed: consolidateAfter counts from there.
  std::map<std::string, std::vector<const PodObservation*>> pods_on;
  for (const PodObservation& p : s.pods)
    pods_on[p.node].push_back(&p);
  for (const NodeObservation& n : s.nodes) {
    std::vector<std::string> keys;
    for (const PodObservation* p : pods_on[n.name])
      keys.push_back(p->key);
    std::sort(keys.begin(), keys.end());
    const std::string fingerprint = StrJoin(keys, ",");
    auto [it, fresh] = memory->changes.try_emplace(n.name, PoolMemory::PodChange{fingerprint, now});
    if (!fresh && it->second.pods != fingerprint) it->second = {fingerprint, now};
  }
  std::erase_if(memory->changes, [&](const auto& kv) {
    return std::none_of(s.nodes.begin(), s.nodes.end(),
                        [&](const NodeObservation& n) { return n.name == kv.first; });
  });

  // 3. Interruption notices: answered once per node.
  for (const NodeObservation& n : s.nodes) {
    if (!n.interrupted || memory->interrupted.count(n.name) > 0) continue;
    const GroupObservation& g = s.groups[n.group];
    memory->unavailable.Mark(spec.instance_types[g.instance_type].name, g.tier, now);
    memory->interrupted.insert(n.name);
    InterruptionReplacement r{
        .node = n.name, .group = n.group, .tier = g.tier, .notice = n.interruption_notice};
    for (const PodObservation* p : pods_on[n.name]) {
      if (!p->demand || p->terminating) continue;
      ++r.pods;
      r.gpus += p->demand->num_gpu * p->demand->gpu_milli / static_cast<double>(kMilliPerGpu);
    }
    plan.interruptions.push_back(std::move(r));
  }
  std::erase_if(memory->interrupted, [&](const std::string& name) {
    return std::none_of(s.nodes.begin(), s.nodes.end(),
                        [&](const NodeObservation& n) { return n.name == name && n.interrupted; });
  });

  std::vector<PoolNode> nodes = PoolNodesOf(s, *memory);
  plan.pending = static_cast<int>(s.pending.size());
  const std::vector<PodSpec> to_place = DemandToPlace(s, &plan.replacing);
  for (const PoolNode& n : nodes) {
    if (n.launching) {
      ++plan.launching;
    } else {
      ++plan.registered;
      if (n.disrupting) ++plan.draining;
    }
  }
  const bool spot_scale_down = !s.spot_scale_down_budgets.empty();
  auto wake_at = [&](Clock::TimePoint t) {
    if (!plan.wake || t < *plan.wake) plan.wake = t;
  };

  // 4. Scale-up, after the batching window; at once for an interruption or
  // a shortage found after a resize (the pods it was for wait again).
  std::vector<std::string> pending_keys;
  for (const PendingPod& p : s.pending)
    pending_keys.push_back(p.key);
  memory->batcher.Observe(pending_keys, now);
  // Planned at the end of a batch, and again each resync while pods a plan
  // already saw still wait (a limit may have lifted, an offering come back);
  // a new pod waits for its batch even after a quiet spell, so a burst is
  // planned as one.
  if (!to_place.empty() &&
      (memory->batcher.Due(now) || !plan.interruptions.empty() || !plan.shortages.empty() ||
       (!memory->batcher.DueAt() && memory->last_plan &&
        now - *memory->last_plan >= options.resync))) {
    memory->last_plan = now;
    GPU_ASSIGN_OR_RETURN(PoolScaleUpPlan up, DecideScaleUp(s, *memory));
    plan.scale_up_planned = true;
    plan.limit = up.limit;
    plan.increases = IncreasesOnGroups(s, up);
    memory->batcher.Flush();
  } else if (auto due = memory->batcher.DueAt()) {
    wake_at(*due);
  }

  // The floor: the cheapest offering that is on grows to it, within maxNodes,
  // its tier's maxNodes and the cost ceiling (the scale-up's limits).
  if (s.floor_nodes > 0) {
    int have = 0;
    std::array<int, kTierCount> tier_have{};
    double hourly = 0;
    auto count = [&](int instance_type, CapacityTier tier, int n) {
      have += n;
      tier_have[TierIndex(tier)] += n;
      hourly += n * spec.instance_types[instance_type].price[TierIndex(tier)].value_or(0);
    };
    for (const PoolNode& n : nodes)
      if (!n.disrupting) count(n.instance_type, n.tier, 1);
    for (const GroupIncrease& inc : plan.increases)
      count(s.groups[inc.group].instance_type, s.groups[inc.group].tier, inc.count);
    int want = std::min(s.floor_nodes, spec.max_nodes) - have;
    int best = -1;
    double best_price = 0;
    for (size_t g = 0; g < s.groups.size(); ++g) {
      const GroupObservation& group = s.groups[g];
      const PoolInstanceType& it = spec.instance_types[group.instance_type];
      const auto price = it.price[TierIndex(group.tier)];
      const PoolTier& tier = spec.tiers[TierIndex(group.tier)];
      if (!tier.enabled || !price ||
          (tier.max_nodes != kUnlimitedNodes &&
           tier_have[TierIndex(group.tier)] >= tier.max_nodes) ||
          memory->unavailable.Unavailable(it.name, group.tier, now) ||
          (spot_scale_down && group.tier == CapacityTier::kSpot)) {
        continue;
      }
      if (best < 0 || *price < best_price) best = static_cast<int>(g), best_price = *price;
    }
    if (want > 0 && best >= 0) {
      const PoolTier& tier = spec.tiers[TierIndex(s.groups[best].tier)];
      if (tier.max_nodes != kUnlimitedNodes)
        want = std::min(want, tier.max_nodes - tier_have[TierIndex(s.groups[best].tier)]);
      if (spec.cost_per_hour_ceiling && best_price > 0) {
        want = std::min(want, static_cast<int>(std::floor(
                                  (*spec.cost_per_hour_ceiling - hourly) / best_price + 1e-9)));
      }
    }
    if (want > 0 && best >= 0) {
      plan.floor_added = want;
      auto same = std::find_if(plan.increases.begin(), plan.increases.end(),
                               [&](const GroupIncrease& inc) { return inc.group == best; });
      if (same != plan.increases.end()) {
        same->count += want;
      } else {
        plan.increases.push_back({best, want});
      }
    }
  }

  // 5. Drains: evict what may go, terminate once nothing is left. The node
  // agent evicts an interrupted node's pods in its own order.
  const std::set<std::string> interrupted = InterruptedNodes(s);
  for (const NodeObservation& n : s.nodes) {
    if (!n.disrupting && !n.interrupted) continue;
    const CapacityTier tier = s.groups[n.group].tier;
    bool waiting = false;
    for (const PodObservation* p : pods_on[n.name]) {
      waiting = true;
      if (n.interrupted || p->do_not_disrupt || p->terminating) continue;
      plan.evictions.push_back({p->key, n.name, tier});
    }
    if (waiting) continue;
    plan.terminations.push_back({n.group, n.name, n.instance_id, tier, n.interrupted});
  }

  // 6. Consolidation, not while pods wait (unless a Budget asks for spot to go).
  if (to_place.empty() || spot_scale_down) {
    NodePoolSpec floored = spec;
    floored.min_nodes = std::max(spec.min_nodes, std::min(s.floor_nodes, spec.max_nodes));
    ScaleDownInput down{
        .pool = &floored, .spot_scale_down = spot_scale_down, .now = now, .now_unix = s.now_unix};
    for (const PoolNode& n : nodes)
      if (interrupted.count(n.name) == 0) down.nodes.push_back(n);
    for (PoolPod& p : BoundPodsOf(s))
      if (interrupted.count(p.node) == 0) down.pods.push_back(std::move(p));
    GPU_ASSIGN_OR_RETURN(PoolScaleDownPlan disrupt, PlanPoolScaleDown(down));
    std::set<std::string> cordoned;
    for (const NodeDisruption& d : disrupt.disrupt) {
      auto it = std::find_if(s.nodes.begin(), s.nodes.end(),
                             [&](const NodeObservation& n) { return n.name == d.node; });
      if (it == s.nodes.end()) continue;
      std::string why(DisruptionReasonName(d.reason));
      if (d.reason == DisruptionReason::kSpotScaleDown)
        why += " (" + StrJoin(s.spot_scale_down_budgets, ", ") + ")";
      plan.cordons.push_back({d.node, s.groups[it->group].tier, d.reason, std::move(why)});
      cordoned.insert(d.node);
    }
    // Wake when the next node settles past consolidateAfter.
    if (spec.consolidate_after) {
      for (const PoolNode& n : nodes) {
        if (n.launching || n.disrupting || cordoned.count(n.name) > 0) continue;
        const Clock::TimePoint settles = n.last_pod_change + *spec.consolidate_after;
        if (settles > now) wake_at(settles);
      }
    }
  }
  return plan;
}

Clock::Duration RequeueAfter(const PoolPlan& plan, bool scaled_up, int draining,
                             Clock::TimePoint now, const DecideOptions& options) {
  std::optional<Clock::TimePoint> wake = plan.wake;
  if (plan.launching > 0 || draining > 0 || scaled_up) {
    const Clock::TimePoint soon = now + options.active;
    if (!wake || soon < *wake) wake = soon;
  }
  Clock::Duration after = options.resync;
  if (wake) after = std::clamp<Clock::Duration>(*wake - now, std::chrono::milliseconds(50), after);
  return after;
}

PoolTotals TotalsOf(const PoolSnapshot& s) {
  PoolTotals t;
  for (const NodeObservation& n : s.nodes) {
    const GroupObservation& g = s.groups[n.group];
    ++t.registered;
    ++t.nodes[TierIndex(g.tier)];
    t.hourly += s.pool->instance_types[g.instance_type].price[TierIndex(g.tier)].value_or(0);
  }
  for (const GroupObservation& g : s.groups) {
    t.desired[TierIndex(g.tier)] += g.desired;
    t.groups[TierIndex(g.tier)].push_back(g.group);
    t.desired_total += g.desired;
  }
  return t;
}

}  // namespace gpu_autoscaler::autoscale
