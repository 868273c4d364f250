// What the placement policy is worth behind kube-scheduler: the openb
// protocol (the simulator's arrivals, seeds and columns), with every pod
// placed as kube-scheduler would place it with gpu-autoscaler-scheduler as
// its extender, against the policy run standalone. For docs/scheduler.md.
//
// kube-scheduler, as modelled here (the openb pods have no affinity, taints,
// spread constraints or images, so the other default plugins score every
// node alike):
//   - it looks for feasible nodes from a rotating start and stops once it has
//     percentageOfNodesToScore of the cluster (0: its adaptive default,
//     max(5, 50 − nodes/125)%, at least 100 nodes);
//   - GPU pods go to the extender (managedResources), which filters and
//     prioritizes them; CPU-only pods never reach it ("GPU pods"), or, in a
//     profile whose extender lists no managedResources, every pod does
//     ("every pod");
//   - a node's total is NodeResourcesLeastAllocated (NodeResourcesFit's
//     LeastAllocated strategy since v1.22) + NodeResourcesBalancedAllocation
//     over CPU and memory, weight 1 each, plus the extender's priority ×
//     weight × 10; ties go to a uniform draw. BalancedAllocation scores
//     100 × (1 − the fractions' standard deviation) since v1.23 (for two
//     resources half their difference, each fraction capped at 1), and
//     100 × (1 − their difference), 0 when either is full, in v1.20
//     (--balanced-allocation v1.20).
// The extender's priorities are ExtenderPriorities (scheduler/
// extender_priorities.h) or, for comparison (every pod sent), the min-max
// scaling it used before: the best score 10, the worst 1, linear between,
// ties kept.
//
//   build/default/bench/placement_behind_kube_scheduler --traces default --seeds 1-5
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "autoscale/policy.h"
#include "autoscale/scheduler.h"
#include "autoscale/simulator.h"
#include "openb_cli.h"
#include "scheduler/extender_priorities.h"

