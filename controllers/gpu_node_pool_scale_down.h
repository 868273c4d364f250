// File: controllers/gpu_node_pool_scale_down.h
//
// The GPUNodePool controller's terminations, crash-safe (docs/reliability.md).
// Terminating a node's instance cannot be undone and lowers its group's
// desired size, so it is carried out in durable steps, as Karpenter does
// with its taint and finalizer:
//   1. intent     the Node gets the gpu-autoscaler.io/termination annotation
//                 (the pool, the group, the instance, the group's desired size
//                 before, and a stable id: the Node's uid), written with the
//                 Node's resourceVersion;
//   2. terminate  TerminateInstances(decrement=true), only while the instance
//                 is still a live member of the group and the group's desired
//                 size has not dropped below the intent's: a retry after a
//                 kill does not terminate or decrement twice;
//   3. record     one recentActions entry carrying the id, unless the status
//                 (or an unwritten earlier pass) already holds it;
//   4. complete   after the status write, the Node is deleted (its intent
//                 with it).
// A restarted manager finds the intents on the pool's Nodes and resumes at
// the first step not yet done. The decision (DecideTermination) is pure; the
// helpers below do the I/O.
//
//   TerminationIntent intent{.pool = "a100", .group = "gpu-od", .instance_id = "i-0abc",
//                            .node = "ip-10-0-1-7", .desired_before = 3};
//   GPU_RETURN_IF_ERROR(WriteTerminationIntent(client, &intent));  // fills intent.id
//   TerminationSteps steps = DecideTermination(intent, observed);
//
// Thread-safety: pure functions and stateless helpers; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "autoscale/node_pool.h"
#include "cloud/node_group.h"
#include "common/status.h"
#include "kube/node_view.h"
#include "kube/store.h"

namespace gpu_autoscaler::kube {
class RestClient;
}  // namespace gpu_autoscaler::kube

namespace gpu_autoscaler::controllers {

// The Node annotation holding the intent (JSON, EncodeTerminationIntent).
inline constexpr std::string_view kTerminationIntentAnnotation = "gpu-autoscaler.io/termination";

// Whether the provider reports the instance on its way out (AWS LifecycleState
// Terminating*, a MIG's currentAction DELETING or ABANDONING, a VMSS VM's
// provisioningState Deleting, a Machine's phase Deleting or Deleted): it is no
// longer the group's capacity, and terminating it again could decrement twice.
bool InstanceShuttingDown(const cloud::Instance& instance);

struct TerminationIntent {
  std::string id{};    // the Node's uid; names the recentActions entry
  std::string pool{};  // the GPUNodePool
  std::string group{};
  std::string instance_id{};
  std::string node{};  // the Node carrying it (not encoded: it is where it lives)
  autoscale::CapacityTier tier = autoscale::CapacityTier::kOnDemand;
  bool interrupted = false;  // after an interruption notice, not a consolidation
  int desired_before = 0;    // the group's desired size when the intent was written
};

// The annotation's JSON value, and back. Parse rejects anything that is not
// an object with a non-empty id, pool, group and instance.
std::string EncodeTerminationIntent(const TerminationIntent& intent);
Result<TerminationIntent> ParseTerminationIntent(std::string_view text);

// What the controller sees of an intent's instance this pass.
struct TerminationObservation {
  bool group_known = false;      // the group is one of the pool's
  bool instance_listed = false;  // a live (not shutting down) member of the group
  int group_desired = 0;
  bool recorded = false;  // recentActions (or an unwritten pass) holds the id
};
struct TerminationSteps {
  bool call_provider = false;  // TerminateInstances(decrement=true)
  bool record = false;         // add the recentActions entry
  bool delete_node = false;    // after the status write
};
// Pure. The instance is terminated only while listed and the group's desired
// size is still at least the intent's (a lower one: the decrement was done
// and the instance is on its way out). A group the pool no longer has: the
// intent is kept and nothing is done.
TerminationSteps DecideTermination(const TerminationIntent& intent,
                                   const TerminationObservation& observed);

// The recentActions entry's message.
std::string TerminationMessage(const TerminationIntent& intent);

// The intents of `pool` on the informer's Nodes, by node name. Nodes with an
// unreadable annotation are skipped (and logged).
std::vector<TerminationIntent> FindTerminationIntents(const kube::Store<kube::NodeView>& nodes,
                                                      const std::string& pool);

// Whether `actions` (recentActions entries) holds the entry with `id`.
bool ActionRecorded(const nlohmann::json& actions, std::string_view id);

// Step 1: reads the Node, sets intent->id to its uid and writes the
// annotation with the Node's resourceVersion (a conflict is an error: the
// next pass decides again). A Node already carrying an intent keeps it.
Status WriteTerminationIntent(kube::RestClient& client, TerminationIntent* intent);

// Step 4: deletes the Node (only the one with the intent's uid); gone is fine.
Status DeleteTerminatedNode(kube::RestClient& client, const TerminationIntent& intent);

}  // namespace gpu_autoscaler::controllers
