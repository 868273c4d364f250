#include "api/crd_fields.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <mutex>

namespace gpu_autoscaler::api {
namespace internal {
// Generated at build time from crds/*.yaml (CMakeLists.txt).
extern const char* const kAllCrdYamls[];  // null-terminated
}  // namespace internal

namespace {

// The v1alpha1 openAPIV3Schema of each kind, loaded once.
const std::map<std::string, YAML::Node, std::less<>>& Schemas() {
  static const auto* schemas = [] {
    auto* out = new std::map<std::string, YAML::Node, std::less<>>();
    for (const char* const* text = internal::kAllCrdYamls; *text != nullptr; ++text) {
      YAML::Node crd = YAML::Load(*text);
      const std::string kind = crd["spec"]["names"]["kind"].as<std::string>();
      for (const YAML::Node& version : crd["spec"]["versions"]) {
        if (version["name"].as<std::string>() == "v1alpha1") {
          (*out)[kind] = version["schema"]["openAPIV3Schema"];
        }
      }
    }
    return out;
  }();
  return *schemas;
}

bool Truthy(const YAML::Node& n) {
  return n.IsDefined() && n.IsScalar() && n.Scalar() == "true";
}

void Walk(const YAML::Node& value, const YAML::Node& schema, const std::string& path,
          std::vector<std::string>* unknown) {
  if (!schema.IsDefined() || !schema.IsMap()) return;
  if (Truthy(schema["x-kubernetes-preserve-unknown-fields"])) return;
  if (value.IsMap()) {
    const YAML::Node properties = schema["properties"];
    const YAML::Node additional = schema["additionalProperties"];
    for (const auto& kv : value) {
      const std::string key = kv.first.Scalar();
      const std::string child = path.empty() ? key : path + "." + key;
      if (properties.IsDefined() && properties[key].IsDefined()) {
        Walk(kv.second, properties[key], child, unknown);
      } else if (additional.IsDefined() && additional.IsMap()) {
        Walk(kv.second, additional, child, unknown);
      } else if (!(additional.IsDefined() && Truthy(additional))) {
        unknown->push_back(child);
      }
    }
  } else if (value.IsSequence()) {
    const YAML::Node items = schema["items"];
    for (size_t i = 0; i < value.size(); ++i)
      Walk(value[i], items, path + "[" + std::to_string(i) + "]", unknown);
  }
}

}  // namespace

std::vector<std::string> KindsWithSchema() {
  std::vector<std::string> kinds;
  for (const auto& [kind, schema] : Schemas())
    kinds.push_back(kind);
  return kinds;
}

Result<std::vector<std::string>> UnknownFields(std::string_view object, std::string_view kind) {
  auto it = Schemas().find(kind);
  if (it == Schemas().end()) {
    return InvalidArgumentError("no schema for kind \"" + std::string(kind) + "\"");
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(object));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("not YAML or JSON: " + e.msg);
  }
  std::vector<std::string> unknown;
  if (!root.IsMap()) return unknown;  // the parsers say what is wrong with the shape
  const YAML::Node properties = it->second["properties"];
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (key == "apiVersion" || key == "kind" || key == "metadata") continue;
    if (!properties[key].IsDefined()) {
      unknown.push_back(key);
      continue;
    }
    Walk(kv.second, properties[key], key, &unknown);
  }
  return unknown;
}

Status CheckKnownFields(std::string_view object, std::string_view kind) {
  GPU_ASSIGN_OR_RETURN(std::vector<std::string> unknown, UnknownFields(object, kind));
  if (unknown.empty()) return Status::Ok();
  std::string message;
  for (const std::string& path : unknown)
    message += (message.empty() ? "unknown field \"" : ", unknown field \"") + path + "\"";
  return InvalidArgumentError(message + " (the " + std::string(kind) + " schema does not declare " +
                              (unknown.size() == 1 ? "it" : "them") + ")");
}

}  // namespace gpu_autoscaler::api
