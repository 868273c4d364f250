#include "apiserver/validation_internal.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace gpu_autoscaler::apiserver {
namespace {

using namespace validation_internal;  // NOLINT: the shared validation helpers

// ---------------------------------------------------------------------------
// Structural schemas of custom resources (kube-openapi validate, as
// apiextensions-apiserver maps its results onto field errors).

// go-openapi runs its validators in this order on each value; we report in it
// so the output is stable (the real server's property order is Go map order).
enum Rank { kRankType = 0, kRankValue = 1, kRankEnum = 2, kRankRequired = 3 };

std::string Child(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

// go-openapi's IsFloat64AJSONInteger as kube-apiserver v1.20 vendors it: whole
// within ±(2^53 − 1), or within a relative 1e-9 of the whole number below it.
bool IsFloat64AJsonInteger(double f) {
  constexpr double kMaxJsonInteger = 9007199254740991.0;  // 2^53 - 1
  if (!std::isfinite(f) || std::fabs(f) > kMaxJsonInteger) return false;
  if (f == std::trunc(f)) return true;
  // Go's uint64(f) of a negative float is not its truncation; the check fails.
  if (f < 0) return false;
  const double g = std::trunc(f);
  if (g == 0) return false;
  return (f - g) / (f + g) < 1e-9;
}

// Whether kube-apiserver's schema "integer" accepts the number: an int64, or a
// float64 that IsFloat64AJsonInteger accepts.
bool IsGoInteger(const json& v) {
  if (!v.is_number()) return false;
  return !HeldAsFloat64(v) || IsFloat64AJsonInteger(v.get<double>());
}

// Go's int64(f) on amd64: truncation, and the minimum int64 for NaN and
// anything out of range.
int64_t GoInt64(double f) {
  if (std::isnan(f) || f >= 9223372036854775808.0 || f < -9223372036854775808.0) {
    return std::numeric_limits<int64_t>::min();
  }
  return static_cast<int64_t>(f);
}

bool TypeMatches(const std::string& type, const json& v) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "number") return v.is_number();
  if (type == "integer") return IsGoInteger(v);
  return true;
}

std::string JsonTypeName(const json& v) {
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "boolean";
  if (v.is_number()) return HeldAsFloat64(v) ? "number" : "integer";
  return "null";
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

  // go-openapi's numberValidator as kube-apiserver runs it for a schema: it
  // is given neither the schema's type nor its format, so its range check of
  // the bound always passes, and a value held as an int64 is compared with
  // Go's int64(bound), which truncates; a float64 value is compared as a
  // float64. So, as in the real server, 1 satisfies `minimum: 1.5`, and a
  // factor below 1 truncates to 0 for an integer value.
  void ValidateNumber(const json& schema, const json& v, const std::string& path) {
    const bool native = !HeldAsFloat64(v);
    const int64_t i = native ? v.get<int64_t>() : 0;
    const double d = v.get<double>();
    for (const bool upper : {true, false}) {
      const json& bound = Get(schema, upper ? "maximum" : "minimum");
      if (!bound.is_number()) continue;
      const double m = bound.get<double>();
      const bool exclusive = Get(schema, upper ? "exclusiveMaximum" : "exclusiveMinimum") == true;
      const auto beyond = [&](auto value, auto limit) {
        if (upper) return exclusive ? value >= limit : value > limit;
        return exclusive ? value <= limit : value < limit;
      };
      std::string limit;
      if (native) {
        if (beyond(i, GoInt64(m))) limit = std::to_string(GoInt64(m));
      } else if (beyond(d, m)) {
        limit = GoFloat(m);
      }
      if (limit.empty()) continue;
      Add(kRankValue, ErrorType::kInvalid, path, v,
          Name(path) + " in body should be " + (upper ? "less" : "greater") + " than " +
              (exclusive ? "" : "or equal to ") + limit);
    }
    if (const json& factor = Get(schema, "multipleOf"); factor.is_number()) {
      const double f = factor.get<double>();
      const auto not_positive = [&](const json& shown, const std::string& text) {
        Add(kRankValue, ErrorType::kInvalid, path, shown,
            "factor MultipleOf declared for " + Name(path) + " must be positive: " + text);
      };
      const auto not_multiple = [&](const std::string& text) {
        Add(kRankValue, ErrorType::kInvalid, path, v,
            Name(path) + " in body should be a multiple of " + text);
      };
      if (native) {
        // v1.20 divides by int64(f) and panics at 0; kube-openapi since 2023
        // (kubernetes/kube-openapi#349) refuses a factor <= 0, as we do.
        const int64_t k = GoInt64(f);
        if (k <= 0) {
          not_positive(json(k), std::to_string(k));
        } else if (i % k != 0) {
          not_multiple(std::to_string(k));
        }
      } else if (f < 0) {
        not_positive(factor, GoFloat(f));
      } else if (!IsFloat64AJsonInteger(f < 1 ? 1 / f * d : d / f)) {
        not_multiple(GoFloat(f));  // go-openapi's MultipleOf: the quotient must be a JSON integer
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
    if (crd_schema == nullptr) ValidateBuiltinUpdate(target, old, updated, errs);
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
