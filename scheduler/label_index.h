// File: scheduler/label_index.h
//
// Placed pods by the values of the label keys that pods' rules select on,
// so that a pod with inter-pod rules (pod_topology.h) reads the pods its
// terms could select rather than every pod in the cluster. A key is indexed
// from the first time a selector asks for it (typically "app" or
// "app.kubernetes.io/name"), and kept up to date from then on; pods are not
// filed under keys no selector has used.
//
//   LabelIndex index;
//   if (!index.Indexed("app")) { index.AddKey("app"); for (pod...) index.Update(id, labels); }
//   index.Update(id, pod.labels());      // on every change; cheap when nothing moved
//   if (const auto* ids = index.Find("app", "web")) for (LabelIndex::Id id : *ids) ...
//   index.ForEachValue("app", [](const LabelIndex::Ids& ids) { ... });  // app exists
//   index.Remove(id);                    // before the pod's handle goes away
//
// An Id is the caller's handle for a pod, stable while the pod is filed.
// Thread-safety: none; the caller serialises every call (ClusterCache holds
// its lock).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "kube/view_types.h"

namespace gpu_autoscaler::scheduler {

class LabelIndex {
 public:
  using Id = const void*;
  using Ids = std::unordered_set<Id>;

  bool Indexed(std::string_view key) const;
  // Starts filing under `key`: pods filed before are not, until their next
  // Update (the caller updates every pod after adding a key).
  void AddKey(std::string_view key);
  // Files `id` under the values its labels give every indexed key, in place
  // of what it was filed under.
  void Update(Id id, std::span<const kube::Label> labels);
  void Remove(Id id);
  // The pods filed under key=value; null when none.
  const Ids* Find(std::string_view key, std::string_view value) const;
  // Calls fn(const Ids&) for each value filed under `key`: together, the
  // pods that carry the key.
  template <typename Fn>
  void ForEachValue(std::string_view key, Fn&& fn) const {
    if (const int k = KeyIndex(key); k >= 0) {
      for (const auto& [value, ids] : keys_[k].by_value)
        fn(ids);
    }
  }

  size_t keys() const { return keys_.size(); }
  size_t filed_pods() const { return filed_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Key {
    std::string name;
    std::unordered_map<std::string, Ids, Hash, std::equal_to<>> by_value{};
  };
  int KeyIndex(std::string_view key) const;
  void Unfile(Id id, const std::vector<std::pair<int, std::string>>& filing);

  std::vector<Key> keys_{};
  // What each pod is filed under: (index in keys_, value).
  std::unordered_map<Id, std::vector<std::pair<int, std::string>>> filed_{};
};

}  // namespace gpu_autoscaler::scheduler
