// File: src/apiserver/validation_internal.h
//
// What the validation translation units share: field errors rendered as
// kube-apiserver renders them (k8s.io/apimachinery field.Error), name rules,
// and each kind family's entry point. validation_common.cc (errors, names,
// ObjectMeta), validation_pod.cc, validation_batch.cc (Jobs),
// validation_builtin.cc (the other built-in kinds) and validation.cc (custom resources' structural
// schemas and the public functions). Not part of the interface: include validation.h.
//
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <optional>
// GCC 12 reports a false -Wmaybe-uninitialized inside <regex> at -O1 with
// sanitizers; the warning is in the library's code, not ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop
#else
#include <regex>
#endif
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "kube/quantity.h"

#include "apiserver/validation.h"

namespace gpu_autoscaler::apiserver::validation_internal {

using json = nlohmann::json;

// field.Error (k8s.io/apimachinery/pkg/util/validation/field).
enum class ErrorType {
  kRequired,
  kInvalid,
  kNotSupported,
  kForbidden,
  kTooLong,
  kDuplicate,
  kNotFound,
};

struct FieldError {
  ErrorType type;
  std::string field;
  json value;  // the bad value; unused for Required/Forbidden/TooLong
  std::string detail;
  int rank = 0;  // custom-resource schema errors: order of the validator that found it
  // Go's rendering of a typed value GoValue cannot reproduce (a map[string]string,
  // a *LabelSelector); used instead of `value` when set.
  std::string value_text{};
};

const char* Reason(ErrorType t);
const char* TypeText(ErrorType t);
// Whether kube-apiserver holds this JSON number as a float64: it decodes a
// number as int64 when it fits, else as float64.
bool HeldAsFloat64(const json& v);
// Go's %v of a float64 (shortest digits, %e form from exponent 6 or below -4).
std::string GoFloat(double d);
// Go's %v / %q rendering of a decoded JSON value.
std::string GoValue(const json& v);
std::string ErrorBody(const FieldError& e);

// The field errors of one object, in the order found.
class Errors {
 public:
  void Required(std::string field, std::string detail = "") {
    list_.push_back({ErrorType::kRequired, std::move(field), nullptr, std::move(detail)});
  }
  void Invalid(std::string field, json value, std::string detail) {
    list_.push_back({ErrorType::kInvalid, std::move(field), std::move(value), std::move(detail)});
  }
  void NotSupported(std::string field, json value, const std::vector<std::string>& supported) {
    std::string detail;
    if (!supported.empty()) {
      detail = "supported values: ";
      for (std::size_t i = 0; i < supported.size(); ++i) {
        if (i > 0) detail += ", ";
        detail += json(supported[i]).dump();
      }
    }
    list_.push_back(
        {ErrorType::kNotSupported, std::move(field), std::move(value), std::move(detail)});
  }
  void Forbidden(std::string field, std::string detail) {
    list_.push_back({ErrorType::kForbidden, std::move(field), nullptr, std::move(detail)});
  }
  void TooLong(std::string field, std::string detail) {
    list_.push_back({ErrorType::kTooLong, std::move(field), nullptr, std::move(detail)});
  }
  void Duplicate(std::string field, json value) {
    list_.push_back({ErrorType::kDuplicate, std::move(field), std::move(value), ""});
  }
  void NotFound(std::string field, json value) {
    list_.push_back({ErrorType::kNotFound, std::move(field), std::move(value), ""});
  }
  void Add(FieldError e) { list_.push_back(std::move(e)); }

  bool empty() const { return list_.empty(); }
  std::vector<FieldError>& list() { return list_; }

  // errors.NewInvalid(qualifiedKind, name, errs).
  kube::Error ToInvalid(const std::string& group, const std::string& kind,
                        const std::string& name) const;

 private:
  std::vector<FieldError> list_;
};

std::string Index(const std::string& path, std::size_t i);
std::string Key(const std::string& path, const std::string& key);

// Name rules (k8s.io/apimachinery/pkg/util/validation).
bool IsAlnum(char c);
inline constexpr const char* kDns1123LabelMessage =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
inline constexpr const char* kDns1123SubdomainMessage =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
inline constexpr const char* kDns1035LabelMessage =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
std::vector<std::string> Dns1123LabelErrors(std::string_view value);
std::vector<std::string> Dns1123SubdomainErrors(std::string_view value);
// IsQualifiedName: "[prefix/]name" as used by label and annotation keys.
std::vector<std::string> QualifiedNameErrors(std::string_view value);
std::vector<std::string> LabelValueErrors(std::string_view value);

// Null when absent or when `obj` is not an object.
const json& Get(const json& obj, const char* key);
std::string GetString(const json& obj, const char* key);

// Label (labels = true) or annotation maps: keys, values, total size.
void ValidateStringMap(const json& map, const std::string& path, bool labels, Errors& errs);

// Kind families.
void ValidateObjectMeta(const ValidationTarget& t, const json& obj, Errors& errs);
void ValidateObjectMetaUpdate(const json& old_obj, const json& obj, Errors& errs);
// An optional (or `required`) string field whose value must be one of `values`.
void CheckEnum(const json& obj, const char* key, const std::string& path,
               std::initializer_list<const char*> values, Errors& errs, bool required = false);
void ValidatePodSpec(const json& spec, const std::string& path, bool require_image, Errors& errs);
void ValidatePodUpdate(const json& old_obj, const json& obj, Errors& errs);
// Built-in kinds other than Pod (ConfigMap, Secret, PodDisruptionBudget, CRD...).
void ValidateBuiltin(const ValidationTarget& t, const json& obj, Errors& errs);
// batch/v1 Job (validation_batch.cc): ValidateJob, and on update the
// immutable completions, selector and template.
void ValidateJob(const json& obj, Errors& errs);
void ValidateJobUpdate(const json& old_obj, const json& obj, Errors& errs);
// Update-only rules of built-in kinds other than Pod (Node's providerID and
// podCIDRs may only be set once).
void ValidateBuiltinUpdate(const ValidationTarget& t, const json& old_obj, const json& obj,
                           Errors& errs);

}  // namespace gpu_autoscaler::apiserver::validation_internal
