// Strategic merge patch for built-in kinds (k8s.io/apimachinery strategicpatch).
#include "apiserver/patch_internal.h"

namespace gpu_autoscaler::apiserver {

using namespace patch_internal;  // NOLINT: this file implements them

namespace {

// ---------------------------------------------------------------------------
// Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch).

constexpr std::string_view kDirective = "$patch";
constexpr std::string_view kRetainKeys = "$retainKeys";
constexpr std::string_view kDeleteFromPrimitiveList = "$deleteFromPrimitiveList/";
constexpr std::string_view kSetElementOrder = "$setElementOrder/";

// The strategic merge error, carrying the HTTP status the real server maps it to.
struct SmpError {
  int code;
  std::string message;
};

void DiscardNulls(json& v) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      if (it->is_null()) {
        it = v.erase(it);
      } else {
        DiscardNulls(*it);
        ++it;
      }
    }
  } else if (v.is_array()) {
    for (json& e : v) {
      if (e.is_object()) DiscardNulls(e);
    }
  }
}

// Index of `item` in `order` (by merge key for maps, by value for primitives).
long IndexIn(const json& order, const json& item, const std::string& key) {
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (key.empty()) {
      if (order[i] == item) return long(i);
    } else if (order[i].is_object() && item.is_object() && order[i].contains(key) &&
               item.contains(key) && order[i][key] == item[key]) {
      return long(i);
    }
  }
  return -1;
}

// normalizeElementOrder + mergeSortedSlice: patch items keep the order of
// `patch_order`, server-only items keep the live order, interleaved by the
// live order where both are known.
json MergeOrdered(const json& patch_items, const json& server_only, const json& patch_order,
                  const json& server_order, const std::string& key) {
  auto sort_by = [&key](json items, const json& order) {
    std::vector<std::pair<long, json>> indexed;
    for (json& item : items)
      indexed.emplace_back(IndexIn(order, item, key), std::move(item));
    std::stable_sort(indexed.begin(), indexed.end(), [](const auto& a, const auto& b) {
      if (a.first < 0 || b.first < 0) return false;
      return a.first < b.first;
    });
    json out = json::array();
    for (auto& [index, item] : indexed)
      out.push_back(std::move(item));
    return out;
  };
  const json left = sort_by(server_only, server_order);
  const json right = sort_by(patch_items, patch_order);
  json out = json::array();
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < left.size() || j < right.size()) {
    if (i >= left.size()) {
      out.push_back(right[j++]);
    } else if (j >= right.size()) {
      out.push_back(left[i++]);
    } else {
      const long li = IndexIn(server_order, left[i], key);
      const long ri = IndexIn(server_order, right[j], key);
      if (li >= 0 && ri >= 0 && li < ri) {
        out.push_back(left[i++]);
      } else {
        out.push_back(right[j++]);
      }
    }
  }
  return out;
}

class StrategicMerger {
 public:
  explicit StrategicMerger(const KindSchema& schema) : schema_(schema) {}

