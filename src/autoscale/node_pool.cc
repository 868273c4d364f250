#include "autoscale/node_pool.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "autoscale/cron.h"
#include "autoscale/node_pool_internal.h"

namespace gpu_autoscaler::autoscale {

std::string_view TierKey(CapacityTier t) {
  switch (t) {
    case CapacityTier::kSpot:
      return "spot";
    case CapacityTier::kOnDemand:
      return "onDemand";
    case CapacityTier::kReserved:
      return "reserved";
  }
  return "unknown";
}

std::optional<CapacityTier> TierFromKey(std::string_view key) {
  for (CapacityTier t : {CapacityTier::kReserved, CapacityTier::kSpot, CapacityTier::kOnDemand})
    if (TierKey(t) == key) return t;
  return std::nullopt;
}

Result<DisruptionBudget> ParseBudgetNodes(std::string_view text) {
  DisruptionBudget b;
  b.percent = !text.empty() && text.back() == '%';
  std::string_view digits = b.percent ? text.substr(0, text.size() - 1) : text;
  int value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value < 0 ||
      (b.percent && (value > 100 || digits.size() > 3))) {
    return InvalidArgumentError("disruption budget nodes \"" + std::string(text) +
                                "\": want a count (\"3\") or a percent (\"10%\")");
  }
  b.nodes = value;
  return b;
}

std::vector<std::string> ValidateNodePool(const NodePoolSpec& pool) {
  std::vector<std::string> problems;
  if (pool.min_nodes < 0) problems.push_back("minNodes is negative");
  if (pool.min_nodes > pool.max_nodes) {
    problems.push_back("minNodes " + std::to_string(pool.min_nodes) + " > maxNodes " +
                       std::to_string(pool.max_nodes));
  }
  if (pool.instance_types.empty()) problems.push_back("no instanceTypes");
  std::set<std::string> names;
  for (const PoolInstanceType& it : pool.instance_types) {
    if (it.name.empty()) problems.push_back("an instance type has no name");
    if (!names.insert(it.name).second) problems.push_back("instance type " + it.name + " twice");
    // Required by the CRD too; without it no pod's GPU can be matched (found
    // by gpu_node_pool_spec_fuzz: the planner then failed on a valid pool).
    if (it.gpu_model.empty()) problems.push_back("instance type " + it.name + " has no gpuModel");
    if (it.gpu_count < 1 || it.gpu_count > kMaxGpusPerNode) {
      problems.push_back("instance type " + it.name + ": gpuCount must be 1.." +
                         std::to_string(kMaxGpusPerNode));
    }
    if (it.cpu_milli < 0 || it.memory_mib < 0 || it.max_pods < 1)
      problems.push_back("instance type " + it.name + ": negative cpu, memory or maxPods");
    for (int t = 0; t < kTierCount; ++t) {
      if (it.price[t] && !(std::isfinite(*it.price[t]) && *it.price[t] >= 0)) {
        problems.push_back("instance type " + it.name + " has an invalid price");
      }
      if (pool.tiers[t].enabled && !it.price[t]) {
        problems.push_back("instance type " + it.name + " has no " +
                           std::string(TierKey(static_cast<CapacityTier>(t))) + " price");
      }
    }
  }
  bool any_tier = false;
  for (int t = 0; t < kTierCount; ++t) {
    const PoolTier& tier = pool.tiers[t];
    any_tier = any_tier || tier.enabled;
    if (tier.enabled && !(std::isfinite(tier.weight) && tier.weight > 0)) {
      problems.push_back(std::string(TierKey(static_cast<CapacityTier>(t))) +
                         " weight must be > 0");
    }
  }
  if (!any_tier) problems.push_back("no tier has a provider group");
  if (pool.cost_per_hour_ceiling &&
      !(std::isfinite(*pool.cost_per_hour_ceiling) && *pool.cost_per_hour_ceiling >= 0)) {
    problems.push_back("costPerHourCeiling must be a non-negative number");
  }
  if (!(pool.utilization_threshold >= 0 && pool.utilization_threshold <= 1))
    problems.push_back("utilizationThreshold must be within 0..1");
  for (const DisruptionBudget& b : pool.budgets) {
    if (b.schedule.empty() != (b.duration_seconds == 0))
      problems.push_back("a disruption budget needs schedule and duration together");
    if (b.duration_seconds > kMaxBudgetWindowSeconds)
      problems.push_back("a disruption budget's duration is over 720h");
    if (!b.schedule.empty()) {
      auto cron = CronSchedule::Parse(b.schedule);
      if (!cron.ok()) problems.push_back(cron.error().message());
    }
  }
  return problems;
}

