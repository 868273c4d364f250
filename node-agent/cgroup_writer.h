// File: node-agent/cgroup_writer.h
//
// Writes a pod's planned QoS settings (qos_pools.h CgroupSettings) into its
// cgroup, for cgroup v2 and v1 and both kubelet cgroup drivers:
//
//   cgroupfs: kubepods[/burstable|/besteffort]/pod<uid>
//   systemd:  kubepods.slice[/kubepods-burstable.slice]/kubepods[-burstable]-pod<uid_>.slice
//             (dashes in the uid become underscores)
//
//   CgroupWriter writer({.root = "/sys/fs/cgroup", .driver = CgroupDriver::kSystemd,
//                        .version = DetectCgroupVersion("/sys/fs/cgroup").value()});
//   CgroupApplyResult r = writer.Apply(assignment);
//   if (r.vanished) log("cgroup vanished");  // the pod went; try again next pass
//   writer.Forget(uid);                      // the pod is gone
//
// v2 -> v1 mapping (v1 has no direct equivalent for every knob):
//   cpuset.cpus/.mems  -> cpuset/<pod>/cpuset.cpus/.mems, and each container
//                         child (v1 children must be subsets of the parent:
//                         the parent widens first and narrows last)
//   cpu.max "Q P"      -> cpu/<pod>/cpu.cfs_period_us = P, cpu.cfs_quota_us = Q (-1 for max)
//   cpu.weight W       -> cpu/<pod>/cpu.shares = 2 + (W - 1) * 262142 / 9999 (runc's inverse)
//   memory.high        -> memory/<pod>/memory.soft_limit_in_bytes (reclaim target, not a
//                         throttle: the nearest v1 knob)
//   memory.min         -> none on v1; skipped
//
// A file is written only when the value differs from what this writer last
// wrote there, or (first time) from what the file holds. A missing pod
// directory (not created yet, or removed mid-write) is `vanished`, not an
// error: nothing is cached, so the next pass retries.
//
// Thread-safety: not thread-safe; one thread applies. Counters are atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "node-agent/qos_pools.h"

namespace gpu_autoscaler::node_agent {

enum class CgroupDriver : uint8_t { kCgroupfs, kSystemd };
enum class CgroupVersion : uint8_t { kV1, kV2 };

Result<CgroupDriver> ParseCgroupDriver(std::string_view text);  // "cgroupfs" | "systemd"
std::string_view CgroupVersionName(CgroupVersion v);            // "v1" | "v2"
// v2 when <root>/cgroup.controllers exists, v1 when <root>/cpuset does.
Result<CgroupVersion> DetectCgroupVersion(const std::string& root);

// The pod's cgroup relative to a hierarchy root (no leading slash).
std::string PodCgroupPath(CgroupDriver driver, KubeQosClass qos_class, std::string_view uid);

// runc's cgroup v2 weight <-> v1 shares conversions.
uint64_t CpuWeightToShares(uint64_t weight);

struct CgroupWriterOptions {
  std::string root = "/sys/fs/cgroup";
  CgroupDriver driver = CgroupDriver::kCgroupfs;
  CgroupVersion version = CgroupVersion::kV2;
  // Inserted between the hierarchy root and kubepods (tests use their own).
  std::string parent{};
};

struct CgroupApplyResult {
  int writes = 0;
  int unchanged = 0;
  bool vanished = false;            // the pod's cgroup is not there
  std::vector<std::string> errors;  // "<file>: <reason>"
};

class CgroupWriter {
 public:
  explicit CgroupWriter(CgroupWriterOptions options);

  CgroupApplyResult Apply(const PodAssignment& pod);
  // Drops what was cached for a pod that is gone.
  void Forget(std::string_view uid);

  // The pod's directory in the hierarchy holding `controller` ("cpuset",
  // "cpu", "memory"; v2 has one directory for all).
  std::string PodDir(const PodAssignment& pod, std::string_view controller) const;
  const CgroupWriterOptions& options() const { return options_; }

  uint64_t writes() const { return writes_.load(); }
  uint64_t errors() const { return errors_.load(); }
  uint64_t vanished() const { return vanished_.load(); }

 private:
  enum class Outcome { kWritten, kUnchanged, kVanished, kFailed };
  Outcome Write(const std::string& uid, const std::string& path, const std::string& value,
                bool cpulist, CgroupApplyResult* result);
  void WriteCpusetV1(const PodAssignment& pod, const std::string& file, const std::string& value,
                     CgroupApplyResult* result);
  void Count(Outcome outcome, CgroupApplyResult* result);

  CgroupWriterOptions options_;
  std::map<std::string, std::map<std::string, std::string>, std::less<>> written_;  // uid -> path
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> vanished_{0};
};

}  // namespace gpu_autoscaler::node_agent
