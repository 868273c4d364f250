#include "controllers/checkpoint_configmap.h"

#include <nlohmann/json.hpp>

#include "api/resources.h"
#include "common/json_read.h"
#include "kube/error.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::controllers {

using nlohmann::json;

Result<std::optional<std::string>> ReadCheckpoint(kube::RestClient& client, const std::string& ns,
                                                  const std::string& name, const std::string& key) {
  auto cm = client.Get({kube::resources::kConfigMaps, ns, name});
  if (!cm.ok()) {
    if (kube::IsNotFound(cm.error())) return std::optional<std::string>();
    return cm.error().ToStatus();
  }
  const json data = cm->value("data", json::object());
  if (!data.is_object()) return std::optional<std::string>();
  auto it = data.find(key);
  if (it == data.end() || !it->is_string()) return std::optional<std::string>();
  return std::optional<std::string>(it->get<std::string>());
}

Status WriteCheckpoint(kube::RestClient& client, const CheckpointRef& ref,
                       const std::string& text) {
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata",
              {{"name", ref.name},
               {"namespace", ref.ns},
               {"labels", {{"app.kubernetes.io/managed-by", "gpu-autoscaler"}}},
               {"ownerReferences", json::array({{{"apiVersion", ref.owner.api_version},
                                                 {"kind", ref.owner.kind},
                                                 {"name", ref.owner.name},
                                                 {"uid", ref.owner.uid}}})}}},
             {"data", {{ref.key, text}}}};
  kube::ObjectRef object{kube::resources::kConfigMaps, ref.ns, ref.name};
  auto existing = client.Get(object);
  if (existing.ok()) {
    cm["metadata"]["resourceVersion"] =
        json_read::String(json_read::Object(*existing, "metadata"), "resourceVersion");
    auto replaced = client.Replace(object, cm);
    if (!replaced.ok()) return replaced.error().ToStatus();
    return Status::Ok();
  }
  if (!kube::IsNotFound(existing.error())) return existing.error().ToStatus();
  auto created = client.Create({kube::resources::kConfigMaps, ref.ns, ""}, cm);
  if (!created.ok()) return created.error().ToStatus();
  return Status::Ok();
}

}  // namespace gpu_autoscaler::controllers
