#include "node-agent/cgroup_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace gpu_autoscaler::node_agent {

namespace fs = std::filesystem;

Result<CgroupDriver> ParseCgroupDriver(std::string_view text) {
  if (text == "cgroupfs") return CgroupDriver::kCgroupfs;
  if (text == "systemd") return CgroupDriver::kSystemd;
  return InvalidArgumentError("unknown cgroup driver \"" + std::string(text) +
                              "\" (cgroupfs or systemd)");
}

std::string_view CgroupVersionName(CgroupVersion v) {
  return v == CgroupVersion::kV1 ? "v1" : "v2";
}

Result<CgroupVersion> DetectCgroupVersion(const std::string& root) {
  std::error_code ec;
  if (fs::exists(fs::path(root) / "cgroup.controllers", ec)) return CgroupVersion::kV2;
  if (fs::is_directory(fs::path(root) / "cpuset", ec)) return CgroupVersion::kV1;
  return NotFoundError("no cgroup v2 (cgroup.controllers) or v1 (cpuset/) hierarchy under " + root);
}

std::string PodCgroupPath(CgroupDriver driver, KubeQosClass qos_class, std::string_view uid) {
  const std::string tier = qos_class == KubeQosClass::kBurstable    ? "burstable"
                           : qos_class == KubeQosClass::kBestEffort ? "besteffort"
                                                                    : "";
  if (driver == CgroupDriver::kCgroupfs) {
    return "kubepods/" + (tier.empty() ? "" : tier + "/") + "pod" + std::string(uid);
  }
  std::string escaped(uid);
  std::replace(escaped.begin(), escaped.end(), '-', '_');
  if (tier.empty()) return "kubepods.slice/kubepods-pod" + escaped + ".slice";
  return "kubepods.slice/kubepods-" + tier + ".slice/kubepods-" + tier + "-pod" + escaped +
         ".slice";
}

uint64_t CpuWeightToShares(uint64_t weight) {
  weight = std::clamp<uint64_t>(weight, 1, 10000);
  return 2 + ((weight - 1) * 262142) / 9999;
}

CgroupWriter::CgroupWriter(CgroupWriterOptions options) : options_(std::move(options)) {}

std::string CgroupWriter::PodDir(const PodAssignment& pod, std::string_view controller) const {
  fs::path dir(options_.root);
  if (options_.version == CgroupVersion::kV1) dir /= std::string(controller);
  if (!options_.parent.empty()) dir /= options_.parent;
  dir /= PodCgroupPath(options_.driver, pod.qos_class, pod.uid);
  return dir.string();
}

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

// The file's content, or nullopt when unreadable.
std::optional<std::string> ReadSmall(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return Trim(ss.str());
}

std::string NormalizeCpuList(const std::string& s) {
  auto cpus = ParseCpuList(s);
  return cpus.ok() ? FormatCpuList(*cpus) : s;
}

}  // namespace

void CgroupWriter::Count(Outcome outcome, CgroupApplyResult* result) {
  switch (outcome) {
    case Outcome::kWritten:
      ++result->writes;
      ++writes_;
      break;
    case Outcome::kUnchanged:
      ++result->unchanged;
      break;
    case Outcome::kVanished:
      if (!result->vanished) ++vanished_;
      result->vanished = true;
      break;
    case Outcome::kFailed:
      ++errors_;
      break;
  }
}

CgroupWriter::Outcome CgroupWriter::Write(const std::string& uid, const std::string& path,
                                          const std::string& value, bool cpulist,
                                          CgroupApplyResult* result) {
  auto& cache = written_[uid];
  auto it = cache.find(path);
  if (it != cache.end() && it->second == value) return Outcome::kUnchanged;
  if (it == cache.end()) {
    // First time: the file may already say it (an agent restart).
    auto current = ReadSmall(path);
    if (current && (cpulist ? NormalizeCpuList(*current) == value : *current == value)) {
      cache[path] = value;
      return Outcome::kUnchanged;
    }
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::error_code ec;
    if (err == ENOENT && !fs::is_directory(fs::path(path).parent_path(), ec)) {
      return Outcome::kVanished;
    }
    result->errors.push_back(path + ": " + std::strerror(err));
    return Outcome::kFailed;
  }
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    std::error_code ec;
    // ENODEV/ENOENT: the cgroup was removed between open and write.
    if (err == ENODEV || !fs::is_directory(fs::path(path).parent_path(), ec)) {
      return Outcome::kVanished;
    }
    result->errors.push_back(path + ": writing \"" + value + "\": " + std::strerror(err));
    return Outcome::kFailed;
  }
  cache[path] = value;
  return Outcome::kWritten;
}

