// File: node-agent/cgroup_usage.h
//
// What a pod's cgroup v2 group uses, for ranking eviction victims: memory
// (memory.current), CPU time (cpu.stat usage_usec) and IO bytes (io.stat
// rbytes + wbytes over all devices). CPU and IO are counters; UsageRates
// turns successive readings into millicores and bytes per second.
//
//   CgroupUsage u = ReadCgroupUsage("/sys/fs/cgroup/kubepods.slice/...");
//   UsageRates rates;
//   auto r = rates.Update(pod_uid, u, now);  // rates are empty the first time
//
// Thread-safety: the parse and read functions are pure or read files only;
// a UsageRates belongs to one thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::node_agent {

// cpu.stat's usage_usec.
Result<uint64_t> ParseCpuStatUsage(std::string_view text);
// io.stat: "8:0 rbytes=1 wbytes=2 rios=3 ..." per device; the sum of
// rbytes and wbytes. An empty file (no IO yet) is 0.
Result<uint64_t> ParseIoStatBytes(std::string_view text);

struct CgroupUsage {
  std::optional<int64_t> memory_bytes;  // memory.current
  std::optional<uint64_t> cpu_usage_us;
  std::optional<uint64_t> io_bytes;
};

// Reads what exists; a vanished group gives all-empty.
CgroupUsage ReadCgroupUsage(const std::string& cgroup_dir);

struct UsageNow {
  std::optional<int64_t> memory_bytes;
  std::optional<double> cpu_millicores;
  std::optional<double> io_bytes_per_second;
};

class UsageRates {
 public:
  UsageNow Update(const std::string& key, const CgroupUsage& usage, Clock::TimePoint now);
  void Prune(Clock::TimePoint before);

 private:
  struct Last {
    CgroupUsage usage;
    Clock::TimePoint at;
  };
  std::map<std::string, Last, std::less<>> last_;
};

}  // namespace gpu_autoscaler::node_agent
