#include "scheduler/pod_group.h"

#include <charconv>
#include <optional>

#include "api/annotations.h"

namespace gpu_autoscaler::scheduler {

PodGroupRef PodGroupOf(const kube::PodView& pod) {
  PodGroupRef ref;
  std::optional<std::string_view> group = pod.annotation(api::kPodGroupAnnotation);
  if (!group || group->empty()) group = pod.annotation(api::kVolcanoPodGroupAnnotation);
  if (!group || group->empty()) return ref;
  ref.name = std::string(*group);
  ref.key = std::string(pod.ns()) + "/" + ref.name;
  if (std::optional<std::string_view> min = pod.annotation(api::kPodGroupMinMemberAnnotation)) {
    int value = 0;
    auto [end, ec] = std::from_chars(min->data(), min->data() + min->size(), value);
    if (ec != std::errc() || end != min->data() + min->size() || value < 1) {
      ref.error = std::string(api::kPodGroupMinMemberAnnotation) + "=\"" + std::string(*min) +
                  "\" is not a positive integer";
    } else {
      ref.min_member = value;
    }
  }
  return ref;
}

}  // namespace gpu_autoscaler::scheduler
