// Validation of the built-in kinds other than Pod.
#include "apiserver/validation_internal.h"

#include "apiserver/priority_admission.h"

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

// validateNodeTaints (pkg/apis/core/validation): key and value as a label's,
// a supported effect, and unique by key and effect.
void ValidateTaints(const json& taints, const std::string& path, Errors& errs) {
  if (!taints.is_array()) return;
  std::set<std::pair<std::string, std::string>> seen;
  for (std::size_t i = 0; i < taints.size(); ++i) {
    const json& taint = taints[i];
    const std::string at = Index(path, i);
    const std::string key = GetString(taint, "key");
    for (const std::string& m : QualifiedNameErrors(key))
      errs.Invalid(at + ".key", key, m);
    const std::string value = GetString(taint, "value");
    std::vector<std::string> value_errors = LabelValueErrors(value);
    if (!value_errors.empty()) {
      std::string joined;
      for (const std::string& m : value_errors)
        joined += (joined.empty() ? "" : ";") + m;
      errs.Invalid(at + ".value", value, joined);
    }
    const std::string effect = GetString(taint, "effect");
    if (effect.empty()) {
      errs.Required(at + ".effect");
    } else if (effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute") {
      errs.NotSupported(at + ".effect", effect, {"NoSchedule", "PreferNoSchedule", "NoExecute"});
    }
    if (!seen.insert({effect, key}).second) {
      errs.Add({ErrorType::kDuplicate, at, taint, "taints must be unique by key and effect pair"});
    }
  }
}

// ValidateResourceQuantityValue for a capacity or allocatable list.
void ValidateResourceList(const json& list, const std::string& path, Errors& errs) {
  if (!list.is_object()) return;
  for (const auto& [name, value] : list.items()) {
    if (!value.is_string()) continue;
    const std::string text = value.get<std::string>();
    if (!text.empty() && text[0] == '-') {
      errs.Invalid(Key(path, name), text, "must be greater than or equal to 0");
    }
  }
}

void ValidateNode(const json& obj, Errors& errs) {
  const json& spec = Get(obj, "spec");
  ValidateTaints(Get(spec, "taints"), "spec.taints", errs);
  const json& cidrs = Get(spec, "podCIDRs");
  if (cidrs.is_array() && cidrs.size() > 2) {
    errs.Invalid("spec.podCIDRs", cidrs, "may specify no more than one CIDR for each IP family");
  }
  const json& status = Get(obj, "status");
  ValidateResourceList(Get(status, "capacity"), "status.capacity", errs);
  ValidateResourceList(Get(status, "allocatable"), "status.allocatable", errs);
}

// ValidateLeaseSpec (pkg/apis/coordination/validation).
void ValidateLease(const json& obj, Errors& errs) {
  const json& spec = Get(obj, "spec");
  const json& duration = Get(spec, "leaseDurationSeconds");
  if (!duration.is_null() && (!duration.is_number_integer() || duration.get<int64_t>() <= 0)) {
    errs.Invalid("spec.leaseDurationSeconds", duration, "must be greater than 0");
  }
  const json& transitions = Get(spec, "leaseTransitions");
  if (!transitions.is_null() &&
      (!transitions.is_number_integer() || transitions.get<int64_t>() < 0)) {
    errs.Invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0");
  }
}

// legacyValidateEvent (pkg/apis/core/validation/events.go, v1.20): an Event
// without eventTime must name the namespace it lives in (or none, from the
// default namespace); a "new" Event with eventTime needs its reporting
// fields, action and reason, each within its length limit.
void ValidateEvent(const json& obj, Errors& errs) {
  const std::string ns = GetString(Get(obj, "metadata"), "namespace");
  const std::string involved_ns = GetString(Get(obj, "involvedObject"), "namespace");
  const json& event_time = Get(obj, "eventTime");
  const bool new_style = event_time.is_string() && !event_time.get<std::string>().empty();
  if (!new_style) {
    if (involved_ns.empty() ? (!ns.empty() && ns != "default") : ns != involved_ns) {
      errs.Invalid("involvedObject.namespace", involved_ns, "does not match event.namespace");
    }
  } else {
    if (involved_ns.empty() && ns != "kube-system") {
      errs.Invalid("involvedObject.namespace", involved_ns, "does not match event.namespace");
    }
    const std::string controller = GetString(obj, "reportingComponent");
    if (controller.empty()) errs.Required("reportingController");
    for (const std::string& m : QualifiedNameErrors(controller)) {
      if (!controller.empty()) errs.Invalid("reportingController", controller, m);
    }
    const std::string instance = GetString(obj, "reportingInstance");
    if (instance.empty()) errs.Required("reportingInstance");
    if (instance.size() > 128)
      errs.Invalid("reportingInstance", "", "can have at most 128 characters");
    const std::string action = GetString(obj, "action");
    if (action.empty()) errs.Required("action");
    if (action.size() > 128) errs.Invalid("action", "", "can have at most 128 characters");
    const std::string reason = GetString(obj, "reason");
    if (reason.empty()) errs.Required("reason");
    if (reason.size() > 128) errs.Invalid("reason", "", "can have at most 128 characters");
    if (GetString(obj, "message").size() > 1024) {
      errs.Invalid("message", "", "can have at most 1024 characters");
    }
  }
}

