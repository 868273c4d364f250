// File: tests/apiserver/object_golden.h
//
// Loading the recorded kube-apiserver exchanges in tests/golden/kube and
// comparing objects with them while ignoring each file's volatile paths.
// Shared by the object-semantics tests (patch, defaults, validation, apply).
//
//   const nlohmann::json golden = LoadGolden("08-create-pod");
//   EXPECT_EQ(WithoutVolatile(mine, golden), WithoutVolatile(Response(golden), golden));
//
// Thread-safety: pure functions.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace gpu_autoscaler::apiserver::testing {

// The golden file tests/golden/kube/<name>.json, parsed.
inline nlohmann::json LoadGolden(const std::string& name) {
  return nlohmann::json::parse(gpu_autoscaler::testing::ReadFileOrDie(
      gpu_autoscaler::testing::SourcePath("tests/golden/kube/" + name + ".json")));
}

inline const nlohmann::json& RequestBody(const nlohmann::json& golden) {
  return golden.at("request").at("body");
}
inline const nlohmann::json& ResponseBody(const nlohmann::json& golden) {
  return golden.at("response").at("body");
}

// A copy of `obj` without the golden's volatile paths ("metadata.uid", ...).
inline nlohmann::json WithoutVolatile(nlohmann::json obj, const nlohmann::json& golden) {
  for (const auto& path : golden.at("volatile")) {
    const std::string dotted = path.get<std::string>();
    nlohmann::json* node = &obj;
    std::size_t start = 0;
    while (node != nullptr && node->is_object()) {
      const std::size_t dot = dotted.find('.', start);
      const std::string key = dotted.substr(start, dot - start);
      if (dot == std::string::npos) {
        node->erase(key);
        break;
      }
      auto it = node->find(key);
      node = it == node->end() ? nullptr : &*it;
      start = dot + 1;
    }
  }
  return obj;
}

}  // namespace gpu_autoscaler::apiserver::testing
