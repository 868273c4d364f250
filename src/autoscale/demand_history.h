// File: src/autoscale/demand_history.h
//
// A GPU pool's demand history for predictive scaling: one peak (GPUs) per
// fixed step, aligned to the Unix epoch, with gaps where nobody observed
// (the manager was down). The controller keeps it in a checkpoint ConfigMap
// (controllers/gpu_node_pool_predictive.h); this header is its compact text
// form, which is outside input (anyone may edit the ConfigMap) and is
// decoded strictly:
//
//   {"version":1,"stepSeconds":300,"start":1764892800,"gpus":"2,2.5,,3"}
//
// `start` is the first point's step (a multiple of stepSeconds); `gpus` the
// peaks in order, an empty entry a gap; values are kept to 1/1000 GPU (the
// planner's milli-GPU). 7 days at 5 minutes is about 10 KB.
//
//   DemandHistory h{.step_seconds = 300};
//   h.Append(1764892800, 2.5, MaxHistoryPoints(300, 86400));
//   std::string text = EncodeDemandHistory(h);
//   GPU_ASSIGN_OR_RETURN(DemandHistory back, DecodeDemandHistory(text));
//
// Thread-safety: a value type and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::autoscale {

inline constexpr size_t kMaxHistoryPoints = 20160;     // 7 days at 30 s
inline constexpr size_t kMaxHistoryText = 512 * 1024;  // well under a ConfigMap's 1 MiB
inline constexpr int64_t kHistoryRetentionSeconds = 7 * 86400;

struct DemandHistory {
  int64_t step_seconds = 300;
  int64_t start = 0;           // Unix seconds of the first point's step
  std::vector<double> gpus{};  // one peak per step; NaN: a gap

  // Unix seconds of the step after the last point (start when empty).
  int64_t end() const { return start + step_seconds * static_cast<int64_t>(gpus.size()); }
  size_t observed() const;  // points that are not gaps

  // Appends the peak of the step starting at `step_start` (aligned), the
  // steps missed since the last point as gaps, and drops the oldest points
  // beyond `max_points`. False (and no change) when `step_start` is not after
  // the last point or not aligned.
  bool Append(int64_t step_start, double peak, size_t max_points);
};

// How many points a pool keeps: 7 days, or two seasons when longer, at most
// kMaxHistoryPoints.
size_t MaxHistoryPoints(int64_t step_seconds, int64_t season_seconds);

std::string EncodeDemandHistory(const DemandHistory& history);
// Fails with kInvalidArgument naming the problem: not JSON, a wrong version,
// a step outside 1 s..1 day, a start that is unaligned or outside 0..1e12, a value that is
// not a finite number in 0..1e6, more than kMaxHistoryPoints points, text
// over kMaxHistoryText.
Result<DemandHistory> DecodeDemandHistory(std::string_view text);

}  // namespace gpu_autoscaler::autoscale
