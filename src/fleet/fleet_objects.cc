#include "fleet/fleet_objects.h"

#include <map>

#include "api/annotations.h"
#include "kube/meta_time.h"
#include "kube/quantity.h"

namespace gpu_autoscaler::fleet {
namespace {

using nlohmann::json;

const json& Field(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::string Str(const json& obj, const char* key) {
  const json& v = Field(obj, key);
  return v.is_string() ? v.get<std::string>() : "";
}

std::map<std::string, std::string> StringMap(const json& obj) {
  std::map<std::string, std::string> out;
  if (!obj.is_object()) return out;
  for (const auto& [k, v] : obj.items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

std::optional<Clock::WallTime> Time(const json& obj, const char* key) {
  const std::string text = Str(obj, key);
  if (text.empty()) return std::nullopt;
  auto t = kube::ParseRfc3339(text);
  if (!t.ok()) return std::nullopt;
  return *t;
}

std::vector<ContainerSpec> Containers(const json& list) {
  std::vector<ContainerSpec> out;
  if (!list.is_array()) return out;
  for (const json& c : list) {
    if (Str(c, "name").empty()) continue;
    const json& resources = Field(c, "resources");
    std::string memory = Str(Field(resources, "limits"), "memory");
    if (memory.empty()) memory = Str(Field(resources, "requests"), "memory");
    auto bytes = kube::ParseQuantity(memory);
    out.push_back({Str(c, "name"), Str(c, "image"), bytes.ok() && *bytes > 0 ? *bytes : 0});
  }
  return out;
}

}  // namespace

Result<NodeSelection> NodeSelection::Parse(const std::string& annotation_selector,
                                           const std::string& label_selector) {
  NodeSelection s;
  Result<kube::LabelSelector> a = kube::LabelSelector::Parse(annotation_selector);
  if (!a.ok())
    return InvalidArgumentError("annotation selector \"" + annotation_selector +
                                "\": " + a.error().message());
  Result<kube::LabelSelector> l = kube::LabelSelector::Parse(label_selector);
  if (!l.ok())
    return InvalidArgumentError("label selector \"" + label_selector +
                                "\": " + l.error().message());
  s.annotations_ = std::move(*a);
  s.labels_ = std::move(*l);
  return s;
}

bool NodeSelection::Matches(const json& node) const {
  const json& meta = Field(node, "metadata");
  return annotations_.Matches(StringMap(Field(meta, "annotations"))) &&
         labels_.Matches(StringMap(Field(meta, "labels")));
}

NodeState NodeStateFromJson(const json& node, const NodeSelection& selection) {
  NodeState n;
  const json& meta = Field(node, "metadata");
  n.name = Str(meta, "name");
  n.uid = Str(meta, "uid");
  n.managed = !n.name.empty() && selection.Matches(node);
  const json& status = Field(node, "status");
  if (const json& conditions = Field(status, "conditions"); conditions.is_array()) {
    n.conditions = conditions;
    for (const json& c : conditions) {
      if (Str(c, "type") != "Ready") continue;
      n.ready = Str(c, "status") == "True";
      n.last_heartbeat = Time(c, "lastHeartbeatTime");
    }
  }
  if (const json& addresses = Field(status, "addresses"); addresses.is_array()) {
    for (const json& a : addresses)
      if (Str(a, "type") == "InternalIP" && n.internal_ip.empty())
        n.internal_ip = Str(a, "address");
  }
  return n;
}

LeaseState LeaseStateFromJson(const json& lease) {
  LeaseState l;
  const json& meta = Field(lease, "metadata");
  l.name = Str(meta, "name");
  l.renew_time = Time(Field(lease, "spec"), "renewTime");
  l.ours = Str(Field(meta, "labels"), kManagedByLabel) == kManagedByValue;
  return l;
}

PodState PodStateFromJson(const json& pod) {
  PodState p;
  const json& meta = Field(pod, "metadata");
  p.ns = Str(meta, "namespace");
  p.name = Str(meta, "name");
  p.uid = Str(meta, "uid");
  p.terminating = !Field(meta, "deletionTimestamp").is_null();
  p.usage_annotation =
      Str(Field(meta, "annotations"), std::string(api::kFleetUsageAnnotation).c_str());
  const json& spec = Field(pod, "spec");
  p.node = Str(spec, "nodeName");
  p.containers = Containers(Field(spec, "containers"));
  p.init_containers = Containers(Field(spec, "initContainers"));
  const json& status = Field(pod, "status");
  p.phase = Str(status, "phase");
  p.pod_ip = Str(status, "podIP");
  p.start_time = Time(status, "startTime");
  return p;
}

}  // namespace gpu_autoscaler::fleet
