// File: src/autoscale/experiment.h
//
// Runs a grid of simulations (policies × seeds) on one prepared trace across
// worker threads, since every (policy, seed) run is independent, and
// summarises each policy as mean ± sample standard deviation over seeds.
//
//   ExperimentOptions options{.policies = {"FGD", "BestFit"}, .seeds = {42, 43}};
//   GPU_ASSIGN_OR_RETURN(std::vector<PolicySummary> summary,
//                        RunExperiment(trace, options, [](int done, int total) {}));
//
// Thread-safety: RunExperiment is reentrant; the progress callback is called
// from worker threads, one call at a time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autoscale/simulator.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

struct MeanSd {
  double mean = 0;
  double sd = 0;  // sample standard deviation; 0 for one sample
};
MeanSd Summarise(const std::vector<double>& values);

struct ExperimentOptions {
  std::vector<std::string> policies;
  std::vector<uint64_t> seeds;
  SimulationOptions simulation;
  int threads = 0;  // 0: one per hardware thread
};

struct PolicySummary {
  std::string policy;
  std::vector<RunResult> runs;  // in seed order
  std::array<MeanSd, kArrivedColumns> alloc_pct;
  std::array<MeanSd, kArrivedColumns> frag_pct;
  std::array<MeanSd, kArrivedColumns> frag_ratio;
  std::array<MeanSd, kPodClassCount> failed_by_class;
  std::array<MeanSd, kPodClassCount> arrived_by_class;
  MeanSd failed_cpu_only_cores;  // CPU asked for by the refused CPU-only pods
  MeanSd pods;
};

// Builds the summary of one policy's runs.
PolicySummary SummarisePolicy(std::string policy, std::vector<RunResult> runs);

// Runs every (policy, seed) pair; results keep the order of options.policies.
// `progress(done, total)` is called after each run (may be empty).
Result<std::vector<PolicySummary>> RunExperiment(const PreparedTrace& trace,
                                                 const ExperimentOptions& options,
                                                 const std::function<void(int, int)>& progress);

}  // namespace gpu_autoscaler::autoscale
