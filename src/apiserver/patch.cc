#include "apiserver/patch.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::apiserver {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Errors, shaped like the ones kube-apiserver v1.20 returns.

kube::Error BadRequest(std::string message) {
  return kube::Error(kube::Error::Kind::kApi, 400, "BadRequest", std::move(message));
}

// errors.NewGenericServerResponse(422, ...): the real server drops the
// underlying message and renders `"details": {}`.
kube::Error GenericInvalid() {
  kube::Error error(kube::Error::Kind::kApi, 422, "Invalid",
                    "the server rejected our request due to an error in our request");
  error.mutable_details().present = true;
  return error;
}

kube::Error GenericUnprocessable(std::string message) {
  kube::Error error(kube::Error::Kind::kApi, 422, "Invalid", std::move(message));
  error.mutable_details().present = true;
  return error;
}

// Approximates Go's encoding/json syntax error text for a parse failure at
// byte `position` of `text`.
std::string GoJsonSyntaxMessage(std::string_view text, std::size_t position) {
  // nlohmann reports the 1-based position of the offending byte.
  std::size_t index = position == 0 ? 0 : position - 1;
  while (index < text.size() && (text[index] == ' ' || text[index] == '\n' || text[index] == '\t' ||
                                 text[index] == '\r')) {
    ++index;
  }
  if (index >= text.size()) return "unexpected end of JSON input";
  std::string c(1, text[index]);
  if (text[index] == '\'') c = "\\'";
  return "invalid character '" + c + "' looking for beginning of value";
}

// Nesting limit for patches and the objects they apply to. Real objects are a
// few dozen levels deep; the limit keeps the recursive walkers (and nlohmann's
// recursive copy and comparison) far from the stack's end.
constexpr int kMaxDepth = 1000;

bool TextTooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

bool ValueTooDeep(const json& root) {
  std::vector<std::pair<const json*, int>> stack = {{&root, 1}};
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    if (depth > kMaxDepth) return true;
    for (const json& child : *v)
      stack.emplace_back(&child, depth + 1);
  }
  return false;
}

// Upper bound on the JSON values that the copy operations of one JSON patch
// may duplicate.
constexpr std::size_t kMaxCopiedNodes = std::size_t{1} << 20;

std::size_t NodeCount(const json& root) {
  std::size_t count = 0;
  std::vector<const json*> stack = {&root};
  while (!stack.empty()) {
    const json* v = stack.back();
    stack.pop_back();
    ++count;
    if (v->is_structured()) {
      for (const json& child : *v)
        stack.push_back(&child);
    }
  }
  return count;
}

// Parses JSON without throwing; on failure fills `message` with Go's wording.
std::optional<json> ParseJson(std::string_view text, std::string* message) {
  if (TextTooDeep(text)) {
    *message = "exceeded max depth";
    return std::nullopt;
  }
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    *message = GoJsonSyntaxMessage(text, e.byte);
  } catch (const json::exception& e) {
    *message = e.what();
  }
  return std::nullopt;
}

// Go's `%T`-ish name of a JSON value, for "cannot unmarshal X into ..." messages.
std::string GoJsonTypeName(const json& v) {
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "bool";
  if (v.is_number()) return "number";
  return "null";
}

// ---------------------------------------------------------------------------
// Schema knowledge about built-in kinds: which lists merge by key (strategic
// merge patch `patchMergeKey`, server-side apply `listMapKeys`), which are sets,
// and which structs are atomic. Everything else: lists are atomic, maps merge.

enum class ListType { kAtomic, kSet, kMap };

struct ListInfo {
  ListType type = ListType::kAtomic;
  std::string smp_key;            // strategic merge key; "" with kSet merges primitives
  std::vector<std::string> keys;  // server-side apply list-map keys
};

bool IsBuiltinKind(std::string_view kind) {
  static const std::set<std::string_view> kKinds = {
      "Pod",
      "Namespace",
      "ConfigMap",
      "Secret",
      "Service",
      "Node",
      "Event",
      "Lease",
      "PodDisruptionBudget",
      "Deployment",
      "ReplicaSet",
      "StatefulSet",
      "DaemonSet",
      "Job",
      "CronJob",
      "PodTemplate",
      "ReplicationController",
      "CustomResourceDefinition",
      "Endpoints",
      "ServiceAccount",
      "PersistentVolumeClaim",
      "PersistentVolume",
      "LimitRange",
      "ResourceQuota",
      "Binding",
      "Eviction",
      "PriorityClass",
  };
  return kKinds.count(kind) > 0;
}

// Path of the PodSpec inside objects of `kind`, "" when it has none.
std::string_view PodSpecPath(std::string_view kind) {
  if (kind == "Pod") return "spec";
  if (kind == "Deployment" || kind == "ReplicaSet" || kind == "StatefulSet" ||
      kind == "DaemonSet" || kind == "Job" || kind == "ReplicationController") {
    return "spec.template.spec";
  }
  if (kind == "CronJob") return "spec.jobTemplate.spec.template.spec";
  if (kind == "PodTemplate") return "template.spec";
  return "";
}

std::string JoinPath(const std::vector<std::string>& fields) {
  std::string out;
  for (const std::string& f : fields) {
    if (!out.empty()) out += '.';
    out += f;
  }
  return out;
}

class KindSchema {
 public:
  explicit KindSchema(std::string_view kind)
      : kind_(kind), builtin_(IsBuiltinKind(kind)), pod_spec_(PodSpecPath(kind)) {}