// v1 cpuset children must stay subsets of their parent: widen the parent to
// old|new, set every child, then set the parent.
void CgroupWriter::WriteCpusetV1(const PodAssignment& pod, const std::string& file,
                                 const std::string& value, CgroupApplyResult* result) {
  const std::string dir = PodDir(pod, "cpuset");
  const std::string parent_file = dir + "/" + file;
  auto cached = written_[pod.uid].find(parent_file);
  if (cached != written_[pod.uid].end() && cached->second == value) {
    ++result->unchanged;
    return;
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    Count(Outcome::kVanished, result);
    return;
  }
  auto current = ReadSmall(parent_file);
  auto now = ParseCpuList(current.value_or(""));
  auto want = ParseCpuList(value);
  if (now.ok() && want.ok()) {
    std::set<int> both(now->begin(), now->end());
    both.insert(want->begin(), want->end());
    std::vector<int> wide(both.begin(), both.end());
    if (wide != *now) Count(Write(pod.uid, parent_file, FormatCpuList(wide), true, result), result);
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory(ec)) continue;
    Count(Write(pod.uid, (entry.path() / file).string(), value, true, result), result);
  }
  Count(Write(pod.uid, parent_file, value, true, result), result);
}

CgroupApplyResult CgroupWriter::Apply(const PodAssignment& pod) {
  CgroupApplyResult result;
  const CgroupSettings& s = pod.cgroup;
  auto write = [&](std::string_view controller, const std::string& file, const std::string& value,
                   bool cpulist = false) {
    if (result.vanished) return;
    Count(Write(pod.uid, PodDir(pod, controller) + "/" + file, value, cpulist, &result), &result);
  };
  if (options_.version == CgroupVersion::kV2) {
    if (!s.cpuset_mems.empty()) write("", "cpuset.mems", s.cpuset_mems, true);
    if (!s.cpuset_cpus.empty()) write("", "cpuset.cpus", s.cpuset_cpus, true);
    if (s.cpu_quota_micros) {
      write("", "cpu.max",
            (*s.cpu_quota_micros < 0 ? std::string("max") : std::to_string(*s.cpu_quota_micros)) +
                " " + std::to_string(kCpuPeriodMicros));
    }
    if (s.cpu_weight) write("", "cpu.weight", std::to_string(*s.cpu_weight));
    if (s.memory_high_bytes) write("", "memory.high", std::to_string(*s.memory_high_bytes));
    if (s.memory_min_bytes) write("", "memory.min", std::to_string(*s.memory_min_bytes));
    return result;
  }
  if (!s.cpuset_mems.empty()) WriteCpusetV1(pod, "cpuset.mems", s.cpuset_mems, &result);
  if (!result.vanished && !s.cpuset_cpus.empty()) {
    WriteCpusetV1(pod, "cpuset.cpus", s.cpuset_cpus, &result);
  }
  if (s.cpu_quota_micros) {
    write("cpu", "cpu.cfs_period_us", std::to_string(kCpuPeriodMicros));
    write("cpu", "cpu.cfs_quota_us",
          std::to_string(*s.cpu_quota_micros < 0 ? -1 : *s.cpu_quota_micros));
  }
  if (s.cpu_weight) write("cpu", "cpu.shares", std::to_string(CpuWeightToShares(*s.cpu_weight)));
  if (s.memory_high_bytes) {
    write("memory", "memory.soft_limit_in_bytes", std::to_string(*s.memory_high_bytes));
  }
  return result;
}

void CgroupWriter::Forget(std::string_view uid) {
  auto it = written_.find(uid);
  if (it != written_.end()) written_.erase(it);
}

}  // namespace gpu_autoscaler::node_agent
