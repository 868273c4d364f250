#include "fleet/usage_annotation.h"

#include <cmath>

#include "kube/quantity.h"

namespace gpu_autoscaler::fleet {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

Status ParsePair(std::string_view pair, std::string_view entry, UsageOverride* out) {
  const size_t eq = pair.find('=');
  if (eq == std::string_view::npos)
    return InvalidArgumentError("usage entry \"" + std::string(entry) +
                                "\": want key=value, got \"" + std::string(pair) + "\"");
  const std::string_view key = Trim(pair.substr(0, eq));
  const std::string_view value = Trim(pair.substr(eq + 1));
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("usage entry \"" + std::string(entry) + "\": " + std::string(key) +
                                " \"" + std::string(value) + "\" " + why);
  };
  if (key == "cpu") {
    if (out->cpu_cores) return bad("given twice");
    Result<int64_t> milli = kube::ParseQuantityMilli(value);
    if (!milli.ok()) return bad("is not a quantity (want e.g. 0.3 or 300m)");
    if (*milli < 0) return bad("is negative");
    out->cpu_cores = static_cast<double>(*milli) / 1000;
    return Status::Ok();
  }
  if (key == "memory-trace") {
    if (out->memory_bytes || out->memory_trace) return bad("is a second memory");
    if (value.empty() || value.size() > 253) return bad("is not a trace pod name");
    out->memory_trace = std::string(value);
    return Status::Ok();
  }
  if (key == "memory") {
    if (out->memory_bytes || out->memory_trace) return bad("is a second memory");
    Result<int64_t> bytes = kube::ParseQuantity(value);
    if (!bytes.ok()) return bad("is not a quantity (want e.g. 600Mi)");
    if (*bytes < 0) return bad("is negative");
    out->memory_bytes = *bytes;
    return Status::Ok();
  }
  return InvalidArgumentError("usage entry \"" + std::string(entry) + "\": unknown key \"" +
                              std::string(key) + "\" (want cpu, memory or memory-trace)");
}

}  // namespace

Result<PodUsageSpec> ParseUsageAnnotation(std::string_view text) {
  if (text.size() > kMaxUsageAnnotationBytes)
    return InvalidArgumentError("usage annotation is longer than " +
                                std::to_string(kMaxUsageAnnotationBytes) + " bytes");
  PodUsageSpec spec;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t semi = std::min(text.find(';', start), text.size());
    const std::string_view entry = Trim(text.substr(start, semi - start));
    start = semi + 1;
    if (entry.empty()) continue;
    std::string_view pairs = entry;
    UsageOverride* target = &spec.all;
    // "name:cpu=..." names a container; a ':' after the first '=' is part of a value.
    const size_t colon = entry.find(':');
    if (colon != std::string_view::npos && colon < entry.find('=')) {
      const std::string_view name = Trim(entry.substr(0, colon));
      if (name.empty())
        return InvalidArgumentError("usage entry \"" + std::string(entry) +
                                    "\": empty container name");
      if (spec.containers.count(std::string(name)))
        return InvalidArgumentError("usage entry \"" + std::string(entry) + "\": container \"" +
                                    std::string(name) + "\" given twice");
      target = &spec.containers[std::string(name)];
      pairs = entry.substr(colon + 1);
    } else if (spec.all.cpu_cores || spec.all.memory_bytes || spec.all.memory_trace) {
      return InvalidArgumentError("usage entry \"" + std::string(entry) +
                                  "\": a second entry for every container");
    }
    size_t p = 0;
    while (p <= pairs.size()) {
      const size_t comma = std::min(pairs.find(',', p), pairs.size());
      const std::string_view pair = Trim(pairs.substr(p, comma - p));
      p = comma + 1;
      if (pair.empty()) continue;
      GPU_RETURN_IF_ERROR(ParsePair(pair, entry, target));
    }
  }
  return spec;
}

namespace {

void Apply(const UsageOverride& o, ContainerUsage* u) {
  if (o.cpu_cores) u->cpu_cores = *o.cpu_cores;
  if (o.memory_bytes) {
    u->memory_bytes = *o.memory_bytes;
    u->memory_trace.clear();
  }
  if (o.memory_trace) u->memory_trace = *o.memory_trace;
}

}  // namespace

ContainerUsage UsageFor(const PodUsageSpec& spec, std::string_view container,
                        const ContainerUsage& fallback) {
  ContainerUsage u = fallback;
  Apply(spec.all, &u);
  if (auto it = spec.containers.find(std::string(container)); it != spec.containers.end())
    Apply(it->second, &u);
  return u;
}

}  // namespace gpu_autoscaler::fleet
