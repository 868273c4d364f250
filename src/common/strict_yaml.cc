#include "common/strict_yaml.h"

#include <cstdlib>

#include <yaml-cpp/yaml.h>

namespace gpu_autoscaler {

Status StrictYamlReader::Error(const std::string& path, const std::string& what) const {
  return InvalidArgumentError(std::string(source_) + ": " + path + ": " + what);
}

Status StrictYamlReader::Known(const YAML::Node& node, const std::string& path,
                               std::initializer_list<std::string_view> known) const {
  if (!node.IsMap()) return Error(path.empty() ? "(document)" : path, "expected a mapping");
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    bool ok = false;
    for (std::string_view k : known)
      ok = ok || key == k;
    if (!ok) {
      std::string list;
      for (std::string_view k : known)
        list += (list.empty() ? "" : ", ") + std::string(k);
      return Error(path.empty() ? key : path + "." + key, "unknown field (known: " + list + ")");
    }
  }
  return Status::Ok();
}

Status StrictYamlReader::Bool(const YAML::Node& node, const std::string& path, bool* out) const {
  if (!node.IsDefined()) return Status::Ok();
  const std::string text = node.IsScalar() ? node.Scalar() : "";
  if (text != "true" && text != "false") return Error(path, "expected true or false");
  *out = text == "true";
  return Status::Ok();
}

Status StrictYamlReader::String(const YAML::Node& node, const std::string& path,
                                std::string* out) const {
  if (!node.IsDefined()) return Status::Ok();
  if (!node.IsScalar()) return Error(path, "expected a string");
  *out = node.Scalar();
  return Status::Ok();
}

Status StrictYamlReader::Count(const YAML::Node& node, const std::string& path, int64_t min,
                               int64_t max, int64_t* out) const {
  if (!node.IsDefined()) return Status::Ok();
  const std::string text = node.IsScalar() ? node.Scalar() : "";
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < min || v > max)
    return Error(
        path, "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  *out = v;
  return Status::Ok();
}

}  // namespace gpu_autoscaler
