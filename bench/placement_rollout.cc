// How much better could a policy that must place every pod that fits do, if
// it knew the future? An offline reference for docs/placement.md: from arrived
// workload --from % on, each pod's node is chosen among FragLookahead's best
// --candidates distinct nodes by rolling the *real* remaining arrivals out to
// the end of the arrived-100% column with FragLookahead, keeping the choice
// whose column-100 allocation is highest (ties: FragLookahead's own choice).
// It places every pod that fits, as the simulator's policies do, so it is a
// must-place policy with an oracle, not a bound; it is far too slow to
// schedule with (thousands of full rollouts per run). Single-threaded. With
// --candidates 1 it rolls FragLookahead's own choice out, must reproduce
// FragLookahead, and every rollout must foretell what the run then does; it
// exits 1 if not (a check of the forked schedulers the rollouts run on).
//
//   build/default/bench/placement_rollout --traces default --seeds 42-45
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "autoscale/policy.h"
#include "autoscale/scheduler.h"
#include "autoscale/simulator.h"
#include "autoscale/trace.h"
#include "openb_cli.h"

namespace {

using namespace gpu_autoscaler::autoscale;
using gpu_autoscaler::autoscale::bench::Flags;
using gpu_autoscaler::autoscale::bench::LoadOpenbVariant;
using gpu_autoscaler::autoscale::bench::TakeTraceFlag;

constexpr int kColumn = 100;
// The simulator's scheduler seed for a run seed (simulator.cc).
constexpr uint64_t kSchedulerSeedMix = 0x5eed5eed5eed5eedULL;

struct Options {
  std::vector<std::string> traces{"default"};
  std::string data = std::string(GPA_SOURCE_DIR) + "/bench/data/openb";
  unsigned long first_seed = 42, last_seed = 45;
  double from_pct = 85;
  int candidates = 4;
};

void Usage() {
  std::printf(
      "placement_rollout: FragLookahead with an oracle (rollouts over the real future\n"
      "arrivals) against FragLookahead and FGD, GPU allocation at arrived 100%%.\n\n"
      "  --traces LIST      pod-list variants (default: default)\n"
      "  --data DIR         folder with the node list and pod lists (default bench/data/openb)\n"
      "  --seeds A-B        seed range (default 42-45)\n"
      "  --from PCT         start choosing by rollout at this arrived %% (default 85)\n"
      "  --candidates K     distinct nodes tried per pod (default 4)\n");
}

// Column of the event after which `arrived` milli have arrived, as the simulator rounds it.
int ColumnOf(int64_t arrived, double capacity) {
  return static_cast<int>(std::nearbyint(100.0 * static_cast<double>(arrived) / capacity));
}

double Round2(double x) {
  return std::nearbyint(x * 100.0) / 100.0;
}

// What makes two nodes interchangeable for the rest of the run, bar their rank.
using NodeSignature = std::tuple<int, int, int64_t, int64_t, std::vector<int16_t>>;

NodeSignature SignatureOf(const ClusterState& cluster, int node) {
  const NodeState& n = cluster.node(node);
  std::vector<int16_t> free(n.free_milli.begin(), n.free_milli.begin() + n.gpu_count);
  std::sort(free.begin(), free.end());
  return {n.model, n.gpu_count, n.free_cpu, n.free_memory, std::move(free)};
}

class OracleRun {
 public:
  OracleRun(const PreparedTrace& trace, uint64_t seed, const Options& options)
      : trace_(trace),
        options_(options),
        workload_(GenerateWorkload(trace, seed)),
        cluster_(trace.empty_cluster),
        policy_(*MakePolicy("FragLookahead", &trace.workload)),
        scheduler_(cluster_, *policy_, workload_.node_ranks, seed ^ kSchedulerSeedMix),
        capacity_(static_cast<double>(cluster_.total_gpu_milli())) {}

  // With one candidate, rollouts whose forecast the run did not follow.
  int64_t mispredicted() const { return mispredicted_; }

