// File: src/cost/attribution.h
//
// Who spent what: sums CostSamples over a time window, grouped by namespace,
// team, project, experiment, pod, node, GPU model or capacity tier. Samples
// without a value for the chosen key land in "<unlabelled>"; node idle rows
// land in "<idle>" (except when grouping by node, model or tier, where idle
// capacity has a real key).
//
//   CostAggregator by_team(GroupBy::kTeam, {.from = t0, .until = t1});
//   by_team.Add(samples);                       // any number of batches
//   for (const AttributionRow& row : by_team.Rows())   // largest total first
//     print(row.key, row.total());
//
// Thread-safety: a CostAggregator is not thread-safe; Rows() is const.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "cost/sample.h"

namespace gpu_autoscaler::cost {

inline constexpr std::string_view kUnlabelled = "<unlabelled>";
inline constexpr std::string_view kIdleKey = "<idle>";

enum class GroupBy { kNamespace, kTeam, kProject, kExperiment, kPod, kNode, kGpuModel, kTier };

// "namespace", "team", "project", "experiment", "pod", "node", "model", "tier".
std::string_view GroupByName(GroupBy by);
Result<GroupBy> ParseGroupBy(std::string_view name);

// Half-open [from, until) in Unix seconds; the default covers all time.
struct CostWindow {
  int64_t from = std::numeric_limits<int64_t>::min();
  int64_t until = std::numeric_limits<int64_t>::max();
  bool Contains(int64_t second) const { return second >= from && second < until; }
};

struct AttributionRow {
  std::string key{};
  double gpu_cost = 0;
  double cpu_cost = 0;
  double memory_cost = 0;
  double idle_cost = 0;  // shared-out idle (pod rows) — idle rows count in gpu/cpu/memory
  double usage_cost = 0;
  double gpu_seconds = 0;  // sum of gpu_share over the samples: GPU-seconds held
  int64_t samples = 0;
  double total() const { return gpu_cost + cpu_cost + memory_cost + idle_cost; }
};

// The key a sample groups under; for kPod the pod uid (CostAggregator labels
// pod rows "ns/name" instead).
std::string_view GroupKey(const CostSample& sample, GroupBy by);

class CostAggregator {
 public:
  explicit CostAggregator(GroupBy by, CostWindow window = {});

  void Add(std::span<const CostSample> samples);
  void Add(const CostSample& sample);

  // Rows sorted by total descending, then key.
  std::vector<AttributionRow> Rows() const;
  // Sum over every row.
  AttributionRow Total() const;

 private:
  GroupBy by_;
  CostWindow window_;
  std::map<std::string, AttributionRow, std::less<>> rows_{};
};

}  // namespace gpu_autoscaler::cost
