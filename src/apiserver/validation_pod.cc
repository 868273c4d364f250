// Pod validation on create and update (k8s.io/kubernetes pkg/apis/core/validation).
#include "apiserver/validation_internal.h"

namespace gpu_autoscaler::apiserver::validation_internal {

// ---------------------------------------------------------------------------
// Pod.

bool OneOf(const std::string& v, std::initializer_list<const char*> values) {
  return std::any_of(values.begin(), values.end(), [&](const char* s) { return v == s; });
}

void CheckEnum(const json& obj, const char* key, const std::string& path,
               std::initializer_list<const char*> values, Errors& errs, bool required) {
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

}  // namespace gpu_autoscaler::apiserver::validation_internal
