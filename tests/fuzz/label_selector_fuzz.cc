// Fuzzes the label and field selector parsers (kube/selector.h), which read
// what clients send: `?labelSelector=` and `?fieldSelector=` on the embedded
// API server, metav1.LabelSelector objects in CRs, pod specs and webhook
// configurations. The first byte picks the parser: 0 the label selector text,
// 1 its JSON form, 2 the field selector text. Any bytes must give a selector
// or an InvalidArgument error, never a crash, and a parsed selector must
//   - print (ToString) as text that parses to the same selector;
//   - match label sets as a plain reading of its requirements does, through
//     both Matches overloads.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kube/selector.h"

namespace {

using gpu_autoscaler::StatusCode;
using gpu_autoscaler::kube::FieldSelector;
using gpu_autoscaler::kube::LabelSelector;

template <typename T>
void ExpectInvalidArgument(const T& result) {
  if (!result.ok() && result.error().code() != StatusCode::kInvalidArgument) std::abort();
}

// The selector's meaning, read without the parser's normalisation (values are
// searched, not bisected).
bool Reference(const LabelSelector& selector, const std::map<std::string, std::string>& labels) {
  for (const LabelSelector::Requirement& r : selector.requirements()) {
    auto it = labels.find(r.key);
    const bool present = it != labels.end();
    const bool listed =
        present && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    bool holds = false;
    switch (r.op) {
      case LabelSelector::Op::kEquals:
      case LabelSelector::Op::kIn:
        holds = listed;
        break;
      case LabelSelector::Op::kNotEquals:
      case LabelSelector::Op::kNotIn:
        holds = !listed;
        break;
      case LabelSelector::Op::kExists:
        holds = present;
        break;
      case LabelSelector::Op::kDoesNotExist:
        holds = !present;
        break;
    }
    if (!holds) return false;
  }
  return true;
}

void CheckLabelSelector(const LabelSelector& selector) {
  const std::string text = selector.ToString();
  auto again = LabelSelector::Parse(text);
  if (!again.ok() || again->ToString() != text) std::abort();

  // A label set that meets every requirement (where they do not contradict
  // each other), and the same set with each requirement's label turned the
  // other way, so that every requirement is both met and missed.
  using Labels = std::map<std::string, std::string>;
  auto meet = [](const LabelSelector::Requirement& r, Labels& labels, bool met) {
    switch (r.op) {
      case LabelSelector::Op::kEquals:
      case LabelSelector::Op::kIn:
      case LabelSelector::Op::kNotEquals:
      case LabelSelector::Op::kNotIn: {
        const bool positive = r.op == LabelSelector::Op::kEquals || r.op == LabelSelector::Op::kIn;
        if (positive == met) {
          labels[r.key] = r.values[r.values.size() / 2];
        } else {
          labels[r.key] = r.values.back() + "x";  // listed nowhere: above the largest
        }
        break;
      }
      case LabelSelector::Op::kExists:
      case LabelSelector::Op::kDoesNotExist:
        if ((r.op == LabelSelector::Op::kExists) == met) {
          labels[r.key] = "";
        } else {
          labels.erase(r.key);
        }
        break;
    }
  };
  const auto& reqs = selector.requirements();
  std::vector<Labels> sets(1);
  for (const LabelSelector::Requirement& r : reqs)
    meet(r, sets[0], true);
  for (size_t i = 0; i < reqs.size() && i < 16; ++i) {
    sets.push_back(sets[0]);
    meet(reqs[i], sets.back(), false);
  }
  sets.emplace_back();  // no labels
  for (const auto& labels : sets) {
    const bool expected = Reference(selector, labels);
    const bool by_map = selector.Matches(labels);
    const bool by_lookup = selector.Matches([&](std::string_view key) -> const std::string* {
      auto it = labels.find(std::string(key));
      return it == labels.end() ? nullptr : &it->second;
    });
    if (by_map != expected || by_lookup != expected) std::abort();
  }
  if (selector.empty() && !selector.Matches(std::map<std::string, std::string>{})) std::abort();
}

void CheckFieldSelector(const FieldSelector& selector) {
  // A value per field, equal to the first requirement on it.
  std::map<std::string, std::string, std::less<>> fields;
  for (const FieldSelector::Requirement& r : selector.requirements())
    fields.emplace(r.field, r.value);
  bool expected = true;
  for (const FieldSelector::Requirement& r : selector.requirements())
    expected = expected && ((fields.at(r.field) == r.value) == r.equals);
  const bool got = selector.Matches([&](std::string_view field) -> const std::string* {
    auto it = fields.find(field);
    return it == fields.end() ? nullptr : &it->second;
  });
  if (got != expected) std::abort();
  // An unknown field matches nothing (the server refuses it up front).
  if (!selector.empty() &&
      selector.Matches([](std::string_view) -> const std::string* { return nullptr; })) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 3;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (mode == 2) {
    auto selector = FieldSelector::Parse(text);
    ExpectInvalidArgument(selector);
    if (selector.ok()) CheckFieldSelector(*selector);
    return 0;
  }
  auto selector = mode == 0 ? LabelSelector::Parse(text) : LabelSelector::FromJson(text);
  ExpectInvalidArgument(selector);
  if (selector.ok()) CheckLabelSelector(*selector);
  return 0;
}
