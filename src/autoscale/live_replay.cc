#include "autoscale/live_replay.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>

namespace gpu_autoscaler::autoscale {

Result<LiveReplayPlan> PlanLiveReplay(std::span<const TimedPod> pods, const ReplaySelection& sel) {
  if (sel.window < 0) return InvalidArgumentError("the replay window must not be negative");
  if (sel.limit < 0) return InvalidArgumentError("the pod limit must not be negative");
  if (pods.empty()) return InvalidArgumentError("the pod list is empty");
  std::vector<int> order(pods.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return pods[a].creation_time < pods[b].creation_time; });
  LiveReplayPlan plan;
  plan.start = sel.start >= 0 ? sel.start : pods[order.front()].creation_time;
  const int64_t window_end =
      sel.window > 0 ? plan.start + sel.window : std::numeric_limits<int64_t>::max();
  for (int i : order) {
    const TimedPod& p = pods[i];
    // Alive at some instant of [start, window_end).
    if (p.creation_time >= window_end || p.deletion_time <= plan.start) continue;
    if (sel.limit > 0 && static_cast<int>(plan.pods.size()) == sel.limit) break;
    plan.pods.push_back({.pod = p,
                         .arrive = std::max(p.creation_time, plan.start),
                         .depart = std::min(p.deletion_time, window_end)});
  }
  if (plan.pods.empty()) {
    return InvalidArgumentError("no pod of the trace is alive in the chosen window (start " +
                                std::to_string(plan.start) + ")");
  }
  for (int i = 0; i < static_cast<int>(plan.pods.size()); ++i) {
    plan.events.push_back({plan.pods[i].arrive, ReplayEvent::Kind::kArrive, i});
    plan.events.push_back({plan.pods[i].depart, ReplayEvent::Kind::kDepart, i});
  }
  std::sort(plan.events.begin(), plan.events.end(), [](const ReplayEvent& a, const ReplayEvent& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.kind != b.kind) return a.kind < b.kind;
    return a.pod < b.pod;
  });
  plan.end = plan.events.back().time;
  return plan;
}

std::span<const ReplayEvent> ReplayCursor::Due(double t) {
  const size_t first = next_;
  while (next_ < events_.size() && static_cast<double>(events_[next_].time) <= t)
    ++next_;
  return events_.subspan(first, next_ - first);
}

namespace {

struct CatalogShape {
  std::string_view openb_model;
  std::string_view product;
  int gpus;  // 0: any count, no instance type
  std::string_view instance_type;
};
// From src/cost/catalog/pricing.yaml: the AWS instance types with these GPUs.
constexpr CatalogShape kCatalogShapes[] = {
    {"V100M16", "Tesla-V100-SXM2-16GB", 1, "p3.2xlarge"},
    {"V100M16", "Tesla-V100-SXM2-16GB", 4, "p3.8xlarge"},
    {"V100M16", "Tesla-V100-SXM2-16GB", 8, "p3.16xlarge"},
    {"V100M16", "Tesla-V100-SXM2-16GB", 0, ""},
    {"V100M32", "Tesla-V100-SXM2-32GB", 8, "p3dn.24xlarge"},
    {"V100M32", "Tesla-V100-SXM2-32GB", 0, ""},
    {"T4", "Tesla-T4", 1, "g4dn.xlarge"},
    {"T4", "Tesla-T4", 4, "g4dn.12xlarge"},
    {"T4", "Tesla-T4", 8, "g4dn.metal"},
    {"T4", "Tesla-T4", 0, ""},
};

}  // namespace

std::string FakeGpuProduct(std::string_view openb_model) {
  for (const CatalogShape& c : kCatalogShapes) {
    if (c.openb_model == openb_model) return std::string(c.product);
  }
  return std::string(openb_model);
}

FakeNodeShape FakeNodeShapeOf(const NodeSpec& node, int index, double shared_fraction,
                              int replicas) {
  FakeNodeShape s;
  std::string lower = node.name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' ? static_cast<char>(std::tolower(c)) : '-';
  });
  s.name = lower;
  s.cpu_milli = node.cpu_milli;
  s.memory_mib = node.memory_mib;
  s.gpus = node.gpu_count;
  s.gpu_product = FakeGpuProduct(node.gpu_model);
  for (const CatalogShape& c : kCatalogShapes) {
    if (c.openb_model != node.gpu_model || (c.gpus != 0 && c.gpus != node.gpu_count)) continue;
    s.instance_type = std::string(c.instance_type);
    break;
  }
  const double f = std::clamp(shared_fraction, 0.0, 1.0);
  s.shared = s.gpus > 0 && replicas > 1 &&
             std::floor((index + 1) * f) > std::floor(static_cast<double>(index) * f);
  s.replicas = s.shared ? replicas : 1;
  return s;
}

std::vector<NodeSpec> SampleNodes(std::span<const NodeSpec> nodes, int limit) {
  if (limit <= 0 || limit >= static_cast<int>(nodes.size())) return {nodes.begin(), nodes.end()};
  std::vector<NodeSpec> out;
  out.reserve(limit);
  for (int i = 0; i < limit; ++i)
    out.push_back(nodes[static_cast<size_t>(i) * nodes.size() / limit]);
  return out;
}

FakePodRequest FakePodRequestOf(const PodSpec& pod) {
  FakePodRequest r;
  if (pod.num_gpu <= 0 || pod.gpu_milli <= 0) return r;
  if (pod.num_gpu == 1 && pod.gpu_milli < kMilliPerGpu) {
    r.kind = FakePodRequest::Kind::kShared;
    r.compute_percent = std::clamp((pod.gpu_milli + 9) / 10, 1, 99);  // round up
    return r;
  }
  r.kind = FakePodRequest::Kind::kWhole;  // a multi-GPU share takes whole GPUs
  r.whole_gpus = pod.num_gpu;
  return r;
}

std::string TeamOf(std::string_view pod_name, std::span<const std::string> teams) {
  if (teams.empty()) return "";
  uint32_t h = 2166136261u;  // FNV-1a: stable across runs and builds
  for (unsigned char c : pod_name)
    h = (h ^ c) * 16777619u;
  return teams[h % teams.size()];
}

void ReplayTally::Arrived(int pod, double gpus) {
  if (state_[pod] != State::kNotYet) return;
  state_[pod] = State::kPending;
  gpus_[pod] = gpus;
  ++counts_.arrived;
  ++counts_.pending;
}

void ReplayTally::Bound(int pod) {
  if (state_[pod] != State::kPending) return;
  state_[pod] = State::kBound;
  --counts_.pending;
  ++counts_.bound;
  if (!ever_bound_[pod]) {
    ever_bound_[pod] = true;
    ++counts_.placed;
  }
  counts_.gpus_allocated += gpus_[pod];
  counts_.peak_gpus_allocated = std::max(counts_.peak_gpus_allocated, counts_.gpus_allocated);
}

void ReplayTally::Departed(int pod) {
  if (state_[pod] == State::kPending) --counts_.pending;
  if (state_[pod] == State::kBound) {
    --counts_.bound;
    counts_.gpus_allocated = std::max(0.0, counts_.gpus_allocated - gpus_[pod]);
  }
  if (state_[pod] == State::kPending || state_[pod] == State::kBound) ++counts_.departed;
  state_[pod] = State::kGone;
}

}  // namespace gpu_autoscaler::autoscale
