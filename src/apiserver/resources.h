// File: src/apiserver/resources.h
//
// The resource types the embedded API server serves: the built-in ones
// (core/v1, apps/v1, batch/v1 Jobs, coordination.k8s.io/v1, policy, apiextensions.k8s.io/v1,
// admissionregistration.k8s.io/v1) and custom resources registered from
// CustomResourceDefinitions. Also renders the discovery documents
// (/api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>) the way kube-apiserver does.
//
//   ResourceRegistry registry;                       // built-ins of v1.20 registered
//   auto pods = registry.Find("", "v1", "pods");      // shared_ptr or null
//   registry.RegisterCrd(crd_json);                   // its versions become servable
//   std::string body = registry.ResourceListJson("", "v1");
//
// Thread-safety: all methods are thread-safe; returned ResourceInfo values are
// immutable and stay valid after the CRD that produced them is removed.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace gpu_autoscaler::apiserver {

struct ResourceInfo {
  std::string group;     // "" for core
  std::string version;   // "v1"
  std::string resource;  // plural: "pods"
  std::string kind;      // "Pod"
  std::string list_kind;
  std::string singular;  // "" for built-ins (as the real discovery shows)
  bool namespaced = true;
  std::vector<std::string> verbs;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  std::string storage_version_hash;
  // Subresources served: "status", "scale", "eviction", "binding", "finalize".
  std::vector<std::string> subresources;
  bool custom = false;             // a custom resource (from a CRD)
  bool tracks_generation = false;  // metadata.generation bumps on spec changes
  bool allow_create_on_update = false;
  bool return_deleted_object = false;  // DELETE answers with the object, not a Status
  // Field selectors beyond metadata.name / metadata.namespace.
  std::vector<std::string> selectable_fields;
  // For custom resources: the version's schema.openAPIV3Schema (JSON text), or "".
  std::string schema_json;
  // For CRD scale subresources: JSON paths such as ".spec.replicas".
  std::string scale_spec_path, scale_status_path, scale_selector_path;

  // Key for storage, shared by all versions of one resource: "group/resource".
  std::string StorageKey() const { return group + "/" + resource; }
  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "pods" or "leases.coordination.k8s.io", as used in error messages.
  std::string GroupResource() const { return group.empty() ? resource : resource + "." + group; }
  bool HasSubresource(std::string_view sub) const;
};

// base64(sha256("group/version/kind")[:8]), as discovery's storageVersionHash.
std::string StorageVersionHash(std::string_view group, std::string_view version,
                               std::string_view kind);

class ResourceRegistry {
 public:
  // The built-ins Kubernetes 1.<emulated_minor> serves (ApiServerOptions).
  explicit ResourceRegistry(int emulated_minor = 20);
  int emulated_minor() const { return emulated_minor_; }

  std::shared_ptr<const ResourceInfo> Find(std::string_view group, std::string_view version,
                                           std::string_view resource) const;
  // Every registered version of a group/resource (CRDs may serve several).
  std::vector<std::shared_ptr<const ResourceInfo>> FindAllVersions(std::string_view group,
                                                                   std::string_view resource) const;
  bool HasGroupVersion(std::string_view group, std::string_view version) const;

  // Registers (or re-registers) the served versions of a CRD object; an error
  // names what is malformed. Returns the storage key of its resource.
  Result<std::string> RegisterCrd(const nlohmann::json& crd);
  void UnregisterCrd(std::string_view crd_name);

  // Discovery documents.
  std::string ApiVersionsJson(std::string_view server_address) const;  // /api
  std::string GroupListJson() const;                                   // /apis
  std::optional<std::string> GroupJson(std::string_view group) const;  // /apis/<g>
  std::optional<std::string> ResourceListJson(std::string_view group,
                                              std::string_view version) const;

 private:
  struct GroupEntry {
    std::vector<std::string> versions;  // in preference order
  };
  void AddLocked(std::shared_ptr<const ResourceInfo> info);

  const int emulated_minor_;
  mutable std::shared_mutex mu_;
  // "group/version/resource" -> info
  std::map<std::string, std::shared_ptr<const ResourceInfo>> by_gvr_;
  std::vector<std::string> group_order_;  // registration order, as /apis lists them
  std::map<std::string, GroupEntry> groups_;
  // CRD name -> the "group/version/resource" keys it registered.
  std::map<std::string, std::vector<std::string>, std::less<>> crd_keys_;
};

}  // namespace gpu_autoscaler::apiserver