// ---- PendingBatcher ----

void PendingBatcher::Observe(const std::vector<std::string>& pending_keys, Clock::TimePoint now) {
  std::set<std::string> current(pending_keys.begin(), pending_keys.end());
  for (const std::string& key : current) {
    if (seen_.count(key) > 0) continue;
    if (!first_) first_ = now;
    last_ = now;
  }
  seen_ = std::move(current);  // pods no longer pending leave the batch
  if (seen_.empty()) first_.reset(), last_.reset();
}

std::optional<Clock::TimePoint> PendingBatcher::DueAt() const {
  if (!first_) return std::nullopt;
  return std::min(*last_ + idle_, *first_ + max_);
}

bool PendingBatcher::Due(Clock::TimePoint now) const {
  auto at = DueAt();
  return at && now >= *at;
}

void PendingBatcher::Flush() {
  first_.reset();
  last_.reset();
}

// ---- UnavailableOfferings ----

void UnavailableOfferings::Mark(const std::string& instance_type, CapacityTier tier,
                                Clock::TimePoint now, Clock::Duration ttl) {
  until_[{instance_type, tier}] = now + ttl;
}

bool UnavailableOfferings::Unavailable(const std::string& instance_type, CapacityTier tier,
                                       Clock::TimePoint now) const {
  auto it = until_.find({instance_type, tier});
  return it != until_.end() && now < it->second;
}

std::vector<std::pair<std::pair<std::string, CapacityTier>, Clock::TimePoint>>
UnavailableOfferings::Live(Clock::TimePoint now) const {
  std::vector<std::pair<std::pair<std::string, CapacityTier>, Clock::TimePoint>> out;
  for (const auto& [key, until] : until_)
    if (now < until) out.emplace_back(key, until);
  return out;
}

// ---- Scale-up ----

std::string_view ScaleUpLimitName(ScaleUpLimit l) {
  switch (l) {
    case ScaleUpLimit::kNone:
      return "";
    case ScaleUpLimit::kPoolMax:
      return "MaxNodes";
    case ScaleUpLimit::kTierMax:
      return "TierMaxNodes";
    case ScaleUpLimit::kCostCeiling:
      return "CostCeiling";
  }
  return "";
}

int PoolScaleUpPlan::new_nodes() const {
  int n = 0;
  for (const TierIncrease& inc : increases)
    n += inc.count;
  return n;
}

namespace internal {

NodeSpec NodeSpecOf(const PoolInstanceType& it, const std::string& name) {
  NodeSpec spec;
  spec.name = name;
  spec.cpu_milli = it.cpu_milli;
  spec.memory_mib = it.memory_mib;
  spec.max_pods = it.max_pods;
  spec.gpu_model = it.gpu_model;
  spec.gpu_count = it.gpu_count;
  return spec;
}

Status BuildCluster(const NodePoolSpec& pool, const std::vector<PoolNode>& nodes,
                    const std::vector<PoolPod>& pods,
                    const std::function<bool(const PoolNode&)>& keep, ClusterState* cluster,
                    std::map<std::string, int>* index) {
  for (const PoolNode& n : nodes) {
    if (!keep(n)) continue;
    if (n.instance_type < 0 || n.instance_type >= static_cast<int>(pool.instance_types.size()))
      return InvalidArgumentError("node " + n.name + " has no instance type of the pool");
    GPU_RETURN_IF_ERROR(cluster->AddNode(NodeSpecOf(pool.instance_types[n.instance_type], n.name)));
    (*index)[n.name] = cluster->node_count() - 1;
  }
  for (const PoolPod& p : pods) {
    auto it = index->find(p.node);
    if (it == index->end()) continue;
    const PodRequest req = cluster->Resolve(p.spec);
    Placement placement{.node = it->second, .gpus = p.gpus};
    if (!cluster->Place(req, placement).ok()) {
      if (!cluster->Fits(it->second, req)) continue;
      placement.gpus = cluster->BestGpus(it->second, req);
      (void)cluster->Place(req, placement);
    }
  }
  return Status::Ok();
}

}  // namespace internal

