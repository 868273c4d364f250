#include "kube/store.h"

#include "kube/pod_view.h"

namespace gpu_autoscaler::kube {

std::string ObjectKey(std::string_view ns, std::string_view name) {
  std::string key;
  if (ns.empty()) {
    key.assign(name);
    return key;
  }
  key.reserve(ns.size() + 1 + name.size());
  key.append(ns).append("/").append(name);
  return key;
}

IndexFunc<PodView> PodNodeNameIndexFunc() {
  return [](const PodView& pod, std::vector<std::string>* values) {
    if (!pod.node_name().empty()) values->emplace_back(pod.node_name());
  };
}

}  // namespace gpu_autoscaler::kube
