// File: node-agent/numa.h
//
// The node's NUMA topology from sysfs: per NUMA node its CPUs and memory
// (<root>/devices/system/node/node<N>/{cpulist,meminfo}), and the NUMA node
// of a PCI device such as a GPU (<root>/bus/pci/devices/<bdf>/numa_node).
// The root is a flag (--sysfs-root, default /sys) so tests use a directory.
//
//   GPU_ASSIGN_OR_RETURN(auto nodes, ReadNumaTopology("/sys"));
//   std::optional<int> numa = PciNumaNode("/sys", "00000000:07:00.0");
//
// Thread-safety: pure functions over the file system.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::node_agent {

struct NumaNode {
  int id = 0;
  std::string cpus{};  // the kernel's cpulist, e.g. "0-15,32-47"
  int cpu_count = 0;
  uint64_t memory_bytes = 0;  // MemTotal
  friend bool operator==(const NumaNode&, const NumaNode&) = default;
};

// Counts the CPUs in a cpulist ("0-3,8,10-11" -> 7); -1 when malformed.
int CountCpuList(std::string_view list);

// Nodes sorted by id. A machine without NUMA directories gives an empty list;
// an unreadable or malformed file is an error naming it.
Result<std::vector<NumaNode>> ReadNumaTopology(const std::string& sysfs_root);

// The NUMA node of the PCI device with NVML bus id `bus_id`
// ("00000000:07:00.0"), or nullopt when sysfs does not say (-1 or no file).
std::optional<int> PciNumaNode(const std::string& sysfs_root, std::string_view bus_id);

}  // namespace gpu_autoscaler::node_agent
