// File: src/profiling/genai_usage.h
//
// Per-pod usage series from files in the layout of the Alibaba GenTD26 usage
// traces ("GenAI Serving Top-Down Dataset 2026", clusterdata
// cluster-trace-v2026-GenAI): `value,timestamp_anon,container_ip` in any
// column order, one sample per pod per minute, plain or gzipped:
//   GPU utilisation  pod_gpu_duty_cycle_anon.csv         percent, 0..100
//   GPU memory       pod_gpu_memory_used_bytes_anon.csv  bytes
//   memory           pod_memory_util_anon.csv            fraction of the limit (optional)
// Rows are parsed by cost::ParseUsageTraceCsv, so a bad row is reported as
// "<file>:<line>: <what is wrong>". Memory rows without a pod (GenTD26 has
// 49, a container without an address) are skipped, and slightly negative
// memory values (GenTD26 has a few around -1e-5, measurement noise) read as 0.
//
//   GPU_ASSIGN_OR_RETURN(std::vector<PodUsage> pods,
//                        LoadGenAiUsage({.gpu_utilization = "util.csv.gz",
//                                        .gpu_memory = "gpumem.csv.gz"}));
//
// Thread-safety: pure functions of their input.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "profiling/evaluation.h"

namespace gpu_autoscaler::profiling {

struct GenAiUsageText {
  std::string_view gpu_utilization;
  std::string_view gpu_utilization_name = "gpu-util.csv";  // labels errors
  std::string_view gpu_memory;
  std::string_view gpu_memory_name = "gpu-memory.csv";
  std::optional<std::string_view> memory{};
  std::string_view memory_name = "memory.csv";
};

// Pods in order of first appearance (GPU utilisation file, then GPU memory,
// then memory), each series sorted by time. Utilisation becomes a fraction.
Result<std::vector<PodUsage>> ParseGenAiUsage(const GenAiUsageText& text);

struct GenAiUsageFiles {
  std::string gpu_utilization{};
  std::string gpu_memory{};
  std::string memory{};  // empty: none
};

Result<std::vector<PodUsage>> LoadGenAiUsage(const GenAiUsageFiles& files);

}  // namespace gpu_autoscaler::profiling
