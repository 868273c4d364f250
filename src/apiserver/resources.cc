#include "apiserver/resources.h"

#include <algorithm>
#include <mutex>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

const std::vector<std::string> kAllVerbs = {"create", "delete", "deletecollection", "get",
                                            "list",   "patch",  "update",           "watch"};
// Namespaces and services cannot be deleted as a collection.
const std::vector<std::string> kNoCollectionDelete = {"create", "delete", "get",  "list",
                                                      "patch",  "update", "watch"};
// The order apiextensions-apiserver lists custom resource verbs in.
const std::vector<std::string> kCustomVerbs = {"delete", "deletecollection", "get",    "list",
                                               "patch",  "create",           "update", "watch"};

const std::vector<std::string> kPodFields = {
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",      "spec.serviceAccountName",
    "status.phase",  "status.podIP",       "status.nominatedNodeName"};
const std::vector<std::string> kEventFields = {"involvedObject.kind",
                                               "involvedObject.namespace",
                                               "involvedObject.name",
                                               "involvedObject.uid",
                                               "involvedObject.apiVersion",
                                               "involvedObject.resourceVersion",
                                               "involvedObject.fieldPath",
                                               "reason",
                                               "reportingComponent",
                                               "source",
                                               "type"};

struct BuiltIn {
  const char* group;
  const char* version;
  const char* resource;
  const char* kind;
  bool namespaced;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  std::vector<std::string> subresources;
  const char* storage_version;  // version whose GVK hashes into storageVersionHash
  bool tracks_generation = false;
  bool allow_create_on_update = false;
  bool return_deleted_object = false;
  bool no_collection_delete = false;
  std::vector<std::string> selectable_fields = {};
};

