// File: tests/support/fake_nvml/scenario.h
//
// The scenario the fake NVML (libgpa-fake-nvml.so) plays: GPUs with model,
// UUID, memory, utilisation, MIG mode and MIG devices, NVLink peers and
// processes, plus faults (a call that fails, a call that hangs). The fake
// reads it from the JSON file named by $GPA_FAKE_NVML_SCENARIO at nvmlInit_v2.
// The parser is strict: an unknown key, a wrong type or an out-of-range
// value is an error naming the path ("gpus[1].mig.devices[0].profile").
//
//   {"gpus": [{"name": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "usedMiB": 1024,
//              "util": 37, "nvlinkPeers": [1],
//              "mig": {"enabled": true, "devices": [{"profile": "1g.10gb", "gi": 9}]},
//              "processes": [{"pid": 4242, "usedMiB": 900, "smUtil": 30}]}],
//    "faults": [{"function": "nvmlDeviceGetUtilizationRates", "gpu": 0,
//                "error": "NVML_ERROR_GPU_IS_LOST", "afterCalls": 3}]}
//
// Utilisation and memory can replay a series instead of a constant, one
// sample per poll (the fake counts nvmlDeviceGetCount_v2 calls, which the
// agent makes once per poll, and wraps around): "utilSeries" and
// "usedMiBSeries" on a GPU, "smUtilSeries" and "usedMiBSeries" on a process
// (tests fill them from the GenTD26 duty-cycle and GPU-memory traces).
//
// Defaults: uuid "GPU-00000000-0000-4000-8000-0000000000NN", name
// "NVIDIA A100-SXM4-80GB", pciBusId "00000000:NN:00.0" (NN = 0x10 + index),
// memoryMiB 81920, everything else 0/empty. A fault fires on calls after
// the first `afterCalls` matching ones, `count` times (-1: forever); with
// "hang": true it blocks `hangMs` milliseconds (0: forever) before answering
// (with `error` if set).
//
// Thread-safety: ParseScenario is a pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::fake_nvml {

struct FakeMigDevice {
  std::string uuid{};
  std::string profile = "1g.10gb";
  unsigned gpu_instance_id = 0;
  unsigned compute_instance_id = 0;
  uint64_t memory_mib = 9984;
  uint64_t used_mib = 0;
};

struct FakeProcess {
  uint32_t pid = 0;
  uint64_t used_mib = 0;
  unsigned sm_util = 0;
  unsigned mem_util = 0;
  std::optional<unsigned> gpu_instance_id{};
  std::vector<unsigned> sm_util_series{};  // replaces sm_util, one sample per poll
  std::vector<uint64_t> used_mib_series{};
};

struct FakeGpu {
  std::string uuid{};
  std::string name = "NVIDIA A100-SXM4-80GB";
  std::string pci_bus_id{};
  uint64_t memory_mib = 81920;
  uint64_t used_mib = 0;
  unsigned util = 0;
  unsigned mem_util = 0;
  std::vector<unsigned> util_series{};  // replaces util, one sample per poll
  std::vector<uint64_t> used_mib_series{};
  bool mig_enabled = false;
  unsigned max_mig_devices = 7;
  std::vector<FakeMigDevice> mig_devices{};
  std::vector<int> nvlink_peers{};              // GPU indices, one active link each
  std::vector<std::string> nvswitch_bus_ids{};  // one active link to each switch
  std::vector<FakeProcess> processes{};
};

struct FakeFault {
  std::string function{};    // e.g. "nvmlDeviceGetUtilizationRates"
  std::optional<int> gpu{};  // only calls about this GPU index; all when absent
  int error = 0;             // NVML return code; 0: answer normally (after a hang)
  bool hang = false;
  int hang_ms = 0;  // 0: forever
  int after_calls = 0;
  int count = -1;  // -1: forever
};

struct Scenario {
  std::vector<FakeGpu> gpus{};
  std::vector<FakeFault> faults{};
};

// The value for poll `tick` (1 for the first): the series' sample when it
// has any, else the constant.
template <typename T>
T AtTick(const std::vector<T>& series, T constant, uint64_t tick) {
  if (series.empty()) return constant;
  return series[(tick == 0 ? 0 : tick - 1) % series.size()];
}

Result<Scenario> ParseScenario(std::string_view json);

}  // namespace gpu_autoscaler::fake_nvml
