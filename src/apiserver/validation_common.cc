// Field errors, name rules and ObjectMeta validation, as kube-apiserver v1.20 has them.
#include "apiserver/validation_internal.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace gpu_autoscaler::apiserver::validation_internal {

// ---------------------------------------------------------------------------
// field.Error (k8s.io/apimachinery/pkg/util/validation/field).

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

// Go's %v of a float64: strconv.FormatFloat(d, 'g', -1, 64), the shortest
// digits that read back as d, in %e form when the exponent is below -4 or at
// least 6 (so 50, 1.5, 1e+06, 1.234567e+06, 1e-05).
std::string GoFloat(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  if (ec != std::errc()) return "?";
  const std::string_view scientific(buf, static_cast<size_t>(end - buf));
  const size_t e = scientific.find('e');
  int exponent = 0;
  std::from_chars(scientific.data() + e + (scientific[e + 1] == '+' ? 2 : 1),
                  scientific.data() + scientific.size(), exponent);
  if (exponent < -4 || exponent >= 6) return std::string(scientific);
  // Below 1e6 the shortest fixed form has the same digits.
  const std::to_chars_result fixed =
      std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::fixed);
  return std::string(buf, static_cast<size_t>(fixed.ptr - buf));
}

bool HeldAsFloat64(const json& v) {
  return v.is_number_float() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX);
}

// Go's %v / %q rendering of a decoded JSON value.
std::string GoValue(const json& v) {
  if (v.is_string()) return json(v.get<std::string>()).dump();
  if (HeldAsFloat64(v)) return GoFloat(v.get<double>());
  if (v.is_null()) return "<nil>";
  return v.dump();
}

std::string ErrorBody(const FieldError& e) {
  std::string s = TypeText(e.type);
  if (e.type != ErrorType::kRequired && e.type != ErrorType::kForbidden &&
      e.type != ErrorType::kTooLong) {
    s += ": " + (e.value_text.empty() ? GoValue(e.value) : e.value_text);
  }
  if (!e.detail.empty()) s += ": " + e.detail;
  return s;
}

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

kube::Error Errors::ToInvalid(const std::string& group, const std::string& kind,
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

}  // namespace gpu_autoscaler::apiserver::validation_internal
