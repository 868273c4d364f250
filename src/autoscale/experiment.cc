#include "autoscale/experiment.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <optional>
#include <thread>

#include "autoscale/policy.h"

namespace gpu_autoscaler::autoscale {

MeanSd Summarise(const std::vector<double>& values) {
  MeanSd out;
  if (values.empty()) return out;
  double sum = 0;
  for (double v : values)
    sum += v;
  out.mean = sum / static_cast<double>(values.size());
  if (values.size() > 1) {
    double squares = 0;
    for (double v : values)
      squares += (v - out.mean) * (v - out.mean);
    out.sd = std::sqrt(squares / static_cast<double>(values.size() - 1));
  }
  return out;
}

PolicySummary SummarisePolicy(std::string policy, std::vector<RunResult> runs) {
  PolicySummary s;
  s.policy = std::move(policy);
  s.runs = std::move(runs);
  std::vector<double> values(s.runs.size());
  auto column = [&](auto pick) {
    for (size_t r = 0; r < s.runs.size(); ++r)
      values[r] = pick(s.runs[r]);
    return Summarise(values);
  };
  for (int k = 0; k < kArrivedColumns; ++k) {
    s.alloc_pct[k] = column([k](const RunResult& r) { return r.alloc_pct[k]; });
    s.frag_pct[k] = column([k](const RunResult& r) { return r.frag_pct[k]; });
    s.frag_ratio[k] = column([k](const RunResult& r) { return r.frag_ratio[k]; });
  }
  for (int c = 0; c < kPodClassCount; ++c) {
    s.failed_by_class[c] =
        column([c](const RunResult& r) { return static_cast<double>(r.failed_by_class[c]); });
    s.arrived_by_class[c] =
        column([c](const RunResult& r) { return static_cast<double>(r.arrived_by_class[c]); });
  }
  s.failed_cpu_only_cores = column(
      [](const RunResult& r) { return static_cast<double>(r.failed_cpu_only_cpu_milli) / 1000; });
  s.pods = column([](const RunResult& r) { return static_cast<double>(r.pods); });
  return s;
}

Result<std::vector<PolicySummary>> RunExperiment(const PreparedTrace& trace,
                                                 const ExperimentOptions& options,
                                                 const std::function<void(int, int)>& progress) {
  if (options.policies.empty()) return InvalidArgumentError("no policy given");
  if (options.seeds.empty()) return InvalidArgumentError("no seed given");
  for (const std::string& name : options.policies) {
    Result<std::unique_ptr<Policy>> policy = MakePolicy(name, &trace.workload);
    if (!policy.ok()) return policy.error();
  }
  const int seeds = static_cast<int>(options.seeds.size());
  const int total = static_cast<int>(options.policies.size()) * seeds;
  std::vector<std::optional<Result<RunResult>>> results(total);
  std::atomic<int> next{0};
  std::mutex progress_mu;
  int done = 0;
  auto worker = [&]() {
    for (int job = next++; job < total; job = next++) {
      results[job] = Simulate(trace, options.policies[job / seeds], options.seeds[job % seeds],
                              options.simulation);
      std::lock_guard<std::mutex> lock(progress_mu);
      ++done;
      if (progress) progress(done, total);
    }
  };
  int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, total);
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t)
    pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool)
    t.join();

  std::vector<PolicySummary> summaries;
  for (size_t p = 0; p < options.policies.size(); ++p) {
    std::vector<RunResult> runs;
    for (int s = 0; s < seeds; ++s) {
      Result<RunResult>& r = *results[p * seeds + s];
      if (!r.ok()) return r.error();
      runs.push_back(std::move(r).value());
    }
    std::string name = runs.front().policy;
    summaries.push_back(SummarisePolicy(std::move(name), std::move(runs)));
  }
  return summaries;
}

}  // namespace gpu_autoscaler::autoscale
