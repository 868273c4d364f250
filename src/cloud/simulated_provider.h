// File: src/cloud/simulated_provider.h
//
// The "simulated" node-group provider: an in-memory cloud for tests, the
// demo and the trace replay. Each group launches one instance type in one
// tier. A scale-up creates instances that become Ready after the
// provisioning delay (on the injected clock); a Ready instance gets a Node
// object, KWOK-style (no kubelet: the Node is a plain API object with
// capacity, allocatable including nvidia.com/gpu, GPU feature discovery's
// labels and a Ready condition), with spec.providerID
// "simulated:///<zone>/<instance id>". Terminating an instance deletes its
// Node. Failures are scriptable, so tests can exercise the capacity fallback.
//
//   SimulatedCloud cloud(client.get(), clock, {.zone = "sim-a",
//                                              .provisioning_delay = std::chrono::seconds(90)});
//   cloud.AddGroup({.name = "t4-spot", .instance_type = "sim.t4x1", .gpu_model = "Tesla-T4",
//                   .gpu_count = 1, .lifecycle = Lifecycle::kSpot});
//   cloud.SetCapacityError("t4-spot", true);          // scale-ups now fail: InsufficientCapacity
//   GPU_RETURN_IF_ERROR(cloud.SetDesiredSize("t4-spot", 2));
//
// Time advances lazily: every call first launches the instances whose delay
// has passed (Advance does it explicitly). With a null client no Nodes are
// written (the pure trace replay).
//
// Thread-safety: all methods are safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cloud/node_group.h"
#include "common/clock.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::cloud {

// The label the simulated cloud puts on its Nodes, naming their group.
inline constexpr std::string_view kSimulatedGroupLabel = "gpuautoscaler.io/simulated-group";
// Karpenter's capacity-type label, which the simulated Nodes carry ("spot", "on-demand",
// "reserved").
inline constexpr std::string_view kCapacityTypeLabel = "karpenter.sh/capacity-type";
inline constexpr std::string_view kInstanceTypeLabel = "node.kubernetes.io/instance-type";
inline constexpr std::string_view kZoneLabel = "topology.kubernetes.io/zone";

struct SimulatedGroup {
  std::string name{};
  std::string instance_type{};
  std::string gpu_model{};  // nvidia.com/gpu.product
  int gpu_count = 1;
  int64_t cpu_milli = 8000;
  int64_t memory_mib = 32768;
  int max_pods = 110;
  Lifecycle lifecycle = Lifecycle::kOnDemand;
  int min = 0;
  int max = 1000;
  std::map<std::string, std::string> labels{};  // extra Node labels (the pool's name, ...)
};

struct SimulatedCloudOptions {
  std::string zone = "sim-a";
  Clock::Duration provisioning_delay = std::chrono::seconds(90);
};

class SimulatedCloud final : public NodeGroupProvider {
 public:
  SimulatedCloud(kube::RestClient* client, Clock& clock, SimulatedCloudOptions options = {});

  // Adds or reshapes a group (its instances stay).
  void AddGroup(const SimulatedGroup& group);
  // While set, a SetDesiredSize that grows `group` fails with InsufficientCapacity.
  void SetCapacityError(const std::string& group, bool failing);
  // While set, a growing SetDesiredSize on `group` is accepted but nothing
  // launches, and LaunchFailure reports InsufficientCapacity (AWS's way).
  void SetLaunchFailure(const std::string& group, bool failing);
  // While set, every call on `group` fails with `kind` (kAuth, kThrottled, ...); kNone clears.
  void SetFailure(const std::string& group, ProviderErrorKind kind);

  // Launches what is due and writes the Nodes not written yet; the first
  // API error (the rest are retried on the next call).
  Status Advance();
  // When the next launching instance becomes Ready; nullopt when none is launching.
  std::optional<Clock::TimePoint> NextReadyAt() const;

  std::string_view Name() const override { return "simulated"; }
  Result<NodeGroup> Describe(const std::string& group) override;
  Status SetDesiredSize(const std::string& group, int desired) override;
  // Checked and set under one lock: a compare-and-set.
  Status ResizeFrom(const std::string& group, int expected, int desired) override;
  Status TerminateInstances(const std::string& group, const std::vector<std::string>& instance_ids,
                            bool decrement_desired) override;
  Result<std::string> InstanceIdFromProviderId(std::string_view provider_id) const override;
  Status LaunchFailure(const std::string& group) override;

 private:
  struct SimInstance {
    std::string id;
    Clock::TimePoint ready_at;
    bool node_written = false;
  };
  struct Group {
    SimulatedGroup spec;
    int desired = 0;
    bool capacity_error = false;
    bool launch_failure = false;
    ProviderErrorKind failure = ProviderErrorKind::kNone;
    std::vector<SimInstance> instances;
  };

  Status AdvanceLocked();
  Result<Group*> FindLocked(const std::string& group);
  // SetDesiredSize; with `expected`, only while the group asks for that many.
  Status ResizeLocked(const std::string& group, std::optional<int> expected, int desired);
  Status WriteNode(const Group& g, const SimInstance& instance);
  std::string ProviderIdOf(const std::string& id) const;

  kube::RestClient* client_;
  Clock& clock_;
  SimulatedCloudOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Group> groups_;
  int64_t next_id_ = 1;
};

}  // namespace gpu_autoscaler::cloud
