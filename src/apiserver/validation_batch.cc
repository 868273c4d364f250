// Validation of batch/v1 Jobs, as kube-apiserver v1.20 has it
// (pkg/apis/batch/validation: ValidateJob, ValidateJobUpdate).
#include "apiserver/validation_internal.h"
#include "kube/selector.h"

namespace gpu_autoscaler::apiserver::validation_internal {
namespace {

// fmt's %#v of a map[string]string: keys sorted.
std::string GoStringMap(const json& map) {
  std::string out = "map[string]string{";
  bool first = true;
  if (map.is_object()) {
    for (const auto& [key, value] : map.items()) {  // nlohmann keeps keys sorted
      out += (first ? "" : ", ") + json(key).dump() + ":" +
             json(value.is_string() ? value.get<std::string>() : value.dump()).dump();
      first = false;
    }
  }
  return out + "}";
}

// (*metav1.LabelSelector).String(), as the generated protobuf code writes it.
std::string GoLabelSelector(const json& selector) {
  if (!selector.is_object()) return "nil";
  std::string labels = "map[string]string{";
  if (const json& m = Get(selector, "matchLabels"); m.is_object()) {
    for (const auto& [key, value] : m.items())
      labels += key + ": " + (value.is_string() ? value.get<std::string>() : value.dump()) + ",";
  }
  labels += "}";
  std::string exprs = "[]LabelSelectorRequirement{";
  if (const json& e = Get(selector, "matchExpressions"); e.is_array()) {
    for (const json& r : e) {
      std::string values;
      if (const json& v = Get(r, "values"); v.is_array()) {
        for (const json& s : v)
          values += (values.empty() ? "" : " ") + (s.is_string() ? s.get<std::string>() : s.dump());
      }
      exprs += "LabelSelectorRequirement{Key:" + GetString(r, "key") +
               ",Operator:" + GetString(r, "operator") + ",Values:[" + values + "],},";
    }
  }
  exprs += "}";
  return "&LabelSelector{MatchLabels:" + labels + ",MatchExpressions:" + exprs + ",}";
}

std::map<std::string, std::string> LabelMap(const json& labels) {
  std::map<std::string, std::string> out;
  if (!labels.is_object()) return out;
  for (const auto& [key, value] : labels.items())
    if (value.is_string()) out.emplace(key, value.get<std::string>());
  return out;
}

// metav1.LabelSelectorAsSelector: nil selects nothing, {} everything; nullopt
// when it does not convert (then the real server skips the match checks).
std::optional<bool> SelectorMatches(const json& selector, const json& labels) {
  if (selector.is_null()) return false;
  auto parsed = kube::LabelSelector::FromJson(selector.dump());
  if (!parsed.ok()) return std::nullopt;
  return parsed->Matches(LabelMap(labels));
}

// unversionedvalidation.ValidateLabelSelector.
void ValidateLabelSelector(const json& selector, const std::string& path, Errors& errs) {
  if (!selector.is_object()) return;
  ValidateStringMap(Get(selector, "matchLabels"), path + ".matchLabels", true, errs);
  const json& exprs = Get(selector, "matchExpressions");
  if (!exprs.is_array()) return;
  for (std::size_t i = 0; i < exprs.size(); ++i) {
    const std::string at = Index(path + ".matchExpressions", i);
    const std::string op = GetString(exprs[i], "operator");
    const json& values = Get(exprs[i], "values");
    const std::size_t n = values.is_array() ? values.size() : 0;
    if (op == "In" || op == "NotIn") {
      if (n == 0)
        errs.Required(at + ".values", "must be specified when `operator` is 'In' or 'NotIn'");
    } else if (op == "Exists" || op == "DoesNotExist") {
      if (n > 0) {
        errs.Forbidden(at + ".values",
                       "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
      }
    } else {
      errs.Invalid(at + ".operator", op, "not a valid selector operator");
    }
    const std::string key = GetString(exprs[i], "key");
    for (const std::string& m : QualifiedNameErrors(key))
      errs.Invalid(at + ".key", key, m);
  }
}

void NonNegative(const json& spec, const char* field, Errors& errs) {
  const json& v = Get(spec, field);
  if (v.is_number() && v.get<double>() < 0) {
    errs.Invalid(std::string("spec.") + field, v, "must be greater than or equal to 0");
  }
}

// apivalidation.ValidateHasLabel on the pod template.
void HasTemplateLabel(const json& labels, const char* key, const std::string& want, Errors& errs) {
  const std::string path = Key("spec.template.metadata.labels", key);
  const json& got = Get(labels, key);
  if (got.is_null()) {
    errs.Required(path, "must be '" + want + "'");
  } else if (got != want) {
    FieldError e{ErrorType::kInvalid, path, labels, "must be '" + want + "'"};
    e.value_text = GoStringMap(labels);
    errs.Add(std::move(e));
  }
}

// ValidateGeneratedSelector: without manualSelector the template must carry
// controller-uid and job-name, and the selector must select them.
void ValidateGeneratedSelector(const json& obj, Errors& errs) {
  const json& spec = Get(obj, "spec");
  if (Get(spec, "manualSelector") == true) return;
  const json& meta = Get(obj, "metadata");
  const std::string uid = GetString(meta, "uid");
  const std::string name = GetString(meta, "name");
  if (uid.empty()) errs.Required("metadata.uid");
  const json& labels = Get(Get(Get(spec, "template"), "metadata"), "labels");
  HasTemplateLabel(labels, "controller-uid", uid, errs);
  HasTemplateLabel(labels, "job-name", name, errs);
  const json& selector = Get(spec, "selector");
  const json expected = {{"controller-uid", uid}, {"job-name", name}};
  if (SelectorMatches(selector, expected) == false) {
    FieldError e{ErrorType::kInvalid, "spec.selector", selector, "`selector` not auto-generated"};
    e.value_text = GoLabelSelector(selector);
    errs.Add(std::move(e));
  }
}

// ValidateJobSpec, with ValidatePodTemplateSpec (labels under
// spec.template.labels, as the real server names them).
void ValidateJobSpec(const json& spec, Errors& errs) {
  for (const char* field : {"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                            "ttlSecondsAfterFinished"}) {
    NonNegative(spec, field, errs);
  }
  const json& tmpl = Get(spec, "template");
  const json& tmpl_meta = Get(tmpl, "metadata");
  ValidateStringMap(Get(tmpl_meta, "labels"), "spec.template.labels", true, errs);
  ValidateStringMap(Get(tmpl_meta, "annotations"), "spec.template.annotations", false, errs);
  const json& pod_spec = Get(tmpl, "spec");
  ValidatePodSpec(pod_spec, "spec.template.spec", true, errs);
  const std::string restart = GetString(pod_spec, "restartPolicy");
  if (pod_spec.is_object() && restart != "OnFailure" && restart != "Never") {
    errs.NotSupported("spec.template.spec.restartPolicy", restart, {"OnFailure", "Never"});
  }
  const json& selector = Get(spec, "selector");
  if (selector.is_null()) {
    errs.Required("spec.selector");
  } else {
    ValidateLabelSelector(selector, "spec.selector", errs);
  }
  const json& labels = Get(tmpl_meta, "labels");
  if (SelectorMatches(selector, labels) == false) {
    FieldError e{ErrorType::kInvalid, "spec.template.metadata.labels", labels,
                 "`selector` does not match template `labels`"};
    e.value_text = GoStringMap(labels);
    errs.Add(std::move(e));
  }
}

void Immutable(const json& old_spec, const json& spec, const char* field, Errors& errs) {
  const json& was = Get(old_spec, field);
  const json& now = Get(spec, field);
  if (was == now) return;
  FieldError e{ErrorType::kInvalid, std::string("spec.") + field, now, "field is immutable"};
  if (std::string_view(field) == "selector") e.value_text = GoLabelSelector(now);
  errs.Add(std::move(e));
}

}  // namespace

void ValidateJob(const json& obj, Errors& errs) {
  ValidateGeneratedSelector(obj, errs);
  ValidateJobSpec(Get(obj, "spec"), errs);
}

void ValidateJobUpdate(const json& old_obj, const json& obj, Errors& errs) {
  const json& old_spec = Get(old_obj, "spec");
  const json& spec = Get(obj, "spec");
  for (const char* field : {"completions", "selector", "template"})
    Immutable(old_spec, spec, field, errs);
}

}  // namespace gpu_autoscaler::apiserver::validation_internal
