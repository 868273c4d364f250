#include "autoscale/simulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "autoscale/policy.h"
#include "autoscale/random.h"
#include "autoscale/scheduler.h"

namespace gpu_autoscaler::autoscale {
namespace {

// Go's rand.Shuffle order: i from n-1 down to 1, swap with a draw in [0, i].
template <typename T>
void Shuffle(std::vector<T>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = rng.Below(i);
    std::swap(v[i - 1], v[j]);
  }
}

// Python's round(x, 2).
double Round2(double x) {
  return std::nearbyint(x * 100.0) / 100.0;
}

struct Bucket {
  double alloc = 0;
  double frag = 0;
  double ratio = 0;
  int64_t count = 0;
};

}  // namespace

Result<PreparedTrace> PrepareTrace(std::vector<NodeSpec> nodes, std::vector<PodSpec> pods) {
  PreparedTrace trace;
  std::stable_sort(nodes.begin(), nodes.end(),
                   [](const NodeSpec& a, const NodeSpec& b) { return a.name < b.name; });
  for (const NodeSpec& node : nodes) {
    if (node.gpu_count == 0) continue;
    GPU_RETURN_IF_ERROR(trace.empty_cluster.AddNode(node));
  }
  if (trace.empty_cluster.total_gpu_milli() == 0) {
    return InvalidArgumentError("the node list has no GPU nodes");
  }
  std::stable_sort(pods.begin(), pods.end(),
                   [](const PodSpec& a, const PodSpec& b) { return a.name < b.name; });
  trace.pods = std::move(pods);
  trace.requests.reserve(trace.pods.size());
  for (const PodSpec& pod : trace.pods) {
    trace.requests.push_back(trace.empty_cluster.Resolve(pod));
    trace.total_demand_milli += trace.requests.back().total_gpu_milli();
  }
  trace.workload = TargetWorkload::FromTrace(trace.pods, trace.empty_cluster);
  return trace;
}

Workload GenerateWorkload(const PreparedTrace& trace, uint64_t seed,
                          const SimulationOptions& options) {
  Workload w;
  Rng rng(seed);
  rng.Next();  // the protocol draws and discards one value
  const int trace_size = static_cast<int>(trace.pods.size());
  w.arrivals.resize(trace_size);
  std::iota(w.arrivals.begin(), w.arrivals.end(), 0);
  if (options.shuffle) Shuffle(w.arrivals, rng);
  const int64_t target = static_cast<int64_t>(std::llround(
      options.tune_ratio * static_cast<double>(trace.empty_cluster.total_gpu_milli())));
  int64_t demand = trace.total_demand_milli;
  if (trace_size > 0 && demand < target) {
    while (true) {
      const int pick = static_cast<int>(rng.Below(trace_size));
      const PodRequest& pod = trace.requests[pick];
      // The protocol's stop test uses the per-GPU milli, the sum the total.
      if (demand + pod.gpu_milli > target) break;
      w.arrivals.push_back(pick);
      demand += pod.total_gpu_milli();
    }
  } else if (demand > target) {
    while (demand > target && !w.arrivals.empty()) {
      const size_t victim = rng.Below(w.arrivals.size());
      demand -= trace.requests[w.arrivals[victim]].total_gpu_milli();
      w.arrivals.erase(w.arrivals.begin() + static_cast<std::ptrdiff_t>(victim));
    }
  }
  w.node_ranks.resize(trace.empty_cluster.node_count());
  std::iota(w.node_ranks.begin(), w.node_ranks.end(), 0);
  Shuffle(w.node_ranks, rng);
  return w;
}

Result<RunResult> Simulate(const PreparedTrace& trace, std::string_view policy_name, uint64_t seed,
                           const SimulationOptions& options) {
  GPU_ASSIGN_OR_RETURN(std::unique_ptr<Policy> policy, MakePolicy(policy_name, &trace.workload));
  return Simulate(trace, *policy, seed, options);
}

Result<RunResult> Simulate(const PreparedTrace& trace, Policy& policy, uint64_t seed,
                           const SimulationOptions& options) {
  const Workload workload = GenerateWorkload(trace, seed, options);
  ClusterState cluster = trace.empty_cluster;
  Scheduler scheduler(cluster, policy, workload.node_ranks, seed ^ 0x5eed5eed5eed5eedULL);

  const TargetWorkload& target = trace.workload;
  std::vector<double> node_frag(cluster.node_count());
  double cluster_frag = 0;
  for (int i = 0; i < cluster.node_count(); ++i) {
    node_frag[i] = NodeFragmentation(cluster.node(i), target);
    cluster_frag += node_frag[i];
  }

  RunResult result;
  result.policy = std::string(policy.name());
  result.seed = seed;
  const double capacity = static_cast<double>(cluster.total_gpu_milli());
  std::array<Bucket, kArrivedColumns> buckets{};
  int64_t arrived = 0;
  for (int index : workload.arrivals) {
    const PodRequest& pod = trace.requests[index];
    ++result.pods;
    ++result.arrived_by_class[static_cast<int>(pod.pod_class)];
    arrived += pod.total_gpu_milli();
    if (std::optional<Placement> placement = scheduler.Select(pod)) {
      Result<BindingId> bound = cluster.Place(pod, *placement);
      if (!bound.ok()) return bound.error().WithContext("simulator placed an infeasible pod");
      ++result.placed;
      const int n = placement->node;
      cluster_frag -= node_frag[n];
      node_frag[n] = NodeFragmentation(cluster.node(n), target);
      cluster_frag += node_frag[n];
    } else {
      ++result.failed_by_class[static_cast<int>(pod.pod_class)];
      if (pod.pod_class == PodClass::kCpuOnly) result.failed_cpu_only_cpu_milli += pod.cpu_milli;
    }
    const double arrived_pct = std::nearbyint(100.0 * static_cast<double>(arrived) / capacity);
    if (arrived_pct < 0 || arrived_pct >= kArrivedColumns) continue;
    Bucket& b = buckets[static_cast<int>(arrived_pct)];
    b.alloc += Round2(100.0 * static_cast<double>(cluster.allocated_gpu_milli()) / capacity);
    b.frag += cluster_frag;
    const double idle = static_cast<double>(cluster.idle_gpu_milli());
    b.ratio += idle > 0 ? 100.0 * cluster_frag / idle : 0.0;
    ++b.count;
  }
  for (int k = 0; k < kArrivedColumns; ++k) {
    Bucket b = buckets[k];
    if (b.count == 0) {
      for (int j = std::max(0, k - 1); j <= std::min(kArrivedColumns - 1, k + 1); ++j) {
        b.alloc += buckets[j].alloc;
        b.frag += buckets[j].frag;
        b.ratio += buckets[j].ratio;
        b.count += buckets[j].count;
      }
    }
    if (b.count == 0) {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      result.alloc_pct[k] = result.frag_pct[k] = result.frag_ratio[k] = nan;
      continue;
    }
    const double count = static_cast<double>(b.count);
    result.alloc_pct[k] = Round2(b.alloc / count);
    result.frag_pct[k] = 100.0 * (b.frag / count) / capacity;
    result.frag_ratio[k] = b.ratio / count;
  }
  return result;
}

}  // namespace gpu_autoscaler::autoscale
