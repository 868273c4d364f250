// batch/v1 Job defaulting, as kube-apiserver v1.20 has it.
#include "apiserver/defaults_batch.h"

#include <string>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::apiserver::defaults_internal {
namespace {

using json = nlohmann::json;

bool Unset(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null();
}

// obj[key] as an object, created when missing or null; null when it holds
// something else (validation reports that).
json* ObjectAt(json& obj, const char* key) {
  if (Unset(obj, key)) obj[key] = json::object();
  json& v = obj[key];
  return v.is_object() ? &v : nullptr;
}

bool EmptyMap(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() || (it->is_object() && it->empty());
}

const json* TemplateLabels(const json& spec) {
  auto tmpl = spec.find("template");
  if (tmpl == spec.end() || !tmpl->is_object()) return nullptr;
  auto meta = tmpl->find("metadata");
  if (meta == tmpl->end() || !meta->is_object()) return nullptr;
  auto labels = meta->find("labels");
  return labels != meta->end() && labels->is_object() ? &*labels : nullptr;
}

// `labels != nil && len(obj.Labels) == 0`: the object takes the template's.
void CopyTemplateLabels(json& job) {
  const json* spec = job.is_object() && job.contains("spec") ? &job["spec"] : nullptr;
  if (spec == nullptr || !spec->is_object()) return;
  const json* labels = TemplateLabels(*spec);
  if (labels == nullptr || labels->empty()) return;
  json* meta = ObjectAt(job, "metadata");
  if (meta == nullptr || !EmptyMap(*meta, "labels")) return;
  (*meta)["labels"] = *labels;
}

}  // namespace

void DecodeDefaultsJob(json& job) {
  json* spec = ObjectAt(job, "spec");
  if (spec == nullptr) return;
  if (Unset(*spec, "completions") && Unset(*spec, "parallelism")) {
    (*spec)["completions"] = 1;
    (*spec)["parallelism"] = 1;
  }
  if (Unset(*spec, "parallelism")) (*spec)["parallelism"] = 1;
  if (Unset(*spec, "backoffLimit")) (*spec)["backoffLimit"] = 6;
  CopyTemplateLabels(job);
}

void GenerateJobSelector(json& job) {
  if (!job.is_object()) return;
  json* spec = ObjectAt(job, "spec");
  if (spec == nullptr) return;
  if (spec->value("manualSelector", false) == true) return;
  const json meta = job.value("metadata", json::object());
  const std::string uid = meta.is_object() ? meta.value("uid", "") : "";
  const std::string name = meta.is_object() ? meta.value("name", "") : "";
  json* tmpl = ObjectAt(*spec, "template");
  json* tmpl_meta = tmpl != nullptr ? ObjectAt(*tmpl, "metadata") : nullptr;
  json* labels = tmpl_meta != nullptr ? ObjectAt(*tmpl_meta, "labels") : nullptr;
  if (labels != nullptr) {
    if (!labels->contains("job-name")) (*labels)["job-name"] = name;
    if (!labels->contains("controller-uid")) (*labels)["controller-uid"] = uid;
  }
  json* selector = ObjectAt(*spec, "selector");
  json* match = selector != nullptr ? ObjectAt(*selector, "matchLabels") : nullptr;
  if (match != nullptr && !match->contains("controller-uid")) (*match)["controller-uid"] = uid;
  CopyTemplateLabels(job);
}

}  // namespace gpu_autoscaler::apiserver::defaults_internal
