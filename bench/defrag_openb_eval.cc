// GPU defragmentation on openb (docs/profiling.md, "Defragmentation on
// openb"): fill the cluster with FGD until the arrived GPU demand reaches
// 100% of capacity, then for k = 0..N evictions plan k moves with the
// defragmentation planner, apply them (each evicted pod lands where the
// engine found room) and offer the pods that arrive after that point (the
// protocol's arrivals from 100% to 130%) to FGD. Reports the GPUs recovered
// from fragmentation and how many more of those pods get placed than with
// no move. Mean over the seeds.
//
// Usage: defrag_openb_eval [--trace NAME] [--seeds N] [--moves 0,1,2,5,...]
//                          [--lookahead L] [--data DIR]
//   --trace   openb pod list variant (default: default)
//   --seeds   seeds 42..42+N-1 (default 3)
//   --moves   the k values (default 0,1,2,5,10,20,50,100)
//   --data    the openb CSV folder (default: bench/data/openb of the checkout)
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "autoscale/trace.h"
#include "defrag_openb_util.h"
#include "openb_cli.h"

namespace autoscale = gpu_autoscaler::autoscale;
namespace bench = gpu_autoscaler::autoscale::bench;

namespace {

void Usage() {
  std::printf(
      "Usage: defrag_openb_eval [--trace NAME] [--seeds N] [--moves K1,K2,...] [--lookahead L]\n"
      "                         [--data DIR]\n"
      "Fills the openb cluster with FGD to 100%% arrived GPU demand, plans k defragmentation\n"
      "moves for each k, and reports the GPUs recovered from fragmentation and the extra later\n"
      "pods FGD places (mean over seeds 42..42+N-1). --data defaults to bench/data/openb.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string trace_name = "default";
  std::string data = std::string(GPA_SOURCE_DIR) + "/bench/data/openb";
  int seeds = 3;
  int lookahead = 8;
  std::vector<int> ks = {0, 1, 2, 5, 10, 20, 50, 100};
  bench::Flags flags(argc, argv);
  while (flags.Next()) {
    if (flags.IsHelp()) {
      Usage();
      return 0;
    } else if (flags.Is("--trace")) {
      trace_name = flags.Value();
    } else if (flags.Is("--seeds")) {
      seeds = std::atoi(flags.Value().c_str());
    } else if (flags.Is("--lookahead")) {
      lookahead = std::atoi(flags.Value().c_str());
    } else if (flags.Is("--data")) {
      data = flags.Value();
    } else if (flags.Is("--moves")) {
      ks.clear();
      for (const std::string& item : bench::SplitList(flags.Value()))
        ks.push_back(std::atoi(item.c_str()));
    } else {
      return flags.Unknown();
    }
  }
  if (seeds < 1 || ks.empty() || lookahead < 0) {
    std::fprintf(stderr, "--seeds must be >= 1, --moves non-empty, --lookahead >= 0\n");
    return 2;
  }
  auto trace = bench::LoadOpenbVariant(data, trace_name);
  if (!trace.ok()) {
    std::fprintf(stderr, "%s\n", trace.error().ToString().c_str());
    return 1;
  }
  struct Row {
    double moves = 0, recovered = 0, whole = 0, frag_ratio = 0, placed = 0, extra = 0,
           extra_gpus = 0, plan_ms = 0;
  };
  std::vector<Row> rows(ks.size());
  double filled_alloc = 0, remaining = 0, frag0 = 0;
  for (int s = 0; s < seeds; ++s) {
    const uint64_t seed = 42 + s;
    autoscale::bench::FilledCluster f = autoscale::bench::FillWithFgd(*trace, seed, 1.0);
    filled_alloc += 100.0 * static_cast<double>(f.cluster.allocated_gpu_milli()) /
                    static_cast<double>(f.cluster.total_gpu_milli());
    remaining += static_cast<double>(f.remaining.size());
    const double idle = static_cast<double>(f.cluster.idle_gpu_milli());
    int base_pods = 0;
    int64_t base_gpu = 0;
    for (size_t r = 0; r < ks.size(); ++r) {
      autoscale::ClusterState after;
      const std::clock_t start = std::clock();  // CPU time: the machine may be shared
      auto plan = autoscale::PlanDefragmentation(
          f.cluster, f.placed, trace->workload,
          {.max_moves = ks[r], .min_gain_milli = 1, .lookahead = lookahead}, &after);
      const double ms = 1000.0 * static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
      if (!plan.ok()) {
        std::fprintf(stderr, "%s\n", plan.error().ToString().c_str());
        return 1;
      }
      if (r == 0) frag0 += 100.0 * plan->fragmentation_before / idle;
      const autoscale::bench::PlacedAfter placed = autoscale::bench::PlaceRemaining(after, f, seed);
      if (r == 0) {
        base_pods = placed.pods;
        base_gpu = placed.gpu_milli;
      }
      Row& row = rows[r];
      row.moves += static_cast<double>(plan->moves.size());
      row.recovered += plan->recovered_milli() / 1000.0;
      row.whole += plan->fully_free_gpus_after - plan->fully_free_gpus_before;
      row.frag_ratio += 100.0 * plan->fragmentation_after / idle;
      row.placed += placed.pods;
      row.extra += placed.pods - base_pods;
      row.extra_gpus += static_cast<double>(placed.gpu_milli - base_gpu) / 1000.0;
      row.plan_ms += ms;
    }
  }
  const double n = seeds;
  std::printf(
      "openb %s, FGD fill to 100%% arrived, seeds 42..%d: GPU allocation %.2f%%, "
      "fragmentation %.1f%% of idle GPU, %.0f later pods (100%%..130%% arrived)\n\n",
      trace_name.c_str(), 41 + seeds, filled_alloc / n, frag0 / n, remaining / n);
  std::printf(
      "| k (max evictions) | moves | GPUs recovered from fragmentation | whole GPUs freed "
      "| fragmentation (%% of idle) | later pods placed | more than k=0 | their GPUs "
      "| plan CPU ms |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (size_t r = 0; r < ks.size(); ++r) {
    const Row& row = rows[r];
    std::printf("| %d | %.1f | %.2f | %.1f | %.1f | %.1f | %+.1f | %+.2f | %.0f |\n", ks[r],
                row.moves / n, row.recovered / n, row.whole / n, row.frag_ratio / n, row.placed / n,
                row.extra / n, row.extra_gpus / n, row.plan_ms / n);
  }
  return 0;
}
