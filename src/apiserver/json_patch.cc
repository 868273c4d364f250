// RFC 6902 JSON patch and RFC 7386 JSON merge patch.
#include "apiserver/patch_internal.h"

namespace gpu_autoscaler::apiserver {

using namespace patch_internal;  // NOLINT: this file implements them

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

}  // namespace gpu_autoscaler::apiserver
