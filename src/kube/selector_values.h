// File: src/kube/selector_values.h
//
// Membership in a node selector requirement's values, which the pod decoder
// interns joined by '\n' (kube::NodeSelectorRequirement::values).
//
//   if (kube::SelectorValuesContain(r.values.view(), "H100")) ...
//   for (std::string_view v : kube::SplitSelectorValues(r.values.view())) ...
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>
#include <vector>

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

// The values, in order; views into `joined`. "" is one empty value, as above.
inline std::vector<std::string_view> SplitSelectorValues(std::string_view joined) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= joined.size()) {
    size_t end = joined.find('\n', start);
    if (end == std::string_view::npos) end = joined.size();
    out.push_back(joined.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace gpu_autoscaler::kube