// ValidatePriorityClass (pkg/apis/scheduling/validation).
void ValidatePriorityClass(const json& obj, Errors& errs) {
  const std::string name = GetString(Get(obj, "metadata"), "name");
  const json& value = Get(obj, "value");
  const int64_t v = value.is_number_integer() ? value.get<int64_t>() : 0;
  if (name.starts_with(kSystemPriorityClassPrefix)) {
    const std::string why = SystemPriorityClassError(name, v, Get(obj, "globalDefault") == true);
    if (!why.empty()) {
      errs.Forbidden("metadata.name",
                     "priority class names with '" + std::string(kSystemPriorityClassPrefix) +
                         "' prefix are reserved for system use only. error: " + why);
    }
  } else if (v > kHighestUserDefinablePriority) {
    errs.Forbidden("value", "maximum allowed value of a user defined priority is " +
                                std::to_string(kHighestUserDefinablePriority));
  }
  // ValidatePreemptionPolicy, when set.
  const json& policy = Get(obj, "preemptionPolicy");
  if (policy.is_string() && policy.get<std::string>().empty()) {
    errs.Required("preemptionPolicy");
  } else if (!policy.is_null() && policy != "PreemptLowerPriority" && policy != "Never") {
    errs.NotSupported("preemptionPolicy", policy, {"PreemptLowerPriority", "Never"});
  }
}

// ValidatePriorityClassUpdate: value and preemptionPolicy are immutable.
void ValidatePriorityClassUpdate(const json& old_obj, const json& obj, Errors& errs) {
  if (Get(old_obj, "value") != Get(obj, "value")) {
    errs.Forbidden("value", "may not be changed in an update.");
  }
  const json& policy = Get(obj, "preemptionPolicy");
  if (Get(old_obj, "preemptionPolicy") != policy) {
    errs.Invalid("preemptionPolicy", policy, "field is immutable");
  }
}

void ValidateBuiltinUpdate(const ValidationTarget& t, const json& old_obj, const json& obj,
                           Errors& errs) {
  if (t.group == "batch" && t.kind == "Job" && t.subresource.empty()) {
    ValidateJobUpdate(old_obj, obj, errs);
    return;
  }
  if (t.group == "scheduling.k8s.io" && t.kind == "PriorityClass") {
    ValidatePriorityClassUpdate(old_obj, obj, errs);
    return;
  }
  if (!(t.group.empty() && t.kind == "Node")) return;
  const json& old_spec = Get(old_obj, "spec");
  const json& spec = Get(obj, "spec");
  const std::string old_provider = GetString(old_spec, "providerID");
  if (!old_provider.empty() && old_provider != GetString(spec, "providerID")) {
    errs.Forbidden("spec.providerID",
                   "node updates may not change providerID except from \"\" to valid");
  }
  const json& old_cidrs = Get(old_spec, "podCIDRs");
  if (old_cidrs.is_array() && !old_cidrs.empty() && old_cidrs != Get(spec, "podCIDRs")) {
    errs.Forbidden("spec.podCIDRs",
                   "node updates may not change podCIDR except from \"\" to valid");
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
    ValidateLease(obj, errs);
  } else if (t.group.empty() && t.kind == "Node") {
    ValidateNode(obj, errs);
  } else if (t.group.empty() && t.kind == "Event") {
    ValidateEvent(obj, errs);
  } else if (t.group == "scheduling.k8s.io" && t.kind == "PriorityClass") {
    ValidatePriorityClass(obj, errs);
  } else if (t.group == "batch" && t.kind == "Job") {
    ValidateJob(obj, errs);
  } else if (t.group == "apps" && (t.kind == "Deployment" || t.kind == "ReplicaSet" ||
                                   t.kind == "StatefulSet" || t.kind == "DaemonSet")) {
    ValidatePodSpec(Get(Get(Get(obj, "spec"), "template"), "spec"), "spec.template.spec", true,
                    errs);
  }
}

}  // namespace gpu_autoscaler::apiserver::validation_internal
