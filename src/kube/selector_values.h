// File: src/kube/selector_values.h
//
// Membership in a node selector requirement's values, which the pod decoder
// interns joined by '\n' (kube::NodeSelectorRequirement::values).
//
//   if (kube::SelectorValuesContain(r.values.view(), "H100")) ...
//
// Thread-safety: a pure function.
#pragma once

#include <string_view>

namespace gpu_autoscaler::kube {

inline bool SelectorValuesContain(std::string_view joined, std::string_view value) {
  size_t start = 0;
  while (start <= joined.size()) {
    size_t end = joined.find('\n', start);
    if (end == std::string_view::npos) end = joined.size();
    if (joined.substr(start, end - start) == value) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace gpu_autoscaler::kube
