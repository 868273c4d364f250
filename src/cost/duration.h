// File: src/cost/duration.h
//
// Time arguments of the cost commands: durations ("90s", "15m", "24h", "7d",
// "2w", combined as "1h30m") and points in time ("now", a duration meaning
// that long before now, or RFC 3339 such as "2024-05-01T00:00:00Z").
//
//   GPU_ASSIGN_OR_RETURN(int64_t since, ParseTimePoint("7d", now));   // now - 7 days
//   GPU_ASSIGN_OR_RETURN(int64_t until, ParseTimePoint("2024-05-08T00:00:00Z", now));
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace gpu_autoscaler::cost {

// Seconds in a duration; InvalidArgument for anything else (including 0 and
// negative durations).
Result<int64_t> ParseDurationSeconds(std::string_view text);

// Unix seconds for "now", a duration before `now`, or an RFC 3339 time.
Result<int64_t> ParseTimePoint(std::string_view text, int64_t now);

}  // namespace gpu_autoscaler::cost
