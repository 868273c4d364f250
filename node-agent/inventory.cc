#include "node-agent/inventory.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "api/nvidia.h"

namespace gpu_autoscaler::node_agent {
namespace {

using api::kSharingStrategyLabel;
constexpr std::string_view kReplicasLabel = api::kGpuReplicasLabel;

// "00000000:07:00.0" and "0000:07:00.0" name the same device.
std::string NormalizeBusId(std::string_view id) {
  if (id.size() > 12) id = id.substr(id.size() - 12);
  std::string out(id);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class UnionFind {
 public:
  int Add() {
    parent_.push_back(static_cast<int>(parent_.size()));
    return parent_.back();
  }
  int Find(int x) {
    while (parent_[x] != x)
      x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void Join(int a, int b) {
    a = Find(a);
    b = Find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);
  }

 private:
  std::vector<int> parent_;
};

}  // namespace

SharingMode SharingModeFromLabels(const std::map<std::string, std::string>& labels) {
  SharingMode mode;
  if (auto it = labels.find(std::string(kSharingStrategyLabel)); it != labels.end()) {
    if (it->second == "none" || it->second == "time-slicing" || it->second == "mps") {
      mode.strategy = it->second;
    } else {
      mode.problem = std::string(kSharingStrategyLabel) + "=\"" + it->second +
                     "\" is not none, time-slicing or mps";
    }
  }
  if (auto it = labels.find(std::string(kReplicasLabel)); it != labels.end()) {
    int replicas = 0;
    const std::string& v = it->second;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), replicas);
    if (ec != std::errc() || end != v.data() + v.size() || replicas < 1) {
      if (mode.problem.empty()) {
        mode.problem = std::string(kReplicasLabel) + "=\"" + v + "\" is not a positive integer";
      }
    } else {
      mode.replicas = replicas;
    }
  }
  if (mode.strategy == "none") mode.replicas = 1;
  return mode;
}

std::vector<std::vector<int>> NvlinkIslands(const nvml::GpuSnapshot& snapshot) {
  UnionFind uf;
  std::map<std::string, int> node_of_bus;  // GPUs and switches
  std::vector<int> gpu_node;
  for (const nvml::GpuSample& g : snapshot.gpus) {
    const int n = uf.Add();
    gpu_node.push_back(n);
    if (!g.pci_bus_id.empty()) node_of_bus.emplace(NormalizeBusId(g.pci_bus_id), n);
  }
  for (size_t i = 0; i < snapshot.gpus.size(); ++i) {
    for (const std::string& remote : snapshot.gpus[i].nvlink_remote_bus_ids) {
      auto [it, inserted] = node_of_bus.emplace(NormalizeBusId(remote), -1);
      if (inserted) it->second = uf.Add();  // an NVSwitch (or a GPU NVML did not list)
      uf.Join(gpu_node[i], it->second);
    }
  }
  std::map<int, std::vector<int>> by_root;
  for (size_t i = 0; i < snapshot.gpus.size(); ++i) {
    by_root[uf.Find(gpu_node[i])].push_back(snapshot.gpus[i].index);
  }
  std::vector<std::vector<int>> islands;
  for (auto& [root, members] : by_root) {
    if (members.size() < 2) continue;
    std::sort(members.begin(), members.end());
    islands.push_back(std::move(members));
  }
  std::sort(islands.begin(), islands.end());
  return islands;
}

std::string FormatNvlinkIslands(const std::vector<std::vector<int>>& islands) {
  std::string out;
  for (const std::vector<int>& island : islands) {
    if (!out.empty()) out += '_';
    std::string members;
    for (size_t i = 0; i < island.size();) {
      size_t j = i;
      while (j + 1 < island.size() && island[j + 1] == island[j] + 1)
        ++j;
      if (!members.empty()) members += '.';
      members += std::to_string(island[i]);
      if (j > i) members += "-" + std::to_string(island[j]);
      i = j + 1;
    }
    out += members;
  }
  return out;
}

Inventory BuildInventory(const nvml::GpuSnapshot* snapshot,
                         const std::map<std::string, std::string>& node_labels,
                         std::vector<NumaNode> numa, const std::map<std::string, int>& gpu_numa) {
  Inventory inv;
  inv.sharing = SharingModeFromLabels(node_labels);
  inv.numa = std::move(numa);
  if (snapshot == nullptr) return inv;
  inv.nvlink_islands = NvlinkIslands(*snapshot);
  inv.nvlink_label = FormatNvlinkIslands(inv.nvlink_islands);
  for (const nvml::GpuSample& g : snapshot->gpus) {
    GpuInventory gpu;
    gpu.index = g.index;
    gpu.uuid = g.uuid;
    gpu.model = g.name;
    gpu.pci_bus_id = g.pci_bus_id;
    gpu.memory_bytes = g.memory_total_bytes;
    gpu.mig_enabled = g.mig_enabled;
    gpu.mig_pending = g.mig_pending;
    for (const nvml::MigDeviceSample& m : g.mig_devices) {
      gpu.mig_devices.push_back({.uuid = m.uuid,
                                 .profile = m.profile,
                                 .gpu_instance_id = m.gpu_instance_id,
                                 .compute_instance_id = m.compute_instance_id,
                                 .memory_bytes = m.memory_total_bytes});
    }
    for (size_t i = 0; i < inv.nvlink_islands.size(); ++i) {
      const auto& island = inv.nvlink_islands[i];
      if (std::find(island.begin(), island.end(), g.index) != island.end()) {
        gpu.nvlink_island = static_cast<int>(i);
      }
    }
    if (auto it = gpu_numa.find(g.pci_bus_id); it != gpu_numa.end()) gpu.numa_node = it->second;
    inv.gpus.push_back(std::move(gpu));
  }
  return inv;
}

}  // namespace gpu_autoscaler::node_agent
