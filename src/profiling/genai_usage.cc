#include "profiling/genai_usage.h"

#include <algorithm>
#include <unordered_map>

#include "common/gzip_file.h"
#include "cost/usage_trace.h"

namespace gpu_autoscaler::profiling {
namespace {

// Bytes (and memory in any unit) up to 1 PB; values are checked, not trusted.
constexpr double kMaxQuantity = 1e15;

void Merge(const cost::UsageTrace& trace, double scale, std::vector<TimedValue> PodUsage::*series,
           std::vector<PodUsage>& pods, std::unordered_map<std::string, size_t>& index) {
  std::vector<size_t> pod_of(trace.pods.size());
  for (size_t i = 0; i < trace.pods.size(); ++i) {
    auto [it, added] = index.try_emplace(trace.pods[i], pods.size());
    if (added) pods.push_back(PodUsage{.name = trace.pods[i]});
    pod_of[i] = it->second;
  }
  for (const cost::UsageTraceSample& s : trace.samples)
    (pods[pod_of[s.pod]].*series).push_back({s.timestamp, std::max(0.0, s.value) * scale});
}

}  // namespace

Result<std::vector<PodUsage>> ParseGenAiUsage(const GenAiUsageText& text) {
  GPU_ASSIGN_OR_RETURN(
      cost::UsageTrace util,
      cost::ParseUsageTraceCsv(text.gpu_utilization, text.gpu_utilization_name, 0, 100));
  GPU_ASSIGN_OR_RETURN(
      cost::UsageTrace gpu_memory,
      cost::ParseUsageTraceCsv(text.gpu_memory, text.gpu_memory_name, 0, kMaxQuantity));
  std::vector<PodUsage> pods;
  std::unordered_map<std::string, size_t> index;
  Merge(util, 0.01, &PodUsage::gpu_utilization, pods, index);
  Merge(gpu_memory, 1, &PodUsage::gpu_memory, pods, index);
  if (text.memory) {
    GPU_ASSIGN_OR_RETURN(cost::UsageTrace memory,
                         cost::ParseUsageTraceCsv(*text.memory, text.memory_name, -1, kMaxQuantity,
                                                  {}, cost::EmptyPodRows::kSkip));
    Merge(memory, 1, &PodUsage::memory, pods, index);
  }
  auto by_time = [](const TimedValue& a, const TimedValue& b) { return a.timestamp < b.timestamp; };
  for (PodUsage& pod : pods) {
    for (auto* series : {&pod.gpu_utilization, &pod.gpu_memory, &pod.memory})
      std::stable_sort(series->begin(), series->end(), by_time);
  }
  return pods;
}

Result<std::vector<PodUsage>> LoadGenAiUsage(const GenAiUsageFiles& files) {
  GPU_ASSIGN_OR_RETURN(std::string util, ReadMaybeGzipFile(files.gpu_utilization));
  GPU_ASSIGN_OR_RETURN(std::string gpu_memory, ReadMaybeGzipFile(files.gpu_memory));
  std::string memory;
  if (!files.memory.empty()) {
    GPU_ASSIGN_OR_RETURN(memory, ReadMaybeGzipFile(files.memory));
  }
  GenAiUsageText text{.gpu_utilization = util,
                      .gpu_utilization_name = files.gpu_utilization,
                      .gpu_memory = gpu_memory,
                      .gpu_memory_name = files.gpu_memory};
  if (!files.memory.empty()) {
    text.memory = memory;
    text.memory_name = files.memory;
  }
  return ParseGenAiUsage(text);
}

}  // namespace gpu_autoscaler::profiling
