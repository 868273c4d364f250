#include "cost/attribution.h"

#include <algorithm>

#include "cost/pricing.h"

namespace gpu_autoscaler::cost {

std::string_view GroupByName(GroupBy by) {
  switch (by) {
    case GroupBy::kNamespace:
      return "namespace";
    case GroupBy::kTeam:
      return "team";
    case GroupBy::kProject:
      return "project";
    case GroupBy::kExperiment:
      return "experiment";
    case GroupBy::kPod:
      return "pod";
    case GroupBy::kNode:
      return "node";
    case GroupBy::kGpuModel:
      return "model";
    case GroupBy::kTier:
      return "tier";
  }
  return "namespace";
}

Result<GroupBy> ParseGroupBy(std::string_view name) {
  for (GroupBy by : {GroupBy::kNamespace, GroupBy::kTeam, GroupBy::kProject, GroupBy::kExperiment,
                     GroupBy::kPod, GroupBy::kNode, GroupBy::kGpuModel, GroupBy::kTier}) {
    if (name == GroupByName(by)) return by;
  }
  if (name == "ns") return GroupBy::kNamespace;
  if (name == "gpu-model") return GroupBy::kGpuModel;
  return InvalidArgumentError("unknown grouping \"" + std::string(name) +
                              "\" (want namespace, team, project, experiment, pod, node, model "
                              "or tier)");
}

namespace {
std::string_view OrUnlabelled(const std::string& v) {
  return v.empty() ? kUnlabelled : std::string_view(v);
}
}  // namespace

std::string_view GroupKey(const CostSample& s, GroupBy by) {
  switch (by) {
    case GroupBy::kNode:
      return OrUnlabelled(s.node);
    case GroupBy::kTier:
      return CapacityTierName(s.tier);
    case GroupBy::kGpuModel:
      return s.gpu_model.empty() ? std::string_view("<no gpu>") : std::string_view(s.gpu_model);
    default:
      break;
  }
  if (s.idle) return kIdleKey;
  switch (by) {
    case GroupBy::kNamespace:
      return OrUnlabelled(s.ns);
    case GroupBy::kTeam:
      return OrUnlabelled(s.team);
    case GroupBy::kProject:
      return OrUnlabelled(s.project);
    case GroupBy::kExperiment:
      return OrUnlabelled(s.experiment);
    case GroupBy::kPod:
      // Pod names repeat across namespaces; uid is unique but unreadable.
      return OrUnlabelled(s.pod_uid);
    default:
      return kUnlabelled;
  }
}

CostAggregator::CostAggregator(GroupBy by, CostWindow window) : by_(by), window_(window) {}

void CostAggregator::Add(std::span<const CostSample> samples) {
  for (const CostSample& s : samples)
    Add(s);
}

void CostAggregator::Add(const CostSample& s) {
  if (!window_.Contains(s.second)) return;
  std::string_view key = GroupKey(s, by_);
  std::string display;
  if (by_ == GroupBy::kPod && !s.idle) {
    display = s.ns.empty() && s.pod_name.empty() ? std::string(key) : s.ns + "/" + s.pod_name;
    key = display;
  }
  auto it = rows_.find(key);
  if (it == rows_.end()) {
    it = rows_.emplace(std::string(key), AttributionRow{}).first;
    it->second.key = std::string(key);
  }
  AttributionRow& row = it->second;
  row.gpu_cost += s.gpu_cost;
  row.cpu_cost += s.cpu_cost;
  row.memory_cost += s.memory_cost;
  row.idle_cost += s.idle_cost;
  row.usage_cost += s.usage_cost;
  row.gpu_seconds += s.gpu_share;
  ++row.samples;
}

std::vector<AttributionRow> CostAggregator::Rows() const {
  std::vector<AttributionRow> out;
  out.reserve(rows_.size());
  for (const auto& [key, row] : rows_)
    out.push_back(row);
  std::stable_sort(out.begin(), out.end(), [](const AttributionRow& a, const AttributionRow& b) {
    if (a.total() != b.total()) return a.total() > b.total();
    return a.key < b.key;
  });
  return out;
}

AttributionRow CostAggregator::Total() const {
  AttributionRow t;
  t.key = "total";
  for (const auto& [key, row] : rows_) {
    t.gpu_cost += row.gpu_cost;
    t.cpu_cost += row.cpu_cost;
    t.memory_cost += row.memory_cost;
    t.idle_cost += row.idle_cost;
    t.usage_cost += row.usage_cost;
    t.gpu_seconds += row.gpu_seconds;
    t.samples += row.samples;
  }
  return t;
}

}  // namespace gpu_autoscaler::cost