  bool builtin() const { return builtin_; }

  ListInfo List(const std::vector<std::string>& fields) const {
    const std::string path = JoinPath(fields);
    if (path == "metadata.finalizers") return {ListType::kSet, "", {}};
    if (path == "metadata.ownerReferences") return {ListType::kMap, "uid", {"uid"}};
    if (!builtin_) return {};
    if (path == "status.conditions") return {ListType::kMap, "type", {"type"}};
    if (kind_ == "Service" && path == "spec.ports") {
      return {ListType::kMap, "port", {"port", "protocol"}};
    }
    if (!pod_spec_.empty() && path.size() > pod_spec_.size() + 1 &&
        path.compare(0, pod_spec_.size(), pod_spec_) == 0 && path[pod_spec_.size()] == '.') {
      return PodSpecList(std::string_view(path).substr(pod_spec_.size() + 1));
    }
    return {};
  }

  // LabelSelector is `+structType=atomic`: owned and replaced as a whole.
  bool AtomicStruct(const std::vector<std::string>& fields) const {
    if (!builtin_ || fields.empty() || kind_ == "Service") return false;
    const std::string& last = fields.back();
    return last == "selector" || last == "labelSelector" || last == "namespaceSelector";
  }

 private:
  static ListInfo PodSpecList(std::string_view rel) {
    static const std::map<std::string_view, ListInfo> kTable = {
        {"containers", {ListType::kMap, "name", {"name"}}},
        {"initContainers", {ListType::kMap, "name", {"name"}}},
        {"ephemeralContainers", {ListType::kMap, "name", {"name"}}},
        {"volumes", {ListType::kMap, "name", {"name"}}},
        {"imagePullSecrets", {ListType::kMap, "name", {"name"}}},
        {"hostAliases", {ListType::kMap, "ip", {"ip"}}},
        {"topologySpreadConstraints",
         {ListType::kMap, "topologyKey", {"topologyKey", "whenUnsatisfiable"}}},
    };
    static const std::map<std::string_view, ListInfo> kContainerTable = {
        {"ports", {ListType::kMap, "containerPort", {"containerPort", "protocol"}}},
        {"env", {ListType::kMap, "name", {"name"}}},
        {"volumeMounts", {ListType::kMap, "mountPath", {"mountPath"}}},
        {"volumeDevices", {ListType::kMap, "devicePath", {"devicePath"}}},
    };
    if (auto it = kTable.find(rel); it != kTable.end()) return it->second;
    const std::size_t dot = rel.find('.');
    if (dot == std::string_view::npos) return {};
    const std::string_view list = rel.substr(0, dot);
    if (list != "containers" && list != "initContainers" && list != "ephemeralContainers") {
      return {};
    }
    if (auto it = kContainerTable.find(rel.substr(dot + 1)); it != kContainerTable.end()) {
      return it->second;
    }
    return {};
  }

  std::string kind_;
  bool builtin_;
  std::string pod_spec_;
};

// ---------------------------------------------------------------------------
// JSON patch (RFC 6902).

}  // namespace

kube::Result<json> ApplyJsonPatch(const json& doc, std::string_view patch) {
  if (ValueTooDeep(doc)) return BadRequest("the object is nested too deeply");
  std::string message;
  std::optional<json> ops = ParseJson(patch, &message);
  if (!ops) return BadRequest(message);
  // jsonpatch.DecodePatch accepts any array of objects; everything else about
  // an operation is checked while applying it (and fails with 422).
  if (!ops->is_array()) {
    return BadRequest("json: cannot unmarshal " + GoJsonTypeName(*ops) +
                      " into Go value of type jsonpatch.Patch");
  }
  for (const json& op : *ops) {
    if (!op.is_object()) {
      return BadRequest("json: cannot unmarshal " + GoJsonTypeName(op) +
                        " into Go value of type jsonpatch.Operation");
    }
  }
  constexpr std::size_t kMaxOperations = 10000;
  if (ops->size() > kMaxOperations) {
    return kube::Error(kube::Error::Kind::kApi, 413, "RequestEntityTooLarge",
                       "Request entity too large: The allowed maximum operations in a JSON "
                       "patch is 10000, got " +
                           std::to_string(ops->size()));
  }
  try {
    json result = doc;
    std::size_t copied = 0;
    for (json& op : *ops) {
      // Repeated copies can grow a document exponentially; like jsonpatch's
      // AccumulatedCopySizeLimit, bound what copy operations may add.
      auto kind = op.find("op");
      auto from = op.find("from");
      if (kind != op.end() && *kind == "copy" && from != op.end() && from->is_string()) {
        copied += NodeCount(result.at(json::json_pointer(from->get<std::string>())));
        if (copied > kMaxCopiedNodes) return GenericInvalid();
      }
      result.patch_inplace(json::array({std::move(op)}));
    }
    return result;
  } catch (const json::exception&) {
    return GenericInvalid();
  }
}

kube::Result<json> ApplyMergePatch(const json& doc, std::string_view patch) {
  if (ValueTooDeep(doc)) return BadRequest("the object is nested too deeply");
  std::string message;
  std::optional<json> parsed = ParseJson(patch, &message);
  if (!parsed) return BadRequest(message == "exceeded max depth" ? message : "Invalid JSON Patch");
  json result = doc;
  result.merge_patch(*parsed);
  return result;
}

