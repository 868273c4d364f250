// File: src/common/strict_yaml.h
//
// The strict reader behind the project's YAML configuration files (the
// manager's ManagerConfig, the node agent's NodeAgentConfig): unknown keys are
// refused with their path, the way kubectl's strict field validation refuses
// them, and each typed read names the field and what it expected. An absent
// node leaves the default in place.
//
//   StrictYamlReader r("config.yaml");
//   GPU_RETURN_IF_ERROR(r.Known(root, "", {"apiVersion", "kind", "cost"}));
//   GPU_RETURN_IF_ERROR(r.Bool(root["cost"]["shareIdleCost"], "cost.shareIdleCost", &share));
//   // -> "config.yaml: cost.shareIdleCost: expected true or false"
//
// Modules derive from it for their own value types (durations, percentages).
// yaml-cpp stays out of this header.
//
// Thread-safety: const methods, safe to call concurrently; `source` must
// outlive the reader.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "common/status.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace gpu_autoscaler {

class StrictYamlReader {
 public:
  explicit StrictYamlReader(std::string_view source) : source_(source) {}

  // InvalidArgument "<source>: <path>: <what>".
  Status Error(const std::string& path, const std::string& what) const;

  // `node` must be a mapping whose every key is in `known`.
  Status Known(const YAML::Node& node, const std::string& path,
               std::initializer_list<std::string_view> known) const;

  Status Bool(const YAML::Node& node, const std::string& path, bool* out) const;
  Status String(const YAML::Node& node, const std::string& path, std::string* out) const;
  // A whole number in [min, max].
  Status Count(const YAML::Node& node, const std::string& path, int64_t min, int64_t max,
               int64_t* out) const;

 private:
  std::string_view source_;
};

}  // namespace gpu_autoscaler
