#include "autoscale/usage_balance.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace gpu_autoscaler::autoscale {
namespace {

std::string Percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f%%", v);
  return buf;
}

double UsageOf(const UsagePod& pod, const std::string& resource) {
  if (resource == kUsagePodsResource) return 1;
  auto it = pod.usage.find(resource);
  return it == pod.usage.end() ? 0 : it->second;
}

}  // namespace

Status ValidateUsageThresholds(const UsageThresholds& t) {
  if (t.thresholds.empty() || t.target_thresholds.empty()) {
    return InvalidArgumentError("thresholds and targetThresholds must both list resources");
  }
  for (const auto& [resource, value] : t.thresholds) {
    if (!t.target_thresholds.count(resource)) {
      return InvalidArgumentError("thresholds lists " + resource +
                                  " but targetThresholds does not; both must list the same "
                                  "resources");
    }
  }
  for (const auto& [resource, value] : t.target_thresholds) {
    if (!t.thresholds.count(resource)) {
      return InvalidArgumentError("targetThresholds lists " + resource +
                                  " but thresholds does not; both must list the same resources");
    }
  }
  for (const auto* map : {&t.thresholds, &t.target_thresholds}) {
    for (const auto& [resource, value] : *map) {
      if (!(value >= 0 && value <= 100)) {
        return InvalidArgumentError(
            std::string(map == &t.thresholds ? "thresholds" : "targetThresholds") + "." + resource +
            " is " + Percent(value) + "; percentages must be in [0, 100]");
      }
    }
  }
  for (const auto& [resource, low] : t.thresholds) {
    const double high = t.target_thresholds.at(resource);
    if (low > high) {
      return InvalidArgumentError("thresholds." + resource + " (" + Percent(low) +
                                  ") is above targetThresholds." + resource + " (" + Percent(high) +
                                  "): no node could be both under one and not "
                                  "over the other");
    }
  }
  return Status::Ok();
}

UsageBalancePlan PlanUsageBalance(const std::vector<UsageNode>& nodes,
                                  const std::vector<UsagePod>& pods, const UsageThresholds& t,
                                  const UsageBalanceOptions& options) {
  UsageBalancePlan plan;
  const int n = static_cast<int>(nodes.size());
  std::vector<std::map<std::string, double>> used(n);  // absolute usage per node
  std::vector<bool> measured(n, true);
  std::vector<std::vector<int>> pods_on(n);
  for (int p = 0; p < static_cast<int>(pods.size()); ++p) {
    const UsagePod& pod = pods[p];
    if (pod.node < 0 || pod.node >= n) continue;
    pods_on[pod.node].push_back(p);
    for (const auto& [resource, target] : t.target_thresholds) {
      if (resource != kUsagePodsResource && !pod.usage.count(resource)) {
        if (measured[pod.node]) {
          plan.unmeasured.push_back(nodes[pod.node].name + ": pod " + pod.ns + "/" + pod.name +
                                    " has no " + resource + " usage");
        }
        measured[pod.node] = false;
      }
      used[pod.node][resource] += UsageOf(pod, resource);
    }
  }
  plan.utilization.resize(n);
  auto percent = [&](int node, const std::string& resource) {
    auto it = nodes[node].allocatable.find(resource);
    const double capacity = it == nodes[node].allocatable.end() ? 0 : it->second;
    if (capacity <= 0) return 0.0;
    auto u = used[node].find(resource);
    return 100.0 * (u == used[node].end() ? 0 : u->second) / capacity;
  };
  auto over_resource = [&](int node) -> std::string {
    for (const auto& [resource, target] : t.target_thresholds) {
      if (percent(node, resource) > target) return resource;
    }
    return "";
  };
  for (int i = 0; i < n; ++i) {
    if (!measured[i]) continue;
    bool under = true;
    for (const auto& [resource, low] : t.thresholds) {
      plan.utilization[i][resource] = percent(i, resource);
      under = under && percent(i, resource) < low;
    }
    if (under) {
      plan.underutilized.push_back(i);
    } else if (!over_resource(i).empty()) {
      plan.overutilized.push_back(i);
    }
  }
  if (plan.underutilized.empty()) {
    plan.skipped = "no underutilized node";
    return plan;
  }
  if (plan.overutilized.empty()) {
    plan.skipped = "no overutilized node";
    return plan;
  }
  // Headroom on the underutilized nodes, per resource, absolute.
  std::map<std::string, double> headroom;
  for (int i : plan.underutilized) {
    for (const auto& [resource, target] : t.target_thresholds) {
      auto it = nodes[i].allocatable.find(resource);
      const double capacity = it == nodes[i].allocatable.end() ? 0 : it->second;
      headroom[resource] += std::max(0.0, capacity * target / 100.0 - used[i][resource]);
    }
  }
  auto has_headroom = [&] {
    for (const auto& [resource, room] : headroom)
      if (room <= 0) return false;
    return true;
  };
  // Most used first: the sum of percentages over the listed resources.
  auto load = [&](int node) {
    double s = 0;
    for (const auto& [resource, target] : t.target_thresholds)
      s += percent(node, resource);
    return s;
  };
  std::stable_sort(plan.overutilized.begin(), plan.overutilized.end(),
                   [&](int a, int b) { return load(a) > load(b); });
  int total = 0;
  for (int node : plan.overutilized) {
    std::vector<int> order = pods_on[node];
    auto pod_load = [&](int p) {
      double s = 0;
      for (const auto& [resource, target] : t.target_thresholds) {
        auto it = nodes[node].allocatable.find(resource);
        if (it != nodes[node].allocatable.end() && it->second > 0)
          s += UsageOf(pods[p], resource) / it->second;
      }
      return s;
    };
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      if (pods[a].priority != pods[b].priority) return pods[a].priority < pods[b].priority;
      return pod_load(a) > pod_load(b);
    });
    int on_node = 0;
    for (int p : order) {
      if (!pods[p].evictable) continue;
      const std::string over = over_resource(node);
      if (over.empty() || !has_headroom()) break;
      if (options.max_per_node > 0 && on_node >= options.max_per_node) break;
      if (options.max_total > 0 && total >= options.max_total) return plan;
      plan.evictions.push_back({p, node,
                                "node " + nodes[node].name + " is over its target: " + over + " " +
                                    Percent(percent(node, over)) + " > " +
                                    Percent(t.target_thresholds.at(over)) + " (measured usage)"});
      for (const auto& [resource, target] : t.target_thresholds) {
        const double u = UsageOf(pods[p], resource);
        used[node][resource] -= u;
        headroom[resource] -= u;
      }
      ++on_node;
      ++total;
    }
  }
  return plan;
}

}  // namespace gpu_autoscaler::autoscale