namespace {

// ---------------------------------------------------------------------------
// Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch).

constexpr std::string_view kDirective = "$patch";
constexpr std::string_view kRetainKeys = "$retainKeys";
constexpr std::string_view kDeleteFromPrimitiveList = "$deleteFromPrimitiveList/";
constexpr std::string_view kSetElementOrder = "$setElementOrder/";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

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

namespace {

// ---------------------------------------------------------------------------
// Field sets (sigs.k8s.io/structured-merge-diff), stored as a trie keyed by the
// FieldsV1 path elements: "f:<field>", "k:{<key fields>}", "v:<value>".

struct FieldSet {
  bool member = false;
  std::map<std::string, FieldSet> children;

  bool Empty() const { return !member && children.empty(); }

  void Insert(const std::vector<std::string>& path) {
    FieldSet* node = this;
    for (const std::string& element : path)
      node = &node->children[element];
    node->member = true;
  }

  void UnionWith(const FieldSet& other) {
    member = member || other.member;
    for (const auto& [element, child] : other.children)
      children[element].UnionWith(child);
  }

  FieldSet Difference(const FieldSet& other) const {
    FieldSet out;
    out.member = member && !other.member;
    for (const auto& [element, child] : children) {
      auto it = other.children.find(element);
      FieldSet diff = it == other.children.end() ? child : child.Difference(it->second);
      if (!diff.Empty()) out.children.emplace(element, std::move(diff));
    }
    return out;
  }

  FieldSet Intersection(const FieldSet& other) const {
    FieldSet out;
    out.member = member && other.member;
    for (const auto& [element, child] : children) {
      auto it = other.children.find(element);
      if (it == other.children.end()) continue;
      FieldSet both = child.Intersection(it->second);
      if (!both.Empty()) out.children.emplace(element, std::move(both));
    }
    return out;
  }

  // Every member path, in sorted order.
  void Members(std::vector<std::string>& prefix, std::vector<std::vector<std::string>>& out) const {
    if (member && !prefix.empty()) out.push_back(prefix);
    for (const auto& [element, child] : children) {
      prefix.push_back(element);
      child.Members(prefix, out);
      prefix.pop_back();
    }
  }

  json ToFieldsV1() const {
    json out = json::object();
    if (member && !children.empty()) out["."] = json::object();
    for (const auto& [element, child] : children)
      out[element] = child.ToFieldsV1();
    return out;
  }

  static FieldSet FromFieldsV1(const json& v) {
    FieldSet out;
    if (!v.is_object()) return out;
    if (v.empty()) out.member = true;
    for (const auto& [element, child] : v.items()) {
      if (element == ".") {
        out.member = true;
        continue;
      }
      FieldSet c = FromFieldsV1(child);
      if (!c.Empty()) out.children.emplace(element, std::move(c));
    }
    return out;
  }
};

// The paths the field manager never tracks (stripMetaManager).
const FieldSet& StripSet() {
  static const FieldSet kStrip = [] {
    FieldSet s;
    s.Insert({"f:apiVersion"});
    s.Insert({"f:kind"});
    s.Insert({"f:metadata"});
    for (const char* f : {"name", "namespace", "creationTimestamp", "selfLink", "uid",
                          "clusterName", "generation", "managedFields", "resourceVersion"}) {
      s.Insert({"f:metadata", std::string("f:") + f});
    }
    return s;
  }();
  return kStrip;
}

// ".spec.containers[name=\"main\"].image", as fieldpath.Path.String() prints it.
std::string PathString(const std::vector<std::string>& path) {
  std::string out;
  for (const std::string& element : path) {
    if (StartsWith(element, "f:")) {
      out += "." + element.substr(2);
    } else if (StartsWith(element, "v:")) {
      out += "[=" + element.substr(2) + "]";
    } else if (StartsWith(element, "i:")) {
      out += "[" + element.substr(2) + "]";
    } else if (StartsWith(element, "k:")) {
      json keys = json::parse(element.substr(2), nullptr, false);
      std::string fields;
      if (keys.is_object()) {
        for (const auto& [name, value] : keys.items()) {
          if (!fields.empty()) fields += ",";
          fields += name + "=" + value.dump();
        }
      }
      out += "[" + fields + "]";
    }
  }
  return out;
}

// Where a walker is: the FieldsV1 elements so far, and the field names alone
// (list items add no field name) for schema lookups.
struct Path {
  std::vector<std::string> elements;
  std::vector<std::string> fields;

  void PushField(const std::string& name) {
    elements.push_back("f:" + name);
    fields.push_back(name);
  }
  void PopField() {
    elements.pop_back();
    fields.pop_back();
  }
};

// How the typed walkers treat one value.
enum class NodeKind { kLeaf, kMap, kSetList, kMapList };

// The walkers below follow structured-merge-diff's ToFieldSet, Compare and
// Merge, with list semantics taken from KindSchema. Lists whose items do not
// fit their declared type (duplicate keys, mixed items) are treated as atomic
// rather than rejected, so bookkeeping never blocks a write.
class TypedWalker {
 public:
  explicit TypedWalker(const KindSchema& schema) : schema_(schema) {}