  std::optional<SmpError> MergeMap(json& original, json patch, std::vector<std::string>& path) {
    if (auto it = patch.find(kDirective); it != patch.end()) {
      if (*it == "replace") {
        patch.erase(it);
        original = std::move(patch);
        return std::nullopt;
      }
      if (*it == "delete") {
        original = json::object();
        return std::nullopt;
      }
      return SmpError{400, "unknown patch type: " + it->dump() + " in map: " + patch.dump()};
    }
    if (auto it = patch.find(kRetainKeys); it != patch.end()) {
      if (!it->is_array()) {
        return SmpError{400, "invalid patch format of retainKeys"};
      }
      const json retain = *it;
      patch.erase(it);
      for (auto& [k, v] : patch.items()) {
        (void)v;
        if (StartsWith(k, "$")) continue;
        if (std::find(retain.begin(), retain.end(), json(k)) == retain.end()) {
          return SmpError{422, "patch content doesn't match retainKeys list"};
        }
      }
      for (auto o = original.begin(); o != original.end();) {
        if (std::find(retain.begin(), retain.end(), json(o.key())) == retain.end()) {
          o = original.erase(o);
        } else {
          ++o;
        }
      }
    }
    // $setElementOrder lists only reorder; collect them first.
    std::map<std::string, json> element_orders;
    for (auto it = patch.begin(); it != patch.end();) {
      if (StartsWith(it.key(), kSetElementOrder)) {
        if (!it->is_array()) {
          return SmpError{400, "invalid patch format of setElementOrder list"};
        }
        element_orders[it.key().substr(kSetElementOrder.size())] = *it;
        it = patch.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [raw_key, patch_value] : patch.items()) {
      std::string key = raw_key;
      if (StartsWith(key, kDeleteFromPrimitiveList)) {
        if (!patch_value.is_array()) {
          return SmpError{400, "invalid patch format of primitive list"};
        }
        key = key.substr(kDeleteFromPrimitiveList.size());
        auto o = original.find(key);
        if (o != original.end() && o->is_array()) {
          json kept = json::array();
          for (json& e : *o) {
            if (std::find(patch_value.begin(), patch_value.end(), e) == patch_value.end()) {
              kept.push_back(std::move(e));
            }
          }
          *o = std::move(kept);
        }
        continue;
      }
      if (patch_value.is_null()) {
        original.erase(key);
        continue;
      }
      auto o = original.find(key);
      if (o == original.end()) {
        DiscardNulls(patch_value);
        original[key] = std::move(patch_value);
        continue;
      }
      path.push_back(key);
      std::optional<SmpError> error;
      if (o->is_object() && patch_value.is_object()) {
        error = MergeMap(*o, std::move(patch_value), path);
      } else if (o->is_array() && patch_value.is_array()) {
        auto order = element_orders.find(key);
        error = MergeList(*o, std::move(patch_value),
                          order == element_orders.end() ? nullptr : &order->second, path);
        if (order != element_orders.end()) element_orders.erase(order);
      } else {
        *o = std::move(patch_value);
      }
      path.pop_back();
      if (error) return error;
    }
    // An order for a list the patch did not touch still reorders it.
    for (auto& [key, order] : element_orders) {
      auto o = original.find(key);
      if (o == original.end() || !o->is_array()) continue;
      path.push_back(key);
      std::optional<SmpError> error = MergeList(*o, json::array(), &order, path);
      path.pop_back();
      if (error) return error;
    }
    return std::nullopt;
  }

 private:
  std::optional<SmpError> MergeList(json& original, json patch, const json* element_order,
                                    std::vector<std::string>& path) {
    const ListInfo info = schema_.List(path);
    const bool merge = info.type != ListType::kAtomic;
    if (!merge) {
      // patchStrategy replace: drop directive elements, take the patch list.
      json out = json::array();
      for (json& e : patch) {
        if (e.is_object() && e.contains(kDirective)) continue;
        out.push_back(std::move(e));
      }
      if (element_order == nullptr || !out.empty()) original = std::move(out);
      return std::nullopt;
    }
    if (original.empty() && patch.empty() && element_order == nullptr) return std::nullopt;
    const json live_order = original;
    bool primitive = true;
    for (const json* list : {&original, &patch}) {
      for (const json& e : *list) {
        if (e.is_array()) return SmpError{422, "lists of lists are not supported"};
        if (e.is_object()) primitive = false;
      }
    }
    json merged;
    std::string key;
    if (primitive) {
      merged = json::array();
      for (const json* list : {&original, &patch}) {
        for (const json& e : *list) {
          if (std::find(merged.begin(), merged.end(), e) == merged.end()) merged.push_back(e);
        }
      }
    } else {
      key = info.smp_key;
      if (key.empty()) {
        return SmpError{400, "cannot merge lists without merge key for " + JoinPath(path)};
      }
      for (const json* list : {&original, &patch}) {
        for (const json& e : *list) {
          if (!e.is_object()) {
            return SmpError{400, "the list " + JoinPath(path) + " mixes maps and primitives"};
          }
        }
      }
      // Special elements: {"$patch": "delete", key: v} and {"$patch": "replace"}.
      json plain_patch = json::array();
      bool replace = false;
      for (json& e : patch) {
        auto directive = e.find(kDirective);
        if (directive == e.end()) {
          plain_patch.push_back(std::move(e));
          continue;
        }
        if (*directive == "delete") {
          auto value = e.find(key);
          if (value == e.end()) {
            return SmpError{400,
                            "map: " + e.dump() + " does not contain declared merge key: " + key};
          }
          json kept = json::array();
          for (json& o : original) {
            if (!(o.contains(key) && o[key] == *value)) kept.push_back(std::move(o));
          }
          original = std::move(kept);
        } else if (*directive == "replace") {
          replace = true;
        } else if (*directive == "merge") {
          return SmpError{400, "merging lists cannot yet be specified in the patch"};
        } else {
          return SmpError{400, "unknown patch type: " + directive->dump() + " in map: " + e.dump()};
        }
      }
      if (replace) {
        original = std::move(plain_patch);
        plain_patch = json::array();
      }
      for (json& e : plain_patch) {
        auto value = e.find(key);
        if (value == e.end()) {
          return SmpError{400, "map: " + e.dump() + " does not contain declared merge key: " + key};
        }
        auto match = std::find_if(original.begin(), original.end(), [&](const json& o) {
          return o.contains(key) && o[key] == *value;
        });
        if (match != original.end()) {
          if (std::optional<SmpError> error = MergeMap(*match, std::move(e), path)) return error;
        } else {
          DiscardNulls(e);
          original.push_back(std::move(e));
        }
      }
      merged = std::move(original);
      patch = json::array();
      for (json& e : plain_patch) {
        if (e.is_object()) patch.push_back(e);
      }
    }
    const json& order = element_order != nullptr ? *element_order : patch;
    json patch_items = json::array();
    json server_only = json::array();
    for (json& e : merged) {
      if (IndexIn(order, e, key) >= 0) {
        patch_items.push_back(std::move(e));
      } else {
        server_only.push_back(std::move(e));
      }
    }
    original = MergeOrdered(patch_items, server_only, order, live_order, key);
    return std::nullopt;
  }

  const KindSchema& schema_;
};

}  // namespace

kube::Result<json> ApplyStrategicMergePatch(const json& doc, std::string_view patch,
                                            std::string_view kind) {
  if (ValueTooDeep(doc)) return BadRequest("the object is nested too deeply");
  std::string message;
  std::optional<json> parsed = ParseJson(patch, &message);
  if (!parsed) return BadRequest(message);
  if (!parsed->is_object()) {
    return BadRequest("json: cannot unmarshal " + GoJsonTypeName(*parsed) +
                      " into Go value of type map[string]interface {}");
  }
  if (!doc.is_object()) return BadRequest("invalid JSON document");
  const KindSchema schema(kind);
  StrategicMerger merger(schema);
  json result = doc;
  std::vector<std::string> path;
  try {
    if (std::optional<SmpError> error = merger.MergeMap(result, std::move(*parsed), path)) {
      if (error->code == 422) return GenericUnprocessable(error->message);
      return BadRequest(error->message);
    }
  } catch (const json::exception& e) {
    return BadRequest(e.what());
  }
  return result;
}

}  // namespace gpu_autoscaler::apiserver
