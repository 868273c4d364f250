// File: src/apiserver/yaml_json.h
//
// YAML documents to JSON trees, resolving plain scalars with the YAML 1.2 core
// schema (true/false, null/~, integers, floats); quoted scalars stay strings.
// Used to load CRD manifests (`--crd-dir`).
//
//   auto docs = YamlDocumentsToJson(file_text);  // one tree per "---" document
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace gpu_autoscaler::apiserver {

// Every non-empty document of a (multi-document) YAML stream.
Result<std::vector<nlohmann::json>> YamlDocumentsToJson(std::string_view yaml);

}  // namespace gpu_autoscaler::apiserver