  NodeKind Classify(const json& v, const std::vector<std::string>& fields) const {
    if (v.is_object()) return schema_.AtomicStruct(fields) ? NodeKind::kLeaf : NodeKind::kMap;
    if (!v.is_array()) return NodeKind::kLeaf;
    const ListInfo info = schema_.List(fields);
    if (info.type == ListType::kSet) {
      std::set<std::string> seen;
      for (const json& e : v) {
        if (e.is_structured() || !seen.insert(e.dump()).second) return NodeKind::kLeaf;
      }
      return NodeKind::kSetList;
    }
    if (info.type == ListType::kMap) {
      std::set<std::string> seen;
      for (const json& e : v) {
        if (!e.is_object() || !seen.insert(ItemKey(e, info)).second) return NodeKind::kLeaf;
      }
      return NodeKind::kMapList;
    }
    return NodeKind::kLeaf;
  }

  // typed.ToFieldSet: leaves, list items and empty maps are members.
  void ToFieldSet(const json& v, Path& path, FieldSet& out) const {
    switch (Classify(v, path.fields)) {
      case NodeKind::kLeaf:
        if (!path.elements.empty()) out.Insert(path.elements);
        return;
      case NodeKind::kMap:
        for (const auto& [key, child] : v.items()) {
          path.PushField(key);
          ToFieldSet(child, path, out);
          if (child.is_object() && child.empty()) out.Insert(path.elements);
          path.PopField();
        }
        return;
      case NodeKind::kSetList:
      case NodeKind::kMapList:
        for (const auto& [element, item] : Items(v, path.fields)) {
          path.elements.push_back(element);
          out.Insert(path.elements);
          if (item->is_object()) ToFieldSet(*item, path, out);
          path.elements.pop_back();
        }
        return;
    }
  }

  struct Comparison {
    FieldSet added;
    FieldSet modified;
    FieldSet removed;
  };

  // typed.Compare: leaves are added/removed/modified; maps and list items that
  // appear or disappear are added/removed themselves too.
  void Compare(const json* lhs, const json* rhs, Path& path, Comparison& out) const {
    // A null map or list is an empty one, as Go's nil slices and maps are.
    static const json kEmptyObject = json::object();
    static const json kEmptyArray = json::array();
    if (lhs != nullptr && rhs != nullptr && lhs->is_null() != rhs->is_null()) {
      const json* present = lhs->is_null() ? rhs : lhs;
      const json* empty = present->is_object()  ? &kEmptyObject
                          : present->is_array() ? &kEmptyArray
                                                : nullptr;
      if (empty != nullptr && Classify(*present, path.fields) != NodeKind::kLeaf) {
        (lhs->is_null() ? lhs : rhs) = empty;
      }
    }
    const NodeKind left = lhs != nullptr ? Classify(*lhs, path.fields) : NodeKind::kLeaf;
    const NodeKind right = rhs != nullptr ? Classify(*rhs, path.fields) : NodeKind::kLeaf;
    const bool leaf = (lhs != nullptr && left == NodeKind::kLeaf) ||
                      (rhs != nullptr && right == NodeKind::kLeaf) ||
                      (lhs != nullptr && rhs != nullptr && left != right);
    if (leaf) {
      if (path.elements.empty()) return;
      if (lhs == nullptr) {
        out.added.Insert(path.elements);
      } else if (rhs == nullptr) {
        out.removed.Insert(path.elements);
      } else if (*lhs != *rhs) {
        out.modified.Insert(path.elements);
      }
      return;
    }
    const NodeKind kind = lhs != nullptr ? left : right;
    if (kind == NodeKind::kMap) {
      if (lhs != nullptr) {
        for (const auto& [key, child] : lhs->items()) {
          const json* other = nullptr;
          if (rhs != nullptr) {
            if (auto it = rhs->find(key); it != rhs->end()) other = &*it;
          }
          path.PushField(key);
          Compare(&child, other, path, out);
          path.PopField();
        }
      }
      if (rhs != nullptr) {
        for (const auto& [key, child] : rhs->items()) {
          if (lhs != nullptr && lhs->contains(key)) continue;
          path.PushField(key);
          Compare(nullptr, &child, path, out);
          path.PopField();
        }
      }
    } else {
      std::map<std::string, const json*> right_items;
      if (rhs != nullptr) {
        for (const auto& [element, item] : Items(*rhs, path.fields))
          right_items[element] = item;
      }
      std::set<std::string> seen;
      if (lhs != nullptr) {
        for (const auto& [element, item] : Items(*lhs, path.fields)) {
          seen.insert(element);
          auto it = right_items.find(element);
          path.elements.push_back(element);
          Compare(item, it == right_items.end() ? nullptr : it->second, path, out);
          path.elements.pop_back();
        }
      }
      if (rhs != nullptr) {
        for (const auto& [element, item] : Items(*rhs, path.fields)) {
          if (seen.count(element) > 0) continue;
          path.elements.push_back(element);
          Compare(nullptr, item, path, out);
          path.elements.pop_back();
        }
      }
    }
    if (path.elements.empty()) return;
    if (lhs == nullptr) out.added.Insert(path.elements);
    if (rhs == nullptr) out.removed.Insert(path.elements);
  }

