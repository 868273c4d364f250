#include "profiling/service_profile.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "common/flag_duration.h"
#include "cost/duration.h"
#include "gpu/mig.h"

namespace gpu_autoscaler::profiling {
namespace {

using nlohmann::json;

// The CRD's names for shares (spec.allowedShares, status...gpu.share).
std::string_view CrdShareName(GpuShareKind k) {
  switch (k) {
    case GpuShareKind::kWholeGpu:
      return "whole";
    case GpuShareKind::kMig:
      return "mig";
    case GpuShareKind::kMps:
      return "mps";
    case GpuShareKind::kTimeSlicing:
      return "timeSlicing";
  }
  return "whole";
}

std::optional<GpuShareKind> ShareFromCrd(std::string_view s) {
  for (GpuShareKind k : {GpuShareKind::kWholeGpu, GpuShareKind::kMig, GpuShareKind::kMps,
                         GpuShareKind::kTimeSlicing}) {
    if (CrdShareName(k) == s) return k;
  }
  return std::nullopt;
}

std::optional<Resource> MetricFromCrd(std::string_view s) {
  if (s == "cpu") return Resource::kCpu;
  if (s == "memory") return Resource::kMemory;
  if (s == "gpuMemory") return Resource::kGpuMemory;
  if (s == "gpuUtilization") return Resource::kGpuUtilization;
  return std::nullopt;
}

Status Field(const std::string& path, const std::string& what) {
  return InvalidArgumentError(path + ": " + what);
}

json Bounds(const Estimate& e, bool cpu) {
  auto fmt = [cpu](double v) { return cpu ? FormatMilliCpu(v) : FormatBytes(v); };
  json out = {{"lowerBound", fmt(e.lower)}, {"target", fmt(e.target)}};
  if (std::isfinite(e.upper)) out["upperBound"] = fmt(e.upper);
  return out;
}

}  // namespace

std::string_view UpdateModeName(UpdateMode m) {
  switch (m) {
    case UpdateMode::kOff:
      return "Off";
    case UpdateMode::kInitial:
      return "Initial";
    case UpdateMode::kAuto:
      return "Auto";
  }
  return "Off";
}

Result<ServiceProfileSpec> ParseServiceProfileSpec(const json& spec) {
  if (!spec.is_object()) return Field("spec", "Required value");
  ServiceProfileSpec out;
  auto target = spec.find("targetRef");
  if (target == spec.end() || !target->is_object()) {
    return Field("spec.targetRef", "Required value");
  }
  auto str = [](const json& obj, const char* key) -> std::string {
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out.target.kind = str(*target, "kind");
  out.target.name = str(*target, "name");
  if (std::string v = str(*target, "apiVersion"); !v.empty()) out.target.api_version = v;
  if (out.target.kind.empty()) return Field("spec.targetRef.kind", "Required value");
  if (out.target.name.empty()) return Field("spec.targetRef.name", "Required value");

  if (auto metrics = spec.find("metrics"); metrics != spec.end() && !metrics->is_null()) {
    if (!metrics->is_array()) return Field("spec.metrics", "must be a list");
    for (size_t i = 0; i < metrics->size(); ++i) {
      const json& m = (*metrics)[i];
      auto r = m.is_string() ? MetricFromCrd(m.get<std::string>()) : std::nullopt;
      if (!r) {
        return Field("spec.metrics[" + std::to_string(i) + "]",
                     "Unsupported value: " + m.dump() +
                         ": supported values: \"cpu\", \"memory\", \"gpuMemory\", "
                         "\"gpuUtilization\"");
      }
      out.metrics.insert(*r);
    }
  }
  if (out.metrics.empty()) {
    out.metrics = {Resource::kCpu, Resource::kMemory, Resource::kGpuMemory,
                   Resource::kGpuUtilization};
  }

  const std::string mode = str(spec, "updateMode");
  if (mode.empty() || mode == "Off") {
    out.mode = UpdateMode::kOff;
  } else if (mode == "Initial") {
    out.mode = UpdateMode::kInitial;
  } else if (mode == "Auto") {
    out.mode = UpdateMode::kAuto;
  } else {
    return Field("spec.updateMode", "Unsupported value: \"" + mode +
                                        "\": supported values: \"Off\", \"Initial\", \"Auto\"");
  }

  if (std::string model = str(spec, "gpuModel"); !model.empty()) {
    auto canonical = gpu::NormalizeGpuProduct(model);
    if (!canonical.ok()) {
      return Field("spec.gpuModel",
                   "Unsupported value: \"" + model + "\": " + canonical.error().message());
    }
    out.gpu_model = *canonical;
  }

  if (std::string half_life = str(spec, "halfLife"); !half_life.empty()) {
    std::chrono::milliseconds d{};
    if (ParseFlagDuration(half_life, &d) && d >= std::chrono::seconds(1)) {
      out.half_life_seconds = std::chrono::duration_cast<std::chrono::seconds>(d).count();
    } else if (auto seconds = cost::ParseDurationSeconds(half_life); seconds.ok()) {
      out.half_life_seconds = *seconds;  // "24h", "1h30m"
    } else {
      return Field("spec.halfLife",
                   "Invalid value: \"" + half_life + "\": want a duration of at least 1s");
    }
  }

  if (auto shares = spec.find("allowedShares"); shares != spec.end() && !shares->is_null()) {
    if (!shares->is_array()) return Field("spec.allowedShares", "must be a list");
    for (size_t i = 0; i < shares->size(); ++i) {
      const json& s = (*shares)[i];
      auto k = s.is_string() ? ShareFromCrd(s.get<std::string>()) : std::nullopt;
      if (!k) {
        return Field("spec.allowedShares[" + std::to_string(i) + "]",
                     "Unsupported value: " + s.dump() +
                         ": supported values: \"whole\", \"mig\", \"mps\", \"timeSlicing\"");
      }
      out.allowed_shares.insert(*k);
    }
  }
  if (out.allowed_shares.empty()) {
    out.allowed_shares = {GpuShareKind::kWholeGpu, GpuShareKind::kMig, GpuShareKind::kMps,
                          GpuShareKind::kTimeSlicing};
  }
  return out;
}

GpuShare RestrictShare(const GpuShare& share, const std::set<GpuShareKind>& allowed,
                       double gpu_memory_bytes) {
  if (allowed.contains(share.kind)) return share;
  GpuShare shared = share;
  if (share.kind == GpuShareKind::kMig) {
    // The MPS sizing of the same need: the compute share and the memory limit
    // the MIG slice was chosen for are at least what MPS needs.
    shared.kind = GpuShareKind::kMps;
    shared.mig_profile.clear();
    shared.mps_thread_percent =
        std::clamp(static_cast<int>(std::lround(share.compute_share * 100)), 1, 100);
    shared.gpu_fraction =
        std::max(share.compute_share, share.memory_limit_bytes / gpu_memory_bytes);
  }
  for (GpuShareKind k : {shared.kind, shared.kind == GpuShareKind::kMps ? GpuShareKind::kTimeSlicing
                                                                        : GpuShareKind::kMps}) {
    if (k != GpuShareKind::kMps && k != GpuShareKind::kTimeSlicing) continue;
    if (!allowed.contains(k)) continue;
    shared.kind = k;
    if (k == GpuShareKind::kTimeSlicing) shared.mps_thread_percent = 100;
    shared.reason = share.reason + " (" + std::string(CrdShareName(share.kind)) +
                    " not allowed: " + std::string(CrdShareName(k)) + ")";
    return shared;
  }
  GpuShare whole;
  whole.memory_limit_bytes = gpu_memory_bytes;
  whole.reason = std::string(CrdShareName(share.kind)) + " not allowed: a whole GPU";
  return whole;
}

std::string FormatMilliCpu(double cores) {
  if (!std::isfinite(cores) || cores <= 0) return "0";
  return std::to_string(static_cast<int64_t>(std::ceil(cores * 1000 - 1e-9))) + "m";
}

std::string FormatBytes(double bytes) {
  if (!std::isfinite(bytes) || bytes <= 0) return "0";
  return std::to_string(static_cast<int64_t>(std::ceil(bytes - 1e-6)));
}

json RecommendationStatus(const std::string& container, const Recommendation& rec,
                          const ServiceProfileSpec& spec, double gpu_memory_bytes) {
  json out = {{"containerName", container}};
  if (rec.cpu && spec.metrics.contains(Resource::kCpu)) out["cpu"] = Bounds(*rec.cpu, true);
  if (rec.memory && spec.metrics.contains(Resource::kMemory)) {
    out["memory"] = Bounds(*rec.memory, false);
  }
  if (rec.gpu_memory && spec.metrics.contains(Resource::kGpuMemory)) {
    out["gpuMemory"] = Bounds(*rec.gpu_memory, false);
    const GpuShare share = RestrictShare(rec.gpu, spec.allowed_shares, gpu_memory_bytes);
    json gpu = {{"share", std::string(CrdShareName(share.kind))},
                {"gpuMemoryLimit", FormatBytes(share.memory_limit_bytes)},
                {"gpuFraction", std::round(std::clamp(share.gpu_fraction, 0.0, 1.0) * 1e4) / 1e4},
                {"reason", share.reason}};
    if (share.kind == GpuShareKind::kMig) gpu["migProfile"] = share.mig_profile;
    if (share.kind == GpuShareKind::kMps) gpu["mpsThreadPercent"] = share.mps_thread_percent;
    out["gpu"] = std::move(gpu);
  }
  return out;
}

}  // namespace gpu_autoscaler::profiling
