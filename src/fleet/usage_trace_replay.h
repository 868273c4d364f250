// File: src/fleet/usage_trace_replay.h
//
// Memory usage replayed from a trace in the layout of the Alibaba GenTD26
// usage traces ("GenAI Serving Top-Down Dataset 2026", clusterdata
// cluster-trace-v2026-GenAI): `pod_memory_util_anon.csv` has
// `value,timestamp_anon,container_ip`, one sample per pod per minute, the value
// a fraction of the pod's memory limit. A fleet pod annotated
// `memory-trace=<container_ip>` (usage_annotation.h) reports, per container,
// the trace pod's samples in time order, one per `step` since the pod started
// (wrapping around), times the container's memory limit: as the demo's fake
// NVML replays the GPU traces one sample per poll.
//
//   GPU_ASSIGN_OR_RETURN(MemoryTraces traces, LoadMemoryTraces("pod_memory_util_anon.csv.gz", 1s));
//   double f = TraceSample(traces.fraction_by_pod.at(id), 30s, traces.step);  // the 31st sample
//
// Rows are read by cost::ParseUsageTraceCsv ("<file>:<line>: <what is wrong>");
// rows without a pod are skipped and slightly negative values (GenTD26 has a
// few around -1e-5) read as 0, as profiling/genai_usage.h does.
//
// Thread-safety: pure functions; MemoryTraces is an immutable value once loaded.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::fleet {

struct MemoryTraces {
  Clock::Duration step = std::chrono::seconds(1);
  std::map<std::string, std::vector<double>> fraction_by_pod{};  // samples in time order
};

// `file_name` labels errors.
Result<MemoryTraces> ParseMemoryTraces(std::string_view text, std::string_view file_name,
                                       Clock::Duration step);
// A plain or gzipped file.
Result<MemoryTraces> LoadMemoryTraces(const std::string& path, Clock::Duration step);

// The sample for `elapsed` time since the pod started: index elapsed / step,
// modulo the series length; the first sample for a negative elapsed, 0 for an
// empty series.
double TraceSample(const std::vector<double>& series, Clock::Duration elapsed,
                   Clock::Duration step);

}  // namespace gpu_autoscaler::fleet
