// File: src/profiling/service_profile.h
//
// The ServiceProfile custom resource (crds/serviceprofile.yaml) as the
// profiling engine sees it: its spec parsed and checked, and a container's
// Recommendation rendered as the status entry the admission webhook reads.
//
//   GPU_ASSIGN_OR_RETURN(ServiceProfileSpec spec, ParseServiceProfileSpec(obj["spec"]));
//   nlohmann::json entry = RecommendationStatus("server", rec, spec);
//   // {"containerName":"server","cpu":{"lowerBound":"120m","target":"250m"},...}
//
// Quantities: CPU in millicores rounded up ("250m"), memory and GPU memory in
// bytes rounded up ("314572800"). An upper bound without history (infinite)
// is left out, as the CRD says. Metrics not listed in spec.metrics are left
// out too; the GPU share needs gpuMemory.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "profiling/recommender.h"

namespace gpu_autoscaler::profiling {

enum class UpdateMode { kOff, kInitial, kAuto };
std::string_view UpdateModeName(UpdateMode m);  // "Off", "Initial", "Auto"

struct TargetRef {
  std::string api_version = "apps/v1";
  std::string kind{};
  std::string name{};
};

struct ServiceProfileSpec {
  TargetRef target{};
  std::set<Resource> metrics{};  // empty in the object means all four; filled here
  UpdateMode mode = UpdateMode::kOff;
  std::string gpu_model{};  // canonical (gpu::NormalizeGpuProduct), "" = the nodes'
  int64_t half_life_seconds = kDefaultHalfLifeSeconds;
  std::set<GpuShareKind> allowed_shares{};  // empty in the object means all; filled here
};

// Errors name the field ("spec.targetRef.kind: Required value").
Result<ServiceProfileSpec> ParseServiceProfileSpec(const nlohmann::json& spec);

// The share to ask for when `share.kind` is not allowed: MIG falls back to
// the MPS / time-slicing share, MPS and time-slicing to each other, and
// anything else to a whole GPU.
GpuShare RestrictShare(const GpuShare& share, const std::set<GpuShareKind>& allowed,
                       double gpu_memory_bytes);

std::string FormatMilliCpu(double cores);  // 0.2001 -> "201m"
std::string FormatBytes(double bytes);     // 314572800.2 -> "314572801"

// One entry of status.recommendations; `gpu_memory_bytes` of the node's GPU.
nlohmann::json RecommendationStatus(const std::string& container, const Recommendation& rec,
                                    const ServiceProfileSpec& spec, double gpu_memory_bytes);

}  // namespace gpu_autoscaler::profiling