  // typed.Merge: `rhs` (the applied configuration) wins on leaves; maps merge
  // by key, associative lists by item key (live order, then new items).
  json Merge(const json& lhs, const json& rhs, Path& path) const {
    const NodeKind left = Classify(lhs, path.fields);
    const NodeKind right = Classify(rhs, path.fields);
    if (left != right || left == NodeKind::kLeaf) return rhs;
    if (left == NodeKind::kMap) {
      json out = lhs;
      for (const auto& [key, child] : rhs.items()) {
        path.PushField(key);
        auto it = lhs.find(key);
        out[key] = it == lhs.end() ? child : Merge(*it, child, path);
        path.PopField();
      }
      return out;
    }
    std::map<std::string, const json*> right_items;
    for (const auto& [element, item] : Items(rhs, path.fields))
      right_items[element] = item;
    json out = json::array();
    std::set<std::string> seen;
    for (const auto& [element, item] : Items(lhs, path.fields)) {
      seen.insert(element);
      auto it = right_items.find(element);
      if (it == right_items.end()) {
        out.push_back(*item);
        continue;
      }
      path.elements.push_back(element);
      out.push_back(Merge(*item, *it->second, path));
      path.elements.pop_back();
    }
    for (const auto& [element, item] : Items(rhs, path.fields)) {
      if (seen.count(element) == 0) out.push_back(*item);
    }
    return out;
  }

  // typed.RemoveItems: drops every member of `set` from `v`.
  void RemoveItems(json& v, const FieldSet& set, Path& path) const {
    for (const auto& [element, child] : set.children) {
      if (StartsWith(element, "f:")) {
        if (!v.is_object()) continue;
        const std::string name = element.substr(2);
        auto it = v.find(name);
        if (it == v.end()) continue;
        if (child.member) {
          v.erase(it);
          continue;
        }
        path.PushField(name);
        RemoveItems(*it, child, path);
        path.PopField();
        continue;
      }
      if (!v.is_array()) continue;
      const NodeKind kind = Classify(v, path.fields);
      if (kind != NodeKind::kSetList && kind != NodeKind::kMapList) continue;
      const ListInfo info = schema_.List(path.fields);
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string item_element =
            kind == NodeKind::kSetList ? "v:" + v[i].dump() : ItemKey(v[i], info);
        if (item_element != element) continue;
        if (child.member) {
          v.erase(i);
        } else {
          path.elements.push_back(element);
          RemoveItems(v[i], child, path);
          path.elements.pop_back();
        }
        break;
      }
    }
  }

 private:
  static std::string ItemKey(const json& item, const ListInfo& info) {
    json keys = json::object();
    for (const std::string& k : info.keys) {
      if (auto it = item.find(k); it != item.end()) keys[k] = *it;
    }
    return "k:" + keys.dump();
  }

  // Elements of a granular list with their FieldsV1 path element, in order.
  std::vector<std::pair<std::string, const json*>> Items(
      const json& list, const std::vector<std::string>& fields) const {
    std::vector<std::pair<std::string, const json*>> out;
    const ListInfo info = schema_.List(fields);
    for (const json& e : list) {
      out.emplace_back(info.type == ListType::kSet ? "v:" + e.dump() : ItemKey(e, info), &e);
    }
    return out;
  }

  const KindSchema& schema_;
};

// ---------------------------------------------------------------------------
// metadata.managedFields

struct ManagerEntry {
  std::string manager;
  std::string operation;  // "Apply" or "Update"
  std::string api_version;
  std::string time;
  FieldSet set;

