// File: bench/soak_cluster.h
//
// The synthetic cluster the manager soak (bench/manager_soak.cc) loads and
// churns: GPU nodes of the instance types in the pricing catalogue compiled
// into gpa_cost, one in four time-sliced (nvidia.com/gpu advertises 4
// replicas per GPU, as the NVIDIA device plugin does without
// renameByDefault), and pods in fixed slots per node. A node's first slots
// hold GPU pods (one GPU, or one time-sliced replica annotated as the
// admission webhook would), the rest are CPU-only pods. Churn replaces the pod
// of a slot by one of the same shape under a new name, so occupancy stays
// exact while every pod object changes.
//
//   auto shapes = CatalogueGpuShapes();
//   SoakCluster cluster(*shapes, 5000, 150000, 200);
//   client->Create({kube::resources::kNodes}, cluster.NodeObject(0));
//   client->Create({kube::resources::kPods, cluster.PodNamespace(7)}, cluster.PodObject(7));
//   cluster.Replace(7);  // the next PodObject(7) has a new name
//
// Thread-safety: const members may be called from many threads; Replace and
// SetNodeHealth must not run concurrently with anything touching the same slot
// or node.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gpu_autoscaler::bench {

struct NodeShape {
  std::string instance_type{};
  std::string gpu_model{};
  int gpus = 0;
  double vcpus = 0;
  double memory_gib = 0;
};

// Every catalogue instance type with GPUs, in catalogue order.
Result<std::vector<NodeShape>> CatalogueGpuShapes();

inline constexpr int kTimeSlicingReplicas = 4;
inline constexpr const char* kSharingPolicyName = "notebooks";

class SoakCluster {
 public:
  SoakCluster(std::vector<NodeShape> shapes, int64_t nodes, int64_t pods, int namespaces);

  int64_t nodes() const { return nodes_; }
  int64_t pods() const { return static_cast<int64_t>(generation_.size()); }
  int namespaces() const { return namespaces_; }

  std::string NodeName(int64_t node) const;
  const NodeShape& Shape(int64_t node) const;
  bool TimeSliced(int64_t node) const { return node % 4 == 1; }
  // nvidia.com/gpu the node advertises when healthy (replicas on time-sliced nodes).
  int64_t AdvertisedGpus(int64_t node) const;
  nlohmann::json NodeObject(int64_t node) const;
  // The status patch of a node that lost one GPU (`degraded`) or got it back,
  // and went NotReady or Ready.
  nlohmann::json NodeStatusPatch(int64_t node, bool degraded, bool ready) const;

  int64_t NodeOfSlot(int64_t slot) const { return slot % nodes_; }
  std::string PodNamespace(int64_t slot) const;
  std::string PodName(int64_t slot) const;
  // The pod in `slot` now: bound to its node, GPU or CPU-only by slot.
  nlohmann::json PodObject(int64_t slot) const;
  bool HoldsGpu(int64_t slot) const;
  bool SharesGpu(int64_t slot) const { return HoldsGpu(slot) && TimeSliced(NodeOfSlot(slot)); }
  // The slot's next pod gets a new name.
  void Replace(int64_t slot) { ++generation_[static_cast<size_t>(slot)]; }

 private:
  std::vector<NodeShape> shapes_;
  int64_t nodes_;
  int namespaces_;
  std::vector<uint32_t> generation_;  // by slot
};

}  // namespace gpu_autoscaler::bench