  // The run's column-100 allocation, as the simulator reports it.
  double Run(int64_t* rollouts) {
    // The events up to the end of column 100.
    int64_t arrived = 0;
    size_t end = 0;
    std::vector<int64_t> arrived_after(workload_.arrivals.size());
    for (size_t i = 0; i < workload_.arrivals.size(); ++i) {
      arrived += trace_.requests[workload_.arrivals[i]].total_gpu_milli();
      arrived_after[i] = arrived;
      if (ColumnOf(arrived, capacity_) <= kColumn) end = i + 1;
    }
    double sum = 0;
    int count = 0;
    std::vector<double> realized(end + 1, 0);  // allocated milli at column-100 events
    for (size_t i = 0; i < end; ++i) {
      const PodRequest& pod = trace_.requests[workload_.arrivals[i]];
      const int64_t before = i == 0 ? 0 : arrived_after[i - 1];
      std::optional<Placement> placement;
      if (100.0 * static_cast<double>(before) / capacity_ >= options_.from_pct) {
        placement = ChooseByRollout(pod, i, end, arrived_after, rollouts);
      } else {
        placement = scheduler_.Select(pod);
      }
      if (placement) (void)cluster_.Place(pod, *placement);
      if (ColumnOf(arrived_after[i], capacity_) == kColumn) {
        sum += Round2(100.0 * static_cast<double>(cluster_.allocated_gpu_milli()) / capacity_);
        realized[i] = static_cast<double>(cluster_.allocated_gpu_milli());
        ++count;
      }
    }
    // What each rollout foretold must be what the run then did (one candidate:
    // the run continues as the rollout did).
    for (size_t i = end; i-- > 0;)
      realized[i] += realized[i + 1];
    for (const auto& [index, value] : predicted_) {
      if (value != realized[index]) ++mispredicted_;
    }
    return count > 0 ? Round2(sum / count) : std::nan("");
  }

