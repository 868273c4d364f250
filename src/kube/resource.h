// File: src/kube/resource.h
//
// Names of API resources and objects, and the URL paths they map to.
//
//   const GroupVersionResource kPods{"", "v1", "pods"};
//   ObjectRef ref{kPods, "default", "web-1"};
//   ResourcePath(ref)                 -> "/api/v1/namespaces/default/pods/web-1"
//   ResourcePath(ref.WithSub("status")) -> ".../pods/web-1/status"
//
// Thread-safety: value types and pure functions.
#pragma once

#include <string>
#include <string_view>

namespace gpu_autoscaler::kube {

struct GroupVersion {
  std::string group{};  // "" for the core group
  std::string version{};
  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  friend bool operator==(const GroupVersion&, const GroupVersion&) = default;
};

struct GroupVersionResource {
  std::string group{};
  std::string version{};
  std::string resource{};  // plural, lower case: "pods", "leases"
  bool namespaced = true;

  GroupVersion gv() const { return {group, version}; }
  std::string ApiVersion() const { return gv().ApiVersion(); }
  std::string ToString() const;  // "pods.v1", "leases.v1.coordination.k8s.io"
  friend bool operator==(const GroupVersionResource& a, const GroupVersionResource& b) {
    return a.group == b.group && a.version == b.version && a.resource == b.resource;
  }
};

struct GroupVersionKind {
  std::string group{};
  std::string version{};
  std::string kind{};
  friend bool operator==(const GroupVersionKind&, const GroupVersionKind&) = default;
};

// Well-known resources used across the project.
namespace resources {
extern const GroupVersionResource kPods;
extern const GroupVersionResource kNodes;
extern const GroupVersionResource kNamespaces;
extern const GroupVersionResource kEvents;
extern const GroupVersionResource kConfigMaps;
extern const GroupVersionResource kSecrets;
extern const GroupVersionResource kLeases;
extern const GroupVersionResource kPodDisruptionBudgets;
extern const GroupVersionResource kPriorityClasses;
extern const GroupVersionResource kDeployments;
extern const GroupVersionResource kCustomResourceDefinitions;
}  // namespace resources

// One object (name set) or a collection (name empty), optionally a subresource.
struct ObjectRef {
  GroupVersionResource gvr;
  std::string ns{};           // empty: cluster scope, or all namespaces for a list
  std::string name{};         // empty: the collection
  std::string subresource{};  // "status", "scale", "eviction", "binding"

  ObjectRef WithSub(std::string sub) const {
    ObjectRef r = *this;
    r.subresource = std::move(sub);
    return r;
  }
  std::string Key() const { return ns.empty() ? name : ns + "/" + name; }
};

// "/api/v1/namespaces/ns/pods/name/status" (no query string).
std::string ResourcePath(const ObjectRef& ref);

// Splits a "namespace/name" key; a key without '/' is a cluster-scoped name.
void SplitKey(std::string_view key, std::string_view* ns, std::string_view* name);

// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
std::string UrlEncode(std::string_view value);

}  // namespace gpu_autoscaler::kube
