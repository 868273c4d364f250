// File: node-agent/agent_config.h
//
// The node agent's settings that are not flags, as YAML under the key
// `config.yaml` of a ConfigMap the agent watches (--config-map=NS/NAME).
// Every field is optional; an absent ConfigMap, key or field means the
// default shown:
//
//   apiVersion: gpuautoscaler.io/v1alpha1
//   kind: NodeAgentConfig
//   pressureEviction:
//     enabled: true
//     interval: 5s         # how often PSI and the pods' cgroups are read
//     maxEvictions: 1      # at most this many evictions ...
//     rateWindow: 5m       # ... in any window this long (0 evictions: observe only)
//     coolDown: 60s        # after an eviction, none for this long, so pressure can fall
//     memory:              # likewise cpu: and io:, with their own defaults
//       enabled: true
//       line: some         # some | full
//       average: avg10     # avg10 | avg60 | avg300 | total (the stalled share between reads)
//       threshold: 25      # percent: above it the pressure is high ...
//       disarmBelow: 10    # ... until it falls below this (hysteresis)
//       window: 60s        # high for this long before anything is evicted
//   qos: {}                # the QoS pools' settings (node-agent QoS isolation)
//
// Unknown fields, bad YAML, negative or zero durations, thresholds outside
// 0..100 and a disarmBelow above its threshold are errors naming the field
// path; the caller keeps the last good configuration.
//
//   GPU_ASSIGN_OR_RETURN(AgentConfig cfg, ParseAgentConfig(text, "ConfigMap ns/name"));
//
// Thread-safety: pure functions over values.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "node-agent/psi.h"

namespace gpu_autoscaler::node_agent {

enum class PsiLineKind : uint8_t { kSome, kFull };
enum class PsiAverage : uint8_t { kAvg10, kAvg60, kAvg300, kTotal };
std::string_view PsiLineKindName(PsiLineKind k);  // "some", "full"
std::string_view PsiAverageName(PsiAverage a);    // "avg10", ..., "total"

struct PressureTrigger {
  bool enabled = true;
  PsiLineKind line = PsiLineKind::kSome;
  PsiAverage average = PsiAverage::kAvg10;
  double threshold = 0;     // percent; arms above
  double disarm_below = 0;  // percent; disarms below
  std::chrono::milliseconds window{60'000};
  friend bool operator==(const PressureTrigger&, const PressureTrigger&) = default;
};

struct PressureEvictionConfig {
  bool enabled = true;
  std::chrono::milliseconds interval{5000};
  int64_t max_evictions = 1;
  std::chrono::milliseconds rate_window{300'000};
  std::chrono::milliseconds cool_down{60'000};
  // Indexed by PressureResource. CPU and IO stall often on a busy node, so
  // their defaults are high and slow; memory stalls mean reclaim or swap.
  std::array<PressureTrigger, 3> triggers{
      PressureTrigger{.threshold = 90, .disarm_below = 70, .window = std::chrono::seconds(120)},
      PressureTrigger{.threshold = 25, .disarm_below = 10, .window = std::chrono::seconds(60)},
      PressureTrigger{.threshold = 60, .disarm_below = 40, .window = std::chrono::seconds(120)}};
  const PressureTrigger& trigger(PressureResource r) const {
    return triggers[static_cast<size_t>(r)];
  }
  friend bool operator==(const PressureEvictionConfig&, const PressureEvictionConfig&) = default;
};

// The QoS pools' settings. Empty for now: the QoS isolation adds its reserve
// settings here and to ParseQosSection in agent_config.cc.
struct QosConfig {
  friend bool operator==(const QosConfig&, const QosConfig&) = default;
};

struct AgentConfig {
  PressureEvictionConfig pressure_eviction;
  QosConfig qos;
  friend bool operator==(const AgentConfig&, const AgentConfig&) = default;
};

// The ConfigMap key the configuration is read from.
inline constexpr std::string_view kAgentConfigKey = "config.yaml";

// Parses and validates. Errors name `source` and the field path. An empty
// document is the defaults.
Result<AgentConfig> ParseAgentConfig(std::string_view yaml, std::string_view source);

}  // namespace gpu_autoscaler::node_agent