namespace {

using namespace gpu_autoscaler::autoscale;
using gpu_autoscaler::autoscale::bench::Flags;
using gpu_autoscaler::autoscale::bench::LoadOpenbVariant;
using gpu_autoscaler::autoscale::bench::SplitList;
using gpu_autoscaler::autoscale::bench::TakeTraceFlag;
using gpu_autoscaler::scheduler::ExtenderCandidate;
using gpu_autoscaler::scheduler::ExtenderPriorities;

constexpr uint64_t kSchedulerSeedMix = 0x5eed5eed5eed5eedULL;  // simulator.cc's

// kExtenderAllPods and kMinMax: a kube-scheduler whose extender lists no
// managedResources, so CPU-only pods are sent to it too.
enum class Mode { kStandalone, kExtender, kExtenderAllPods, kMinMax };

struct Options {
  std::vector<std::string> traces{"default"};
  std::string data = std::string(GPA_SOURCE_DIR) + "/bench/data/openb";
  unsigned long first_seed = 1, last_seed = 5;
  std::string policy = "FragLookahead";
  std::vector<int> weights{5, 100};
  std::vector<int> percentages{0, 100};
  // Only standalone and every pod at weight 100 over all nodes, which must
  // agree: the extender's single 10 then always wins (exit 1 if not).
  bool expect_standalone = false;
  bool balanced_v120 = false;  // v1.20's BalancedAllocation instead of v1.23's
};

void Usage() {
  std::printf(
      "placement_behind_kube_scheduler: GPU allocation on the openb protocol with the\n"
      "policy behind a model of kube-scheduler (extender mode), against standalone.\n\n"
      "  --traces LIST      pod-list variants (default: default)\n"
      "  --data DIR         folder with the node list and pod lists (default bench/data/openb)\n"
      "  --seeds A-B        seed range (default 1-5)\n"
      "  --policy NAME      placement policy (default FragLookahead)\n"
      "  --weights LIST     extender weights in kube-scheduler's configuration (default 5,100)\n"
      "  --percentages LIST percentageOfNodesToScore values; 0 is kube-scheduler's adaptive\n"
      "                     default (default 0,100)\n"
      "  --balanced-allocation VERSION  v1.23 (default: v1.23 and later) or v1.20, whose\n"
      "                     BalancedAllocation scores the CPU-memory imbalance twice as hard\n"
      "  --expect-standalone  run only every pod at weight 100 over all nodes, and exit 1\n"
      "                     unless it places as standalone does (a check for make test)\n");
}

// kube-scheduler's count of feasible nodes to find (numFeasibleNodesToFind).
int FeasibleNodesToFind(int nodes, int percentage) {
  constexpr int kMinFeasible = 100;
  if (nodes < kMinFeasible || percentage >= 100) return nodes;
  int adaptive = percentage;
  if (adaptive <= 0) adaptive = std::max(5, 50 - nodes / 125);
  return std::max(kMinFeasible, nodes * adaptive / 100);
}

// NodeResourcesLeastAllocated + NodeResourcesBalancedAllocation for `pod` on
// `node`, CPU and memory.
int64_t PluginScore(const ClusterState& cluster, int node, const PodRequest& pod,
                    bool balanced_v120) {
  const NodeState& n = cluster.node(node);
  const NodeSpec& spec = cluster.spec(node);
  const int64_t cpu_used = spec.cpu_milli - n.free_cpu + pod.cpu_milli;
  const int64_t memory_used = spec.memory_mib - n.free_memory + pod.memory_mib;
  auto least = [](int64_t used, int64_t capacity) -> int64_t {
    return capacity <= 0 || used > capacity ? 0 : (capacity - used) * 100 / capacity;
  };
  const int64_t least_allocated =
      (least(cpu_used, spec.cpu_milli) + least(memory_used, spec.memory_mib)) / 2;
  const double cpu_fraction = spec.cpu_milli > 0 ? double(cpu_used) / double(spec.cpu_milli) : 0;
  const double memory_fraction =
      spec.memory_mib > 0 ? double(memory_used) / double(spec.memory_mib) : 0;
  int64_t balanced = 0;
  if (balanced_v120) {
    if (cpu_fraction < 1 && memory_fraction < 1) {
      balanced = static_cast<int64_t>((1 - std::fabs(cpu_fraction - memory_fraction)) * 100);
    }
  } else {
    const double deviation =
        std::fabs(std::min(cpu_fraction, 1.0) - std::min(memory_fraction, 1.0)) / 2;
    balanced = static_cast<int64_t>((1 - deviation) * 100);
  }
  return least_allocated + balanced;
}

// The old prioritize answer: min-max scaling, ties kept.
std::vector<int> MinMaxPriorities(const std::vector<ExtenderCandidate>& candidates) {
  int lo = 1000, hi = -1;
  for (const ExtenderCandidate& c : candidates) {
    if (c.score < 0) continue;
    lo = std::min(lo, c.score);
    hi = std::max(hi, c.score);
  }
  std::vector<int> out(candidates.size(), 0);
  for (size_t i = 0; i < candidates.size(); ++i) {
    const int s = candidates[i].score;
    if (s >= 0) out[i] = hi == lo ? 10 : 1 + (s - lo) * 9 / (hi - lo);
  }
  return out;
}

struct Column {
  double sum = 0;
  int count = 0;
};

// Allocation at arrived 100% and 130% for one run, as the simulator averages it.
std::pair<double, double> Run(const PreparedTrace& trace, const Options& options, uint64_t seed,
                              Mode mode, int weight, int percentage) {
  auto policy = MakePolicy(options.policy, &trace.workload);
  if (!policy.ok()) {
    std::fprintf(stderr, "%s\n", policy.error().ToString().c_str());
    std::exit(2);
  }
  const Workload workload = GenerateWorkload(trace, seed);
  ClusterState cluster = trace.empty_cluster;
  Scheduler scheduler(cluster, **policy, workload.node_ranks, seed ^ kSchedulerSeedMix);
  std::mt19937_64 draw(seed);
  const int nodes = cluster.node_count();
  const int to_find = FeasibleNodesToFind(nodes, percentage);
  const double capacity = static_cast<double>(cluster.total_gpu_milli());
  std::vector<Column> columns(kArrivedColumns);
  std::vector<int> feasible;
  std::vector<ExtenderCandidate> candidates;
  int next_start = 0;
  int64_t arrived = 0;
  for (int index : workload.arrivals) {
    const PodRequest& pod = trace.requests[index];
    arrived += pod.total_gpu_milli();
    std::optional<Placement> placement;
    if (mode == Mode::kStandalone) {
      placement = scheduler.Select(pod);
    } else {
      feasible.clear();
      candidates.clear();
      int processed = 0;
      for (; processed < nodes && static_cast<int>(feasible.size()) < to_find; ++processed) {
        const int i = (next_start + processed) % nodes;
        const NodeState& n = cluster.node(i);
        if (pod.memory_mib > n.free_memory || n.pods >= n.max_pods) continue;
        const NodeScore s = scheduler.ScoreOf(i, pod);  // the extender's filter and score
        if (s.score < 0) continue;
        feasible.push_back(i);
        candidates.push_back(
            {.score = s.score, .tiebreak = s.tiebreak, .order = workload.node_ranks[i]});
      }
      next_start = (next_start + processed) % nodes;
      if (!feasible.empty()) {
        std::vector<int> priorities(feasible.size(), 0);
        if (mode == Mode::kMinMax) {
          priorities = MinMaxPriorities(candidates);
        } else if (pod.uses_gpu() || mode == Mode::kExtenderAllPods) {
          priorities = ExtenderPriorities(candidates);
        }
        int64_t best = -1;
        int chosen = -1, ties = 0;
        for (size_t k = 0; k < feasible.size(); ++k) {
          const int64_t total = PluginScore(cluster, feasible[k], pod, options.balanced_v120) +
                                int64_t{priorities[k]} * weight * 10;
          if (total > best) {
            best = total;
            chosen = feasible[k];
            ties = 1;
          } else if (total == best && draw() % ++ties == 0) {
            chosen = feasible[k];
          }
        }
        placement = scheduler.PlaceOnNode(chosen, pod);  // the extender's bind picks GPUs
      }
    }
    if (placement && !cluster.Place(pod, *placement).ok()) {
      std::fprintf(stderr, "infeasible placement\n");
      std::exit(1);
    }
    const double pct = std::nearbyint(100.0 * static_cast<double>(arrived) / capacity);
    if (pct < 0 || pct >= kArrivedColumns) continue;
    Column& c = columns[static_cast<int>(pct)];
    c.sum +=
        std::nearbyint(10000.0 * static_cast<double>(cluster.allocated_gpu_milli()) / capacity) /
        100.0;
    ++c.count;
  }
  auto at = [&columns](int k) {
    Column c = columns[k];
    if (c.count == 0) {
      for (int j = std::max(0, k - 1); j <= std::min(kArrivedColumns - 1, k + 1); ++j) {
        c.sum += columns[j].sum;
        c.count += columns[j].count;
      }
    }
    return c.count > 0 ? std::nearbyint(100.0 * c.sum / c.count) / 100.0 : std::nan("");
  };
  return {at(100), at(130)};
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  Flags flags(argc, argv);
  while (flags.Next()) {
    if (flags.IsHelp()) {
      Usage();
      return 0;
    } else if (TakeTraceFlag(flags, &options.traces, &options.data, &options.first_seed,
                             &options.last_seed)) {
    } else if (flags.Is("--expect-standalone")) {
      options.expect_standalone = true;
    } else if (flags.Is("--balanced-allocation")) {
      const std::string version = flags.Value();
      if (version != "v1.20" && version != "v1.23") {
        std::fprintf(stderr, "--balanced-allocation: \"%s\" is not v1.20 or v1.23\n",
                     version.c_str());
        return 2;
      }
      options.balanced_v120 = version == "v1.20";
    } else if (flags.Is("--policy")) {
      options.policy = flags.Value();
    } else if (flags.Is("--weights") || flags.Is("--percentages")) {
      std::vector<int>& list = flags.Is("--weights") ? options.weights : options.percentages;
      list.clear();
      for (const std::string& s : SplitList(flags.Value()))
        list.push_back(std::atoi(s.c_str()));
    } else {
      return flags.Unknown();
    }
  }
  const double seeds = static_cast<double>(options.last_seed - options.first_seed + 1);
  std::printf("| trace | placement | @100 | @130 |\n|---|---|---:|---:|\n");
  for (const std::string& name : options.traces) {
    auto trace = LoadOpenbVariant(options.data, name);
    if (!trace.ok()) {
      std::fprintf(stderr, "%s\n", trace.error().ToString().c_str());
      return 1;
    }
    auto report = [&](const std::string& label, Mode mode, int weight, int percentage) {
      double a100 = 0, a130 = 0;
      for (unsigned long seed = options.first_seed; seed <= options.last_seed; ++seed) {
        auto [x, y] = Run(*trace, options, seed, mode, weight, percentage);
        a100 += x / seeds;
        a130 += y / seeds;
      }
      std::printf("| %s | %s | %.2f | %.2f |\n", name.c_str(), label.c_str(), a100, a130);
      std::fflush(stdout);
      return a100;
    };
    // Standalone must be the simulator's run: the same arrivals, ranks and columns.
    const double standalone = report(options.policy + " standalone", Mode::kStandalone, 0, 100);
    double simulated = 0;
    for (unsigned long seed = options.first_seed; seed <= options.last_seed; ++seed) {
      auto run = Simulate(*trace, options.policy, seed);
      if (!run.ok()) return 1;
      simulated += run->alloc_pct[100] / seeds;
    }
    if (std::fabs(simulated - standalone) > 1e-6) {
      std::fprintf(stderr, "standalone %.4f differs from the simulator's %.4f\n", standalone,
                   simulated);
      return 1;
    }
    if (options.expect_standalone) {
      const double extender = report("extender, every pod, weight 100, 100% of nodes",
                                     Mode::kExtenderAllPods, 100, 100);
      if (extender != standalone) {
        std::fprintf(stderr, "the extender placed otherwise than standalone: %.2f, not %.2f\n",
                     extender, standalone);
        return 1;
      }
      continue;
    }
    for (int percentage : options.percentages) {
      const std::string nodes =
          percentage <= 0 ? "adaptive share of nodes" : std::to_string(percentage) + "% of nodes";
      for (int weight : options.weights) {
        const std::string setting = "weight " + std::to_string(weight) + ", " + nodes;
        report("extender, GPU pods, " + setting, Mode::kExtender, weight, percentage);
        report("extender, every pod, " + setting, Mode::kExtenderAllPods, weight, percentage);
        report("min-max priorities (before), every pod, " + setting, Mode::kMinMax, weight,
               percentage);
      }
    }
  }
  return 0;
}
