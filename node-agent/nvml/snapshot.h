// File: node-agent/nvml/snapshot.h
//
// What one NVML poll saw, as plain values: per GPU its identity, memory,
// utilisation, MIG devices, active NVLink peers and running processes. The
// reader (nvml_reader.h) fills it; the inventory, the NodeResourceReport and
// /metrics read it. No NVML type appears here.
//
// Thread-safety: values; share a const snapshot freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gpu_autoscaler::node_agent::nvml {

// One MIG device (a GPU instance with its compute instance).
struct MigDeviceSample {
  int slot = 0;  // index passed to nvmlDeviceGetMigDeviceHandleByIndex
  std::string uuid{};
  std::string profile{};  // "1g.10gb", from the MIG device's name; "" when unknown
  std::optional<unsigned> gpu_instance_id{};
  std::optional<unsigned> compute_instance_id{};
  uint64_t memory_total_bytes = 0;
  uint64_t memory_used_bytes = 0;
  uint64_t memory_free_bytes = 0;
};

struct ProcessSample {
  uint32_t pid = 0;
  std::optional<uint64_t> used_memory_bytes{};  // absent when NVML cannot tell
  std::optional<unsigned> sm_util{};            // percent over the last sample period
  std::optional<unsigned> mem_util{};
  std::optional<unsigned> gpu_instance_id{};  // MIG instance the process runs in
};

struct GpuSample {
  int index = 0;
  std::string uuid{};
  std::string name{};        // model, e.g. "NVIDIA H100 80GB HBM3"
  std::string pci_bus_id{};  // "00000000:07:00.0"; "" when unknown
  uint64_t memory_total_bytes = 0;
  uint64_t memory_used_bytes = 0;
  uint64_t memory_free_bytes = 0;
  std::optional<unsigned> util_gpu{};  // absent where not supported (MIG mode)
  std::optional<unsigned> util_memory{};
  bool mig_enabled = false;
  bool mig_pending = false;  // the mode after the next GPU reset
  std::vector<MigDeviceSample> mig_devices{};
  // PCI bus ids at the far end of each active NVLink (GPUs or NVSwitches).
  std::vector<std::string> nvlink_remote_bus_ids{};
  std::vector<ProcessSample> processes{};
  // Failures of individual calls for this GPU ("nvmlDeviceGetX(gpu 2): NVML_ERROR_...").
  std::vector<std::string> errors{};
};

struct GpuSnapshot {
  std::vector<GpuSample> gpus{};
};

}  // namespace gpu_autoscaler::node_agent::nvml
