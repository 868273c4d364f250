// File: src/kube/node_view.h
//
// A trimmed, typed view of a v1 Node: identity, labels (GPU model, instance
// type, zone, capacity type), annotations (without kubectl's
// last-applied-configuration), taints, unschedulable, conditions (Ready),
// capacity and allocatable per resource parsed to integers, and addresses.
//
//   GPU_ASSIGN_OR_RETURN(NodeView node, DecodeNode(json));   // object_codec.h
//   if (node.ready() == ConditionStatus::kTrue && !node.unschedulable())
//     free_gpus += node.Allocatable("nvidia.com/gpu");
//
// Thread-safety: immutable after decoding; share as shared_ptr<const NodeView>.
// Move-only (string views point into the view's own arena).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "kube/view_types.h"

namespace gpu_autoscaler::kube {

enum class TaintEffect : uint8_t { kUnknown, kNoSchedule, kPreferNoSchedule, kNoExecute };
TaintEffect ParseTaintEffect(std::string_view s);
std::string_view TaintEffectName(TaintEffect e);

struct Taint {
  InternedString key;
  InternedString value;
  TaintEffect effect = TaintEffect::kUnknown;
};

struct NodeAddress {
  InternedString type;  // "InternalIP", "Hostname", ...
  std::string_view address;
};

// Well-known node labels.
namespace node_labels {
inline constexpr std::string_view kGpuProduct = "nvidia.com/gpu.product";
inline constexpr std::string_view kInstanceType = "node.kubernetes.io/instance-type";
inline constexpr std::string_view kInstanceTypeBeta = "beta.kubernetes.io/instance-type";
inline constexpr std::string_view kZone = "topology.kubernetes.io/zone";
inline constexpr std::string_view kZoneBeta = "failure-domain.beta.kubernetes.io/zone";
inline constexpr std::string_view kCapacityType = "karpenter.sh/capacity-type";
}  // namespace node_labels

class NodeView {
 public:
  NodeView() = default;
  NodeView(NodeView&&) noexcept = default;
  NodeView& operator=(NodeView&&) noexcept = default;
  NodeView(const NodeView&) = delete;
  NodeView& operator=(const NodeView&) = delete;

  std::string_view ns() const { return {}; }  // cluster-scoped
  std::string_view name() const { return name_.view(); }
  std::string_view uid() const { return uid_; }
  std::string_view resource_version() const { return resource_version_; }
  int64_t generation() const { return generation_; }
  int64_t creation_timestamp() const { return creation_timestamp_; }
  int64_t deletion_timestamp() const { return deletion_timestamp_; }
  std::span<const Label> labels() const { return labels_.span(); }
  std::optional<std::string_view> label(std::string_view key) const {
    return FindLabel(labels(), key);
  }
  std::span<const Annotation> annotations() const { return annotations_.span(); }
  std::optional<std::string_view> annotation(std::string_view key) const;
  std::string_view gpu_product() const;    // "" when unlabelled
  std::string_view instance_type() const;  // GA label, then beta
  std::string_view zone() const;           // GA label, then beta
  std::string_view capacity_type() const;  // "on-demand", "spot", ...

  std::string_view provider_id() const { return provider_id_; }
  bool unschedulable() const { return unschedulable_; }
  std::span<const Taint> taints() const { return taints_.span(); }
  std::span<const Condition> conditions() const { return conditions_.span(); }
  ConditionStatus ready() const { return ready_; }
  std::span<const ResourceQuantity> capacity() const { return capacity_.span(); }
  std::span<const ResourceQuantity> allocatable() const { return allocatable_.span(); }
  int64_t Capacity(std::string_view resource) const { return FindQuantity(capacity(), resource); }
  int64_t Allocatable(std::string_view resource) const {
    return FindQuantity(allocatable(), resource);
  }
  std::span<const NodeAddress> addresses() const { return addresses_.span(); }

 private:
  friend class NodeViewBuilder;

  InternedString name_;  // node names repeat in every pod's spec.nodeName
  std::string_view uid_;
  std::string_view resource_version_;
  std::string_view provider_id_;
  int64_t generation_ = 0;
  int64_t creation_timestamp_ = kNoTime;
  int64_t deletion_timestamp_ = kNoTime;
  bool unschedulable_ = false;
  ConditionStatus ready_ = ConditionStatus::kUnknown;
  PackedArray<Label> labels_;
  PackedArray<Annotation> annotations_;
  PackedArray<Taint> taints_;
  PackedArray<Condition> conditions_;
  PackedArray<ResourceQuantity> capacity_;
  PackedArray<ResourceQuantity> allocatable_;
  PackedArray<NodeAddress> addresses_;
  StringArena strings_;
};

}  // namespace gpu_autoscaler::kube
