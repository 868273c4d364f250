// File: src/fleet/usage_annotation.h
//
// The usage a simulated pod reports, read from its `gpuautoscaler.io/fleet-usage`
// annotation (api::kFleetUsageAnnotation). Entries are separated by ';', each
// `[container:]key=value[,key=value...]`; keys are `cpu` (cores, a Kubernetes
// quantity: "0.3" or "300m"), `memory` (bytes: "600Mi", "1.5Gi") and
// `memory-trace` (a pod of the fleet's GenTD26 memory trace, whose samples,
// fractions of the container's memory limit, are replayed: usage_trace_replay.h).
// An entry without a container applies to every container; a named one
// overrides it, key by key (memory and memory-trace count as one key).
//
//   GPU_ASSIGN_OR_RETURN(PodUsageSpec spec,
//                        ParseUsageAnnotation("cpu=0.3,memory=600Mi;sidecar:cpu=50m"));
//   ContainerUsage u = UsageFor(spec, "sidecar", {.cpu_cores = 0.1});
//   // u.cpu_cores == 0.05, u.memory_bytes == 629145600
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gpu_autoscaler::fleet {

struct ContainerUsage {
  double cpu_cores = 0;      // the counter's rate
  int64_t memory_bytes = 0;  // the working set
  // When set, memory_bytes comes from this pod of the memory trace instead.
  std::string memory_trace{};
};

struct UsageOverride {
  std::optional<double> cpu_cores{};
  std::optional<int64_t> memory_bytes{};
  std::optional<std::string> memory_trace{};
};

struct PodUsageSpec {
  UsageOverride all{};                                // entries without a container
  std::map<std::string, UsageOverride> containers{};  // by container name
};

// At most this many bytes are read; longer text is an error.
inline constexpr size_t kMaxUsageAnnotationBytes = 4096;

// InvalidArgument naming the entry that is wrong (unknown key, bad quantity,
// negative value, empty container name, a key given twice in one entry).
Result<PodUsageSpec> ParseUsageAnnotation(std::string_view text);

// The container's usage: its own entry, then the pod-wide one, then `fallback`,
// key by key.
ContainerUsage UsageFor(const PodUsageSpec& spec, std::string_view container,
                        const ContainerUsage& fallback);

}  // namespace gpu_autoscaler::fleet
