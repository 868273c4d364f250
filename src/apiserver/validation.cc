#include "apiserver/validation.h"

#include <algorithm>
#include <cmath>
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

namespace gpu_autoscaler::apiserver {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
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
};

const char* Reason(ErrorType t) {
  switch (t) {
    case ErrorType::kRequired:
      return "FieldValueRequired";
    case ErrorType::kInvalid:
      return "FieldValueInvalid";
    case ErrorType::kNotSupported:
      return "FieldValueNotSupported";
    case ErrorType::kForbidden:
      return "FieldValueForbidden";
    case ErrorType::kTooLong:
      return "FieldValueTooLong";
    case ErrorType::kDuplicate:
      return "FieldValueDuplicate";
    case ErrorType::kNotFound:
      return "FieldValueNotFound";
  }
  return "";
}

const char* TypeText(ErrorType t) {
  switch (t) {
    case ErrorType::kRequired:
      return "Required value";
    case ErrorType::kInvalid:
      return "Invalid value";
    case ErrorType::kNotSupported:
      return "Unsupported value";
    case ErrorType::kForbidden:
      return "Forbidden";
    case ErrorType::kTooLong:
      return "Too long";
    case ErrorType::kDuplicate:
      return "Duplicate value";
    case ErrorType::kNotFound:
      return "Not found";
  }
  return "";
}

// Go's %v / %q rendering of a decoded JSON value.
std::string GoValue(const json& v) {
  if (v.is_string()) return json(v.get<std::string>()).dump();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e21) {
      return std::to_string(static_cast<long long>(d));
    }
    std::string s = v.dump();
    return s;
  }
  if (v.is_null()) return "<nil>";
  return v.dump();
}

std::string ErrorBody(const FieldError& e) {
  std::string s = TypeText(e.type);
  if (e.type != ErrorType::kRequired && e.type != ErrorType::kForbidden &&
      e.type != ErrorType::kTooLong) {
    s += ": " + GoValue(e.value);
  }
  if (!e.detail.empty()) s += ": " + e.detail;
  return s;
}

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
                        const std::string& name) const {
    const std::string qualified = group.empty() ? kind : kind + "." + group;
    std::vector<std::string> messages;
    std::set<std::string> seen;
    for (const FieldError& e : list_) {
      std::string m = e.field.empty() ? ErrorBody(e) : e.field + ": " + ErrorBody(e);
      if (seen.insert(m).second) messages.push_back(std::move(m));
    }
    std::string aggregate;
    if (messages.size() == 1) {
      aggregate = messages[0];
    } else {
      aggregate = "[";
      for (std::size_t i = 0; i < messages.size(); ++i) {
        if (i > 0) aggregate += ", ";
        aggregate += messages[i];
      }
      aggregate += "]";
    }
    kube::Error error(kube::Error::Kind::kApi, 422, "Invalid",
                      qualified + " " + json(name).dump() + " is invalid: " + aggregate);
    kube::StatusDetails& details = error.mutable_details();
    details.group = group;
    details.kind = kind;
    details.name = name;
    for (const FieldError& e : list_) {
      details.causes.push_back({Reason(e.type), ErrorBody(e), e.field});
    }
    return error;
  }

 private:
  std::vector<FieldError> list_;
};

std::string Index(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}
std::string Key(const std::string& path, const std::string& key) {
  return path + "[" + key + "]";
}

// ---------------------------------------------------------------------------
// Name rules (k8s.io/apimachinery/pkg/util/validation).

