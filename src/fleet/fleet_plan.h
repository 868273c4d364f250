// File: src/fleet/fleet_plan.h
//
// The decisions of the simulated fleet (`gpu-autoscaler fleet`), a controller
// that plays the kubelet for fake nodes as KWOK does: what it saw of the
// cluster (a FleetSnapshot) in, what to write (a FleetPlan) out. Pure; the
// controller (fleet_controller.h) builds snapshots from its informers and
// applies plans.
//
//   FleetSnapshot s{.now = clock.WallNow(), .nodes = ..., .leases = ..., .pods = ...};
//   FleetPlan plan = DecideFleet(s, options);
//   for (const LeaseWrite& w : plan.create_leases) client.Create(..., LeaseObject(w, ...));
//
// The stages (KWOK's defaults, kubernetes-sigs/kwok kustomize/stage):
//   - each managed node has a heartbeat Lease in kube-node-lease, holder the
//     node, renewed every lease_renew_interval (the kubelet's 10 s); Leases this
//     fleet made for nodes that are gone or no longer managed are deleted;
//   - a managed node's Ready condition is True with a lastHeartbeatTime at most
//     node_status_interval old (the kubelet's nodeStatusReportFrequency), and
//     the node has an InternalIP address (node-initialize);
//   - a pod bound to a managed node, not terminating and not Running with an
//     IP, becomes Running with Initialized/Ready/ContainersReady/PodScheduled
//     True, a pod IP from pod_cidr and running containers (pod-ready);
//   - a terminating pod on a managed node is deleted at once (pod-delete).
// Pods on other nodes are never touched.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::fleet {

// Label on every Lease the fleet creates: Leases without it are never deleted.
inline constexpr char kManagedByLabel[] = "app.kubernetes.io/managed-by";
inline constexpr char kManagedByValue[] = "gpu-autoscaler-fleet";
inline constexpr char kLeaseNamespace[] = "kube-node-lease";

struct FleetOptions {
  int lease_duration_seconds = 40;
  Clock::Duration lease_renew_interval = std::chrono::seconds(10);
  Clock::Duration node_status_interval = std::chrono::minutes(1);
  std::string node_ip = "10.0.0.1";        // InternalIP of a node that has none
  std::string pod_cidr = "10.244.0.0/16";  // pod IPs, lowest free first (not node IPs)
};

struct NodeState {
  std::string name{};
  std::string uid{};
  bool managed = false;
  bool ready = false;  // a Ready condition with status True
  std::optional<Clock::WallTime> last_heartbeat{};
  std::string internal_ip{};  // "" when the node has no InternalIP address
  nlohmann::json conditions = nlohmann::json::array();  // status.conditions as they are
};

struct LeaseState {
  std::string name{};
  std::optional<Clock::WallTime> renew_time{};
  bool ours = false;  // carries kManagedByLabel=kManagedByValue
};

struct ContainerSpec {
  std::string name{};
  std::string image{};
  int64_t memory_limit_bytes = 0;  // resources.limits.memory, else requests; 0 if neither
};

struct PodState {
  std::string ns{};
  std::string name{};
  std::string uid{};
  std::string node{};  // spec.nodeName
  std::string phase{};
  std::string pod_ip{};
  std::optional<Clock::WallTime> start_time{};  // status.startTime
  bool terminating = false;                     // metadata.deletionTimestamp is set
  std::vector<ContainerSpec> containers{};
  std::vector<ContainerSpec> init_containers{};
  std::string usage_annotation{};
};

struct FleetSnapshot {
  Clock::WallTime now{};
  std::vector<NodeState> nodes{};
  std::vector<LeaseState> leases{};  // in kube-node-lease
  std::vector<PodState> pods{};
};

struct LeaseWrite {
  std::string node{};
  std::string node_uid{};  // for the Lease's ownerReference, as the kubelet sets it
};

struct NodeStatusWrite {
  std::string node{};
  nlohmann::json patch{};  // merge patch of the status subresource
};

struct PodRef {
  std::string ns{};
  std::string name{};
  std::string uid{};
};

struct PodStatusWrite {
  PodRef pod{};
  std::string pod_ip{};
  nlohmann::json patch{};  // merge patch of the status subresource
};

struct FleetPlan {
  std::vector<LeaseWrite> create_leases{};
  std::vector<std::string> renew_leases{};
  std::vector<std::string> delete_leases{};
  std::vector<NodeStatusWrite> node_status{};
  std::vector<PodStatusWrite> start_pods{};
  std::vector<PodRef> delete_pods{};
  // Pods that should start but found no free address in pod_cidr.
  int pods_without_ip = 0;
  bool empty() const {
    return create_leases.empty() && renew_leases.empty() && delete_leases.empty() &&
           node_status.empty() && start_pods.empty() && delete_pods.empty();
  }
};

// InvalidArgument unless pod_cidr is an IPv4 a.b.c.d/n with 8 <= n <= 30, the
// node IP is IPv4 and the durations are positive.
Status ValidateFleetOptions(const FleetOptions& options);

FleetPlan DecideFleet(const FleetSnapshot& snapshot, const FleetOptions& options);

// The objects and patches the plan's entries turn into (pure, for the apply
// layer and for `gpu-autoscaler replay`, which keeps heartbeat Leases too).
// `managed_by` labels the Lease (kManagedByLabel): the fleet deletes only its own.
nlohmann::json LeaseObject(const std::string& node, const std::string& node_uid,
                           Clock::WallTime now, int lease_duration_seconds,
                           const std::string& managed_by = kManagedByValue);
nlohmann::json LeaseRenewPatch(Clock::WallTime now);

}  // namespace gpu_autoscaler::fleet
