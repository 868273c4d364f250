// File: src/kube/view_types.h
//
// Building blocks of the trimmed object views (PodView, NodeView): exact-size
// arrays, a per-object string arena, and the small records they hold (labels,
// conditions, resource quantities). They keep a cached object to a handful of
// allocations: no std::map, no per-string heap blocks, repeated strings
// interned (see interned_string.h).
//
//   for (const Label& l : pod.labels()) ...
//   int64_t gpus = FindQuantity(node.allocatable(), "nvidia.com/gpu");
//
// Thread-safety: immutable once built; safe to read from many threads.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "kube/interned_string.h"

namespace gpu_autoscaler::kube {

// A fixed-size array allocated to its exact length (16 bytes when empty).
template <typename T>
class PackedArray {
 public:
  PackedArray() = default;
  // Moves the elements out of `items` and clears it (keeping its capacity,
  // so decoders can reuse scratch vectors).
  explicit PackedArray(std::vector<T>* items) : size_(static_cast<uint32_t>(items->size())) {
    if (size_ != 0) {
      data_ = std::make_unique<T[]>(size_);
      for (uint32_t i = 0; i < size_; ++i)
        data_[i] = std::move((*items)[i]);
    }
    items->clear();
  }

  const T* begin() const { return data_.get(); }
  const T* end() const { return data_.get() + size_; }
  T* begin() { return data_.get(); }
  T* end() { return data_.get() + size_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const T& operator[](size_t i) const { return data_[i]; }
  std::span<const T> span() const { return {begin(), size_}; }

 private:
  std::unique_ptr<T[]> data_;
  uint32_t size_ = 0;
};

// One heap block holding every non-interned string of an object (name, uid,
// resourceVersion, annotation values, ...). Views hold string_views into it;
// the block does not move when the owning view is moved.
class StringArena {
 public:
  // Copies each string into one block and repoints the views at the copies.
  void Adopt(std::span<std::string_view* const> fields) {
    size_t total = 0;
    for (auto* f : fields)
      total += f->size();
    bytes_ = static_cast<uint32_t>(total);
    if (total == 0) return;
    data_ = std::make_unique_for_overwrite<char[]>(total);
    char* out = data_.get();
    for (auto* f : fields) {
      if (f->empty()) {
        *f = std::string_view();
        continue;
      }
      std::memcpy(out, f->data(), f->size());
      *f = std::string_view(out, f->size());
      out += f->size();
    }
  }
  size_t bytes() const { return bytes_; }

 private:
  std::unique_ptr<char[]> data_;
  uint32_t bytes_ = 0;
};

struct Label {
  InternedString key;
  InternedString value;
};

// Finds a key in labels (or any key/value list); nullopt when absent.
inline std::optional<std::string_view> FindLabel(std::span<const Label> labels,
                                                 std::string_view key) {
  for (const Label& l : labels) {
    if (l.key.view() == key) return l.value.view();
  }
  return std::nullopt;
}

// One requirement of a required node-affinity term
// (spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution).
// Terms are ORed, the requirements of one term ANDed. Values are interned
// together, joined by '\n', because pods of one workload repeat them.
struct NodeSelectorRequirement {
  uint16_t term = 0;   // index of the nodeSelectorTerm
  bool field = false;  // from matchFields (only metadata.name exists)
  InternedString key{};
  InternedString op{};      // In, NotIn, Exists, DoesNotExist, Gt, Lt
  InternedString values{};  // '\n'-joined
};

// Annotation values are often unique (checksums, JSON), so only keys are interned.
struct Annotation {
  InternedString key;
  std::string_view value;
};

enum class ConditionStatus : uint8_t { kUnknown, kTrue, kFalse };
ConditionStatus ParseConditionStatus(std::string_view s);
std::string_view ConditionStatusName(ConditionStatus s);

struct Condition {
  InternedString type;  // "Ready", "PodScheduled", ...
  ConditionStatus status = ConditionStatus::kUnknown;
  InternedString reason;  // "Unschedulable", "SchedulingGated", ...
};

// A resource amount parsed from a quantity: millicores for cpu, bytes for
// memory and storage, device counts for extended resources.
struct ResourceQuantity {
  InternedString name;  // "cpu", "memory", "nvidia.com/gpu", "nvidia.com/mig-1g.5gb"
  int64_t amount = 0;
};

// Amount of `name` in `list`, 0 when absent.
inline int64_t FindQuantity(std::span<const ResourceQuantity> list, std::string_view name) {
  for (const ResourceQuantity& q : list) {
    if (q.name.view() == name) return q.amount;
  }
  return 0;
}

struct OwnerReference {
  InternedString api_version;
  InternedString kind;
  std::string_view name;
  std::string_view uid;
  bool controller = false;
};

// Timestamps are Unix seconds; kNoTime marks an absent one.
inline constexpr int64_t kNoTime = INT64_MIN;

// Parses an RFC 3339 timestamp ("2026-11-22T08:17:35Z", fractions and
// offsets allowed) to Unix seconds; nullopt when malformed.
std::optional<int64_t> Rfc3339ToUnixSeconds(std::string_view text);

}  // namespace gpu_autoscaler::kube
