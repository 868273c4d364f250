// File: src/apiserver/patch_internal.h
//
// What the patch translation units share: kube-apiserver-shaped errors, the
// nesting and size bounds, JSON/YAML body parsing, and the list semantics of
// built-in kinds (strategic merge keys, server-side apply list-map keys).
// patch_common.cc defines them; json_patch.cc (RFC 6902 and RFC 7386),
// strategic_merge_patch.cc and server_side_apply.cc (field sets,
// managedFields, apply) use them. Not part of the interface: include patch.h.
//
// Thread-safety: pure functions and immutable data.
#pragma once

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

#include "apiserver/patch.h"

namespace gpu_autoscaler::apiserver::patch_internal {

using json = nlohmann::json;

// Errors, shaped like the ones kube-apiserver v1.20 returns.
kube::Error BadRequest(std::string message);
// errors.NewGenericServerResponse(422, ...): the real server drops the
// underlying message and renders `"details": {}`.
kube::Error GenericInvalid();
kube::Error GenericUnprocessable(std::string message);
// Approximates Go's encoding/json syntax error text for a parse failure at
// byte `position` of `text`.
std::string GoJsonSyntaxMessage(std::string_view text, std::size_t position);

// Nesting limit for patches and the objects they apply to; upper bound on the
// JSON values that the copy operations of one JSON patch may create.
inline constexpr int kMaxDepth = 1000;
inline constexpr std::size_t kMaxCopiedNodes = std::size_t{1} << 20;
bool TextTooDeep(std::string_view text);
bool ValueTooDeep(const json& root);
std::size_t NodeCount(const json& root);

// Parses JSON without throwing; on failure fills `message` with Go's wording.
std::optional<json> ParseJson(std::string_view text, std::string* message);
// Go's `%T`-ish name of a JSON value, for "cannot unmarshal X into ..." messages.
std::string GoJsonTypeName(const json& v);
// A server-side apply body: JSON first (what most clients send), then YAML with
// sigs.k8s.io/yaml semantics (YAML 1.1 scalars via go-yaml v2), bounded in
// depth and alias expansion.
std::optional<json> ParseYamlOrJson(std::string_view body, std::string* error);
bool StartsWith(std::string_view s, std::string_view prefix);

// Schema knowledge about built-in kinds: which lists merge by key (strategic
// merge patch `patchMergeKey`, server-side apply `listMapKeys`), which are sets,
// and which structs are atomic. Everything else: lists are atomic, maps merge.
enum class ListType { kAtomic, kSet, kMap };

struct ListInfo {
  ListType type = ListType::kAtomic;
  std::string smp_key;            // strategic merge key; "" with kSet merges primitives
  std::vector<std::string> keys;  // server-side apply list-map keys
};

bool IsBuiltinKind(std::string_view kind);
// Path of the PodSpec inside objects of `kind`, "" when it has none.
std::string_view PodSpecPath(std::string_view kind);
std::string JoinPath(const std::vector<std::string>& fields);

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

}  // namespace gpu_autoscaler::apiserver::patch_internal