Result<PoolScaleUpPlan> PlanPoolScaleUp(const ScaleUpInput& in) {
  if (in.pool == nullptr) return InvalidArgumentError("no pool");
  const NodePoolSpec& pool = *in.pool;
  if (auto problems = ValidateNodePool(pool); !problems.empty())
    return InvalidArgumentError("pool " + pool.name + ": " + problems.front());

  ClusterState cluster;
  std::map<std::string, int> index;
  GPU_RETURN_IF_ERROR(internal::BuildCluster(
      pool, in.nodes, in.pods, [](const PoolNode& n) { return !n.disrupting; }, &cluster, &index));

  int pool_left = pool.max_nodes;
  std::array<int, kTierCount> tier_left{};
  for (int t = 0; t < kTierCount; ++t)
    tier_left[t] = pool.tiers[t].max_nodes;
  double hourly = 0;
  for (const PoolNode& n : in.nodes) {
    if (n.disrupting) continue;
    --pool_left;
    const int t = TierIndex(n.tier);
    if (tier_left[t] != kUnlimitedNodes) tier_left[t] = std::max(0, tier_left[t] - 1);
    hourly += pool.instance_types[n.instance_type].price[t].value_or(0);
  }
  std::array<bool, kTierCount> tier_on{};
  for (int t = 0; t < kTierCount; ++t) {
    tier_on[t] = pool.tiers[t].enabled && tier_left[t] != 0 &&
                 !(in.spot_scale_down && t == TierIndex(CapacityTier::kSpot));
  }

  PoolScaleUpPlan out;
  std::map<std::pair<int, int>, int> added;  // (instance type, tier) -> nodes
  std::vector<int> remaining(in.pending.size());
  for (size_t i = 0; i < remaining.size(); ++i)
    remaining[i] = static_cast<int>(i);
  ScaleUpOptions options;
  for (int t = 0; t < kTierCount; ++t)
    options.tier_weights[t] = pool.tiers[t].enabled ? pool.tiers[t].weight : 1.0;

  // Each round plans the remaining pods; nodes a cross-offering limit refuses
  // are dropped, that limit's tier (or price) is switched off, and their pods
  // are planned again. A round without refusals ends the loop.
  for (int round = 0; round < 8 && !remaining.empty(); ++round) {
    const bool pool_full = pool_left <= 0;
    const double budget_left = pool.cost_per_hour_ceiling
                                   ? *pool.cost_per_hour_ceiling - hourly - out.added_hourly_cost
                                   : INFINITY;
    std::vector<Offering> offerings;
    std::vector<int> offering_type;
    for (size_t i = 0; i < pool.instance_types.size(); ++i) {
      const PoolInstanceType& it = pool.instance_types[i];
      Offering o{.instance_type = it.name,
                 .gpu_model = it.gpu_model,
                 .gpu_count = it.gpu_count,
                 .cpu_milli = it.cpu_milli,
                 .memory_mib = it.memory_mib,
                 .max_pods = it.max_pods,
                 .max_nodes = pool_left};
      bool any = false;
      for (int t = 0; t < kTierCount; ++t) {
        const auto tier = static_cast<CapacityTier>(t);
        if (!tier_on[t] || !it.price[t] || *it.price[t] > budget_left) continue;
        if (in.unavailable && in.unavailable->Unavailable(it.name, tier, in.now)) continue;
        o.tiers[t] = {.price_per_hour = it.price[t], .max_nodes = tier_left[t]};
        any = true;
      }
      if (any && !pool_full) {
        offerings.push_back(std::move(o));
        offering_type.push_back(static_cast<int>(i));
      }
    }
    std::vector<PodSpec> specs;
    for (int p : remaining)
      specs.push_back(in.pending[p]);
    GPU_ASSIGN_OR_RETURN(ScaleUpPlan plan, PlanScaleUp(cluster, specs, offerings, options));

    std::vector<int> carried;
    for (const UnplacedPod& u : plan.unplaced) {
      // With the pool full, or for a pod an earlier round placed on a node a
      // limit refused, the limit is the reason.
      out.unplaced.push_back(
          {remaining[u.pod], pool_full || round > 0 ? UnplacedReason::kLimitsExhausted : u.reason});
    }
    if (pool_full && !plan.unplaced.empty() && out.limit == ScaleUpLimit::kNone)
      out.limit = ScaleUpLimit::kPoolMax;
    std::vector<bool> accepted(plan.new_nodes.size(), false);
    ScaleUpLimit refused = ScaleUpLimit::kNone;
    for (size_t k = 0; k < plan.new_nodes.size(); ++k) {
      const NewNode& n = plan.new_nodes[k];
      const int t = TierIndex(n.tier);
      ScaleUpLimit why = ScaleUpLimit::kNone;
      if (pool_left <= 0) {
        why = ScaleUpLimit::kPoolMax;
      } else if (tier_left[t] == 0) {
        why = ScaleUpLimit::kTierMax;
      } else if (pool.cost_per_hour_ceiling && hourly + out.added_hourly_cost + n.price_per_hour >
                                                   *pool.cost_per_hour_ceiling + 1e-9) {
        why = ScaleUpLimit::kCostCeiling;
      }
      if (why != ScaleUpLimit::kNone) {
        if (refused == ScaleUpLimit::kNone) refused = why;
        if (why == ScaleUpLimit::kTierMax) tier_on[t] = false;
        continue;
      }
      accepted[k] = true;
      --pool_left;
      if (tier_left[t] != kUnlimitedNodes) --tier_left[t];
      if (tier_left[t] == 0) tier_on[t] = false;
      const int type = offering_type[n.offering];
      ++added[{type, t}];
      out.added_hourly_cost += n.price_per_hour;
      out.new_gpus += pool.instance_types[type].gpu_count;
      GPU_RETURN_IF_ERROR(cluster.AddNode(internal::NodeSpecOf(
          pool.instance_types[type], "new-" + std::to_string(round) + "-" + std::to_string(k))));
      index[n.name] = cluster.node_count() - 1;
    }
    for (const PodAssignment& a : plan.assignments) {
      if (!a.new_node || accepted[a.node]) {
        const int node = a.new_node ? index[plan.new_nodes[a.node].name] : a.node;
        auto placed = cluster.Place(cluster.Resolve(specs[a.pod]), {.node = node, .gpus = a.gpus});
        if (!placed.ok()) return placed.error();
      } else {
        carried.push_back(remaining[a.pod]);
      }
    }
    remaining = std::move(carried);
    if (refused != ScaleUpLimit::kNone && out.limit == ScaleUpLimit::kNone) out.limit = refused;
  }
  for (int p : remaining)
    out.unplaced.push_back({p, UnplacedReason::kLimitsExhausted});
  std::sort(out.unplaced.begin(), out.unplaced.end(),
            [](const UnplacedPod& a, const UnplacedPod& b) { return a.pod < b.pod; });
  // A limit that left nothing unplaced is not worth reporting.
  bool limited = false;
  for (const UnplacedPod& u : out.unplaced)
    limited = limited || u.reason == UnplacedReason::kLimitsExhausted;
  if (!limited) {
    out.limit = ScaleUpLimit::kNone;
  } else if (out.limit == ScaleUpLimit::kNone) {
    // PlanScaleUp itself ran out of a limit we passed it: name the binding one.
    out.limit = pool_left <= 0               ? ScaleUpLimit::kPoolMax
                : pool.cost_per_hour_ceiling ? ScaleUpLimit::kCostCeiling
                                             : ScaleUpLimit::kTierMax;
  }
  for (const auto& [key, count] : added)
    out.increases.push_back({key.first, static_cast<CapacityTier>(key.second), count});
  return out;
}

}  // namespace gpu_autoscaler::autoscale
