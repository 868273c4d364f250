// File: src/kube/pod_view.h
//
// A trimmed, typed, memory-lean view of a v1 Pod: what GPU controllers read
// (identity, labels, owners, placement, phase, conditions, and every
// container's requests and limits parsed to integers), nothing else. A
// typical GPU pod costs well under 2 KiB in an informer cache: repeated
// strings are interned, the rest live in one arena, and arrays are exact-size.
// The kubectl last-applied-configuration annotation (a copy of the spec) is
// dropped.
//
//   GPU_ASSIGN_OR_RETURN(PodView pod, DecodePod(json));   // object_codec.h
//   int64_t gpus = pod.Request("nvidia.com/gpu");
//   if (pod.phase() == PodPhase::kPending && pod.node_name().empty()) ...
//
// Amounts: cpu in millicores, memory/storage in bytes, extended resources
// (nvidia.com/gpu, nvidia.com/mig-1g.5gb, ...) in units.
//
// Thread-safety: immutable after decoding; share as shared_ptr<const PodView>.
// Move-only (string views point into the view's own arena).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "kube/view_types.h"

namespace gpu_autoscaler::kube {

enum class PodPhase : uint8_t { kUnknown, kPending, kRunning, kSucceeded, kFailed };
PodPhase ParsePodPhase(std::string_view s);
std::string_view PodPhaseName(PodPhase p);

struct ContainerResources {
  std::string_view name;
  PackedArray<ResourceQuantity> requests;
  PackedArray<ResourceQuantity> limits;
};

struct Toleration {
  InternedString key;
  InternedString op;  // "Equal" (default) or "Exists"
  InternedString value;
  InternedString effect;  // "" matches every effect
};

class PodView {
 public:
  PodView() = default;
  PodView(PodView&&) noexcept = default;
  PodView& operator=(PodView&&) noexcept = default;
  PodView(const PodView&) = delete;
  PodView& operator=(const PodView&) = delete;

  // metadata
  std::string_view ns() const { return ns_.view(); }
  std::string_view name() const { return name_; }
  std::string_view uid() const { return uid_; }
  std::string_view resource_version() const { return resource_version_; }
  int64_t generation() const { return generation_; }
  int64_t creation_timestamp() const { return creation_timestamp_; }  // Unix s, or kNoTime
  int64_t deletion_timestamp() const { return deletion_timestamp_; }  // Unix s, or kNoTime
  bool terminating() const { return deletion_timestamp_ != kNoTime; }
  std::span<const Label> labels() const { return labels_.span(); }
  std::span<const Annotation> annotations() const { return annotations_.span(); }
  std::span<const OwnerReference> owner_references() const { return owners_.span(); }
  std::optional<std::string_view> label(std::string_view key) const {
    return FindLabel(labels(), key);
  }
  std::optional<std::string_view> annotation(std::string_view key) const;
  // The owner with controller=true, or nullptr.
  const OwnerReference* controller_ref() const;
  // A pod that belongs to its node rather than being placed on it: a
  // DaemonSet's, or a static pod (its API mirror: controlled by the Node,
  // annotated kubernetes.io/config.mirror).
  bool belongs_to_node() const;

  // spec
  std::string_view node_name() const { return node_name_.view(); }
  std::string_view scheduler_name() const { return scheduler_name_.view(); }
  std::optional<int32_t> priority() const {
    return has_priority_ ? std::optional<int32_t>(priority_) : std::nullopt;
  }
  // spec.preemptionPolicy is Never: the pod waits rather than evicts.
  bool never_preempts() const { return never_preempts_; }
  std::span<const Label> node_selector() const { return node_selector_.span(); }
  std::span<const Toleration> tolerations() const { return tolerations_.span(); }
  // Required node affinity; empty when the pod has none. A term that decoded
  // to no requirement matches no node, as in kube-scheduler.
  std::span<const NodeSelectorRequirement> required_node_affinity() const {
    return node_affinity_.span();
  }
  int required_node_affinity_terms() const { return node_affinity_terms_; }
  // spec.affinity.podAffinity, .podAntiAffinity and spec.topologySpreadConstraints
  // as their JSON text, "" when absent: few pods have them, and only a
  // scheduler reads them (scheduler/pod_topology.h parses them).
  std::string_view pod_affinity_json() const { return pod_affinity_json_; }
  std::string_view pod_anti_affinity_json() const { return pod_anti_affinity_json_; }
  std::string_view topology_spread_json() const { return topology_spread_json_; }
  std::span<const ContainerResources> containers() const { return containers_.span(); }
  std::span<const ContainerResources> init_containers() const { return init_containers_.span(); }
  // spec.overhead (set from the pod's RuntimeClass at admission).
  std::span<const ResourceQuantity> overhead() const { return overhead_.span(); }

  // status
  PodPhase phase() const { return phase_; }
  // status.nominatedNodeName: where a scheduler preempted pods for this one.
  std::string_view nominated_node_name() const { return nominated_node_name_.view(); }
  int64_t start_time() const { return start_time_; }  // status.startTime, Unix s, or kNoTime
  std::span<const Condition> conditions() const { return conditions_.span(); }
  ConditionStatus condition(std::string_view type) const;

  // The pod's effective request for a resource, as the scheduler computes it:
  // max(sum over containers, max over init containers) + spec.overhead. 0
  // when not requested.
  int64_t Request(std::string_view resource) const;
  // Sum of container limits (init containers use the same max rule).
  int64_t Limit(std::string_view resource) const;

  // Bytes held outside the object itself (arena + arrays), for accounting.
  size_t OwnedBytes() const;

 private:
  friend class PodViewBuilder;

  InternedString ns_;
  std::string_view name_;
  std::string_view uid_;
  std::string_view resource_version_;
  int64_t generation_ = 0;
  int64_t creation_timestamp_ = kNoTime;
  int64_t deletion_timestamp_ = kNoTime;
  InternedString node_name_;
  InternedString scheduler_name_;
  int32_t priority_ = 0;
  bool has_priority_ = false;
  bool never_preempts_ = false;
  InternedString nominated_node_name_;
  int64_t start_time_ = kNoTime;
  PodPhase phase_ = PodPhase::kUnknown;
  PackedArray<Label> labels_;
  PackedArray<Annotation> annotations_;
  PackedArray<OwnerReference> owners_;
  PackedArray<Label> node_selector_;
  PackedArray<Toleration> tolerations_;
  PackedArray<NodeSelectorRequirement> node_affinity_;
  int node_affinity_terms_ = 0;
  std::string_view pod_affinity_json_;
  std::string_view pod_anti_affinity_json_;
  std::string_view topology_spread_json_;
  PackedArray<ContainerResources> containers_;
  PackedArray<ContainerResources> init_containers_;
  PackedArray<ResourceQuantity> overhead_;
  PackedArray<Condition> conditions_;
  StringArena strings_;
};

}  // namespace gpu_autoscaler::kube
