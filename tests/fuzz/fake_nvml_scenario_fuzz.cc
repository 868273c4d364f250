// Fuzzes the fake NVML's scenario parser (it reads a JSON file named by an
// environment variable): any bytes must give a Scenario or an
// InvalidArgument error, never a crash, an exception or a hang, and a
// Scenario keeps the limits the fake relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "support/fake_nvml/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto s = gpu_autoscaler::fake_nvml::ParseScenario(text);
  if (!s.ok()) {
    if (s.error().code() != gpu_autoscaler::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  for (const auto& gpu : s->gpus) {
    if (gpu.used_mib > gpu.memory_mib) std::abort();
    if (gpu.mig_devices.size() > gpu.max_mig_devices) std::abort();
    if (gpu.nvlink_peers.size() + gpu.nvswitch_bus_ids.size() > 18) std::abort();
    for (int peer : gpu.nvlink_peers) {
      if (peer < 0 || peer >= static_cast<int>(s->gpus.size())) std::abort();
    }
  }
  return 0;
}
