// Validation of the built-in kinds other than Pod.
#include "apiserver/validation_internal.h"

namespace gpu_autoscaler::apiserver::validation_internal {

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

}  // namespace gpu_autoscaler::apiserver::validation_internal
