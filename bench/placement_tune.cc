// Grid search over FragLookahead's weights (policy_internal.h) on openb pod
// lists and a seed range that must not be the evaluation seeds 42..51: for
// each setting, the mean GPU allocation at arrived 100% and 130% against FGD
// and the CPU-only pods refused per run. Single-threaded.
//
//   build/default/bench/placement_tune --traces default,cpu050 --seeds 1-10
//       --lookahead 0.25,0.5,0.75 --scarcity 1 --unfillable 0,0.5,1   (one line)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "autoscale/policy_internal.h"
#include "autoscale/simulator.h"
#include "autoscale/trace.h"
#include "openb_cli.h"

namespace {

using gpu_autoscaler::autoscale::bench::SplitList;

std::vector<double> Numbers(const std::string& text) {
  std::vector<double> out;
  for (const std::string& s : SplitList(text))
    out.push_back(std::atof(s.c_str()));
  return out;
}

void Usage() {
  std::printf(
      "placement_tune: grid search over FragLookahead's weights against FGD.\n\n"
      "  --traces LIST      pod-list variants (default: default)\n"
      "  --data DIR         folder with the node list and pod lists (default bench/data/openb)\n"
      "  --seeds A-B        tuning seeds; 42..51 are refused (the evaluation seeds)\n"
      "  --production       start every weight below at FragLookahead's defaults (the\n"
      "                     defaults listed are the older search's, parts 1 and 2 only)\n"
      "  --lookahead LIST   lookahead_weight values (default 0.5)\n"
      "  --scarcity LIST    scarcity_weight values (default 1)\n"
      "  --unfillable LIST  unfillable_weight values (default 0)\n"
      "  --cpu-fragment LIST  cpu_fragment_weight values (default 0)\n"
      "  --cpu-pressure-ref X  cpu_pressure_reference (default 0: unscaled)\n"
      "  --cpu-shortfall LIST  cpu_shortfall_weight values (default 0)\n"
      "  --cpu-shortfall-ramp A,B  cpu_shortfall_full_below and _off_from (default 0.8,0.9)\n"
      "  --memory-strand LIST  memory_strand_weight values (default 0)\n"
      "  --memory-strand-ref X  memory_strand_reference (default 0.8)\n"
      "  --oversubscribed-tiebreaks 0|1  oversubscribed_cpu_tiebreaks (default 0)\n"
      "  --workload KIND    FragLookahead's target workload (FGD keeps the trace's):\n"
      "                     trace     the simulator's: all pods cut to 95%% (default)\n"
      "                     per-class the scheduler's: GPU and CPU-only pods each cut to\n"
      "                               95%%, weighted by their pod counts\n"
      "                     gpu-only  GPU pods only, cut to 95%%\n");
}

enum class WorkloadKind { kTrace, kPerClass, kGpuOnly };

// FragLookahead's target workload for `trace` as `kind` asks.
gpu_autoscaler::autoscale::TargetWorkload PolicyWorkload(
    const gpu_autoscaler::autoscale::PreparedTrace& trace, WorkloadKind kind) {
  using gpu_autoscaler::autoscale::PodSpec;
  using gpu_autoscaler::autoscale::TargetWorkload;
  if (kind == WorkloadKind::kTrace) return trace.workload;
  std::vector<PodSpec> gpu, cpu_only;
  for (size_t i = 0; i < trace.pods.size(); ++i)
    (trace.requests[i].uses_gpu() ? gpu : cpu_only).push_back(trace.pods[i]);
  TargetWorkload gpus = TargetWorkload::FromTrace(gpu, trace.empty_cluster);
  if (kind == WorkloadKind::kGpuOnly || cpu_only.empty() || gpu.empty()) return gpus;
  return TargetWorkload::MergeByPodCount(gpus,
                                         TargetWorkload::FromTrace(cpu_only, trace.empty_cluster));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gpu_autoscaler::autoscale;
  using bench::Flags;
  std::vector<std::string> traces = {"default"};
  std::string data = std::string(GPA_SOURCE_DIR) + "/bench/data/openb";
  unsigned long first = 1, last = 10;
  std::vector<double> lookahead = {0.5}, scarcity = {1}, unfillable = {0}, cpufrag = {0},
                      shortfall = {0}, ramp = {0.8, 0.9}, strand = {0};
  double pressure_ref = 0, strand_ref = 0.8;
  bool oversubscribed_tiebreaks = false;
  WorkloadKind workload_kind = WorkloadKind::kTrace;
  // --production, wherever it stands: every weight starts at what
  // MakePolicy("FragLookahead") builds; the other flags still set the lists.
  if (std::any_of(argv + 1, argv + argc,
                  [](const char* arg) { return std::string_view(arg) == "--production"; })) {
    const internal::FragLookaheadParams d;
    lookahead = {d.lookahead_weight};
    scarcity = {d.scarcity_weight};
    unfillable = {d.unfillable_weight};
    cpufrag = {d.cpu_fragment_weight};
    pressure_ref = d.cpu_pressure_reference;
    shortfall = {d.cpu_shortfall_weight};
    ramp = {d.cpu_shortfall_full_below, d.cpu_shortfall_off_from};
    strand = {d.memory_strand_weight};
    strand_ref = d.memory_strand_reference;
    oversubscribed_tiebreaks = d.oversubscribed_cpu_tiebreaks;
  }
  Flags flags(argc, argv);
  while (flags.Next()) {
    if (flags.IsHelp()) {
      Usage();
      return 0;
    } else if (flags.Is("--production")) {
      // read above, before the other flags
    } else if (bench::TakeTraceFlag(flags, &traces, &data, &first, &last)) {
    } else if (flags.Is("--lookahead")) {
      lookahead = Numbers(flags.Value());
    } else if (flags.Is("--scarcity")) {
      scarcity = Numbers(flags.Value());
    } else if (flags.Is("--cpu-pressure-ref")) {
      pressure_ref = std::atof(flags.Value().c_str());
    } else if (flags.Is("--cpu-fragment")) {
      cpufrag = Numbers(flags.Value());
    } else if (flags.Is("--unfillable")) {
      unfillable = Numbers(flags.Value());
    } else if (flags.Is("--cpu-shortfall")) {
      shortfall = Numbers(flags.Value());
    } else if (flags.Is("--memory-strand")) {
      strand = Numbers(flags.Value());
    } else if (flags.Is("--memory-strand-ref")) {
      strand_ref = std::atof(flags.Value().c_str());
    } else if (flags.Is("--oversubscribed-tiebreaks")) {
      oversubscribed_tiebreaks = flags.Value() == "1";
    } else if (flags.Is("--workload")) {
      const std::string kind = flags.Value();
      if (kind == "trace") {
        workload_kind = WorkloadKind::kTrace;
      } else if (kind == "per-class") {
        workload_kind = WorkloadKind::kPerClass;
      } else if (kind == "gpu-only") {
        workload_kind = WorkloadKind::kGpuOnly;
      } else {
        std::fprintf(stderr, "--workload takes trace, per-class or gpu-only, not %s\n",
                     kind.c_str());
        return 2;
      }
    } else if (flags.Is("--cpu-shortfall-ramp")) {
      ramp = Numbers(flags.Value());
      if (ramp.size() != 2 || !(ramp[0] < ramp[1])) {
        std::fprintf(stderr, "--cpu-shortfall-ramp takes A,B with A < B\n");
        return 2;
      }
    } else {
      return flags.Unknown();
    }
  }
  if (last < first || (first <= 51 && last >= 42)) {
    std::fprintf(stderr, "--seeds must be a range A-B outside 42..51 (the evaluation seeds)\n");
    return 2;
  }
  std::printf(
      "| trace | lookahead | scarcity | unfillable | cpu fragment | cpu shortfall | memory strand "
      "| @100 | FGD @100 | @130 | FGD @130 | CPU-only refused | FGD CPU-only refused |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  // Every combination of the listed weights.
  std::vector<internal::FragLookaheadParams> grid;
  for (double l : lookahead)
    for (double s : scarcity)
      for (double u : unfillable)
        for (double c : cpufrag)
          for (double w : shortfall)
            for (double m : strand)
              grid.push_back({l, s, u, c, pressure_ref, w, ramp[0], ramp[1], m, strand_ref,
                              oversubscribed_tiebreaks});
  for (const std::string& name : traces) {
    auto trace = bench::LoadOpenbVariant(data, name);
    if (!trace.ok()) {
      std::fprintf(stderr, "%s\n", trace.error().ToString().c_str());
      return 1;
    }
    const TargetWorkload policy_workload = PolicyWorkload(*trace, workload_kind);
    const double seeds = static_cast<double>(last - first + 1);
    double fgd100 = 0, fgd130 = 0, fgd_cpu = 0;
    for (unsigned long seed = first; seed <= last; ++seed) {
      auto run = Simulate(*trace, "FGD", seed);
      if (!run.ok()) return 1;
      fgd100 += run->alloc_pct[100] / seeds;
      fgd130 += run->alloc_pct[130] / seeds;
      fgd_cpu += static_cast<double>(run->failed_by_class[0]) / seeds;
    }
    for (const internal::FragLookaheadParams& p : grid) {
      double a100 = 0, a130 = 0, cpu = 0;
      for (unsigned long seed = first; seed <= last; ++seed) {
        auto policy = internal::MakeFragLookahead(&policy_workload, p);
        auto run = Simulate(*trace, *policy, seed);
        if (!run.ok()) return 1;
        a100 += run->alloc_pct[100] / seeds;
        a130 += run->alloc_pct[130] / seeds;
        cpu += static_cast<double>(run->failed_by_class[0]) / seeds;
      }
      std::printf(
          "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | "
          "%.1f |\n",
          name.c_str(), p.lookahead_weight, p.scarcity_weight, p.unfillable_weight,
          p.cpu_fragment_weight, p.cpu_shortfall_weight, p.memory_strand_weight, a100, fgd100, a130,
          fgd130, cpu, fgd_cpu);
      std::fflush(stdout);
    }
  }
  return 0;
}
