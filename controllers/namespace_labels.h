// File: controllers/namespace_labels.h
//
// The labels of every Namespace in an informer's store, as namespace
// selectors (ClusterBudget's scope.namespaceSelector) read them: each
// namespace also carries kubernetes.io/metadata.name, whether or not the API
// server set it, as the webhook sees it.
//
//   cost::NamespaceLabelIndex index = NamespaceLabelsOf(namespaces->store());
//   const cost::LabelMap& labels = index["team-a"];
//
// Thread-safety: reads the store under its own lock; the result is a copy.
#pragma once

#include "cost/budget.h"
#include "kube/generic_object.h"
#include "kube/store.h"

namespace gpu_autoscaler::controllers {

cost::NamespaceLabelIndex NamespaceLabelsOf(const kube::Store<kube::GenericObject>& namespaces);

}  // namespace gpu_autoscaler::controllers