  // BuildManagerIdentifier: appliers are one manager across API versions.
  bool SameManager(const ManagerEntry& other) const {
    return manager == other.manager && operation == other.operation &&
           (operation == "Apply" || api_version == other.api_version);
  }
};

std::string StringField(const json& entry, const char* name) {
  auto it = entry.find(name);
  return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json* ManagedFieldsOf(const json& obj) {
  if (!obj.is_object()) return nullptr;
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return nullptr;
  auto managed = meta->find("managedFields");
  return managed == meta->end() ? nullptr : &*managed;
}

// `[{}]` is the documented way for a client to reset managedFields.
bool IsResetManagedFields(const json* managed) {
  return managed != nullptr && managed->is_array() && managed->size() == 1 &&
         (*managed)[0].is_object() && (*managed)[0].empty();
}

std::vector<ManagerEntry> DecodeManagedFields(const json* managed) {
  std::vector<ManagerEntry> out;
  if (managed == nullptr || !managed->is_array()) return out;
  for (const json& raw : *managed) {
    if (!raw.is_object()) continue;
    ManagerEntry entry;
    entry.manager = StringField(raw, "manager");
    entry.operation = StringField(raw, "operation");
    entry.api_version = StringField(raw, "apiVersion");
    entry.time = StringField(raw, "time");
    if (auto fields = raw.find("fieldsV1"); fields != raw.end()) {
      entry.set = FieldSet::FromFieldsV1(*fields);
    }
    if (entry.set.Empty()) continue;
    auto same = std::find_if(out.begin(), out.end(),
                             [&](const ManagerEntry& e) { return e.SameManager(entry); });
    if (same == out.end()) {
      out.push_back(std::move(entry));
    } else {
      same->set.UnionWith(entry.set);
      same->time = std::max(same->time, entry.time);
    }
  }
  return out;
}

// Writes `managers` into obj.metadata.managedFields, sorted like the real
// server (operation, time, manager, apiVersion); removes it when empty.
void EncodeManagedFields(std::vector<ManagerEntry> managers, json& obj) {
  managers.erase(std::remove_if(managers.begin(), managers.end(),
                                [](const ManagerEntry& e) { return e.set.Empty(); }),
                 managers.end());
  std::sort(managers.begin(), managers.end(), [](const ManagerEntry& a, const ManagerEntry& b) {
    return std::tie(a.operation, a.time, a.manager, a.api_version) <
           std::tie(b.operation, b.time, b.manager, b.api_version);
  });
  auto meta_it = obj.find("metadata");
  if (managers.empty()) {
    if (meta_it != obj.end() && meta_it->is_object()) meta_it->erase("managedFields");
    return;
  }
  if (meta_it == obj.end() || meta_it->is_null()) obj["metadata"] = json::object();
  json& meta = obj["metadata"];
  if (!meta.is_object()) return;  // validation reports a malformed metadata
  json list = json::array();
  for (const ManagerEntry& e : managers) {
    json entry = {{"manager", e.manager},
                  {"operation", e.operation},
                  {"apiVersion", e.api_version},
                  {"fieldsType", "FieldsV1"},
                  {"fieldsV1", e.set.ToFieldsV1()}};
    if (!e.time.empty()) entry["time"] = e.time;
    list.push_back(std::move(entry));
  }
  meta["managedFields"] = std::move(list);
}

json WithoutManagedFields(const json& obj) {
  json copy = obj;
  if (copy.is_object()) {
    auto meta = copy.find("metadata");
    if (meta != copy.end() && meta->is_object()) meta->erase("managedFields");
  }
  return copy;
}

std::string KindOf(const json& obj) {
  if (!obj.is_object()) return "";
  return StringField(obj, "kind");
}

// What a decoded-but-empty Go object of `kind` serializes to: the baseline a
// create is compared with, so fields that are non-pointer structs in Go do not
// count as added.
json ZeroObject(std::string_view kind) {
  if (!IsBuiltinKind(kind)) return json::object();
  json zero = {{"metadata", json::object()}};
  if (kind == "ConfigMap" || kind == "Secret" || kind == "Endpoints" || kind == "ServiceAccount") {
    return zero;
  }
  if (kind == "Event") {
    zero["involvedObject"] = json::object();
    zero["source"] = json::object();
    zero["firstTimestamp"] = nullptr;
    zero["lastTimestamp"] = nullptr;
    zero["eventTime"] = nullptr;
    zero["reportingComponent"] = "";
    zero["reportingInstance"] = "";
    return zero;
  }
  zero["spec"] = json::object();
  if (kind == "Lease") return zero;
  if (kind == "Pod") zero["spec"]["containers"] = nullptr;  // not omitempty in Go
  zero["status"] = json::object();
  if (kind == "CustomResourceDefinition") {
    zero["spec"]["names"] = json::object();
    zero["status"] = {{"acceptedNames", {{"kind", ""}, {"plural", ""}}},
                      {"conditions", nullptr},
                      {"storedVersions", nullptr}};
  } else if (PodSpecPath(kind) == "spec.template.spec") {
    zero["spec"]["template"] = {{"metadata", {{"creationTimestamp", nullptr}}},
                                {"spec", {{"containers", nullptr}}}};
  }
  return zero;
}

// conflict.go printManager: Update managers name their version and time.
std::string PrintManager(const ManagerEntry& e) {
  std::string out = json(e.manager).dump();
  if (e.operation == "Update") {
    out += " using " + e.api_version;
    if (!e.time.empty()) out += " at " + e.time;
  }
  return out;
}

kube::Error ConflictError(const std::vector<std::pair<const ManagerEntry*, FieldSet>>& conflicts) {
  struct Conflict {
    std::string manager;
    std::string path;
  };
  std::vector<Conflict> all;
  for (const auto& [entry, set] : conflicts) {
    std::vector<std::vector<std::string>> members;
    std::vector<std::string> prefix;
    set.Members(prefix, members);
    for (const auto& member : members)
      all.push_back({PrintManager(*entry), PathString(member)});
  }
  std::string message;
  if (all.size() == 1) {
    message = "Apply failed with 1 conflict: conflict with " + all[0].manager + ": " + all[0].path;
  } else {
    std::map<std::string, std::vector<std::string>> by_manager;
    for (const Conflict& c : all)
      by_manager[c.manager].push_back(c.path);
    std::string lines;
    for (const auto& [manager, paths] : by_manager) {
      if (!lines.empty()) lines += "\n";
      lines += "conflicts with " + manager + ":";
      for (const std::string& p : paths)
        lines += "\n- " + p;
    }
    message = "Apply failed with " + std::to_string(all.size()) + " conflicts: " + lines;
  }
  kube::Error error(kube::Error::Kind::kApi, 409, "Conflict", message);
  for (const Conflict& c : all) {
    error.mutable_details().causes.push_back(
        {"FieldManagerConflict", "conflict with " + c.manager, c.path});
  }
  return error;
}

// Removes from `last` what someone still owns; a member whose descendants are
// owned is kept and only its unowned descendants are removed.
FieldSet Unowned(const FieldSet& last, const FieldSet& owned) {
  FieldSet out;
  if (last.member && owned.Empty()) {
    out.member = true;
    return out;
  }
  for (const auto& [element, child] : last.children) {
    auto it = owned.children.find(element);
    FieldSet sub = it == owned.children.end() ? child : Unowned(child, it->second);
    if (!sub.Empty()) out.children.emplace(element, std::move(sub));
  }
  return out;
}

// ---------------------------------------------------------------------------
// YAML (sigs.k8s.io/yaml semantics: YAML 1.1 scalars via go-yaml v2) to JSON.

constexpr int kMaxYamlDepth = 1000;
constexpr std::size_t kMaxYamlNodes = 1 << 20;  // bounds alias expansion

json ResolvePlainScalar(const std::string& s) {
  static const std::set<std::string> kNull = {"", "~", "null", "Null", "NULL"};
  static const std::set<std::string> kTrue = {"true", "True", "TRUE", "y",  "Y", "yes",
                                              "Yes",  "YES",  "on",   "On", "ON"};
  static const std::set<std::string> kFalse = {"false", "False", "FALSE", "n",   "N",  "no",
                                               "No",    "NO",    "off",   "Off", "OFF"};
  if (kNull.count(s) > 0) return nullptr;
  if (kTrue.count(s) > 0) return true;
  if (kFalse.count(s) > 0) return false;
  std::string plain;
  for (char c : s) {
    if (c != '_') plain += c;
  }
  const char* begin = plain.c_str();
  char* end = nullptr;
  errno = 0;
  int base = 10;
  std::string digits = plain;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    negative = digits[0] == '-';
    digits = digits.substr(1);
  }
  if (StartsWith(digits, "0x")) {
    base = 16;
  } else if (StartsWith(digits, "0o")) {
    base = 8;
    digits = digits.substr(2);
  } else if (digits.size() > 1 && digits[0] == '0' &&
             digits.find_first_not_of("01234567") == std::string::npos) {
    base = 8;
  }
  if (!digits.empty() && digits.find_first_of(".eE") == std::string::npos) {
    const long long value = std::strtoll(digits.c_str(), &end, base);
    if (end != nullptr && *end == '\0' && errno == 0 && end != digits.c_str()) {
      return negative ? -value : value;
    }
  }
  if (plain == ".inf" || plain == ".Inf" || plain == ".INF" || plain == "+.inf") {
    return s;  // JSON has no infinity; keep the text
  }
  errno = 0;
  const double d = std::strtod(begin, &end);
  const bool numeric = plain.find_first_of("0123456789") != std::string::npos &&
                       plain.find_first_not_of("0123456789+-.eE") == std::string::npos;
  if (numeric && end != nullptr && *end == '\0' && errno == 0) return d;
  return s;
}

std::optional<json> YamlToJson(const YAML::Node& node, int depth, std::size_t& budget,
                               std::string* error) {
  if (depth > kMaxYamlDepth || budget == 0) {
    *error = "document is too deeply nested or too large";
    return std::nullopt;
  }
  --budget;
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return json(node.Scalar());
      return ResolvePlainScalar(node.Scalar());
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : node) {
        std::optional<json> v = YamlToJson(item, depth + 1, budget, error);
        if (!v) return std::nullopt;
        out.push_back(std::move(*v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        std::string key;
        if (kv.first.IsScalar()) {
          key = kv.first.Scalar();
        } else if (kv.first.IsNull()) {
          key = "null";
        } else {
          *error = "map keys must be strings";
          return std::nullopt;
        }
        std::optional<json> v = YamlToJson(kv.second, depth + 1, budget, error);
        if (!v) return std::nullopt;
        out[key] = std::move(*v);
      }
      return out;
    }
  }
  return json(nullptr);
}

