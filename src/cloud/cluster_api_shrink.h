// File: src/cloud/cluster_api_shrink.h
//
// The Cluster API provider's decision for terminating given Machines and
// lowering the replicas by as many (cluster_api.h), pure: what the Machines
// say, in; which to mark and the new replicas, or why not now, out.
//
// Lowering the replicas names no Machine. Cluster API's MachineSet counts
// every Machine it owns against spec.replicas, those being deleted included,
// and deletes the excess, taking first, under every delete policy, the
// Machines that are being deleted, carry the delete-machine mark, have no
// Node yet (status.nodeRef), failed (status.failureReason/failureMessage) or
// whose NodeHealthy or HealthCheckSucceeded condition is False. The marks
// make the asked-for Machines go only while no other Machine it deletes first
// is left over once the excess it already has is used up, and only while it
// owes no Machines (fewer than replicas: the lower count would cancel a
// creation and delete nothing). DecideShrink refuses otherwise.
//
//   std::vector<MachineFacts> facts;
//   for (const json& m : machines) facts.push_back(ReadMachineFacts(m, "cluster.x-k8s.io"));
//   Result<ShrinkPlan> plan = DecideShrink(group, facts, {"aws:///…/i-1"}, replicas, min_size);
//
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace gpu_autoscaler::cloud {

struct MachineFacts {
  std::string name{};
  std::string provider_id{};
  bool being_deleted = false;  // metadata.deletionTimestamp set
  bool marked = false;         // <group>/delete-machine present
  bool deleted_first = false;  // the MachineSet deletes it before others (above)
};

// `capi_group` is the API group whose delete-machine annotation counts
// ("cluster.x-k8s.io"). Missing or mistyped fields read as absent.
MachineFacts ReadMachineFacts(const nlohmann::json& machine, std::string_view capi_group);

// The positions in `machines` of the Machines `ids` name (providerIDs or
// Machine names), each once, in the order asked; kNotFound naming the group
// and the first id that matches none.
Result<std::vector<size_t>> FindMachines(std::string_view group,
                                         std::span<const MachineFacts> machines,
                                         std::span<const std::string> ids);

struct ShrinkPlan {
  std::vector<std::string> remove{};  // Machines whose removal lowers the replicas
  std::vector<std::string> mark{};    // of those, the ones not marked yet
  int replicas = 0;                   // the new spec.replicas
};

// `ids` as for FindMachines. Machines are told apart by position, not by
// name. Errors are ProviderErrors naming the group: FindMachines', kInvalid
// (below `min_size`, or a Machine asked for has no name, which an API server
// never serves), kUnavailable (not now: Machines owed, or others the
// MachineSet deletes first; the message names them). An empty `remove` means
// every Machine asked for is already being deleted: nothing to write.
Result<ShrinkPlan> DecideShrink(std::string_view group, std::span<const MachineFacts> machines,
                                std::span<const std::string> ids, int replicas, int min_size);

}  // namespace gpu_autoscaler::cloud
