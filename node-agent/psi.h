// File: node-agent/psi.h
//
// Pressure stall information (PSI, Linux 4.20+): how much of the time tasks
// waited for CPU, memory or IO. The node's figures are in
// <proc-root>/pressure/{cpu,memory,io}; each cgroup v2 group has the same
// format in cpu.pressure, memory.pressure and io.pressure:
//
//   some avg10=6.05 avg60=10.96 avg300=3.76 total=7982193528
//   full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// avgN are percentages averaged (exponentially) over N seconds; total is the
// cumulative stall in microseconds. "some": at least one task stalled;
// "full": every non-idle task stalled at once (the cpu file has no "full"
// line before Linux 5.13, and the node's is always zero).
// PsiRates turns two readings of `total` into the exact stalled share of the
// time between them, which reacts faster than avg10 and misses no spike.
//
//   GPU_ASSIGN_OR_RETURN(PsiFile mem, ParsePsi(text));
//   double pct = mem.some.avg10;
//   NodePressure node = ReadNodePressure("/proc");
//   PsiRates rates;
//   rates.Update("node/memory", node.memory->some.total_us, now);  // nullopt the first time
//
// Thread-safety: the parse and read functions are pure or read files only;
// a PsiRates belongs to one thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::node_agent {

enum class PressureResource : uint8_t { kCpu, kMemory, kIo };
inline constexpr std::array<PressureResource, 3> kPressureResources = {
    PressureResource::kCpu, PressureResource::kMemory, PressureResource::kIo};
// "cpu", "memory", "io": the /proc/pressure file name and the metric label.
std::string_view PressureResourceName(PressureResource r);

struct PsiLine {
  double avg10 = 0;  // percent
  double avg60 = 0;
  double avg300 = 0;
  uint64_t total_us = 0;
  friend bool operator==(const PsiLine&, const PsiLine&) = default;
};

struct PsiFile {
  PsiLine some;
  std::optional<PsiLine> full;  // absent in older kernels' cpu file
  friend bool operator==(const PsiFile&, const PsiFile&) = default;
};

// Parses one PSI file. A "some" line is required; fields may come in any
// order, unknown fields and lines are ignored (newer kernels may add some);
// a malformed number, an average outside 0..100 or a duplicate line is an
// error naming the line.
Result<PsiFile> ParsePsi(std::string_view text);

// Reads and parses one file; NotFound when it does not exist (no PSI in the
// kernel, psi=0 on the command line, or a cgroup that is gone).
Result<PsiFile> ReadPsiFile(const std::string& path);

// The three files of one place (the node or one cgroup). A missing or
// unreadable file leaves its entry empty; `error` names the first failure.
struct PressureReading {
  std::array<std::optional<PsiFile>, 3> files{};  // indexed by PressureResource
  std::string error{};
  const std::optional<PsiFile>& operator[](PressureResource r) const {
    return files[static_cast<size_t>(r)];
  }
};

// <proc_root>/pressure/{cpu,memory,io}.
PressureReading ReadNodePressure(const std::string& proc_root);
// <cgroup_dir>/{cpu,memory,io}.pressure (cgroup v2).
PressureReading ReadCgroupPressure(const std::string& cgroup_dir);

// The stalled share of the time (percent) between successive readings of a
// PSI `total`, per key. The first reading of a key, a counter that went
// backwards (the cgroup was recreated) or no elapsed time give nullopt and
// restart the key.
class PsiRates {
 public:
  std::optional<double> Update(const std::string& key, uint64_t total_us, Clock::TimePoint now);
  // Forgets keys not updated since `before` (pods that left).
  void Prune(Clock::TimePoint before);
  size_t size() const { return last_.size(); }

 private:
  struct Last {
    uint64_t total_us;
    Clock::TimePoint at;
  };
  std::map<std::string, Last, std::less<>> last_;
};

}  // namespace gpu_autoscaler::node_agent
