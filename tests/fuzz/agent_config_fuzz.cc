// Fuzzes the node agent's ConfigMap configuration parser
// (node-agent/agent_config.h): any bytes must give a valid configuration or
// an InvalidArgument error, never a crash, an exception or a hang; what
// parses keeps its invariants (disarmBelow <= threshold, positive windows).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "node-agent/agent_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler;
  using namespace gpu_autoscaler::node_agent;
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto cfg = ParseAgentConfig(yaml, "fuzz");
  if (!cfg.ok()) {
    if (cfg.error().code() != StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  const PressureEvictionConfig& pe = cfg->pressure_eviction;
  if (pe.interval.count() < 100 || pe.cool_down.count() <= 0 || pe.rate_window.count() <= 0 ||
      pe.max_evictions < 0) {
    std::abort();
  }
  for (const PressureTrigger& t : pe.triggers) {
    if (t.threshold <= 0 || t.threshold > 100 || t.disarm_below < 0 ||
        t.disarm_below > t.threshold || t.window.count() <= 0) {
      std::abort();
    }
  }
  return 0;
}
