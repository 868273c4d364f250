// File: node-agent/inventory.h
//
// What the node has, from an NVML snapshot, the Node's labels and sysfs:
// per GPU its index, UUID, model, memory, MIG mode and MIG devices with
// their profiles, the NVLink islands (GPUs joined by NVLink directly or
// through NVSwitches), the sharing mode the NVIDIA device plugin was given
// (nvidia.com/gpu.sharing-strategy, nvidia.com/gpu.replicas) and the NUMA
// nodes. Only what changes when the hardware or its configuration changes is
// here (no utilisation), so the NodeResourceReport is written only then.
//
//   Inventory inv = BuildInventory(&snapshot, node_labels, numa_nodes);
//   inv.nvlink_label;  // "0-3_4-7": the value of gpuautoscaler.io/nvlink-islands
//
// Thread-safety: pure functions and values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "node-agent/numa.h"
#include "node-agent/nvml/snapshot.h"

namespace gpu_autoscaler::node_agent {

struct SharingMode {
  std::string strategy = "none";  // "none", "time-slicing", "mps"
  int replicas = 1;               // per GPU; 1 without sharing
  std::string problem{};          // why a label was ignored, "" when fine
  friend bool operator==(const SharingMode&, const SharingMode&) = default;
};

// From nvidia.com/gpu.sharing-strategy and nvidia.com/gpu.replicas.
SharingMode SharingModeFromLabels(const std::map<std::string, std::string>& labels);

// GPUs joined by NVLink, directly or through a switch: islands of two or
// more GPUs, each sorted, ordered by their first GPU. GPUs with no active
// NVLink are in none.
std::vector<std::vector<int>> NvlinkIslands(const nvml::GpuSnapshot& snapshot);

// The gpuautoscaler.io/nvlink-islands label value the scheduler reads
// (scheduler/gpu_demand.h ParseNvlinkIslands): islands split by '_', members
// by '.', runs as ranges ("0-3_4-7", "0.2_1.3"). "" when there are none; the
// agent then leaves the label off (the scheduler treats the node as one
// island, as it does for nodes without the agent).
std::string FormatNvlinkIslands(const std::vector<std::vector<int>>& islands);

struct MigInstance {
  std::string uuid{};
  std::string profile{};
  std::optional<unsigned> gpu_instance_id{};
  std::optional<unsigned> compute_instance_id{};
  uint64_t memory_bytes = 0;
  friend bool operator==(const MigInstance&, const MigInstance&) = default;
};

struct GpuInventory {
  int index = 0;
  std::string uuid{};
  std::string model{};
  std::string pci_bus_id{};
  uint64_t memory_bytes = 0;
  bool mig_enabled = false;
  bool mig_pending = false;
  std::vector<MigInstance> mig_devices{};
  int nvlink_island = -1;  // index into Inventory::nvlink_islands; -1: none
  std::optional<int> numa_node{};
  friend bool operator==(const GpuInventory&, const GpuInventory&) = default;
};

struct Inventory {
  std::vector<GpuInventory> gpus{};
  std::vector<std::vector<int>> nvlink_islands{};
  std::string nvlink_label{};
  SharingMode sharing{};
  std::vector<NumaNode> numa{};
  friend bool operator==(const Inventory&, const Inventory&) = default;
};

// `snapshot` may be null (no NVML): the inventory then has no GPUs.
// `gpu_numa` maps a GPU's PCI bus id to its NUMA node (may be empty).
Inventory BuildInventory(const nvml::GpuSnapshot* snapshot,
                         const std::map<std::string, std::string>& node_labels,
                         std::vector<NumaNode> numa,
                         const std::map<std::string, int>& gpu_numa = {});

}  // namespace gpu_autoscaler::node_agent
