#include "controllers/namespace_labels.h"

#include <string>

#include "api/annotations.h"

namespace gpu_autoscaler::controllers {

cost::NamespaceLabelIndex NamespaceLabelsOf(const kube::Store<kube::GenericObject>& namespaces) {
  cost::NamespaceLabelIndex index;
  for (const auto& ns : namespaces.List()) {
    cost::LabelMap& labels = index[std::string(ns->name())];
    for (const kube::Label& l : ns->labels())
      labels.emplace(std::string(l.key.view()), std::string(l.value.view()));
    labels.emplace(std::string(api::kNamespaceNameLabel), std::string(ns->name()));
  }
  return index;
}

}  // namespace gpu_autoscaler::controllers
