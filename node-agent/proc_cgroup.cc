#include "node-agent/proc_cgroup.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gpu_autoscaler::node_agent {
namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool AllHex(std::string_view s) {
  for (char c : s)
    if (!IsHex(c)) return false;
  return !s.empty();
}

// A pod UID as the kubelet writes it into the cgroup name: a UUID
// (8-4-4-4-12) with '-' (cgroupfs) or '_' (systemd, which reserves '-'), or
// a static pod's 32-hex-digit config hash. Returns it with dashes.
std::optional<std::string> NormalizeUid(std::string_view s) {
  if (s.size() == 32 && AllHex(s)) return std::string(s);
  if (s.size() != 36) return std::nullopt;
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    const bool sep = i == 8 || i == 13 || i == 18 || i == 23;
    if (sep) {
      if (out[i] != '-' && out[i] != '_') return std::nullopt;
      out[i] = '-';
    } else if (!IsHex(out[i])) {
      return std::nullopt;
    }
  }
  return out;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string QosFromPrefix(std::string_view prefix) {
  if (prefix == "burstable" || EndsWith(prefix, "-burstable")) return "burstable";
  if (prefix == "besteffort" || EndsWith(prefix, "-besteffort")) return "besteffort";
  return "guaranteed";
}

// The container's cgroup under the pod's: "<id>" (cgroupfs), or
// "<runtime>-<id>.scope" (systemd). Sets id and runtime; false when the
// component is not a container (crio's conmon, something else).
bool ParseContainer(std::string_view c, PodCgroupRef* ref) {
  if (EndsWith(c, ".scope")) c.remove_suffix(6);
  struct Prefix {
    std::string_view text;
    std::string_view runtime;
  };
  static constexpr Prefix kPrefixes[] = {
      {"cri-containerd-", "containerd"}, {"docker-", "docker"}, {"crio-", "crio"}};
  std::string_view runtime;
  for (const Prefix& p : kPrefixes) {
    if (c.substr(0, p.text.size()) == p.text) {
      c.remove_prefix(p.text.size());
      runtime = p.runtime;
      break;
    }
  }
  // Container ids are 64 hex digits; accept any plausible length.
  if (c.size() < 12 || c.size() > 128 || !AllHex(c)) return false;
  ref->container_id = std::string(c);
  ref->runtime = std::string(runtime);
  return true;
}

}  // namespace

std::optional<PodCgroupRef> ParseCgroupPath(std::string_view path) {
  bool under_kubepods = false;
  std::string_view previous;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    std::string_view c = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (c.empty()) continue;
    std::optional<std::string> uid;
    std::string qos;
    if (under_kubepods && c.size() > 3 && c.substr(0, 3) == "pod") {
      uid = NormalizeUid(c.substr(3));  // cgroupfs: pod<uid>
      qos = QosFromPrefix(previous);
    } else if (EndsWith(c, ".slice")) {
      std::string_view name = c.substr(0, c.size() - 6);
      const size_t pod = name.rfind("-pod");
      if (pod != std::string_view::npos &&
          name.substr(0, pod).find("kubepods") != std::string_view::npos) {
        uid = NormalizeUid(name.substr(pod + 4));  // systemd: kubepods-<qos>-pod<uid>.slice
        qos = QosFromPrefix(name.substr(0, pod));
      }
    }
    if (uid) {
      PodCgroupRef ref{.pod_uid = std::move(*uid), .qos = std::move(qos)};
      const size_t slash2 = path.find('/');
      std::string_view next = path.substr(0, slash2);
      if (!next.empty()) ParseContainer(next, &ref);
      return ref;
    }
    if (c.find("kubepods") != std::string_view::npos) under_kubepods = true;
    previous = c;
  }
  return std::nullopt;
}

std::optional<PodCgroupRef> ParseProcCgroup(std::string_view content) {
  std::optional<PodCgroupRef> pod_only;
  while (!content.empty()) {
    const size_t nl = content.find('\n');
    std::string_view line = content.substr(0, nl);
    content = nl == std::string_view::npos ? std::string_view() : content.substr(nl + 1);
    // "hierarchy-id:controllers:path"; the path may itself hold ':'.
    const size_t a = line.find(':');
    if (a == std::string_view::npos) continue;
    const size_t b = line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    std::string_view path = line.substr(b + 1);
    if (path.empty() || path[0] != '/') continue;
    auto ref = ParseCgroupPath(path);
    if (!ref) continue;
    if (!ref->container_id.empty()) return ref;
    if (!pod_only) pod_only = std::move(ref);
  }
  return pod_only;
}

Result<std::optional<PodCgroupRef>> ReadProcessCgroup(const std::string& proc_root, uint32_t pid) {
  const std::string path = proc_root + "/" + std::to_string(pid) + "/cgroup";
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ESRCH) {
      return NotFoundError(path + ": no such process (gone, or not in the agent's PID namespace)");
    }
    return UnavailableError(path + ": " + std::strerror(err));
  }
  constexpr size_t kMax = 64 * 1024;
  std::string text(kMax, '\0');
  size_t used = 0;
  while (used < kMax) {
    const ssize_t n = read(fd, text.data() + used, kMax - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return UnavailableError(path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  close(fd);
  text.resize(used);
  return ParseProcCgroup(text);
}

}  // namespace gpu_autoscaler::node_agent