std::vector<BuiltIn> BuiltIns() {
  return {
      // core/v1, as kube-apiserver v1.20 lists it.
      {"", "v1", "bindings", "Binding", true, {}, {}, {}, nullptr},
      {"", "v1", "configmaps", "ConfigMap", true, {"cm"}, {}, {}, "v1"},
      {"", "v1", "endpoints", "Endpoints", true, {"ep"}, {}, {}, "v1", false, true},
      {"",
       "v1",
       "events",
       "Event",
       true,
       {"ev"},
       {},
       {},
       "v1",
       false,
       true,
       false,
       false,
       kEventFields},
      {"", "v1", "limitranges", "LimitRange", true, {"limits"}, {}, {}, "v1"},
      {"",
       "v1",
       "namespaces",
       "Namespace",
       false,
       {"ns"},
       {},
       {"finalize", "status"},
       "v1",
       false,
       false,
       true,
       true,
       {"status.phase"}},
      {"",
       "v1",
       "nodes",
       "Node",
       false,
       {"no"},
       {},
       {"status"},
       "v1",
       false,
       false,
       false,
       false,
       {"spec.unschedulable"}},
      {"",
       "v1",
       "persistentvolumeclaims",
       "PersistentVolumeClaim",
       true,
       {"pvc"},
       {},
       {"status"},
       "v1"},
      {"", "v1", "persistentvolumes", "PersistentVolume", false, {"pv"}, {}, {"status"}, "v1"},
      {"",
       "v1",
       "pods",
       "Pod",
       true,
       {"po"},
       {"all"},
       {"binding", "eviction", "status"},
       "v1",
       false,
       false,
       true,
       false,
       kPodFields},
      {"", "v1", "podtemplates", "PodTemplate", true, {}, {}, {}, "v1"},
      {"",
       "v1",
       "replicationcontrollers",
       "ReplicationController",
       true,
       {"rc"},
       {"all"},
       {"status"},
       "v1",
       true,
       false,
       false,
       false,
       {"status.replicas"}},
      {"", "v1", "resourcequotas", "ResourceQuota", true, {"quota"}, {}, {"status"}, "v1"},
      {"", "v1", "secrets", "Secret", true, {}, {}, {}, "v1", false, false, false, false, {"type"}},
      {"", "v1", "serviceaccounts", "ServiceAccount", true, {"sa"}, {}, {}, "v1"},
      {"",
       "v1",
       "services",
       "Service",
       true,
       {"svc"},
       {"all"},
       {"status"},
       "v1",
       false,
       true,
       false,
       true},
      // apps/v1
      {"apps", "v1", "daemonsets", "DaemonSet", true, {"ds"}, {"all"}, {"status"}, "v1", true},
      {"apps",
       "v1",
       "deployments",
       "Deployment",
       true,
       {"deploy"},
       {"all"},
       {"scale", "status"},
       "v1",
       true},
      {"apps",
       "v1",
       "replicasets",
       "ReplicaSet",
       true,
       {"rs"},
       {"all"},
       {"scale", "status"},
       "v1",
       true,
       false,
       false,
       false,
       {"status.replicas"}},
      {"apps",
       "v1",
       "statefulsets",
       "StatefulSet",
       true,
       {"sts"},
       {"all"},
       {"scale", "status"},
       "v1",
       true},
      // batch/v1, as kube-apiserver v1.20 lists it (no short name; status only).
      {"batch",
       "v1",
       "jobs",
       "Job",
       true,
       {},
       {"all"},
       {"status"},
       "v1",
       true,
       false,
       false,
       false,
       {"status.successful"}},
      // policy: v1 (preferred; Kubernetes 1.21+ only, see the constructor) and
      // v1beta1 share storage.
      {"policy",
       "v1",
       "poddisruptionbudgets",
       "PodDisruptionBudget",
       true,
       {"pdb"},
       {},
       {"status"},
       "v1beta1",
       true},
      {"policy",
       "v1beta1",
       "poddisruptionbudgets",
       "PodDisruptionBudget",
       true,
       {"pdb"},
       {},
       {"status"},
       "v1beta1",
       true},
      {"admissionregistration.k8s.io",
       "v1",
       "mutatingwebhookconfigurations",
       "MutatingWebhookConfiguration",
       false,
       {},
       {"api-extensions"},
       {},
       "v1",
       true},
      {"admissionregistration.k8s.io",
       "v1",
       "validatingwebhookconfigurations",
       "ValidatingWebhookConfiguration",
       false,
       {},
       {"api-extensions"},
       {},
       "v1",
       true},
      {"apiextensions.k8s.io",
       "v1",
       "customresourcedefinitions",
       "CustomResourceDefinition",
       false,
       {"crd", "crds"},
       {"api-extensions"},
       {"status"},
       "v1",
       true},
      // scheduling.k8s.io: v1 (preferred) and the deprecated v1beta1 (served
      // until Kubernetes 1.22, see the constructor) share storage.
      {"scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", false, {"pc"}, {}, {}, "v1"},
      {"scheduling.k8s.io",
       "v1beta1",
       "priorityclasses",
       "PriorityClass",
       false,
       {"pc"},
       {},
       {},
       "v1"},
      {"coordination.k8s.io", "v1", "leases", "Lease", true, {}, {}, {}, "v1beta1", false, true},
      // RBAC objects are stored (the SubjectAccessReview answers read them);
      // requests themselves are not authorised by them.
      {"rbac.authorization.k8s.io",
       "v1",
       "clusterrolebindings",
       "ClusterRoleBinding",
       false,
       {},
       {},
       {},
       "v1"},
      {"rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, {}, {}, {}, "v1"},
      {"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, {}, {}, {}, "v1"},
      {"rbac.authorization.k8s.io", "v1", "roles", "Role", true, {}, {}, {}, "v1"},
      // Create-only reviews, answered from the token file and the RBAC objects.
      {"authentication.k8s.io", "v1", "tokenreviews", "TokenReview", false, {}, {}, {}, nullptr},
      {"authorization.k8s.io",
       "v1",
       "subjectaccessreviews",
       "SubjectAccessReview",
       false,
       {},
       {},
       {},
       nullptr},
  };
}

std::string GvrKey(std::string_view group, std::string_view version, std::string_view resource) {
  std::string key;
  key.reserve(group.size() + version.size() + resource.size() + 2);
  key.append(group).append("/").append(version).append("/").append(resource);
  return key;
}

json StringArray(const std::vector<std::string>& values) {
  json out = json::array();
  for (const auto& v : values)
    out.push_back(v);
  return out;
}

json SubresourceEntry(const ResourceInfo& info, const std::string& sub, int emulated_minor) {
  json e = {
      {"name", info.resource + "/" + sub}, {"singularName", ""}, {"namespaced", info.namespaced}};
  if (sub == "status") {
    e["kind"] = info.kind;
    e["verbs"] = {"get", "patch", "update"};
  } else if (sub == "scale") {
    e["group"] = "autoscaling";
    e["version"] = "v1";
    e["kind"] = "Scale";
    e["verbs"] = {"get", "patch", "update"};
  } else if (sub == "eviction") {
    e["group"] = "policy";
    e["version"] = emulated_minor >= 22 ? "v1" : "v1beta1";  // policy/v1 Eviction: 1.22
    e["kind"] = "Eviction";
    e["verbs"] = {"create"};
  } else if (sub == "binding") {
    e["kind"] = "Binding";
    e["verbs"] = {"create"};
  } else if (sub == "finalize") {
    e["kind"] = info.kind;
    e["verbs"] = {"update"};
  }
  return e;
}

json ResourceEntry(const ResourceInfo& info) {
  json e = {{"name", info.resource},
            {"singularName", info.singular},
            {"namespaced", info.namespaced},
            {"kind", info.kind},
            {"verbs", StringArray(info.verbs)}};
  if (!info.short_names.empty()) e["shortNames"] = StringArray(info.short_names);
  if (!info.categories.empty()) e["categories"] = StringArray(info.categories);
  if (!info.storage_version_hash.empty()) e["storageVersionHash"] = info.storage_version_hash;
  return e;
}

std::vector<std::string> JsonStrings(const json& value) {
  std::vector<std::string> out;
  if (!value.is_array()) return out;
  for (const auto& v : value) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

bool ResourceInfo::HasSubresource(std::string_view sub) const {
  return std::find(subresources.begin(), subresources.end(), sub) != subresources.end();
}

std::string StorageVersionHash(std::string_view group, std::string_view version,
                               std::string_view kind) {
  std::string gvk;
  gvk.append(group).append("/").append(version).append("/").append(kind);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(gvk.data()), gvk.size(), digest);
  unsigned char encoded[16];
  int n = EVP_EncodeBlock(encoded, digest, 8);
  return std::string(reinterpret_cast<char*>(encoded), static_cast<size_t>(n));
}

ResourceRegistry::ResourceRegistry(int emulated_minor) : emulated_minor_(emulated_minor) {
  std::unique_lock lock(mu_);
  for (const BuiltIn& b : BuiltIns()) {
    // policy/v1 PodDisruptionBudget arrived in Kubernetes 1.21.
    if (std::string_view(b.group) == "policy" && std::string_view(b.version) == "v1" &&
        emulated_minor_ < 21) {
      continue;
    }
    // scheduling.k8s.io/v1beta1 PriorityClass was removed in Kubernetes 1.22.
    if (std::string_view(b.group) == "scheduling.k8s.io" &&
        std::string_view(b.version) == "v1beta1" && emulated_minor_ >= 22) {
      continue;
    }
    auto info = std::make_shared<ResourceInfo>();
    info->group = b.group;
    info->version = b.version;
    info->resource = b.resource;
    info->kind = b.kind;
    info->list_kind = std::string(b.kind) + "List";
    info->namespaced = b.namespaced;
    info->short_names = b.short_names;
    info->categories = b.categories;
    info->subresources = b.subresources;
    if (b.storage_version == nullptr) {
      info->verbs = {"create"};
    } else {
      info->verbs = b.no_collection_delete ? kNoCollectionDelete : kAllVerbs;
      info->storage_version_hash = StorageVersionHash(b.group, b.storage_version, b.kind);
    }
    info->tracks_generation = b.tracks_generation;
    info->allow_create_on_update = b.allow_create_on_update;
    info->return_deleted_object = b.return_deleted_object;
    info->selectable_fields = b.selectable_fields;
    AddLocked(std::move(info));
  }
}

void ResourceRegistry::AddLocked(std::shared_ptr<const ResourceInfo> info) {
  auto& entry = groups_[info->group];
  if (std::find(group_order_.begin(), group_order_.end(), info->group) == group_order_.end()) {
    group_order_.push_back(info->group);
  }
  if (std::find(entry.versions.begin(), entry.versions.end(), info->version) ==
      entry.versions.end()) {
    entry.versions.push_back(info->version);
  }
  by_gvr_[GvrKey(info->group, info->version, info->resource)] = std::move(info);
}

std::shared_ptr<const ResourceInfo> ResourceRegistry::Find(std::string_view group,
                                                           std::string_view version,
                                                           std::string_view resource) const {
  std::shared_lock lock(mu_);
  auto it = by_gvr_.find(GvrKey(group, version, resource));
  return it == by_gvr_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const ResourceInfo>> ResourceRegistry::FindAllVersions(
    std::string_view group, std::string_view resource) const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<const ResourceInfo>> out;
  for (const auto& [key, info] : by_gvr_) {
    if (info->group == group && info->resource == resource) out.push_back(info);
  }
  return out;
}

bool ResourceRegistry::HasGroupVersion(std::string_view group, std::string_view version) const {
  std::shared_lock lock(mu_);
  auto it = groups_.find(std::string(group));
  if (it == groups_.end()) return false;
  const auto& v = it->second.versions;
  return std::find(v.begin(), v.end(), version) != v.end();
}

Result<std::string> ResourceRegistry::RegisterCrd(const json& crd) {
  try {
    const json& spec = crd.at("spec");
    std::string name = crd.at("metadata").at("name").get<std::string>();
    std::string group = spec.at("group").get<std::string>();
    const json& names = spec.at("names");
    std::string plural = names.at("plural").get<std::string>();
    std::string kind = names.at("kind").get<std::string>();
    std::string singular = names.value("singular", "");
    if (singular.empty()) {
      singular = kind;
      std::transform(singular.begin(), singular.end(), singular.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
    std::string list_kind = names.value("listKind", kind + "List");
    bool namespaced = spec.value("scope", "Namespaced") != "Cluster";
    std::string storage_version;
    std::vector<std::shared_ptr<const ResourceInfo>> infos;
    for (const json& v : spec.at("versions")) {
      if (!v.value("served", true)) continue;
      auto info = std::make_shared<ResourceInfo>();
      info->group = group;
      info->version = v.at("name").get<std::string>();
      if (v.value("storage", false)) storage_version = info->version;
      info->resource = plural;
      info->kind = kind;
      info->list_kind = list_kind;
      info->singular = singular;
      info->namespaced = namespaced;
      info->verbs = kCustomVerbs;
      if (names.contains("shortNames")) info->short_names = JsonStrings(names["shortNames"]);
      if (names.contains("categories")) info->categories = JsonStrings(names["categories"]);
      info->custom = true;
      info->tracks_generation = true;
      if (v.contains("subresources") && v["subresources"].is_object()) {
        const json& subs = v["subresources"];
        if (subs.contains("status")) info->subresources.push_back("status");
        if (subs.contains("scale") && subs["scale"].is_object()) {
          info->subresources.push_back("scale");
          info->scale_spec_path = subs["scale"].value("specReplicasPath", "");
          info->scale_status_path = subs["scale"].value("statusReplicasPath", "");
          info->scale_selector_path = subs["scale"].value("labelSelectorPath", "");
        }
      }
      if (v.contains("schema") && v["schema"].contains("openAPIV3Schema")) {
        info->schema_json = v["schema"]["openAPIV3Schema"].dump();
      }
      infos.push_back(std::move(info));
    }
    if (infos.empty()) return InvalidArgumentError("CRD " + name + " serves no version");
    if (storage_version.empty()) storage_version = infos.front()->version;
    std::string hash = StorageVersionHash(group, storage_version, kind);
    std::unique_lock lock(mu_);
    auto old = crd_keys_.find(name);
    if (old != crd_keys_.end()) {
      for (const auto& key : old->second)
        by_gvr_.erase(key);
    }
    std::vector<std::string> keys;
    for (auto& info : infos) {
      std::const_pointer_cast<ResourceInfo>(info)->storage_version_hash = hash;
      keys.push_back(GvrKey(group, info->version, plural));
      AddLocked(info);
    }
    crd_keys_[name] = std::move(keys);
    return group + "/" + plural;
  } catch (const json::exception& e) {
    return InvalidArgumentError(std::string("malformed CustomResourceDefinition: ") + e.what());
  }
}

void ResourceRegistry::UnregisterCrd(std::string_view crd_name) {
  std::unique_lock lock(mu_);
  auto it = crd_keys_.find(crd_name);
  if (it == crd_keys_.end()) return;
  for (const auto& key : it->second)
    by_gvr_.erase(key);
  crd_keys_.erase(it);
  // Drop group versions that no longer serve anything.
  for (auto g = groups_.begin(); g != groups_.end();) {
    auto& versions = g->second.versions;
    versions.erase(std::remove_if(versions.begin(), versions.end(),
                                  [&](const std::string& v) {
                                    std::string prefix = g->first + "/" + v + "/";
                                    auto next = by_gvr_.lower_bound(prefix);
                                    return next == by_gvr_.end() ||
                                           next->first.compare(0, prefix.size(), prefix) != 0;
                                  }),
                   versions.end());
    if (versions.empty()) {
      group_order_.erase(std::remove(group_order_.begin(), group_order_.end(), g->first),
                         group_order_.end());
      g = groups_.erase(g);
    } else {
      ++g;
    }
  }
}

std::string ResourceRegistry::ApiVersionsJson(std::string_view server_address) const {
  json out = {{"kind", "APIVersions"},
              {"versions", {"v1"}},
              {"serverAddressByClientCIDRs",
               {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", std::string(server_address)}}}}};
  return out.dump();
}

namespace {
json GroupJsonLocked(const std::string& name, const std::vector<std::string>& versions) {
  json group = {{"name", name}, {"versions", json::array()}};
  for (const auto& v : versions) {
    group["versions"].push_back({{"groupVersion", name + "/" + v}, {"version", v}});
  }
  group["preferredVersion"] = {{"groupVersion", name + "/" + versions.front()},
                               {"version", versions.front()}};
  return group;
}
}  // namespace

std::string ResourceRegistry::GroupListJson() const {
  std::shared_lock lock(mu_);
  json out = {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", json::array()}};
  for (const auto& name : group_order_) {
    if (name.empty()) continue;  // the core group is under /api
    out["groups"].push_back(GroupJsonLocked(name, groups_.at(name).versions));
  }
  return out.dump();
}

std::optional<std::string> ResourceRegistry::GroupJson(std::string_view group) const {
  std::shared_lock lock(mu_);
  auto it = groups_.find(std::string(group));
  if (group.empty() || it == groups_.end()) return std::nullopt;
  json out = GroupJsonLocked(it->first, it->second.versions);
  out["kind"] = "APIGroup";
  out["apiVersion"] = "v1";
  return out.dump();
}

std::optional<std::string> ResourceRegistry::ResourceListJson(std::string_view group,
                                                              std::string_view version) const {
  std::shared_lock lock(mu_);
  std::string prefix = std::string(group) + "/" + std::string(version) + "/";
  json resources = json::array();
  for (auto it = by_gvr_.lower_bound(prefix);
       it != by_gvr_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const ResourceInfo& info = *it->second;
    resources.push_back(ResourceEntry(info));
    std::vector<std::string> subs = info.subresources;
    std::sort(subs.begin(), subs.end());
    for (const auto& sub : subs)
      resources.push_back(SubresourceEntry(info, sub, emulated_minor_));
  }
  if (resources.empty()) return std::nullopt;
  json out = {{"kind", "APIResourceList"},
              {"groupVersion", group.empty() ? std::string(version)
                                             : std::string(group) + "/" + std::string(version)},
              {"resources", std::move(resources)}};
  if (!group.empty()) out["apiVersion"] = "v1";
  return out.dump();
}

}  // namespace gpu_autoscaler::apiserver
