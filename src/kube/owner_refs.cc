#include "kube/owner_refs.h"

#include <nlohmann/json.hpp>

#include "common/json_read.h"

namespace gpu_autoscaler::kube {

using json = nlohmann::json;

namespace {

std::string_view Group(std::string_view api_version) {
  const auto slash = api_version.find('/');
  return slash == std::string_view::npos ? std::string_view() : api_version.substr(0, slash);
}

bool SameOwner(const OwnerRef& a, const OwnerRef& b) {
  if (!a.uid.empty() && !b.uid.empty()) return a.uid == b.uid;
  return Group(a.api_version) == Group(b.api_version) && a.kind == b.kind && a.name == b.name;
}

std::optional<OwnerRef> ParseRef(const json& r) {
  if (!r.is_object()) return std::nullopt;
  OwnerRef ref{json_read::String(r, "apiVersion"), json_read::String(r, "kind"),
               json_read::String(r, "name"),       json_read::String(r, "uid"),
               json_read::Bool(r, "controller"),   json_read::Bool(r, "blockOwnerDeletion")};
  if (ref.kind.empty() || ref.name.empty()) return std::nullopt;
  return ref;
}

Status Upsert(json* obj, const OwnerRef& ref) {
  if (!obj->is_object()) return InvalidArgumentError("owned object is not a JSON object");
  json& meta = (*obj)["metadata"];
  if (meta.is_null()) meta = json::object();
  if (!meta.is_object()) return InvalidArgumentError("metadata is not an object");
  json& refs = meta["ownerReferences"];
  if (refs.is_null()) refs = json::array();
  if (!refs.is_array()) return InvalidArgumentError("metadata.ownerReferences is not an array");
  for (json& existing : refs) {
    auto parsed = ParseRef(existing);
    if (parsed && SameOwner(*parsed, ref)) {
      existing = OwnerRefToJson(ref);
      return Status::Ok();
    }
  }
  refs.push_back(OwnerRefToJson(ref));
  return Status::Ok();
}

}  // namespace

gpu_autoscaler::Result<OwnerRef> ControllerReferenceFor(const json& owner) {
  if (!owner.is_object()) return InvalidArgumentError("owner is not a JSON object");
  const json* meta_member = json_read::Find(owner, "metadata");
  if (meta_member != nullptr && !meta_member->is_object())
    return InvalidArgumentError("owner metadata is not an object");
  const json& meta = json_read::Object(owner, "metadata");
  OwnerRef ref{json_read::String(owner, "apiVersion"),
               json_read::String(owner, "kind"),
               json_read::String(meta, "name"),
               json_read::String(meta, "uid"),
               true,
               true};
  if (ref.api_version.empty() || ref.kind.empty()) {
    return InvalidArgumentError("owner has no apiVersion/kind");
  }
  if (ref.name.empty() || ref.uid.empty()) {
    return InvalidArgumentError("owner " + ref.kind +
                                " has no metadata.name/uid (not created yet?)");
  }
  return ref;
}

json OwnerRefToJson(const OwnerRef& ref) {
  json out = {
      {"apiVersion", ref.api_version}, {"kind", ref.kind}, {"name", ref.name}, {"uid", ref.uid}};
  if (ref.controller) out["controller"] = true;
  if (ref.block_owner_deletion) out["blockOwnerDeletion"] = true;
  return out;
}

Status SetControllerReference(json* obj, const OwnerRef& ref) {
  OwnerRef controller_ref = ref;
  controller_ref.controller = true;
  if (auto current = GetControllerOf(*obj); current && !SameOwner(*current, controller_ref)) {
    return AlreadyExistsError("object is already controlled by " + current->kind + " " +
                              current->name);
  }
  return Upsert(obj, controller_ref);
}

Status SetOwnerReference(json* obj, const OwnerRef& ref) {
  OwnerRef plain = ref;
  plain.controller = false;
  // Keep an existing controller flag for the same owner.
  if (auto current = GetControllerOf(*obj); current && SameOwner(*current, plain)) {
    plain.controller = true;
  }
  return Upsert(obj, plain);
}

std::vector<OwnerRef> GetOwnerReferences(const json& obj) {
  std::vector<OwnerRef> out;
  if (!obj.is_object()) return out;
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return out;
  auto refs = meta->find("ownerReferences");
  if (refs == meta->end() || !refs->is_array()) return out;
  for (const json& r : *refs) {
    if (auto parsed = ParseRef(r)) out.push_back(std::move(*parsed));
  }
  return out;
}

std::optional<OwnerRef> GetControllerOf(const json& obj) {
  for (OwnerRef& ref : GetOwnerReferences(obj)) {
    if (ref.controller) return std::move(ref);
  }
  return std::nullopt;
}

bool IsOwnedBy(const json& obj, const json& owner) {
  const std::string uid =
      owner.is_object() && owner.contains("metadata") && owner["metadata"].is_object()
          ? json_read::String(owner["metadata"], "uid")
          : std::string();
  if (uid.empty()) return false;
  for (const OwnerRef& ref : GetOwnerReferences(obj)) {
    if (ref.uid == uid) return true;
  }
  return false;
}

}  // namespace gpu_autoscaler::kube
