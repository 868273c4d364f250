#include "cost/usage_trace.h"

#include <cmath>
#include <cstdlib>
#include <unordered_map>

namespace gpu_autoscaler::cost {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

void Split(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      fields.push_back(Trim(line.substr(start)));
      return;
    }
    fields.push_back(Trim(line.substr(start, comma - start)));
    start = comma + 1;
  }
}

// A finite number spelled entirely by `s` (strtod needs a terminated copy).
bool ParseDouble(std::string_view s, double& out) {
  if (s.empty() || s.size() > 64) return false;
  char buf[65];
  s.copy(buf, s.size());
  buf[s.size()] = '\0';
  char* end = nullptr;
  out = std::strtod(buf, &end);
  return end == buf + s.size() && std::isfinite(out);
}

}  // namespace

Result<UsageTrace> ParseUsageTraceCsv(std::string_view text, std::string_view file_name,
                                      double min_value, double max_value,
                                      const UsageTraceColumns& columns,
                                      EmptyPodRows empty_pod_rows) {
  int line_number = 0;
  auto error = [&](const std::string& what) {
    return InvalidArgumentError(std::string(file_name) + ":" + std::to_string(line_number) + ": " +
                                what);
  };
  size_t pos = 0;
  auto next_line = [&](std::string_view& line) {
    if (pos >= text.size()) return false;
    const size_t nl = text.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? text.size() : nl;
    line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    return true;
  };

  std::string_view line;
  std::vector<std::string_view> fields;
  do {
    if (!next_line(line)) {
      if (line_number == 0) line_number = 1;
      return error("empty file, expected a header line");
    }
  } while (Trim(line).empty());
  Split(line, fields);
  const size_t width = fields.size();
  auto find = [&fields](std::string_view name) {
    for (size_t i = 0; i < fields.size(); ++i) {
      if (fields[i] == name) return static_cast<int>(i);
    }
    return -1;
  };
  const int value_col = find(columns.value);
  const int time_col = find(columns.timestamp);
  const int pod_col = find(columns.pod);
  for (const auto& [col, name] :
       {std::pair{value_col, &columns.value}, std::pair{time_col, &columns.timestamp},
        std::pair{pod_col, &columns.pod}}) {
    if (col < 0) return error("header lacks column \"" + *name + "\"");
  }

  UsageTrace trace;
  std::unordered_map<std::string, uint32_t> index;
  constexpr double kMaxTime = 9007199254740992.0;  // 2^53
  while (next_line(line)) {
    if (Trim(line).empty()) continue;
    Split(line, fields);
    if (fields.size() != width) {
      return error("expected " + std::to_string(width) + " fields, found " +
                   std::to_string(fields.size()));
    }
    UsageTraceSample s;
    if (!ParseDouble(fields[value_col], s.value)) {
      return error(columns.value + " \"" + std::string(fields[value_col]) + "\" is not a number");
    }
    if (s.value < min_value || s.value > max_value) {
      return error(columns.value + " " + std::string(fields[value_col]) + " is outside [" +
                   std::to_string(min_value) + ", " + std::to_string(max_value) + "]");
    }
    double t = 0;
    if (!ParseDouble(fields[time_col], t) || std::fabs(t) > kMaxTime) {
      return error(columns.timestamp + " \"" + std::string(fields[time_col]) +
                   "\" is not a time in seconds");
    }
    s.timestamp = static_cast<int64_t>(std::llround(t));
    const std::string_view pod = fields[pod_col];
    if (pod.empty()) {
      if (empty_pod_rows == EmptyPodRows::kError) return error("empty " + columns.pod);
      ++trace.skipped_rows;
      continue;
    }
    auto [it, added] =
        index.try_emplace(std::string(pod), static_cast<uint32_t>(trace.pods.size()));
    if (added) trace.pods.emplace_back(pod);
    s.pod = it->second;
    trace.samples.push_back(s);
  }
  return trace;
}

}  // namespace gpu_autoscaler::cost
