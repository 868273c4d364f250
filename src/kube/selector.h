// File: src/kube/selector.h
//
// Label and field selectors with the API server's grammar and errors.
//
//   auto sel = LabelSelector::Parse("app in (web,api),tier!=3,!canary");
//   if (sel.ok() && sel->Matches(labels)) ...
//   auto f = FieldSelector::Parse("spec.nodeName=node-a");
//
// Label selectors support =, ==, !=, in, notin, exists ("key") and "!key".
// Parse errors are InvalidArgument Statuses carrying the API server's message
// text (it answers them with 400 BadRequest). `gpu_autoscaler::Result` is
// spelled out so that the type does not depend on whether kube/error.h (which
// declares kube::Result) was included first.
//
// Thread-safety: parsed selectors are immutable values.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::kube {

class LabelSelector {
 public:
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  struct Requirement {
    std::string key{};
    Op op{};
    std::vector<std::string> values{};
  };

  static gpu_autoscaler::Result<LabelSelector> Parse(std::string_view text);
  // From a metav1.LabelSelector {matchLabels, matchExpressions} given as JSON text.
  static gpu_autoscaler::Result<LabelSelector> FromJson(std::string_view json);

  bool empty() const { return reqs_.empty(); }  // matches everything
  bool Matches(const std::map<std::string, std::string>& labels) const;
  // `get` returns a pointer to the label value or nullptr if absent.
  bool Matches(const std::function<const std::string*(std::string_view key)>& get) const;
  const std::vector<Requirement>& requirements() const { return reqs_; }
  std::string ToString() const;
  // Whether one requirement holds for a label's value (nullopt: the label
  // is absent); for callers that keep labels in their own form. `r` as Parse
  // and FromJson give it: its values sorted.
  static bool Holds(const Requirement& r, std::optional<std::string_view> value);

 private:
  std::vector<Requirement> reqs_{};
};

class FieldSelector {
 public:
  struct Requirement {
    std::string field{};  // "metadata.name", "spec.nodeName", ...
    bool equals{};        // '=' / '==' vs '!='
    std::string value{};
  };
  static gpu_autoscaler::Result<FieldSelector> Parse(std::string_view text);
  bool empty() const { return reqs_.empty(); }
  // `get` returns the field's value, or nullptr when the field is unknown.
  bool Matches(const std::function<const std::string*(std::string_view field)>& get) const;
  const std::vector<Requirement>& requirements() const { return reqs_; }

 private:
  std::vector<Requirement> reqs_{};
};

}  // namespace gpu_autoscaler::kube
