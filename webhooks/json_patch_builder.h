// File: webhooks/json_patch_builder.h
//
// Accumulates RFC 6902 JSON Patch operations as JSON text, for the pod
// mutations (GPU sharing, profile recommendations, QoS consistency).
//
//   JsonPatchBuilder patch;
//   patch.Add("/metadata/annotations/a~1b", JsonPatchString("v"));
//   patch.Replace("/spec/containers/0/resources/requests/cpu", "\"250m\"");
//   std::string text = std::move(patch).Finish();   // "" when no operation
//
// Thread-safety: a value.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "common/json_string.h"

namespace gpu_autoscaler::webhooks {

class JsonPatchBuilder {
 public:
  void Add(std::string_view path, std::string_view raw_value) { Op("add", path, raw_value); }
  void Replace(std::string_view path, std::string_view raw_value) {
    Op("replace", path, raw_value);
  }
  void Remove(std::string_view path) {
    Begin("remove", path);
    out_.push_back('}');
  }
  bool empty() const { return out_.empty(); }
  std::string Finish() && {
    if (out_.empty()) return {};
    out_.push_back(']');
    return std::move(out_);
  }

 private:
  void Op(std::string_view op, std::string_view path, std::string_view raw_value) {
    Begin(op, path);
    out_ += R"(,"value":)";
    out_ += raw_value;
    out_.push_back('}');
  }
  void Begin(std::string_view op, std::string_view path) {
    out_.push_back(out_.empty() ? '[' : ',');
    out_ += R"({"op":")";
    out_ += op;
    out_ += R"(","path":)";
    AppendJsonString(out_, path);
  }
  std::string out_;
};

// A JSON string literal for `s`.
inline std::string JsonPatchString(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

// Concatenates two patch arrays ("" means none).
inline std::string ConcatJsonPatches(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a.substr(0, a.size() - 1));
  out.push_back(',');
  out.append(b.substr(1));
  return out;
}

}  // namespace gpu_autoscaler::webhooks
