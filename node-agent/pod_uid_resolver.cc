#include "node-agent/pod_uid_resolver.h"

#include <nlohmann/json.hpp>

#include "kube/resource.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::node_agent {

using nlohmann::json;

PodUidResolver::PodUidResolver(kube::RestClient& client, PodUidResolverOptions options)
    : client_(client), options_(std::move(options)) {}

uint64_t PodUidResolver::lists() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lists_;
}

std::optional<ResolvedPod> PodUidResolver::Resolve(std::string_view uid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_uid_.find(uid); it != by_uid_.end()) return it->second;
  const auto now = options_.clock->Now();
  if (last_list_ && now - *last_list_ < options_.min_relist_interval) return std::nullopt;
  last_list_ = now;
  ++lists_;
  auto list = client_.List({kube::resources::kPods, ""},
                           {.field_selector = "spec.nodeName=" + options_.node_name});
  if (!list.ok()) return std::nullopt;
  std::map<std::string, ResolvedPod, std::less<>> next;
  for (const json& item : list->value("items", json::array())) {
    const json& meta = item.value("metadata", json::object());
    ResolvedPod pod{.namespace_name = meta.value("namespace", ""), .name = meta.value("name", "")};
    const json& status = item.value("status", json::object());
    for (const char* key : {"containerStatuses", "initContainerStatuses"}) {
      for (const json& cs : status.value(key, json::array())) {
        std::string id = cs.value("containerID", "");
        if (size_t scheme = id.find("://"); scheme != std::string::npos) id = id.substr(scheme + 3);
        if (!id.empty()) pod.container_names[id] = cs.value("name", "");
      }
    }
    const json& annotations = meta.value("annotations", json::object());
    if (auto mirror = annotations.find("kubernetes.io/config.mirror");
        mirror != annotations.end() && mirror->is_string()) {
      next[mirror->get<std::string>()] = pod;
    }
    const std::string pod_uid = meta.value("uid", "");
    if (!pod_uid.empty()) next[pod_uid] = std::move(pod);
  }
  by_uid_ = std::move(next);
  if (auto it = by_uid_.find(uid); it != by_uid_.end()) return it->second;
  return std::nullopt;
}

}  // namespace gpu_autoscaler::node_agent