// JSON is tried first (it is what most clients send); then YAML.
std::optional<json> ParseYamlOrJson(std::string_view body, std::string* error) {
  const std::size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (body[first] == '{' || body[first] == '[')) {
    std::string ignored;
    if (std::optional<json> parsed = ParseJson(body, &ignored)) return parsed;
  }
  try {
    const YAML::Node root = YAML::Load(std::string(body));
    std::size_t budget = kMaxYamlNodes;
    return YamlToJson(root, 0, budget, error);
  } catch (const YAML::Exception& e) {
    *error = e.what();
  }
  return std::nullopt;
}

kube::Error InvalidPatchOptions(std::string detail) {
  kube::Error error(kube::Error::Kind::kApi, 422, "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: " + detail);
  error.mutable_details().group = "meta.k8s.io";
  error.mutable_details().kind = "PatchOptions";
  error.mutable_details().causes.push_back(
      {detail.rfind("Required", 0) == 0 ? "FieldValueRequired" : "FieldValueTooLong", detail,
       "fieldManager"});
  return error;
}

}  // namespace

kube::Result<json> ApplyServerSide(const json* existing, std::string_view body,
                                   std::string_view field_manager, bool force,
                                   const ApplyContext& ctx) {
  if (field_manager.empty())
    return InvalidPatchOptions("Required value: is required for apply patch");
  if (field_manager.size() > 128) {
    return InvalidPatchOptions("Too long: must have at most 128 bytes");
  }
  std::string parse_error;
  std::optional<json> config = ParseYamlOrJson(body, &parse_error);
  if (!config) return BadRequest("error decoding YAML: " + parse_error);
  if (!config->is_object()) {
    return BadRequest("error decoding YAML: cannot unmarshal " + GoJsonTypeName(*config) +
                      " into an object");
  }
  const std::string patch_version = StringField(*config, "apiVersion");
  if (patch_version != ctx.api_version) {
    return BadRequest("Incorrect version specified in apply patch. Specified patch version: " +
                      patch_version + ", expected: " + ctx.api_version);
  }
  if (const json* managed = ManagedFieldsOf(*config); managed != nullptr && !managed->is_null()) {
    return BadRequest("metadata.managedFields must be nil in an apply patch");
  }
  if (existing != nullptr && !existing->is_object()) {
    return BadRequest("the live object is not a JSON object");
  }
  if (ValueTooDeep(*config) || (existing != nullptr && ValueTooDeep(*existing))) {
    return BadRequest("the object is nested too deeply");
  }
  std::string kind = KindOf(*config);
  if (existing != nullptr) {
    const std::string live_kind = KindOf(*existing);
    if (!kind.empty() && !live_kind.empty() && kind != live_kind) {
      return BadRequest("Incorrect kind specified in apply patch. Specified patch kind: " + kind +
                        ", expected: " + live_kind);
    }
    if (kind.empty()) kind = live_kind;
  }

  try {
    const KindSchema schema(kind);
    const TypedWalker walker(schema);
    const json live = existing != nullptr ? WithoutManagedFields(*existing) : json::object();
    std::vector<ManagerEntry> managers = existing != nullptr
                                             ? DecodeManagedFields(ManagedFieldsOf(*existing))
                                             : std::vector<ManagerEntry>{};
    // An object that predates field tracking: its fields belong to a
    // pseudo-manager, so the first apply cannot silently take them over.
    if (existing != nullptr && managers.empty()) {
      Path path;
      TypedWalker::Comparison baseline;
      const json zero = ZeroObject(kind);
      walker.Compare(&zero, &live, path, baseline);
      ManagerEntry before{"before-first-apply", "Update", ctx.api_version, ctx.time,
                          baseline.added.Difference(StripSet())};
      if (!before.set.Empty()) managers.push_back(std::move(before));
    }

    ManagerEntry applier{std::string(field_manager), "Apply", ctx.api_version, ctx.time, {}};
    Path path;
    walker.ToFieldSet(*config, path, applier.set);
    applier.set = applier.set.Difference(StripSet());

    FieldSet last_applied;
    FieldSet owned = applier.set;
    for (auto it = managers.begin(); it != managers.end();) {
      if (it->SameManager(applier)) {
        last_applied = it->set;
        it = managers.erase(it);
      } else {
        owned.UnionWith(it->set);
        ++it;
      }
    }

    json merged = walker.Merge(live, *config, path);
    // Fields this manager applied before but no longer does, and nobody else
    // owns, are removed from the object.
    walker.RemoveItems(merged, Unowned(last_applied, owned), path);

    TypedWalker::Comparison compare;
    walker.Compare(&live, &merged, path, compare);
    FieldSet changed = compare.modified;
    changed.UnionWith(compare.added);
    std::vector<std::pair<const ManagerEntry*, FieldSet>> conflicts;
    for (const ManagerEntry& other : managers) {
      FieldSet conflict = other.set.Intersection(changed);
      if (!conflict.Empty()) conflicts.emplace_back(&other, std::move(conflict));
    }
    if (!conflicts.empty() && !force) {
      std::sort(conflicts.begin(), conflicts.end(), [](const auto& a, const auto& b) {
        return std::tie(a.first->manager, a.first->operation) <
               std::tie(b.first->manager, b.first->operation);
      });
      return ConflictError(conflicts);
    }
    for (ManagerEntry& other : managers) {
      other.set = other.set.Difference(changed).Difference(compare.removed);
    }
    managers.push_back(std::move(applier));
    EncodeManagedFields(std::move(managers), merged);
    return merged;
  } catch (const json::exception& e) {
    return BadRequest(std::string("invalid apply patch: ") + e.what());
  }
}

