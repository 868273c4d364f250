// File: src/autoscale/usage_balance.h
//
// The descheduler's LowNodeUtilization, measured on real usage instead of
// requests. Per resource (cpu, memory, nvidia.com/gpu, pods) a node's
// utilisation is 100 × Σ usage of its pods / allocatable. A node is
// underutilised when it is below `thresholds` for EVERY listed resource and
// overutilised when it is above `target_thresholds` for ANY; nodes in between
// are left alone. Pods are evicted from overutilised nodes (most used node
// first; on a node, lowest priority first, then highest usage) while the node
// is still over and the underutilised nodes still have headroom (Σ of
// target − usage) for every resource. Nothing happens when either set is empty.
//
// Missing data never causes an eviction: a node with a pod whose usage is
// missing for a listed resource is "unmeasured" (neither over nor under,
// nothing evicted from it, no headroom counted).
//
//   UsageThresholds t{.thresholds = {{"nvidia.com/gpu", 20}},
//                     .target_thresholds = {{"nvidia.com/gpu", 70}}};
//   if (Status s = ValidateUsageThresholds(t); !s.ok()) ... condition ...
//   UsageBalancePlan plan = PlanUsageBalance(nodes, pods, t, {});
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::autoscale {

inline constexpr std::string_view kUsagePodsResource = "pods";

struct UsageThresholds {
  std::map<std::string, double> thresholds;         // percent, per resource
  std::map<std::string, double> target_thresholds;  // percent, per resource
};

// The descheduler's rules: both maps non-empty with the same resources,
// every value in [0, 100], thresholds[r] <= target_thresholds[r]. The error
// names the first offending resource.
Status ValidateUsageThresholds(const UsageThresholds& t);

struct UsageNode {
  std::string name;
  std::map<std::string, double> allocatable;  // "pods" is the pod capacity
};

struct UsagePod {
  std::string ns;
  std::string name;
  int node = -1;  // index into the nodes
  int priority = 0;
  bool evictable = true;
  // Measured usage per resource (cpu millicores, memory bytes, GPUs busy);
  // a listed resource absent here means "not measured". "pods" is implied.
  std::map<std::string, double> usage;
};

struct UsageBalanceOptions {
  int max_per_node = 0;  // evictions per node in this run; 0 = no limit
  int max_total = 0;     // 0 = no limit
};

struct UsageEviction {
  int pod = -1;  // index into the pods
  int node = -1;
  std::string reason;  // "node n1 is over its target: nvidia.com/gpu 95% > 70%"
};

struct UsageBalancePlan {
  std::vector<UsageEviction> evictions;
  std::vector<int> underutilized;  // node indices
  std::vector<int> overutilized;
  // "node: pod ns/name has no nvidia.com/gpu usage" for every unmeasured node.
  std::vector<std::string> unmeasured;
  std::vector<std::map<std::string, double>> utilization;  // per node, percent; empty if unmeasured
  std::string skipped;  // why nothing was planned ("no underutilized node"), or ""
};

// `thresholds` must be valid (ValidateUsageThresholds).
UsageBalancePlan PlanUsageBalance(const std::vector<UsageNode>& nodes,
                                  const std::vector<UsagePod>& pods,
                                  const UsageThresholds& thresholds,
                                  const UsageBalanceOptions& options);

}  // namespace gpu_autoscaler::autoscale
