#include "kube/node_view.h"

namespace gpu_autoscaler::kube {

TaintEffect ParseTaintEffect(std::string_view s) {
  if (s == "NoSchedule") return TaintEffect::kNoSchedule;
  if (s == "PreferNoSchedule") return TaintEffect::kPreferNoSchedule;
  if (s == "NoExecute") return TaintEffect::kNoExecute;
  return TaintEffect::kUnknown;
}

std::string_view TaintEffectName(TaintEffect e) {
  switch (e) {
    case TaintEffect::kNoSchedule:
      return "NoSchedule";
    case TaintEffect::kPreferNoSchedule:
      return "PreferNoSchedule";
    case TaintEffect::kNoExecute:
      return "NoExecute";
    case TaintEffect::kUnknown:
      break;
  }
  return "";
}

std::optional<std::string_view> NodeView::annotation(std::string_view key) const {
  for (const Annotation& a : annotations_) {
    if (a.key.view() == key) return a.value;
  }
  return std::nullopt;
}

std::string_view NodeView::gpu_product() const {
  return label(node_labels::kGpuProduct).value_or("");
}

std::string_view NodeView::instance_type() const {
  auto ga = label(node_labels::kInstanceType);
  return ga ? *ga : label(node_labels::kInstanceTypeBeta).value_or("");
}

std::string_view NodeView::zone() const {
  auto ga = label(node_labels::kZone);
  return ga ? *ga : label(node_labels::kZoneBeta).value_or("");
}

std::string_view NodeView::capacity_type() const {
  return label(node_labels::kCapacityType).value_or("");
}

}  // namespace gpu_autoscaler::kube
