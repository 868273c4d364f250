// File: src/kube/meta_time.h
//
// metav1.Time ("2006-01-02T15:04:05Z", seconds) and metav1.MicroTime
// ("2006-01-02T15:04:05.000000Z") text forms, as written by the API server.
//
//   FormatMicroTime(clock.WallNow())   -> "2026-11-22T08:17:47.123456Z"
//   FormatTime(clock.WallNow())        -> "2026-11-22T08:17:47Z"
//   ParseRfc3339("2026-11-22T08:17:47Z") -> a WallTime, or a kDecode error
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "kube/error.h"

namespace gpu_autoscaler::kube {

// Wall times read from outside are held to [1900-01-01, 2190-01-01): any two
// of them, or one and now, are under 292 years apart, so their difference
// fits the clock's 64-bit nanoseconds. ParseRfc3339 refuses times outside;
// readers of other formats clamp to it.
inline constexpr int64_t kFirstSafeUnixSecond = -2'208'988'800;  // 1900-01-01T00:00:00Z
inline constexpr int64_t kEndSafeUnixSecond = 6'942'585'600;     // 2190-01-01T00:00:00Z

// metav1.MicroTime: UTC, microseconds.
std::string FormatMicroTime(Clock::WallTime t);
// metav1.Time: UTC, whole seconds (truncated).
std::string FormatTime(Clock::WallTime t);
// RFC 3339 in UTC ('Z') with 0..9 fractional digits, in the safe range above.
Result<Clock::WallTime> ParseRfc3339(std::string_view text);
// Truncates to whole microseconds (what survives a MicroTime round trip).
Clock::WallTime TruncateToMicros(Clock::WallTime t);

}  // namespace gpu_autoscaler::kube