void UpdateManagedFields(const json* old, json& updated, std::string_view manager,
                         const ApplyContext& ctx) {
  if (!updated.is_object() || ValueTooDeep(updated) || (old != nullptr && ValueTooDeep(*old))) {
    return;
  }
  try {
    const std::string name = manager.empty() ? std::string("unknown") : std::string(manager);
    const json* supplied = ManagedFieldsOf(updated);
    std::vector<ManagerEntry> managers;
    if (!IsResetManagedFields(supplied)) {
      managers = DecodeManagedFields(supplied);
      // Clients that do not know about managedFields must not wipe them.
      if (managers.empty() && old != nullptr) managers = DecodeManagedFields(ManagedFieldsOf(*old));
    }
    const std::string kind = KindOf(updated);
    const KindSchema schema(kind);
    const TypedWalker walker(schema);
    const json before = old != nullptr ? WithoutManagedFields(*old) : ZeroObject(kind);
    const json after = WithoutManagedFields(updated);
    Path path;
    TypedWalker::Comparison compare;
    walker.Compare(&before, &after, path, compare);

    FieldSet changed = compare.modified;
    changed.UnionWith(compare.added);
    for (ManagerEntry& entry : managers) {
      entry.set = entry.set.Difference(changed).Difference(compare.removed);
    }
    const FieldSet current = changed.Difference(compare.removed).Difference(StripSet());
    if (!current.Empty()) {
      ManagerEntry entry{name, "Update", ctx.api_version, ctx.time, current};
      auto same = std::find_if(managers.begin(), managers.end(),
                               [&](const ManagerEntry& e) { return e.SameManager(entry); });
      if (same == managers.end()) {
        managers.push_back(std::move(entry));
      } else {
        same->set.UnionWith(current);
        same->time = ctx.time;
      }
    }
    EncodeManagedFields(std::move(managers), updated);
  } catch (const json::exception&) {
    // Bookkeeping never fails a write (the real server logs and moves on).
  }
}

std::string FieldManagerFromUserAgent(std::string_view user_agent) {
  const std::string_view prefix = user_agent.substr(0, user_agent.find('/'));
  std::string out;
  for (char c : prefix) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) continue;  // not printable
    if (out.size() >= 128) break;
    out += c;
  }
  return out.empty() ? "unknown" : out;
}

}  // namespace gpu_autoscaler::apiserver
