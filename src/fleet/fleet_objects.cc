#include "fleet/fleet_objects.h"

#include <map>

#include "api/annotations.h"
#include "common/json_read.h"
#include "kube/meta_time.h"
#include "kube/quantity.h"

namespace gpu_autoscaler::fleet {
namespace {

using nlohmann::json;

std::map<std::string, std::string> StringMap(const json& obj) {
  std::map<std::string, std::string> out;
  if (!obj.is_object()) return out;
  for (const auto& [k, v] : obj.items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

std::optional<Clock::WallTime> Time(const json& obj, const char* key) {
  const std::string text = json_read::String(obj, key);
  if (text.empty()) return std::nullopt;
  auto t = kube::ParseRfc3339(text);
  if (!t.ok()) return std::nullopt;
  return *t;
}

std::vector<ContainerSpec> Containers(const json& list) {
  std::vector<ContainerSpec> out;
  if (!list.is_array()) return out;
  for (const json& c : list) {
    if (json_read::String(c, "name").empty()) continue;
    const json& resources = json_read::Member(c, "resources");
    std::string memory = json_read::String(json_read::Member(resources, "limits"), "memory");
    if (memory.empty())
      memory = json_read::String(json_read::Member(resources, "requests"), "memory");
    auto bytes = kube::ParseQuantity(memory);
    out.push_back({json_read::String(c, "name"), json_read::String(c, "image"),
                   bytes.ok() && *bytes > 0 ? *bytes : 0});
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
  const json& meta = json_read::Member(node, "metadata");
  return annotations_.Matches(StringMap(json_read::Member(meta, "annotations"))) &&
         labels_.Matches(StringMap(json_read::Member(meta, "labels")));
}

NodeState NodeStateFromJson(const json& node, const NodeSelection& selection) {
  NodeState n;
  const json& meta = json_read::Member(node, "metadata");
  n.name = json_read::String(meta, "name");
  n.uid = json_read::String(meta, "uid");
  n.managed = !n.name.empty() && selection.Matches(node);
  const json& status = json_read::Member(node, "status");
  if (const json& conditions = json_read::Member(status, "conditions"); conditions.is_array()) {
    n.conditions = conditions;
    for (const json& c : conditions) {
      if (json_read::String(c, "type") != "Ready") continue;
      n.ready = json_read::String(c, "status") == "True";
      n.last_heartbeat = Time(c, "lastHeartbeatTime");
    }
  }
  if (const json& addresses = json_read::Member(status, "addresses"); addresses.is_array()) {
    for (const json& a : addresses)
      if (json_read::String(a, "type") == "InternalIP" && n.internal_ip.empty())
        n.internal_ip = json_read::String(a, "address");
  }
  return n;
}

LeaseState LeaseStateFromJson(const json& lease) {
  LeaseState l;
  const json& meta = json_read::Member(lease, "metadata");
  l.name = json_read::String(meta, "name");
  l.renew_time = Time(json_read::Member(lease, "spec"), "renewTime");
  l.ours = json_read::String(json_read::Member(meta, "labels"), kManagedByLabel) == kManagedByValue;
  return l;
}

PodState PodStateFromJson(const json& pod) {
  PodState p;
  const json& meta = json_read::Member(pod, "metadata");
  p.ns = json_read::String(meta, "namespace");
  p.name = json_read::String(meta, "name");
  p.uid = json_read::String(meta, "uid");
  p.terminating = !json_read::Member(meta, "deletionTimestamp").is_null();
  p.usage_annotation = json_read::String(json_read::Member(meta, "annotations"),
                                         std::string(api::kFleetUsageAnnotation).c_str());
  const json& spec = json_read::Member(pod, "spec");
  p.node = json_read::String(spec, "nodeName");
  p.containers = Containers(json_read::Member(spec, "containers"));
  p.init_containers = Containers(json_read::Member(spec, "initContainers"));
  const json& status = json_read::Member(pod, "status");
  p.phase = json_read::String(status, "phase");
  p.pod_ip = json_read::String(status, "podIP");
  p.start_time = Time(status, "startTime");
  return p;
}

}  // namespace gpu_autoscaler::fleet
