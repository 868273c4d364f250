#include "fleet/usage_trace_replay.h"

#include <algorithm>
#include <utility>

#include "common/gzip_file.h"
#include "cost/usage_trace.h"

namespace gpu_autoscaler::fleet {

Result<MemoryTraces> ParseMemoryTraces(std::string_view text, std::string_view file_name,
                                       Clock::Duration step) {
  if (step <= Clock::Duration::zero()) return InvalidArgumentError("trace step must be positive");
  // Fractions of the limit: a little below 0 is noise; above 100x is not memory.
  GPU_ASSIGN_OR_RETURN(
      cost::UsageTrace trace,
      cost::ParseUsageTraceCsv(text, file_name, -0.01, 100, {}, cost::EmptyPodRows::kSkip));
  std::vector<std::vector<std::pair<int64_t, double>>> by_pod(trace.pods.size());
  for (const cost::UsageTraceSample& s : trace.samples)
    by_pod[s.pod].emplace_back(s.timestamp, std::max(0.0, s.value));
  MemoryTraces out;
  out.step = step;
  for (size_t i = 0; i < by_pod.size(); ++i) {
    std::stable_sort(by_pod[i].begin(), by_pod[i].end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<double>& series = out.fraction_by_pod[trace.pods[i]];
    for (const auto& [t, v] : by_pod[i])
      series.push_back(v);
  }
  return out;
}

Result<MemoryTraces> LoadMemoryTraces(const std::string& path, Clock::Duration step) {
  GPU_ASSIGN_OR_RETURN(std::string text, ReadMaybeGzipFile(path));
  return ParseMemoryTraces(text, path, step);
}

double TraceSample(const std::vector<double>& series, Clock::Duration elapsed,
                   Clock::Duration step) {
  if (series.empty() || elapsed < Clock::Duration::zero() || step <= Clock::Duration::zero())
    return series.empty() ? 0 : series.front();
  const auto index = static_cast<size_t>(elapsed / step) % series.size();
  return series[index];
}

}  // namespace gpu_autoscaler::fleet
