// File: src/kube/decode_internal.h
//
// Internal to the decoders (object_codec.cc, pod_decoder.cc, node_decoder.cc):
// simdjson on-demand helpers. Include only from .cc files so simdjson stays
// out of the public headers.
//
// Thread-safety: a DecodeContext belongs to one decode call.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

#include "kube/error.h"
#include "kube/object_codec.h"
#include "kube/view_types.h"

namespace gpu_autoscaler::kube::decode_internal {

namespace od = simdjson::ondemand;
using simdjson::error_code;

// Returned (with DecodeContext::detail set) for semantic errors such as a bad
// quantity or timestamp.
inline constexpr error_code kSemanticError = simdjson::UNEXPECTED_ERROR;

#define GPA_SJ_RETURN_IF_ERROR(expr)                                            \
  do {                                                                          \
    if (::simdjson::error_code gpa_sj_e_ = (expr); gpa_sj_e_) return gpa_sj_e_; \
  } while (false)

struct DecodeContext {
  const char* where = "";  // the field being decoded, for error messages
  std::string detail;      // set with kSemanticError
};

// Calls `fn(key, value)` for each member of `v`; a null value is an empty object.
template <typename F>
error_code ForEachField(od::value& v, F&& fn) {
  od::json_type type;
  GPA_SJ_RETURN_IF_ERROR(v.type().get(type));
  if (type == od::json_type::null) return simdjson::SUCCESS;
  od::object obj;
  GPA_SJ_RETURN_IF_ERROR(v.get_object().get(obj));
  for (auto member : obj) {
    od::field field;
    GPA_SJ_RETURN_IF_ERROR(std::move(member).get(field));
    std::string_view key;
    GPA_SJ_RETURN_IF_ERROR(field.unescaped_key().get(key));
    GPA_SJ_RETURN_IF_ERROR(fn(key, field.value()));
  }
  return simdjson::SUCCESS;
}

template <typename F>
error_code ForEachField(od::object& obj, F&& fn) {
  for (auto member : obj) {
    od::field field;
    GPA_SJ_RETURN_IF_ERROR(std::move(member).get(field));
    std::string_view key;
    GPA_SJ_RETURN_IF_ERROR(field.unescaped_key().get(key));
    GPA_SJ_RETURN_IF_ERROR(fn(key, field.value()));
  }
  return simdjson::SUCCESS;
}

// Calls `fn(element)` for each element of `v`; null is an empty array.
template <typename F>
error_code ForEachElement(od::value& v, F&& fn) {
  od::json_type type;
  GPA_SJ_RETURN_IF_ERROR(v.type().get(type));
  if (type == od::json_type::null) return simdjson::SUCCESS;
  od::array arr;
  GPA_SJ_RETURN_IF_ERROR(v.get_array().get(arr));
  for (auto element : arr) {
    od::value item;
    GPA_SJ_RETURN_IF_ERROR(std::move(element).get(item));
    GPA_SJ_RETURN_IF_ERROR(fn(item));
  }
  return simdjson::SUCCESS;
}

// A string, or "" for null. The view lives in the parser's buffer until the
// next document.
error_code GetString(od::value& v, std::string_view* out);
error_code GetInt64(od::value& v, int64_t* out);  // null -> 0
error_code GetBool(od::value& v, bool* out);      // null -> false
// An RFC 3339 timestamp, or kNoTime for null.
error_code GetTimestamp(od::value& v, int64_t* out, DecodeContext* ctx);
// A {name: quantity} map parsed to amounts (cpu in millicores).
error_code GetResourceList(od::value& v, std::vector<ResourceQuantity>* out, DecodeContext* ctx);
// A {key: value} string map with interned keys and values.
error_code GetLabels(od::value& v, std::vector<Label>* out);
error_code GetConditions(od::value& v, std::vector<Condition>* out);

// ObjectMeta fields shared by every view. Strings point into parser memory.
struct MetaScratch {
  std::string_view name, ns, uid, resource_version;
  int64_t generation = 0;
  int64_t creation_timestamp = kNoTime;
  int64_t deletion_timestamp = kNoTime;
  std::vector<Label> labels;
  std::vector<Annotation> annotations;
  std::vector<OwnerReference> owners;
  void Reset();
};
// Decodes metadata; annotations are collected only when `keep_annotations`.
error_code GetMeta(od::value& v, MetaScratch* meta, bool keep_annotations, DecodeContext* ctx);

// Turns a simdjson failure into a kDecode error naming `what` and the field.
Error MakeDecodeError(std::string_view what, error_code code, const DecodeContext& ctx);

// Runs `fn(od::object&)` over the top-level object of `json`, which is
// copied into a padded per-thread buffer.
error_code WithTopLevelObject(std::string_view json,
                              const std::function<error_code(od::object&)>& fn);

// Decodes a List body: metadata into `meta`, each item through `item_fn`.
error_code DecodeListBody(std::string_view json, ListMeta* meta,
                          const std::function<error_code(od::object&)>& item_fn);

}  // namespace gpu_autoscaler::kube::decode_internal
