// Placement policies against FGD, the published FGD figures and the LP upper
// bound (placement_bound.h) on openb pod lists: allocation at arrived 100% and
// 130%, the share of FGD's unallocated GPU each policy removes, the share of
// the FGD-to-bound gap it closes, and the pods it refuses by class. Prints
// markdown tables (docs/placement.md); --curve-dir writes per-trace CSV
// curves (policies and bound, 0..130). Single-threaded unless --threads.
//
//   build/default/bench/placement_report --traces default,cpu050 --seeds 42-51
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "autoscale/experiment.h"
#include "autoscale/trace.h"
#include "openb_cli.h"
#include "placement_bench_util.h"
#include "placement_bound.h"

namespace gpu_autoscaler::autoscale::bench {
namespace {

double Published(const std::string& trace, bool at130) {
  for (const PublishedFgd& p : kPublishedFgd) {
    if (trace == p.trace) return at130 ? p.at130 : p.at100;
  }
  return std::nan("");
}

void Usage() {
  std::printf(
      "placement_report: policies vs FGD, the published FGD figures and an LP upper bound\n"
      "on openb pod lists, as markdown tables.\n\n"
      "  --traces LIST     pod-list variants (openb_pod_list_<name>.csv), comma-separated\n"
      "                    (default: the eight checked-in ones)\n"
      "  --data DIR        folder with the node list and pod lists (default bench/data/openb;\n"
      "                    e.g. a copy of the Alibaba openb trace folder)\n"
      "  --policies LIST   policies; FGD first is the reference (default FGD,FragLookahead)\n"
      "  --seeds A-B       seed range (default 42-51)\n"
      "  --no-bound        skip the LP bound\n"
      "  --curve-dir DIR   write DIR/<trace>.csv: arrived %%, each policy's mean, the bound\n"
      "  --threads N       worker threads for the simulations (default 1)\n");
}

std::string Fmt(double v, int digits = 2) {
  if (std::isnan(v)) return "—";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

struct TraceResult {
  std::string trace;
  std::vector<PolicySummary> policies;
  std::array<double, kArrivedColumns> bound{};  // mean over seeds
  double must_place[2] = {0, 0};                // must-place bound at 100 and 130, mean
  bool has_bound = false;
  double bound_seconds = 0;
  // Of the first seed's LP.
  int node_types = 0, pod_shapes = 0, gpu_patterns = 0, lp_rows = 0, lp_columns = 0;
};

}  // namespace
}  // namespace gpu_autoscaler::autoscale::bench

int main(int argc, char** argv) {
  using namespace gpu_autoscaler::autoscale;
  using namespace gpu_autoscaler::autoscale::bench;
  std::vector<std::string> traces = {"default",     "gpushare20", "gpushare40", "gpushare80",
                                     "gpushare100", "multigpu20", "gpuspec33",  "cpu050"};
  std::string data = std::string(GPA_SOURCE_DIR) + "/bench/data/openb";
  std::vector<std::string> policies = {"FGD", "FragLookahead"};
  unsigned long first_seed = 42, last_seed = 51;
  bool bound = true;
  std::string curve_dir;
  int threads = 1;
  Flags flags(argc, argv);
  while (flags.Next()) {
    if (flags.IsHelp()) {
      Usage();
      return 0;
    } else if (bench::TakeTraceFlag(flags, &traces, &data, &first_seed, &last_seed)) {
    } else if (flags.Is("--policies")) {
      policies = SplitList(flags.Value());
    } else if (flags.Is("--no-bound")) {
      bound = false;
    } else if (flags.Is("--curve-dir")) {
      curve_dir = flags.Value();
    } else if (flags.Is("--threads")) {
      threads = std::atoi(flags.Value().c_str());
    } else {
      return flags.Unknown();
    }
  }
  if (traces.empty() || policies.empty() || last_seed < first_seed || threads < 1) {
    std::fprintf(stderr,
                 "need traces, policies, a seed range A-B with A <= B and --threads >= 1\n");
    return 2;
  }
  std::vector<uint64_t> seeds;
  for (unsigned long s = first_seed; s <= last_seed; ++s)
    seeds.push_back(s);

  std::vector<TraceResult> results;
  for (const std::string& name : traces) {
    auto trace = LoadOpenbVariant(data, name);
    if (!trace.ok()) {
      std::fprintf(stderr, "%s\n", trace.error().ToString().c_str());
      return 1;
    }
    TraceResult r;
    r.trace = name;
    ExperimentOptions options;
    options.policies = policies;
    options.seeds = seeds;
    options.threads = threads;
    auto summary = RunExperiment(*trace, options, {});
    if (!summary.ok()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), summary.error().ToString().c_str());
      return 1;
    }
    r.policies = std::move(*summary);
    if (bound) {
      const std::clock_t start = std::clock();
      r.bound.fill(0);
      for (uint64_t seed : seeds) {
        auto curve = AllocationBound(*trace, seed);
        if (!curve.ok()) {
          std::fprintf(stderr, "%s: %s\n", name.c_str(), curve.error().ToString().c_str());
          return 1;
        }
        for (int k = 0; k < kArrivedColumns; ++k)
          r.bound[k] += curve->alloc_pct[k] / static_cast<double>(seeds.size());
        for (int column : {100, 130}) {
          auto must = MustPlaceAllocationBound(*trace, seed, column);
          if (!must.ok()) {
            std::fprintf(stderr, "%s: %s\n", name.c_str(), must.error().ToString().c_str());
            return 1;
          }
          r.must_place[column == 130] += must->alloc_pct / static_cast<double>(seeds.size());
        }
        if (r.node_types == 0) {
          r.node_types = curve->node_types;
          r.pod_shapes = curve->pod_shapes;
          r.gpu_patterns = curve->gpu_patterns;
          r.lp_rows = curve->lp_rows;
          r.lp_columns = curve->lp_columns;
        }
      }
      r.has_bound = true;
      r.bound_seconds = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
    }
    std::fprintf(stderr, "%s done\n", name.c_str());
    if (!curve_dir.empty()) {
      const std::string path = curve_dir + "/" + name + ".csv";
      std::ofstream out(path);
      if (!out) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        return 1;
      }
      out << "arrived_pct";
      for (const PolicySummary& p : r.policies)
        out << "," << p.policy;
      if (r.has_bound) out << ",bound";
      out << "\n";
      for (int k = 0; k < kArrivedColumns; ++k) {
        out << k;
        for (const PolicySummary& p : r.policies)
          out << "," << Fmt(p.alloc_pct[k].mean);
        if (r.has_bound) out << "," << Fmt(r.bound[k]);
        out << "\n";
      }
    }
    results.push_back(std::move(r));
  }

  std::printf(
      "GPU allocation %% (mean ± sd over seeds %lu-%lu). cut: share of FGD's unallocated\n"
      "GPU removed; gap: share of the FGD-to-bound gap closed; must-place bound: the bound\n"
      "for policies that place every pod that fits.\n\n",
      first_seed, last_seed);
  for (int column : {100, 130}) {
    std::printf("Arrived %d%%\n\n| Trace | FGD published | bound | must-place bound |", column);
    for (const std::string& p : policies)
      std::printf(" %s |", p.c_str());
    for (size_t p = 1; p < policies.size(); ++p)
      std::printf(" %s cut | %s gap |", policies[p].c_str(), policies[p].c_str());
    std::printf("\n|---|---:|---:|---:|");
    for (size_t p = 0; p < policies.size() + 2 * (policies.size() - 1); ++p)
      std::printf("---:|");
    std::printf("\n");
    for (const TraceResult& r : results) {
      const double fgd = r.policies[0].alloc_pct[column].mean;
      const double b = r.has_bound ? r.bound[column] : std::nan("");
      const double must = r.has_bound ? r.must_place[column == 130] : std::nan("");
      std::printf("| %s | %s | %s | %s |", r.trace.c_str(),
                  Fmt(Published(r.trace, column == 130)).c_str(), Fmt(b).c_str(),
                  Fmt(must).c_str());
      for (const PolicySummary& p : r.policies)
        std::printf(" %s ± %s |", Fmt(p.alloc_pct[column].mean).c_str(),
                    Fmt(p.alloc_pct[column].sd).c_str());
      for (size_t p = 1; p < r.policies.size(); ++p) {
        const double ours = r.policies[p].alloc_pct[column].mean;
        std::printf(" %s%% | %s%% |", Fmt(100.0 * (ours - fgd) / (100.0 - fgd), 1).c_str(),
                    Fmt(100.0 * (ours - fgd) / (b - fgd), 1).c_str());
      }
      std::printf("\n");
    }
    std::printf("\n");
  }
  std::printf(
      "Pods refused per run (mean over seeds), by class: CPU-only (their cores, where any) / "
      "sharing / whole-GPU / multi-GPU\n\n| Trace |");
  for (const std::string& p : policies)
    std::printf(" %s |", p.c_str());
  std::printf("\n|---|");
  for (size_t p = 0; p < policies.size(); ++p)
    std::printf("---:|");
  std::printf("\n");
  for (const TraceResult& r : results) {
    std::printf("| %s |", r.trace.c_str());
    for (const PolicySummary& p : r.policies) {
      const std::string cores = p.failed_cpu_only_cores.mean > 0
                                    ? " (" + Fmt(p.failed_cpu_only_cores.mean, 0) + " cores)"
                                    : std::string();
      std::printf(" %s%s / %s / %s / %s |", Fmt(p.failed_by_class[0].mean, 1).c_str(),
                  cores.c_str(), Fmt(p.failed_by_class[1].mean, 1).c_str(),
                  Fmt(p.failed_by_class[2].mean, 1).c_str(),
                  Fmt(p.failed_by_class[3].mean, 1).c_str());
    }
    std::printf("\n");
  }
  if (bound) {
    std::printf(
        "\nBound: CPU time for all seeds; node types, pod shapes, GPU patterns and LP rows × "
        "columns of the first seed's LP:");
    for (const TraceResult& r : results)
      std::printf(" %s %.1f s, %d types, %d shapes, %d patterns, %d × %d;", r.trace.c_str(),
                  r.bound_seconds, r.node_types, r.pod_shapes, r.gpu_patterns, r.lp_rows,
                  r.lp_columns);
    std::printf("\n");
  }
  return 0;
}