 private:
  std::optional<Placement> ChooseByRollout(const PodRequest& pod, size_t index, size_t end,
                                           const std::vector<int64_t>& arrived_after,
                                           int64_t* rollouts) {
    std::optional<Placement> chosen = scheduler_.Select(pod);
    if (!chosen) return chosen;
    // FragLookahead's choice first, then the best-scored distinct others.
    struct Candidate {
      int score;
      double tiebreak;
      int rank;
      int node;
    };
    std::vector<Candidate> all;
    for (int n = 0; n < cluster_.node_count(); ++n) {
      if (n == chosen->node) continue;
      const NodeScore s = scheduler_.ScoreOf(n, pod);
      if (s.score >= 0) all.push_back({s.score, s.tiebreak, workload_.node_ranks[n], n});
    }
    std::sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
      return std::tie(b.score, b.tiebreak, a.rank) < std::tie(a.score, a.tiebreak, b.rank);
    });
    std::vector<int> nodes{chosen->node};
    std::vector<NodeSignature> seen{SignatureOf(cluster_, chosen->node)};
    for (const Candidate& c : all) {
      if (static_cast<int>(nodes.size()) >= options_.candidates) break;
      NodeSignature sig = SignatureOf(cluster_, c.node);
      if (std::find(seen.begin(), seen.end(), sig) != seen.end()) continue;
      seen.push_back(std::move(sig));
      nodes.push_back(c.node);
    }
    if (nodes.size() == 1 && options_.candidates > 1) return chosen;
    double best_value = -1;
    for (int node : nodes) {
      const Placement placement =
          node == chosen->node ? *chosen : scheduler_.PlaceOnNode(node, pod);
      const double value = Rollout(pod, placement, index, end, arrived_after);
      ++*rollouts;
      if (options_.candidates == 1) predicted_.push_back({index, value});
      if (value > best_value) {
        best_value = value;
        chosen = placement;
      }
    }
    return chosen;
  }

  // Sum of the allocation over the column-100 events after placing `pod` as
  // `placement` and the rest of the arrivals with FragLookahead.
  double Rollout(const PodRequest& pod, const Placement& placement, size_t index, size_t end,
                 const std::vector<int64_t>& arrived_after) {
    ClusterState copy = cluster_;
    std::unique_ptr<Policy> policy = *MakePolicy("FragLookahead", &trace_.workload);
    Scheduler scheduler(scheduler_, copy, *policy);
    (void)copy.Place(pod, placement);
    double value = 0;
    for (size_t j = index; j < end; ++j) {
      if (j > index) {
        const PodRequest& next = trace_.requests[workload_.arrivals[j]];
        if (std::optional<Placement> p = scheduler.Select(next)) (void)copy.Place(next, *p);
      }
      if (ColumnOf(arrived_after[j], capacity_) == kColumn) {
        value += static_cast<double>(copy.allocated_gpu_milli());
      }
    }
    return value;
  }

  const PreparedTrace& trace_;
  const Options& options_;
  std::vector<std::pair<size_t, double>> predicted_;  // with one candidate: (event, value)
  int64_t mispredicted_ = 0;
  Workload workload_;
  ClusterState cluster_;
  std::unique_ptr<Policy> policy_;
  Scheduler scheduler_;
  double capacity_;
};

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
    } else if (flags.Is("--from")) {
      options.from_pct = std::atof(flags.Value().c_str());
    } else if (flags.Is("--candidates")) {
      options.candidates = std::atoi(flags.Value().c_str());
      if (options.candidates < 1) {
        std::fprintf(stderr, "--candidates must be at least 1\n");
        return 2;
      }
    } else {
      return flags.Unknown();
    }
  }
  std::printf(
      "| trace | seed | FGD @100 | FragLookahead @100 | oracle @100 | 25%% needs | rollouts | "
      "CPU s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const std::string& name : options.traces) {
    auto trace = LoadOpenbVariant(options.data, name);
    if (!trace.ok()) {
      std::fprintf(stderr, "%s\n", trace.error().ToString().c_str());
      return 1;
    }
    double fgd_sum = 0, ours_sum = 0, oracle_sum = 0;
    const double seeds = static_cast<double>(options.last_seed - options.first_seed + 1);
    for (unsigned long seed = options.first_seed; seed <= options.last_seed; ++seed) {
      auto fgd = Simulate(*trace, "FGD", seed);
      auto ours = Simulate(*trace, "FragLookahead", seed);
      if (!fgd.ok() || !ours.ok()) return 1;
      const std::clock_t start = std::clock();
      int64_t rollouts = 0;
      OracleRun run(*trace, seed, options);
      const double oracle = run.Run(&rollouts);
      const double f = fgd->alloc_pct[kColumn], o = ours->alloc_pct[kColumn];
      std::printf("| %s | %lu | %.2f | %.2f | %.2f | %.2f | %lld | %.0f |\n", name.c_str(), seed, f,
                  o, oracle, f + 0.25 * (100 - f), static_cast<long long>(rollouts),
                  static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC);
      std::fflush(stdout);
      // With one candidate the oracle is FragLookahead itself; anything else
      // means the rollout machinery (the forked scheduler) is wrong.
      if (options.candidates == 1 && (oracle != o || run.mispredicted() != 0)) {
        std::fprintf(stderr,
                     "%s seed %lu: with one candidate the oracle (%.2f) must equal "
                     "FragLookahead (%.2f) and every rollout foretell the run (%lld did not)\n",
                     name.c_str(), seed, oracle, o, static_cast<long long>(run.mispredicted()));
        return 1;
      }
      fgd_sum += f / seeds;
      ours_sum += o / seeds;
      oracle_sum += oracle / seeds;
    }
    std::printf("| %s | mean | %.2f | %.2f | %.2f | %.2f | | |\n", name.c_str(), fgd_sum, ours_sum,
                oracle_sum, fgd_sum + 0.25 * (100 - fgd_sum));
  }
  return 0;
}
