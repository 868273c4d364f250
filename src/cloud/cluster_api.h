// File: src/cloud/cluster_api.h
//
// The Cluster API node-group provider ("cluster-api"): a MachineDeployment or
// MachineSet on the management cluster is one node group, driven the way
// Cluster Autoscaler's clusterapi provider drives it:
//  * min and max come from the annotations
//    cluster.x-k8s.io/cluster-api-autoscaler-node-group-{min,max}-size (both
//    required; a group without them is not managed);
//  * the size is the /scale subresource (GET, then a merge patch of
//    spec.replicas after checking min ≤ n ≤ max);
//  * terminating given instances marks their Machines with
//    cluster.x-k8s.io/delete-machine and lowers replicas by as many (the
//    scale's resourceVersion as precondition), so the MachineSet deletes
//    exactly those. It refuses (Unavailable, naming them) while the MachineSet
//    would take other Machines first (being deleted, marked by someone else,
//    without a Node, unhealthy) beyond its current excess, or still owes
//    Machines; a failed call unmarks what it marked. Without decrementing,
//    the Machines are deleted and the MachineSet replaces them;
//  * scale-from-zero capacity comes from the capacity.cluster-autoscaler.kubernetes.io/*
//    annotations (cpu and memory both required; gpu-type + gpu-count).
//
// Group names are "<Kind>/<namespace>/<name>" (Kind MachineDeployment or
// MachineSet), as Cluster Autoscaler names node groups. An instance's ID is its
// Machine's spec.providerID, so it matches the Node's spec.providerID as is.
//
//   auto provider = NewClusterApiProvider(client, {});
//   auto group = provider->Describe("MachineDeployment/capi-system/gpu-a100");
//
// Thread-safety: safe to call from many threads (the client is).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "cloud/node_group.h"
#include "common/clock.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::cloud {

struct ClusterApiOptions {
  std::string group = "cluster.x-k8s.io";  // CAPI_GROUP
  std::string version = "v1beta1";         // CAPI_VERSION
  Clock* clock = &RealClock::Instance();   // stamps the delete-machine annotation
};

inline constexpr std::string_view kCapiMinSizeSuffix =
    "/cluster-api-autoscaler-node-group-min-size";
inline constexpr std::string_view kCapiMaxSizeSuffix =
    "/cluster-api-autoscaler-node-group-max-size";
inline constexpr std::string_view kCapiDeleteMachineSuffix = "/delete-machine";
inline constexpr std::string_view kCapiCapacityPrefix =
    "capacity.cluster-autoscaler.kubernetes.io/";

// What one new node of the group offers, from its scale-from-zero annotations.
struct ScaleFromZeroCapacity {
  int64_t cpu_milli = 0;
  int64_t memory_bytes = 0;
  int max_pods = 110;
  std::string gpu_type;  // extended resource name, e.g. nvidia.com/gpu; empty: none
  int gpu_count = 0;
  std::string labels;  // "k1=v1,k2=v2", as annotated
  std::string taints;  // "k1=v1:NoSchedule,...", as annotated
};

// Reads the capacity annotations of a MachineDeployment/MachineSet object.
// NotFound when cpu or memory is absent (the group cannot scale from zero);
// InvalidArgument naming the annotation when a value does not parse.
Result<ScaleFromZeroCapacity> ReadScaleFromZeroCapacity(const nlohmann::json& object);

std::unique_ptr<NodeGroupProvider> NewClusterApiProvider(std::shared_ptr<kube::RestClient> client,
                                                         ClusterApiOptions options);

}  // namespace gpu_autoscaler::cloud
