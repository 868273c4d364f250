#include "node-agent/numa.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace gpu_autoscaler::node_agent {
namespace {

bool ReadText(const std::filesystem::path& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

int CountCpuList(std::string_view list) {
  list = Trim(list);
  if (list.empty()) return 0;
  int count = 0;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(start, comma - start);
    const size_t dash = item.find('-');
    uint64_t lo = 0;
    uint64_t hi = 0;
    if (!ParseUint(item.substr(0, dash), &lo) ||
        !ParseUint(dash == std::string_view::npos ? item : item.substr(dash + 1), &hi) || hi < lo ||
        hi > 1'000'000) {
      return -1;
    }
    count += static_cast<int>(hi - lo + 1);
    start = comma + 1;
  }
  return count;
}

Result<std::vector<NumaNode>> ReadNumaTopology(const std::string& sysfs_root) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(sysfs_root) / "devices/system/node";
  std::vector<NumaNode> nodes;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return nodes;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    uint64_t id = 0;
    if (name.rfind("node", 0) != 0 || !ParseUint(std::string_view(name).substr(4), &id)) continue;
    NumaNode node;
    node.id = static_cast<int>(id);
    std::string text;
    if (!ReadText(entry.path() / "cpulist", &text)) {
      return NotFoundError("cannot read " + (entry.path() / "cpulist").string());
    }
    node.cpus = std::string(Trim(text));
    node.cpu_count = CountCpuList(node.cpus);
    if (node.cpu_count < 0) {
      return InvalidArgumentError((entry.path() / "cpulist").string() + ": malformed cpulist \"" +
                                  node.cpus + "\"");
    }
    if (!ReadText(entry.path() / "meminfo", &text)) {
      return NotFoundError("cannot read " + (entry.path() / "meminfo").string());
    }
    // "Node 0 MemTotal:       32768000 kB"
    std::istringstream lines(text);
    std::string line;
    bool found = false;
    while (std::getline(lines, line)) {
      const size_t key = line.find("MemTotal:");
      if (key == std::string::npos) continue;
      std::string_view rest = Trim(std::string_view(line).substr(key + 9));
      const size_t space = rest.find(' ');
      uint64_t kib = 0;
      if (!ParseUint(rest.substr(0, space), &kib)) break;
      node.memory_bytes = kib * 1024;
      found = true;
      break;
    }
    if (!found) {
      return InvalidArgumentError((entry.path() / "meminfo").string() + ": no MemTotal line");
    }
    nodes.push_back(std::move(node));
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const NumaNode& a, const NumaNode& b) { return a.id < b.id; });
  return nodes;
}

std::optional<int> PciNumaNode(const std::string& sysfs_root, std::string_view bus_id) {
  // NVML writes an 8-digit domain ("00000000:07:00.0"); sysfs uses 4 ("0000:07:00.0").
  if (bus_id.size() < 12) return std::nullopt;
  std::string bdf(bus_id.substr(bus_id.size() - 12));
  for (char& c : bdf)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string text;
  if (!ReadText(std::filesystem::path(sysfs_root) / "bus/pci/devices" / bdf / "numa_node", &text)) {
    return std::nullopt;
  }
  text = std::string(Trim(text));
  if (text.empty() || text[0] == '-') return std::nullopt;
  uint64_t node = 0;
  if (!ParseUint(text, &node) || node > 4096) return std::nullopt;
  return static_cast<int>(node);
}

}  // namespace gpu_autoscaler::node_agent
