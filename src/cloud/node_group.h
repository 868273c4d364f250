// File: src/cloud/node_group.h
//
// The one interface every node-group provider implements: AWS Auto Scaling
// groups, GCP managed instance groups, Azure VM scale sets, Cluster API
// MachineDeployments/MachineSets, and the simulated cloud the demo and the
// trace replay use. The GPUNodePool controller only talks to this interface.
//
//   GPU_ASSIGN_OR_RETURN(NodeGroup group, provider.Describe("gpu-a100-spot"));
//   GPU_RETURN_IF_ERROR(provider.SetDesiredSize("gpu-a100-spot", group.desired + 2));
//   GPU_RETURN_IF_ERROR(provider.TerminateInstances("gpu-a100-spot", {"i-0abc"},
//                                                   /*decrement_desired=*/true));
//
// Errors are Status values with a ProviderErrorKind recoverable through
// ClassifyProviderError, so the controller can tell a capacity shortage (mark
// the offering unavailable, fall back) from throttling (retry later) from a
// bad credential (a condition on the pool). Messages never contain secrets.
//
// Thread-safety: implementations are safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::cloud {

enum class Lifecycle : uint8_t { kUnknown = 0, kOnDemand, kSpot, kReserved };
std::string_view LifecycleName(Lifecycle l);

struct Instance {
  std::string id;  // provider's instance ID ("i-0abc", a GCE instance name, a VMSS instance ID)
  std::string
      provider_id;  // as a Node's spec.providerID would carry it ("aws:///us-east-1a/i-0abc")
  std::string zone;
  Lifecycle lifecycle = Lifecycle::kUnknown;
  std::string state;  // provider's own lifecycle state ("InService", "RUNNING", "Succeeded")
};

struct NodeGroup {
  std::string name;
  int desired = 0;
  int min = 0;
  int max = 0;
  std::vector<Instance> instances;
};

// Why a provider call failed, beyond the Status code.
enum class ProviderErrorKind : uint8_t {
  kNone = 0,
  kInsufficientCapacity,  // the cloud has no capacity for this offering now
  kQuotaExceeded,         // an account/project quota or a group limit
  kThrottled,             // rate limited; retry after a delay
  kAuth,                  // missing, invalid or expired credentials / permission denied
  kNotFound,              // the group or instance does not exist
  kInvalid,               // the request was rejected as malformed
  kUnavailable,           // network error, timeout, hung peer, 5xx
  kConflict,              // the group changed since it was read; read it again
};
std::string_view ProviderErrorKindName(ProviderErrorKind k);

// Builds a Status carrying `kind` as a tag in its message ("[cloud:InsufficientCapacity]
// ...", with the matching StatusCode) and reads it back; the tag survives
// Status::WithContext.
Status ProviderError(ProviderErrorKind kind, std::string message);
ProviderErrorKind ClassifyProviderError(const Status& status);

class NodeGroupProvider {
 public:
  virtual ~NodeGroupProvider() = default;

  // "aws-asg", "gcp-mig", "azure-vmss", "cluster-api", "simulated".
  virtual std::string_view Name() const = 0;

  virtual Result<NodeGroup> Describe(const std::string& group) = 0;

  // Asks the group for `desired` instances (within its min and max).
  virtual Status SetDesiredSize(const std::string& group, int desired) = 0;

  // SetDesiredSize, only while the group still asks for `expected` instances
  // (what the caller's Describe read): a group someone else resized since
  // fails with kConflict and is left as it is, so the caller plans again
  // from what is there instead of overwriting it. Cluster API checks it on
  // the scale subresource with a resourceVersion precondition, Azure with the
  // scale set's ETag in If-Match. Where the API has no precondition (AWS
  // SetDesiredCapacity, GCP resize) the group is read (CurrentSize) just
  // before the write and a size other than `expected` is refused: only that
  // read-to-write window stays open.
  virtual Status ResizeFrom(const std::string& group, int expected, int desired);
  // The group's desired size as the cloud has it now; Describe's by default.
  virtual Result<int> CurrentSize(const std::string& group);

  // Terminates the instances; with `decrement_desired` the group does not
  // replace them.
  virtual Status TerminateInstances(const std::string& group,
                                    const std::vector<std::string>& instance_ids,
                                    bool decrement_desired) = 0;

  // The instance ID a Node's spec.providerID names, or an error when the ID
  // belongs to another provider.
  virtual Result<std::string> InstanceIdFromProviderId(std::string_view provider_id) const = 0;

  // Whether the group's newest launch failed after its resize was accepted:
  // clouds such as AWS Auto Scaling take a new desired size at once and find
  // the capacity shortage later. A ProviderError (kInsufficientCapacity,
  // kQuotaExceeded, ...) naming the cause; OK when the newest launch did not
  // fail, or when the provider reports shortages synchronously (the default).
  virtual Status LaunchFailure(const std::string& group) {
    (void)group;
    return Status::Ok();
  }
};

// A cloud's notice that this instance will be taken away.
struct InterruptionNotice {
  enum class Kind : uint8_t {
    kSpotInterruption,
    kRebalanceRecommendation,
    kPreempted,
    kScheduledPreempt
  };
  Kind kind = Kind::kSpotInterruption;
  int64_t not_after_unix = 0;  // when the instance goes; 0 when the cloud does not say
  std::string detail;          // the provider's raw action or event ID, for the Event
};
std::string_view InterruptionKindName(InterruptionNotice::Kind k);

// Polls one cloud's instance metadata for an interruption notice (AWS IMDSv2
// spot/instance-action and rebalance recommendation, GCP instance/preempted,
// Azure Scheduled Events Preempt). nullopt: no notice now.
class InterruptionSource {
 public:
  virtual ~InterruptionSource() = default;
  virtual Result<std::optional<InterruptionNotice>> Poll() = 0;
};

}  // namespace gpu_autoscaler::cloud
