// File: src/kube/indexer.h
//
// Index functions for informer stores: each maps an object to the values it
// is filed under, so `store.ByIndex("spec.nodeName", "gpu-node-3")` finds
// every pod bound to that node without a scan.
//
//   store.AddIndex(kNodeNameIndex, PodNodeNameIndexFunc());
//   store.AddIndex(kLabelIndex, LabelIndexFunc<PodView>());
//   auto training = store.ByIndex(kLabelIndex, "app=trainer");
//
// Index functions run on the informer's dispatch thread under the store's
// write lock: keep them cheap and free of side effects.
//
// Thread-safety: the returned functions are stateless and reentrant.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace gpu_autoscaler::kube {

class PodView;

// Appends the index values of `obj` to `values`.
template <typename T>
using IndexFunc = std::function<void(const T& obj, std::vector<std::string>* values)>;

inline constexpr std::string_view kNamespaceIndex = "namespace";
inline constexpr std::string_view kNodeNameIndex = "spec.nodeName";
inline constexpr std::string_view kOwnerUidIndex = "metadata.ownerReferences.uid";
inline constexpr std::string_view kLabelIndex = "label";  // values "key=value"

// metadata.namespace (works for any type with ns()).
template <typename T>
IndexFunc<T> NamespaceIndexFunc() {
  return [](const T& obj, std::vector<std::string>* values) { values->emplace_back(obj.ns()); };
}

// One "key=value" per label (any type with labels()).
template <typename T>
IndexFunc<T> LabelIndexFunc() {
  return [](const T& obj, std::vector<std::string>* values) {
    for (const auto& l : obj.labels()) {
      std::string v;
      v.reserve(l.key.view().size() + 1 + l.value.view().size());
      v.append(l.key.view()).append("=").append(l.value.view());
      values->push_back(std::move(v));
    }
  };
}

// The uid of every owner reference (any type with owner_references()).
template <typename T>
IndexFunc<T> OwnerUidIndexFunc() {
  return [](const T& obj, std::vector<std::string>* values) {
    for (const auto& o : obj.owner_references())
      values->emplace_back(o.uid);
  };
}

// spec.nodeName of bound pods; unbound pods are not indexed.
IndexFunc<PodView> PodNodeNameIndexFunc();

}  // namespace gpu_autoscaler::kube
