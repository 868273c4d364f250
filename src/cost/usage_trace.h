// File: src/cost/usage_trace.h
//
// Reader for per-pod GPU usage traces in the layout of the Alibaba GenTD26
// ("GenAI Serving Top-Down Dataset 2026", clusterdata cluster-trace-v2026-GenAI)
// usage files: `value,timestamp_anon,container_ip`, one sample per pod per
// period, where `value` is the pod's GPU utilisation in percent (duty cycle)
// and `container_ip` (a hash) names the pod. Columns are found by header name,
// so the order does not matter and extra columns are ignored. Bad rows are
// "<file>:<line>: <what is wrong>". Decompressing a .gz file is the caller's job.
//
//   GPU_ASSIGN_OR_RETURN(UsageTrace trace, ParseUsageTraceCsv(text, "pod_gpu_duty_cycle.csv"));
//   for (const UsageTraceSample& s : trace.samples)
//     detector.Observe(trace.pods[s.pod], s.timestamp, s.value / 100, events);
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::cost {

struct UsageTraceSample {
  uint32_t pod = 0;       // index into UsageTrace::pods
  int64_t timestamp = 0;  // seconds (the trace's anonymised clock), rounded
  double value = 0;       // as in the file; finite
};

struct UsageTrace {
  std::vector<std::string> pods{};          // in order of first appearance
  std::vector<UsageTraceSample> samples{};  // file order
  size_t skipped_rows = 0;                  // rows without a pod, when skipped
};

struct UsageTraceColumns {
  std::string value = "value";
  std::string timestamp = "timestamp_anon";
  std::string pod = "container_ip";
};

// What to do with a row whose pod column is empty (GenTD26's memory file has
// a few: usage of a container without an address).
enum class EmptyPodRows { kError, kSkip };

// `file_name` only labels errors. Values must be finite and within
// [min_value, max_value] (the duty cycle file: 0..100); timestamps finite and
// within +-2^53; pod names non-empty (or such rows skipped and counted).
Result<UsageTrace> ParseUsageTraceCsv(std::string_view text, std::string_view file_name,
                                      double min_value = 0, double max_value = 100,
                                      const UsageTraceColumns& columns = {},
                                      EmptyPodRows empty_pod_rows = EmptyPodRows::kError);

}  // namespace gpu_autoscaler::cost
