#include "kube/finalizer.h"

#include <nlohmann/json.hpp>

#include "kube/rest_client.h"

namespace gpu_autoscaler::kube {

using json = nlohmann::json;

namespace {

const json* Metadata(const json& obj) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find("metadata");
  return it != obj.end() && it->is_object() ? &*it : nullptr;
}

const json* Finalizers(const json& obj) {
  const json* meta = Metadata(obj);
  if (meta == nullptr) return nullptr;
  auto it = meta->find("finalizers");
  return it != meta->end() && it->is_array() ? &*it : nullptr;
}

// Index of `finalizer` in metadata.finalizers, or -1.
int FinalizerIndex(const json& obj, std::string_view finalizer) {
  const json* list = Finalizers(obj);
  if (list == nullptr) return -1;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& f = (*list)[i];
    if (f.is_string() && f.get_ref<const std::string&>() == finalizer) return static_cast<int>(i);
  }
  return -1;
}

bool BeingDeleted(const json& obj) {
  const json* meta = Metadata(obj);
  if (meta == nullptr) return false;
  auto it = meta->find("deletionTimestamp");
  return it != meta->end() && !it->is_null();
}

Status PatchStatus(const Error& e, std::string_view what) {
  // A failed `test` is 422 Invalid; a lost race on resourceVersion is 409.
  if (IsInvalid(e) || IsConflict(e)) {
    return AbortedError(std::string(what) + ": object changed since it was read: " + e.ToString());
  }
  return e.ToStatus().WithContext(what);
}

}  // namespace

FinalizerAction DecideFinalizerAction(const json& obj, std::string_view finalizer) {
  const bool has = FinalizerIndex(obj, finalizer) >= 0;
  if (BeingDeleted(obj)) return has ? FinalizerAction::kCleanup : FinalizerAction::kNothing;
  return has ? FinalizerAction::kApply : FinalizerAction::kAddFinalizer;
}

gpu_autoscaler::Result<std::string> AddFinalizerPatch(const json& obj, std::string_view finalizer) {
  const json* meta = Metadata(obj);
  const std::string rv = meta != nullptr ? meta->value("resourceVersion", "") : "";
  if (rv.empty()) return InvalidArgumentError("object has no metadata.resourceVersion");
  json patch = json::array();
  patch.push_back({{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", rv}});
  if (Finalizers(obj) == nullptr) {
    patch.push_back(
        {{"op", "add"}, {"path", "/metadata/finalizers"}, {"value", json::array({finalizer})}});
  } else {
    patch.push_back({{"op", "add"}, {"path", "/metadata/finalizers/-"}, {"value", finalizer}});
  }
  return patch.dump();
}

gpu_autoscaler::Result<std::string> RemoveFinalizerPatch(const json& obj,
                                                         std::string_view finalizer) {
  const int index = FinalizerIndex(obj, finalizer);
  if (index < 0) return NotFoundError("finalizer " + std::string(finalizer) + " not present");
  const std::string path = "/metadata/finalizers/" + std::to_string(index);
  json patch = json::array();
  patch.push_back({{"op", "test"}, {"path", path}, {"value", finalizer}});
  patch.push_back({{"op", "remove"}, {"path", path}});
  return patch.dump();
}

gpu_autoscaler::Result<FinalizerOutcome> ReconcileWithFinalizer(
    RestClient& client, const ObjectRef& ref, const json& obj, std::string_view finalizer,
    const FinalizerCallbacks& callbacks) {
  switch (DecideFinalizerAction(obj, finalizer)) {
    case FinalizerAction::kNothing:
      return FinalizerOutcome::kNothing;
    case FinalizerAction::kApply:
      if (callbacks.apply) GPU_RETURN_IF_ERROR(callbacks.apply(obj));
      return FinalizerOutcome::kApplied;
    case FinalizerAction::kAddFinalizer: {
      GPU_ASSIGN_OR_RETURN(std::string patch, AddFinalizerPatch(obj, finalizer));
      auto patched = client.Patch(ref, PatchType::kJson, patch);
      if (!patched.ok()) return PatchStatus(patched.error(), "adding finalizer");
      return FinalizerOutcome::kFinalizerAdded;
    }
    case FinalizerAction::kCleanup: {
      if (callbacks.cleanup) GPU_RETURN_IF_ERROR(callbacks.cleanup(obj));
      GPU_ASSIGN_OR_RETURN(std::string patch, RemoveFinalizerPatch(obj, finalizer));
      auto patched = client.Patch(ref, PatchType::kJson, patch);
      if (!patched.ok()) {
        // Already gone: the finalizer was the last one and the object is deleted.
        if (IsNotFound(patched.error())) return FinalizerOutcome::kCleanedUp;
        return PatchStatus(patched.error(), "removing finalizer");
      }
      return FinalizerOutcome::kCleanedUp;
    }
  }
  return InternalError("unreachable finalizer action");
}

}  // namespace gpu_autoscaler::kube
