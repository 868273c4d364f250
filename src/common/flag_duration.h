// File: src/common/flag_duration.h
//
// Parses the duration flags of the project's programs: a positive whole number
// with unit ms, s (the default), m or h, e.g. "500ms", "10s", "1m", "720h".
//
//   std::chrono::milliseconds timeout;
//   if (!ParseFlagDuration(value, &timeout)) return Usage("bad --request-timeout");
//
// Thread-safety: a pure function.
#pragma once

#include <chrono>
#include <string_view>

namespace gpu_autoscaler {

// False (and `*out` unspecified) for anything else, zero, or more than 9 digits.
bool ParseFlagDuration(std::string_view text, std::chrono::milliseconds* out);

}  // namespace gpu_autoscaler
