// File: src/common/str_join.h
//
// StrJoin: the parts with `sep` between each two ("a, b, c"; "" for none),
// as absl::StrJoin does. For messages, keys and fingerprints.
//
//   StrJoin(names, ", ")
//
// Thread-safety: a pure function.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace gpu_autoscaler {

inline std::string StrJoin(std::span<const std::string> parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace gpu_autoscaler
