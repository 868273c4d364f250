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

// Calls visit(value) for each value in order until it returns true; says
// whether one did. "" is one empty value.
template <typename Visit>
bool AnySelectorValue(std::string_view joined, Visit visit) {
  size_t start = 0;
  while (start <= joined.size()) {
    size_t end = joined.find('\n', start);
    if (end == std::string_view::npos) end = joined.size();
    if (visit(joined.substr(start, end - start))) return true;
    start = end + 1;
  }
  return false;
}

inline bool SelectorValuesContain(std::string_view joined, std::string_view value) {
  return AnySelectorValue(joined, [value](std::string_view v) { return v == value; });
}

// The values, in order; views into `joined`.
inline std::vector<std::string_view> SplitSelectorValues(std::string_view joined) {
  std::vector<std::string_view> out;
  AnySelectorValue(joined, [&out](std::string_view v) {
    out.push_back(v);
    return false;
  });
  return out;
}

}  // namespace gpu_autoscaler::kube
