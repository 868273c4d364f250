#include "node-agent/cgroup_usage.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace gpu_autoscaler::node_agent {
namespace {

bool ParseUint64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ReadText(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

// Calls fn(line) for each non-empty line.
template <typename Fn>
Status ForEachLine(std::string_view text, Fn fn) {
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty()) GPU_RETURN_IF_ERROR(fn(line));
  }
  return Status::Ok();
}

}  // namespace

Result<uint64_t> ParseCpuStatUsage(std::string_view text) {
  std::optional<uint64_t> usage;
  GPU_RETURN_IF_ERROR(ForEachLine(text, [&](std::string_view line) {
    const size_t space = line.find(' ');
    if (line.substr(0, space) != "usage_usec") return Status::Ok();
    uint64_t v = 0;
    if (space == std::string_view::npos || !ParseUint64(line.substr(space + 1), &v))
      return InvalidArgumentError("cpu.stat: usage_usec is not a number");
    usage = v;
    return Status::Ok();
  }));
  if (!usage) return InvalidArgumentError("cpu.stat: no usage_usec");
  return *usage;
}

Result<uint64_t> ParseIoStatBytes(std::string_view text) {
  uint64_t bytes = 0;
  GPU_RETURN_IF_ERROR(ForEachLine(text, [&](std::string_view line) {
    size_t space = line.find(' ');  // after "MAJ:MIN"
    while (space != std::string_view::npos) {
      line = line.substr(space + 1);
      space = line.find(' ');
      const std::string_view field = line.substr(0, space);
      const size_t eq = field.find('=');
      const std::string_view key = field.substr(0, eq);
      if (eq == std::string_view::npos || (key != "rbytes" && key != "wbytes")) continue;
      uint64_t v = 0;
      if (!ParseUint64(field.substr(eq + 1), &v))
        return InvalidArgumentError("io.stat: " + std::string(key) + " is not a number");
      bytes += v;
    }
    return Status::Ok();
  }));
  return bytes;
}

CgroupUsage ReadCgroupUsage(const std::string& cgroup_dir) {
  CgroupUsage usage;
  std::string text;
  if (ReadText(cgroup_dir + "/memory.current", &text)) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
      text.pop_back();
    uint64_t v = 0;
    if (ParseUint64(text, &v)) usage.memory_bytes = static_cast<int64_t>(v);
  }
  if (ReadText(cgroup_dir + "/cpu.stat", &text)) {
    if (auto v = ParseCpuStatUsage(text); v.ok()) usage.cpu_usage_us = *v;
  }
  if (ReadText(cgroup_dir + "/io.stat", &text)) {
    if (auto v = ParseIoStatBytes(text); v.ok()) usage.io_bytes = *v;
  }
  return usage;
}

UsageNow UsageRates::Update(const std::string& key, const CgroupUsage& usage,
                            Clock::TimePoint now) {
  UsageNow out;
  out.memory_bytes = usage.memory_bytes;
  auto it = last_.find(key);
  if (it != last_.end()) {
    const Last& prev = it->second;
    const double seconds = std::chrono::duration<double>(now - prev.at).count();
    if (seconds > 0) {
      if (usage.cpu_usage_us && prev.usage.cpu_usage_us &&
          *usage.cpu_usage_us >= *prev.usage.cpu_usage_us) {
        // usec of CPU per second of wall time / 1000 = millicores.
        out.cpu_millicores =
            static_cast<double>(*usage.cpu_usage_us - *prev.usage.cpu_usage_us) / seconds / 1000.0;
      }
      if (usage.io_bytes && prev.usage.io_bytes && *usage.io_bytes >= *prev.usage.io_bytes) {
        out.io_bytes_per_second =
            static_cast<double>(*usage.io_bytes - *prev.usage.io_bytes) / seconds;
      }
    }
  }
  last_[key] = Last{usage, now};
  return out;
}

void UsageRates::Prune(Clock::TimePoint before) {
  std::erase_if(last_, [&](const auto& kv) { return kv.second.at < before; });
}

}  // namespace gpu_autoscaler::node_agent