std::string ToLowerAscii(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool IsAlnum(char c) {
  return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z');
}

bool MatchesDns1123Label(std::string_view s) {
  if (s.empty() || !IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

bool MatchesDns1123Subdomain(std::string_view s) {
  if (s.empty()) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    if (!MatchesDns1123Label(s.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

constexpr const char* kDns1123LabelMessage =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
constexpr const char* kDns1123SubdomainMessage =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
constexpr const char* kDns1035LabelMessage =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

std::vector<std::string> Dns1123LabelErrors(std::string_view value) {
  std::vector<std::string> out;
  if (value.size() > 63) out.push_back("must be no more than 63 characters");
  if (!MatchesDns1123Label(value)) out.push_back(kDns1123LabelMessage);
  return out;
}

std::vector<std::string> Dns1123SubdomainErrors(std::string_view value) {
  std::vector<std::string> out;
  if (value.size() > 253) out.push_back("must be no more than 253 characters");
  if (!MatchesDns1123Subdomain(value)) out.push_back(kDns1123SubdomainMessage);
  return out;
}

std::vector<std::string> Dns1035LabelErrors(std::string_view value) {
  std::vector<std::string> out;
  if (value.size() > 63) out.push_back("must be no more than 63 characters");
  const bool ok =
      !value.empty() && value.front() >= 'a' && value.front() <= 'z' &&
      IsLowerAlnum(value.back()) &&
      std::all_of(value.begin(), value.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
  if (!ok) out.push_back(kDns1035LabelMessage);
  return out;
}

bool MatchesQualifiedNamePart(std::string_view s) {
  if (s.empty() || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// IsQualifiedName: "[prefix/]name" as used by label and annotation keys.
std::vector<std::string> QualifiedNameErrors(std::string_view value) {
  std::vector<std::string> out;
  std::string_view name = value;
  const std::size_t slash = value.find('/');
  if (slash != std::string_view::npos) {
    const std::string_view prefix = value.substr(0, slash);
    name = value.substr(slash + 1);
    if (value.find('/', slash + 1) != std::string_view::npos) {
      out.push_back(
          "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
          "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
          "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
          "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
      return out;
    }
    if (prefix.empty()) {
      out.push_back("prefix part must be non-empty");
    } else {
      for (const std::string& m : Dns1123SubdomainErrors(prefix))
        out.push_back("prefix part " + m);
    }
  }
  if (name.empty()) {
    out.push_back("name part must be non-empty");
  } else if (name.size() > 63) {
    out.push_back("name part must be no more than 63 characters");
  }
  if (!name.empty() && !MatchesQualifiedNamePart(name)) {
    out.push_back(
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
        "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
        "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
  }
  return out;
}

std::vector<std::string> LabelValueErrors(std::string_view value) {
  std::vector<std::string> out;
  if (value.size() > 63) out.push_back("must be no more than 63 characters");
  if (!value.empty() && !MatchesQualifiedNamePart(value)) {
    out.push_back(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
        "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
  }
  return out;
}

// ---------------------------------------------------------------------------
// ObjectMeta.

enum class NameRule { kSubdomain, kLabel, kDns1035 };

NameRule NameRuleFor(const ValidationTarget& t) {
  if (t.group.empty() && t.kind == "Namespace") return NameRule::kLabel;
  if (t.group.empty() && t.kind == "Service") return NameRule::kDns1035;
  return NameRule::kSubdomain;
}

std::vector<std::string> NameErrors(NameRule rule, std::string_view name) {
  switch (rule) {
    case NameRule::kLabel:
      return Dns1123LabelErrors(name);
    case NameRule::kDns1035:
      return Dns1035LabelErrors(name);
    case NameRule::kSubdomain:
      break;
  }
  return Dns1123SubdomainErrors(name);
}

const json& Get(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::string GetString(const json& obj, const char* key) {
  const json& v = Get(obj, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

void ValidateStringMap(const json& map, const std::string& path, bool labels, Errors& errs) {
  if (map.is_null()) return;
  if (!map.is_object()) {
    errs.Invalid(path, map, "must be a map of strings");
    return;
  }
  std::size_t total = 0;
  for (const auto& [key, value] : map.items()) {
    for (const std::string& m : QualifiedNameErrors(labels ? key : ToLowerAscii(key))) {
      errs.Invalid(path, key, m);
    }
    if (!value.is_string()) {
      errs.Invalid(Key(path, key), value, "must be a string");
      continue;
    }
    total += key.size() + value.get<std::string>().size();
    if (labels) {
      for (const std::string& m : LabelValueErrors(value.get<std::string>())) {
        errs.Invalid(path, value, m);
      }
    }
  }
  constexpr std::size_t kTotalAnnotationSizeLimit = 256 * 1024;
  if (!labels && total > kTotalAnnotationSizeLimit) {
    errs.TooLong(path, "must have at most 262144 bytes");
  }
}

void ValidateObjectMeta(const ValidationTarget& t, const json& obj, Errors& errs) {
  const json& meta = Get(obj, "metadata");
  if (!meta.is_object()) {
    errs.Required("metadata");
    return;
  }
  const std::string name = GetString(meta, "name");
  const std::string generate_name = GetString(meta, "generateName");
  const NameRule rule = NameRuleFor(t);
  if (name.empty() && generate_name.empty()) {
    errs.Required("metadata.name", "name or generateName is required");
  }
  if (!generate_name.empty()) {
    // The generated suffix is alphanumeric, so a trailing '-' is allowed.
    std::string prefix = generate_name;
    if (prefix.back() == '-') prefix.pop_back();
    for (const std::string& m : NameErrors(rule, prefix)) {
      errs.Invalid("metadata.generateName", generate_name, m);
    }
  }
  if (!name.empty()) {
    for (const std::string& m : NameErrors(rule, name))
      errs.Invalid("metadata.name", name, m);
  }
  const std::string ns = GetString(meta, "namespace");
  if (t.namespaced) {
    if (ns.empty()) {
      errs.Required("metadata.namespace");
    } else {
      for (const std::string& m : Dns1123LabelErrors(ns))
        errs.Invalid("metadata.namespace", ns, m);
    }
  } else if (!ns.empty()) {
    errs.Forbidden("metadata.namespace", "not allowed on this type");
  }
  ValidateStringMap(Get(meta, "labels"), "metadata.labels", true, errs);
  ValidateStringMap(Get(meta, "annotations"), "metadata.annotations", false, errs);
  const json& finalizers = Get(meta, "finalizers");
  if (finalizers.is_array()) {
    for (std::size_t i = 0; i < finalizers.size(); ++i) {
      const json& f = finalizers[i];
      if (!f.is_string()) {
        errs.Invalid(Index("metadata.finalizers", i), f, "must be a string");
        continue;
      }
      for (const std::string& m : QualifiedNameErrors(f.get<std::string>())) {
        errs.Invalid(Index("metadata.finalizers", i), f, m);
      }
    }
  }
}

void ValidateObjectMetaUpdate(const json& old_obj, const json& obj, Errors& errs) {
  const json& old_meta = Get(old_obj, "metadata");
  const json& meta = Get(obj, "metadata");
  for (const char* field : {"name", "namespace", "uid", "creationTimestamp"}) {
    const json& before = Get(old_meta, field);
    const json& after = Get(meta, field);
    if (before != after && !(field == std::string_view("uid") && after.is_null())) {
      errs.Invalid(std::string("metadata.") + field, after.is_null() ? json("") : after,
                   "field is immutable");
    }
  }
}

// ---------------------------------------------------------------------------
// Pod.

bool OneOf(const std::string& v, std::initializer_list<const char*> values) {
  return std::any_of(values.begin(), values.end(), [&](const char* s) { return v == s; });
}

void CheckEnum(const json& obj, const char* key, const std::string& path,
               std::initializer_list<const char*> values, Errors& errs, bool required = false) {
  const json& v = Get(obj, key);
  if (v.is_null() || (v.is_string() && v.get<std::string>().empty())) {
    if (required) errs.Required(path + "." + key);
    return;
  }
  if (!v.is_string() || !OneOf(v.get<std::string>(), values)) {
    errs.NotSupported(path + "." + key, v, std::vector<std::string>(values.begin(), values.end()));
  }
}

std::string QuantityText(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

bool IsStandardResource(const std::string& name) {
  return name == "cpu" || name == "memory" || name == "ephemeral-storage" ||
         name.rfind("hugepages-", 0) == 0 || name == "pods" || name == "storage";
}

void ValidateResources(const json& resources, const std::string& path, Errors& errs) {
  if (resources.is_null()) return;
  if (!resources.is_object()) {
    errs.Invalid(path, resources, "must be an object");
    return;
  }
  std::map<std::string, int64_t> limits;
  for (const char* section : {"limits", "requests"}) {
    const json& list = Get(resources, section);
    if (list.is_null()) continue;
    const std::string list_path = path + "." + section;
    if (!list.is_object()) {
      errs.Invalid(list_path, list, "must be a map of quantities");
      continue;
    }
    for (const auto& [name, amount] : list.items()) {
      const std::string item_path = Key(list_path, name);
      for (const std::string& m : QualifiedNameErrors(name))
        errs.Invalid(item_path, name, m);
      auto parsed = kube::ResourceAmount(name, QuantityText(amount));
      if (!parsed.ok()) {
        errs.Invalid(item_path, QuantityText(amount),
                     "quantities must match the regular expression "
                     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
        continue;
      }
      if (*parsed < 0) {
        errs.Invalid(item_path, QuantityText(amount), "must be greater than or equal to 0");
        continue;
      }
      if (std::string_view(section) == "limits") {
        limits[name] = *parsed;
        continue;
      }
      auto limit = limits.find(name);
      if (limit == limits.end()) continue;
      if (IsStandardResource(name)) {
        if (*parsed > limit->second) {
          errs.Invalid(list_path, QuantityText(amount),
                       "must be less than or equal to " + name + " limit");
        }
      } else if (*parsed != limit->second) {
        errs.Invalid(list_path, QuantityText(amount), "must be equal to " + name + " limit");
      }
    }
  }
}

bool IsEnvVarName(const std::string& s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '_' || c == '-' || c == '.'; });
}

void ValidateContainer(const json& c, const std::string& path, const std::set<std::string>& volumes,
                       bool require_image, Errors& errs) {
  if (!c.is_object()) {
    errs.Invalid(path, c, "must be an object");
    return;
  }
  const std::string name = GetString(c, "name");
  if (name.empty()) {
    errs.Required(path + ".name");
  } else {
    for (const std::string& m : Dns1123LabelErrors(name))
      errs.Invalid(path + ".name", name, m);
  }
  const std::string image = GetString(c, "image");
  if (image.empty()) {
    if (require_image) errs.Required(path + ".image");
  } else if (image.find_first_not_of(" \t\n") != 0 ||
             image.find_last_not_of(" \t\n") != image.size() - 1) {
    errs.Invalid(path + ".image", image, "must not have leading or trailing whitespace");
  }
  CheckEnum(c, "imagePullPolicy", path, {"Always", "IfNotPresent", "Never"}, errs, true);
  CheckEnum(c, "terminationMessagePolicy", path, {"File", "FallbackToLogsOnError"}, errs, true);
  const json& ports = Get(c, "ports");
  if (ports.is_array()) {
    std::set<std::string> port_names;
    for (std::size_t i = 0; i < ports.size(); ++i) {
      const json& p = ports[i];
      const std::string p_path = Index(path + ".ports", i);
      if (!p.is_object()) {
        errs.Invalid(p_path, p, "must be an object");
        continue;
      }
      const std::string port_name = GetString(p, "name");
      if (!port_name.empty() && !port_names.insert(port_name).second) {
        errs.Duplicate(p_path + ".name", port_name);
      }
      const json& number = Get(p, "containerPort");
      if (number.is_null()) {
        errs.Required(p_path + ".containerPort");
      } else if (!number.is_number_integer() || number.get<int64_t>() < 1 ||
                 number.get<int64_t>() > 65535) {
        errs.Invalid(p_path + ".containerPort", number, "must be between 1 and 65535, inclusive");
      }
      const json& host = Get(p, "hostPort");
      if (!host.is_null() &&
          (!host.is_number_integer() || host.get<int64_t>() < 0 || host.get<int64_t>() > 65535)) {
        errs.Invalid(p_path + ".hostPort", host, "must be between 1 and 65535, inclusive");
      }
      CheckEnum(p, "protocol", p_path, {"TCP", "UDP", "SCTP"}, errs, true);
    }
  }
  const json& env = Get(c, "env");
  if (env.is_array()) {
    for (std::size_t i = 0; i < env.size(); ++i) {
      const std::string e_path = Index(path + ".env", i);
      const std::string var = GetString(env[i], "name");
      if (var.empty()) {
        errs.Required(e_path + ".name");
      } else if (!IsEnvVarName(var)) {
        errs.Invalid(e_path + ".name", var,
                     "a valid environment variable name must consist of alphabetic characters, "
                     "digits, '_', '-', or '.', and must not start with a digit (e.g. "
                     "'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
                     "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')");
      }
    }
  }
  const json& mounts = Get(c, "volumeMounts");
  if (mounts.is_array()) {
    std::set<std::string> paths;
    for (std::size_t i = 0; i < mounts.size(); ++i) {
      const std::string m_path = Index(path + ".volumeMounts", i);
      const std::string volume = GetString(mounts[i], "name");
      const std::string mount_path = GetString(mounts[i], "mountPath");
      if (volume.empty()) {
        errs.Required(m_path + ".name");
      } else if (volumes.count(volume) == 0) {
        errs.NotFound(m_path + ".name", volume);
      }
      if (mount_path.empty()) {
        errs.Required(m_path + ".mountPath");
      } else if (!paths.insert(mount_path).second) {
        errs.Invalid(m_path + ".mountPath", mount_path, "must be unique");
      }
    }
  }
  ValidateResources(Get(c, "resources"), path + ".resources", errs);
}

void ValidatePodSpec(const json& spec, const std::string& path, bool require_image, Errors& errs) {
  if (!spec.is_object()) {
    errs.Required(path);
    return;
  }
  std::set<std::string> volumes;
  const json& vols = Get(spec, "volumes");
  if (vols.is_array()) {
    for (std::size_t i = 0; i < vols.size(); ++i) {
      const std::string v_path = Index(path + ".volumes", i);
      const std::string name = GetString(vols[i], "name");
      if (name.empty()) {
        errs.Required(v_path + ".name");
        continue;
      }
      for (const std::string& m : Dns1123LabelErrors(name))
        errs.Invalid(v_path + ".name", name, m);
      if (!volumes.insert(name).second) errs.Duplicate(v_path + ".name", name);
    }
  }
  std::set<std::string> names;
  for (const char* list : {"containers", "initContainers"}) {
    const json& containers = Get(spec, list);
    const std::string list_path = path + "." + list;
    const bool main = std::string_view(list) == "containers";
    if (containers.is_null() || (containers.is_array() && containers.empty())) {
      if (main) errs.Required(list_path);
      continue;
    }
    if (!containers.is_array()) {
      errs.Invalid(list_path, containers, "must be a list");
      continue;
    }
    for (std::size_t i = 0; i < containers.size(); ++i) {
      const std::string c_path = Index(list_path, i);
      ValidateContainer(containers[i], c_path, volumes, require_image, errs);
      const std::string name = GetString(containers[i], "name");
      if (!name.empty() && !names.insert(name).second) errs.Duplicate(c_path + ".name", name);
    }
  }
  CheckEnum(spec, "restartPolicy", path, {"Always", "OnFailure", "Never"}, errs, true);
  CheckEnum(spec, "dnsPolicy", path, {"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"},
            errs, true);
  const std::string node = GetString(spec, "nodeName");
  if (!node.empty()) {
    for (const std::string& m : Dns1123SubdomainErrors(node)) {
      errs.Invalid(path + ".nodeName", node, m);
    }
  }
  const std::string account = GetString(spec, "serviceAccountName");
  if (!account.empty()) {
    for (const std::string& m : Dns1123SubdomainErrors(account)) {
      errs.Invalid(path + ".serviceAccountName", account, m);
    }
  }
  const json& deadline = Get(spec, "activeDeadlineSeconds");
  if (!deadline.is_null() && (!deadline.is_number_integer() || deadline.get<int64_t>() <= 0)) {
    errs.Invalid(path + ".activeDeadlineSeconds", deadline, "must be greater than 0");
  }
  const json& grace = Get(spec, "terminationGracePeriodSeconds");
  if (!grace.is_null() && !grace.is_number_integer()) {
    errs.Invalid(path + ".terminationGracePeriodSeconds", grace, "must be an integer");
  }
  const json& tolerations = Get(spec, "tolerations");
  if (tolerations.is_array()) {
    for (std::size_t i = 0; i < tolerations.size(); ++i) {
      const std::string t_path = Index(path + ".tolerations", i);
      const json& t = tolerations[i];
      CheckEnum(t, "operator", t_path, {"Exists", "Equal"}, errs);
      CheckEnum(t, "effect", t_path, {"NoSchedule", "PreferNoSchedule", "NoExecute"}, errs);
      if (GetString(t, "operator") == "Exists" && !GetString(t, "value").empty()) {
        errs.Invalid(t_path + ".operator", t["value"],
                     "value must be empty when `operator` is 'Exists'");
      }
    }
  }
}

// The pod spec with the fields an update may change replaced by the old ones.
json MungePodSpec(const json& updated, const json& old) {
  json munged = updated;
  for (const char* list : {"containers", "initContainers"}) {
    auto it = munged.find(list);
    const json& old_list = Get(old, list);
    if (it == munged.end() || !it->is_array() || !old_list.is_array() ||
        it->size() != old_list.size()) {
      continue;
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
      if ((*it)[i].is_object() && old_list[i].is_object()) {
        (*it)[i]["image"] = Get(old_list[i], "image");
      }
    }
  }
  // activeDeadlineSeconds may be set or lowered; tolerations only added to.
  const json& old_deadline = Get(old, "activeDeadlineSeconds");
  const json& new_deadline = Get(updated, "activeDeadlineSeconds");
  if (new_deadline.is_number_integer() &&
      (old_deadline.is_null() || (old_deadline.is_number_integer() &&
                                  new_deadline.get<int64_t>() <= old_deadline.get<int64_t>()))) {
    if (old_deadline.is_null()) {
      munged.erase("activeDeadlineSeconds");
    } else {
      munged["activeDeadlineSeconds"] = old_deadline;
    }
  }
  const json& old_tolerations = Get(old, "tolerations");
  const json& new_tolerations = Get(updated, "tolerations");
  if (new_tolerations.is_array()) {
    const json old_list = old_tolerations.is_array() ? old_tolerations : json::array();
    const bool keeps_old = std::all_of(old_list.begin(), old_list.end(), [&](const json& t) {
      return std::find(new_tolerations.begin(), new_tolerations.end(), t) != new_tolerations.end();
    });
    if (keeps_old) {
      if (old_tolerations.is_null()) {
        munged.erase("tolerations");
      } else {
        munged["tolerations"] = old_tolerations;
      }
    }
  }
  return munged;
}

// A short "field: old -> new" listing of what differs, in place of Go's
// ObjectDiff output.
void DiffLines(const json& a, const json& b, const std::string& path, std::string& out) {
  if (a == b) return;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items())
      keys.insert(k);
    for (const auto& [k, v] : b.items())
      keys.insert(k);
    for (const std::string& k : keys) {
      DiffLines(Get(a, k.c_str()), Get(b, k.c_str()), path.empty() ? k : path + "." + k, out);
    }
    return;
  }
  if (a.is_array() && b.is_array() && a.size() == b.size()) {
    for (std::size_t i = 0; i < a.size(); ++i)
      DiffLines(a[i], b[i], Index(path, i), out);
    return;
  }
  out += "\n  " + path + ": " + a.dump() + " -> " + b.dump();
}

void ValidatePodUpdate(const json& old_obj, const json& obj, Errors& errs) {
  const json& old_spec = Get(old_obj, "spec");
  const json& spec = Get(obj, "spec");
  const json& old_containers = Get(old_spec, "containers");
  const json& containers = Get(spec, "containers");
  if (old_containers.is_array() && containers.is_array() &&
      old_containers.size() == containers.size()) {
    for (std::size_t i = 0; i < containers.size(); ++i) {
      if (GetString(containers[i], "image").empty()) {
        errs.Required(Index("spec.containers", i) + ".image");
      }
    }
  }
  const json munged = MungePodSpec(spec, old_spec);
  if (munged != old_spec) {
    std::string diff;
    DiffLines(old_spec, munged, "", diff);
    errs.Forbidden("spec",
                   "pod updates may not change fields other than `spec.containers[*].image`, "
                   "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or "
                   "`spec.tolerations` (only additions to existing tolerations)" +
                       diff);
  }
}

// ---------------------------------------------------------------------------
// Other built-in kinds.

bool ValidConfigKey(const std::string& key) {
  return !key.empty() && key.size() <= 253 && key != "." && key != ".." &&
         std::all_of(key.begin(), key.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// ConfigMap and Secret keys, with kube-apiserver's message.
void CheckConfigKey(const char* section, const std::string& key, Errors& errs) {
  if (ValidConfigKey(key)) return;
  errs.Invalid(Key(section, key), key,
               "a valid config key must consist of alphanumeric characters, '-', '_' or "
               "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
               "validation is '[-._a-zA-Z0-9]+')");
}

void ValidateConfigMap(const json& obj, Errors& errs) {
  std::set<std::string> keys;
  std::size_t total = 0;
  for (const char* section : {"data", "binaryData"}) {
    const json& data = Get(obj, section);
    if (data.is_null()) continue;
    if (!data.is_object()) {
      errs.Invalid(section, data, "must be a map");
      continue;
    }
    for (const auto& [key, value] : data.items()) {
      CheckConfigKey(section, key, errs);
      if (!keys.insert(key).second)
        errs.Invalid(Key(section, key), key, "duplicate of key present in data");
      if (value.is_string()) {
        total += value.get<std::string>().size();
      } else {
        // kube-apiserver cannot even decode this (data is map[string]string).
        errs.Invalid(Key(section, key), value, "must be a string");
      }
    }
  }
  constexpr std::size_t kMaxConfigMapBytes = 1024 * 1024;
  if (total > kMaxConfigMapBytes) errs.TooLong("", "must have at most 1048576 bytes");
}

// v1 Secret: data values are base64 strings under valid keys, stringData values
// strings; at most 1 MiB in all.
void ValidateSecret(const json& obj, Errors& errs) {
  std::size_t total = 0;
  for (const char* section : {"data", "stringData"}) {
    const json& data = Get(obj, section);
    if (data.is_null()) continue;
    if (!data.is_object()) {
      errs.Invalid(section, data, "must be a map");
      continue;
    }
    for (const auto& [key, value] : data.items()) {
      CheckConfigKey(section, key, errs);
      if (!value.is_string()) {
        errs.Invalid(Key(section, key), value, "must be a string");
        continue;
      }
      const std::string& text = value.get_ref<const std::string&>();
      if (std::string_view(section) == "data") {
        auto decoded = Base64Decode(text);
        if (!decoded) {
          errs.Invalid(Key(section, key), "<secret contents redacted>", "illegal base64 data");
          continue;
        }
        total += decoded->size();
      } else {
        total += text.size();
      }
    }
  }
  constexpr std::size_t kMaxSecretBytes = 1024 * 1024;
  if (total > kMaxSecretBytes) errs.TooLong("data", "must have at most 1048576 bytes");
}

void ValidatePdb(const json& obj, Errors& errs) {
  const json& spec = Get(obj, "spec");
  if (!Get(spec, "minAvailable").is_null() && !Get(spec, "maxUnavailable").is_null()) {
    errs.Invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set");
  }
  for (const char* field : {"minAvailable", "maxUnavailable"}) {
    const json& v = Get(spec, field);
    const std::string path = std::string("spec.") + field;
    if (v.is_number_integer() && v.get<int64_t>() < 0) {
      errs.Invalid(path, v, "must be greater than or equal to 0");
    } else if (v.is_string()) {
      const std::string s = v.get<std::string>();
      const bool percent = !s.empty() && s.back() == '%' &&
                           s.find_first_not_of("0123456789") == s.size() - 1 && s.size() > 1;
      if (!percent) {
        errs.Invalid(path, v,
                     "a valid percent string must be a numeric string followed by an ending '%' "
                     "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
      } else if (std::stoll(s.substr(0, std::min<std::size_t>(s.size() - 1, 12))) > 100) {
        errs.Invalid(path, v, "must be no more than 100%");
      }
    }
  }
}

void ValidateCrd(const json& obj, Errors& errs) {
  const json& spec = Get(obj, "spec");
  const std::string group = GetString(spec, "group");
  const std::string plural = GetString(Get(spec, "names"), "plural");
  const std::string name = GetString(Get(obj, "metadata"), "name");
  if (group.empty()) errs.Required("spec.group");
  if (plural.empty()) errs.Required("spec.names.plural");
  if (GetString(Get(spec, "names"), "kind").empty()) errs.Required("spec.names.kind");
  if (!group.empty() && !plural.empty() && name != plural + "." + group) {
    errs.Invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group");
  }
  CheckEnum(spec, "scope", "spec", {"Cluster", "Namespaced"}, errs, true);
  const json& versions = Get(spec, "versions");
  if (!versions.is_array() || versions.empty()) {
    errs.Invalid("spec.versions", versions,
                 "must have exactly one version marked as storage version");
    return;
  }
  int storage = 0;
  for (const json& v : versions)
    storage += Get(v, "storage") == true ? 1 : 0;
  if (storage != 1) {
    errs.Invalid("spec.versions", versions,
                 "must have exactly one version marked as storage version");
  }
}

void ValidateBuiltin(const ValidationTarget& t, const json& obj, Errors& errs) {
  if (t.group.empty() && t.kind == "Pod") {
    ValidatePodSpec(Get(obj, "spec"), "spec", true, errs);
  } else if (t.group.empty() && t.kind == "ConfigMap") {
    ValidateConfigMap(obj, errs);
  } else if (t.group.empty() && t.kind == "Secret") {
    ValidateSecret(obj, errs);
  } else if (t.group == "policy" && t.kind == "PodDisruptionBudget") {
    ValidatePdb(obj, errs);
  } else if (t.group == "apiextensions.k8s.io" && t.kind == "CustomResourceDefinition") {
    ValidateCrd(obj, errs);
  } else if (t.group == "coordination.k8s.io" && t.kind == "Lease") {
    const json& duration = Get(Get(obj, "spec"), "leaseDurationSeconds");
    if (!duration.is_null() && (!duration.is_number_integer() || duration.get<int64_t>() <= 0)) {
      errs.Invalid("spec.leaseDurationSeconds", duration, "must be greater than 0");
    }
  } else if (t.group == "apps" && (t.kind == "Deployment" || t.kind == "ReplicaSet" ||
                                   t.kind == "StatefulSet" || t.kind == "DaemonSet")) {
    ValidatePodSpec(Get(Get(Get(obj, "spec"), "template"), "spec"), "spec.template.spec", true,
                    errs);
  }
}

// ---------------------------------------------------------------------------
// Structural schemas of custom resources (kube-openapi validate, as
// apiextensions-apiserver maps its results onto field errors).

// go-openapi runs its validators in this order on each value; we report in it
// so the output is stable (the real server's property order is Go map order).
enum Rank { kRankType = 0, kRankValue = 1, kRankEnum = 2, kRankRequired = 3 };

std::string Child(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

bool TypeMatches(const std::string& type, const json& v) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    const double d = v.get<double>();
    return std::isfinite(d) && d == std::floor(d);
  }
  return true;
}

std::string JsonTypeName(const json& v) {
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  return "null";
}

std::string NumberText(const json& v) {
  return GoValue(v);
}

class SchemaValidator {
 public:
  explicit SchemaValidator(Errors& errs) : errs_(errs) {}

  void Validate(const json& schema, const json& v, const std::string& path, int depth = 0) {
    if (!schema.is_object() || depth > 100) return;
    const bool int_or_string = Get(schema, "x-kubernetes-int-or-string") == true;
    const std::string type = GetString(schema, "type");
    if (v.is_null()) {
      if (Get(schema, "nullable") == true || type.empty()) return;
      Add(kRankType, ErrorType::kInvalid, path, v,
          Name(path) + " in body must be of type " + type + ": \"null\"");
      return;
    }
    if (int_or_string) {
      if (!v.is_string() && !TypeMatches("integer", v)) {
        Add(kRankType, ErrorType::kInvalid, path, v,
            Name(path) +
                " in body must be of type integer,string: " + json(JsonTypeName(v)).dump());
        return;
      }
    } else if (!type.empty() && !TypeMatches(type, v)) {
      Add(kRankType, ErrorType::kInvalid, path, v,
          Name(path) + " in body must be of type " + type + ": " + json(JsonTypeName(v)).dump());
      return;
    }
    if (v.is_string()) ValidateString(schema, v, path);
    if (v.is_number()) ValidateNumber(schema, v, path);
    if (v.is_array()) ValidateArray(schema, v, path, depth);
    if (const json& values = Get(schema, "enum"); values.is_array()) {
      if (std::find(values.begin(), values.end(), v) == values.end()) {
        std::vector<std::string> supported;
        for (const json& allowed : values) {
          supported.push_back(allowed.is_string() ? allowed.get<std::string>() : allowed.dump());
        }
        // kube-apiserver names the list, not the item, for an enum value in a
        // list ("spec.gpuModels: Unsupported value: \"T4\"").
        std::string where = path;
        if (!where.empty() && where.back() == ']') {
          if (const size_t open = where.rfind('['); open != std::string::npos) where.resize(open);
        }
        FieldError e{ErrorType::kNotSupported, where, v, "", kRankEnum};
        Errors tmp;
        tmp.NotSupported(where, v, supported);
        e.detail = tmp.list()[0].detail;
        errs_.Add(std::move(e));
      }
    }
    if (v.is_object()) ValidateObject(schema, v, path, depth);
  }

 private:
  static std::string Name(const std::string& path) { return path.empty() ? "." : path; }

  void Add(Rank rank, ErrorType type, const std::string& path, const json& v, std::string detail) {
    errs_.Add({type, path, v, std::move(detail), rank});
  }

  void ValidateString(const json& schema, const json& v, const std::string& path) {
    const std::string s = v.get<std::string>();
    // Lengths count runes, not bytes.
    const std::size_t runes = static_cast<std::size_t>(
        std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
    if (const json& max = Get(schema, "maxLength");
        max.is_number_integer() && runes > max.get<std::size_t>()) {
      Add(kRankValue, ErrorType::kInvalid, path, v,
          Name(path) + " in body should be at most " + max.dump() + " chars long");
    }
    if (const json& min = Get(schema, "minLength");
        min.is_number_integer() && runes < min.get<std::size_t>()) {
      Add(kRankValue, ErrorType::kInvalid, path, v,
          Name(path) + " in body should be at least " + min.dump() + " chars long");
    }
    if (const json& pattern = Get(schema, "pattern"); pattern.is_string()) {
      bool matched = true;
      try {
        const std::regex re(pattern.get<std::string>(), std::regex::ECMAScript);
        matched = std::regex_search(s, re);
      } catch (const std::regex_error&) {
        matched = true;  // a pattern we cannot compile is not the object's fault
      }
      if (!matched) {
        Add(kRankValue, ErrorType::kInvalid, path, v,
            Name(path) + " in body should match '" + pattern.get<std::string>() + "'");
      }
    }
  }

  void ValidateNumber(const json& schema, const json& v, const std::string& path) {
    const double d = v.get<double>();
    if (const json& max = Get(schema, "maximum"); max.is_number()) {
      const bool exclusive = Get(schema, "exclusiveMaximum") == true;
      if (exclusive ? d >= max.get<double>() : d > max.get<double>()) {
        Add(kRankValue, ErrorType::kInvalid, path, v,
            Name(path) + " in body should be less than " + (exclusive ? "" : "or equal to ") +
                NumberText(max));
      }
    }
    if (const json& min = Get(schema, "minimum"); min.is_number()) {
      const bool exclusive = Get(schema, "exclusiveMinimum") == true;
      if (exclusive ? d <= min.get<double>() : d < min.get<double>()) {
        Add(kRankValue, ErrorType::kInvalid, path, v,
            Name(path) + " in body should be greater than " + (exclusive ? "" : "or equal to ") +
                NumberText(min));
      }
    }
    if (const json& factor = Get(schema, "multipleOf"); factor.is_number()) {
      const double f = factor.get<double>();
      if (f > 0 && std::fabs(std::remainder(d, f)) > 1e-9) {
        Add(kRankValue, ErrorType::kInvalid, path, v,
            Name(path) + " in body should be a multiple of " + NumberText(factor));
      }
    }
  }

  void ValidateArray(const json& schema, const json& v, const std::string& path, int depth) {
    if (const json& max = Get(schema, "maxItems");
        max.is_number_integer() && v.size() > max.get<std::size_t>()) {
      Add(kRankValue, ErrorType::kInvalid, path, v,
          Name(path) + " in body should have at most " + max.dump() + " items");
    }
    if (const json& min = Get(schema, "minItems");
        min.is_number_integer() && v.size() < min.get<std::size_t>()) {
      Add(kRankValue, ErrorType::kInvalid, path, v,
          Name(path) + " in body should have at least " + min.dump() + " items");
    }
    if (Get(schema, "uniqueItems") == true) {
      std::set<std::string> seen;
      for (const json& e : v) {
        if (!seen.insert(e.dump()).second) {
          Add(kRankValue, ErrorType::kInvalid, path, v,
              Name(path) + " in body shouldn't contain duplicates");
          break;
        }
      }
    }
    const json& items = Get(schema, "items");
    if (items.is_object()) {
      for (std::size_t i = 0; i < v.size(); ++i)
        Validate(items, v[i], Index(path, i), depth + 1);
    }
  }

  void ValidateObject(const json& schema, const json& v, const std::string& path, int depth) {
    if (const json& max = Get(schema, "maxProperties");
        max.is_number_integer() && v.size() > max.get<std::size_t>()) {
      Add(kRankValue, ErrorType::kInvalid, path, v,
          Name(path) + " in body should have at most " + max.dump() + " properties");
    }
    if (const json& min = Get(schema, "minProperties");
        min.is_number_integer() && v.size() < min.get<std::size_t>()) {
      Add(kRankValue, ErrorType::kInvalid, path, v,
          Name(path) + " in body should have at least " + min.dump() + " properties");
    }
    if (const json& required = Get(schema, "required"); required.is_array()) {
      for (const json& name : required) {
        if (name.is_string() && !v.contains(name.get<std::string>())) {
          errs_.Add({ErrorType::kRequired, Child(path, name.get<std::string>()), nullptr, "",
                     kRankRequired});
        }
      }
    }
    const json& properties = Get(schema, "properties");
    const json& additional = Get(schema, "additionalProperties");
    for (const auto& [key, child] : v.items()) {
      if (path.empty() && (key == "apiVersion" || key == "kind" || key == "metadata")) continue;
      const json& property = Get(properties, key.c_str());
      if (property.is_object()) {
        Validate(property, child, Child(path, key), depth + 1);
      } else if (additional.is_object()) {
        Validate(additional, child, Child(path, key), depth + 1);
      }
    }
  }

  Errors& errs_;
};

void Prune(const json& schema, json& v, bool root, int depth) {
  if (!schema.is_object() || depth > 100) return;
  if (v.is_array()) {
    const json& items = Get(schema, "items");
    for (json& e : v)
      Prune(items, e, false, depth + 1);
    return;
  }
  if (!v.is_object()) return;
  const bool preserve = Get(schema, "x-kubernetes-preserve-unknown-fields") == true;
  const bool embedded = Get(schema, "x-kubernetes-embedded-resource") == true;
  const json& properties = Get(schema, "properties");
  const json& additional = Get(schema, "additionalProperties");
  for (auto it = v.begin(); it != v.end();) {
    const std::string& key = it.key();
    if ((root || embedded) && (key == "apiVersion" || key == "kind" || key == "metadata")) {
      ++it;
      continue;
    }
    const json& property = Get(properties, key.c_str());
    if (property.is_object()) {
      Prune(property, *it, false, depth + 1);
    } else if (additional.is_object()) {
      Prune(additional, *it, false, depth + 1);
    } else if (!preserve && additional != true) {
      it = v.erase(it);
      continue;
    }
    ++it;
  }
}

std::string NameOf(const json& obj) {
  return GetString(Get(obj, "metadata"), "name");
}

kube::Result<std::monostate> Finish(const ValidationTarget& t, const json& obj, Errors& errs) {
  if (errs.empty()) return std::monostate{};
  std::stable_sort(errs.list().begin(), errs.list().end(),
                   [](const FieldError& a, const FieldError& b) { return a.rank < b.rank; });
  return errs.ToInvalid(t.group, t.kind, NameOf(obj));
}

void ValidateCommon(const ValidationTarget& t, const json& obj, const json* crd_schema,
                    Errors& errs) {
  ValidateObjectMeta(t, obj, errs);
  if (crd_schema != nullptr) {
    SchemaValidator(errs).Validate(*crd_schema, obj, "");
  } else {
    ValidateBuiltin(t, obj, errs);
  }
}

}  // namespace

std::string ValidateDns1123Subdomain(std::string_view value) {
  std::vector<std::string> errors = Dns1123SubdomainErrors(value);
  return errors.empty() ? "" : errors.front();
}

std::string ValidateDns1123Label(std::string_view value) {
  std::vector<std::string> errors = Dns1123LabelErrors(value);
  return errors.empty() ? "" : errors.front();
}

kube::Result<std::monostate> ValidateCreate(const ValidationTarget& target, const json& obj,
                                            const json* crd_schema) {
  if (!obj.is_object()) {
    return kube::Error(kube::Error::Kind::kApi, 400, "BadRequest",
                       "the object is not a JSON object");
  }
  if (!GetString(Get(obj, "metadata"), "resourceVersion").empty()) {
    // What etcd3's store.Create answers; the real server returns it as a 500.
    return kube::Error(kube::Error::Kind::kApi, 500, "InternalError",
                       "Internal error occurred: resourceVersion should not be set on objects "
                       "to be created");
  }
  Errors errs;
  try {
    ValidateCommon(target, obj, crd_schema, errs);
  } catch (const json::exception& e) {
    errs.Invalid("", nullptr, e.what());
  }
  return Finish(target, obj, errs);
}

kube::Result<std::monostate> ValidateUpdate(const ValidationTarget& target, const json& old,
                                            const json& updated, const json* crd_schema) {
  if (!updated.is_object()) {
    return kube::Error(kube::Error::Kind::kApi, 400, "BadRequest",
                       "the object is not a JSON object");
  }
  Errors errs;
  try {
    ValidateObjectMetaUpdate(old, updated, errs);
    ValidateCommon(target, updated, crd_schema, errs);
    if (crd_schema == nullptr && target.group.empty() && target.kind == "Pod" &&
        target.subresource.empty()) {
      ValidatePodUpdate(old, updated, errs);
    }
  } catch (const json::exception& e) {
    errs.Invalid("", nullptr, e.what());
  }
  return Finish(target, updated, errs);
}

void PruneUnknownFields(const json& schema, json& obj) {
  try {
    Prune(schema, obj, true, 0);
  } catch (const json::exception&) {
  }
}

}  // namespace gpu_autoscaler::apiserver
