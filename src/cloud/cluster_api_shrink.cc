#include "cloud/cluster_api_shrink.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "cloud/cluster_api.h"
#include "cloud/node_group.h"
#include "common/str_join.h"

namespace gpu_autoscaler::cloud {
namespace {

using nlohmann::json;

const json* Member(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string StringMember(const json& object, std::string_view key) {
  const json* v = Member(object, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

bool Unhealthy(const json& status) {
  const json* conditions = Member(status, "conditions");
  if (!conditions || !conditions->is_array()) return false;
  for (const json& c : *conditions) {
    const std::string type = StringMember(c, "type");
    if ((type == "NodeHealthy" || type == "HealthCheckSucceeded") &&
        StringMember(c, "status") == "False") {
      return true;
    }
  }
  return false;
}

}  // namespace

MachineFacts ReadMachineFacts(const json& machine, std::string_view capi_group) {
  static const json kEmpty = json::object();
  const json* metadata = Member(machine, "metadata");
  const json& meta = metadata ? *metadata : kEmpty;
  const json* spec = Member(machine, "spec");
  const json* status = Member(machine, "status");
  MachineFacts f;
  f.name = StringMember(meta, "name");
  f.provider_id = spec ? StringMember(*spec, "providerID") : "";
  f.being_deleted = !StringMember(meta, "deletionTimestamp").empty();
  const json* annotations = Member(meta, "annotations");
  f.marked = annotations &&
             Member(*annotations, std::string(capi_group) + std::string(kCapiDeleteMachineSuffix));
  const bool joined = status && Member(*status, "nodeRef");
  const bool failed =
      status && (Member(*status, "failureReason") || Member(*status, "failureMessage"));
  f.deleted_first =
      f.being_deleted || f.marked || !joined || failed || (status && Unhealthy(*status));
  return f;
}

Result<std::vector<size_t>> FindMachines(std::string_view group,
                                         std::span<const MachineFacts> machines,
                                         std::span<const std::string> ids) {
  std::vector<size_t> found;
  for (const std::string& id : ids) {
    auto m = std::find_if(machines.begin(), machines.end(), [&](const MachineFacts& f) {
      return !id.empty() && (f.provider_id == id || f.name == id);
    });
    if (m == machines.end()) {
      return ProviderError(ProviderErrorKind::kNotFound,
                           std::string(group) + ": no Machine has providerID \"" + id + "\"");
    }
    const size_t i = static_cast<size_t>(m - machines.begin());
    if (std::find(found.begin(), found.end(), i) == found.end()) found.push_back(i);
  }
  return found;
}

Result<ShrinkPlan> DecideShrink(std::string_view group_view, std::span<const MachineFacts> machines,
                                std::span<const std::string> ids, int replicas, int min_size) {
  const std::string group(group_view);
  GPU_ASSIGN_OR_RETURN(std::vector<size_t> asked, FindMachines(group, machines, ids));
  // Machines already being deleted are going anyway: lowering the replicas
  // for them too would take one more (Cluster Autoscaler skips them alike).
  ShrinkPlan plan;
  std::vector<bool> removing(machines.size(), false);  // by position: names are for the API
  for (size_t i : asked) {
    const MachineFacts& m = machines[i];
    if (m.being_deleted) continue;
    if (m.name.empty()) {
      return ProviderError(ProviderErrorKind::kInvalid, group + ": the Machine with providerID \"" +
                                                            m.provider_id + "\" has no name");
    }
    removing[i] = true;
    plan.remove.push_back(m.name);
    if (!m.marked) plan.mark.push_back(m.name);
  }
  plan.replicas = replicas - static_cast<int>(plan.remove.size());
  if (plan.remove.empty()) return plan;
  if (plan.replicas < min_size) {
    return ProviderError(ProviderErrorKind::kInvalid,
                         group + ": removing " + std::to_string(plan.remove.size()) +
                             " machines would go below the minimum size " +
                             std::to_string(min_size));
  }
  const int all = static_cast<int>(machines.size());
  if (all < replicas) {
    return ProviderError(ProviderErrorKind::kUnavailable,
                         group + ": replicas is " + std::to_string(replicas) + " but " +
                             std::to_string(all) +
                             " Machines exist; lowering it now would cancel a creation, not "
                             "delete the Machine asked for");
  }
  std::vector<std::string> ahead;
  for (size_t i = 0; i < machines.size(); ++i) {
    if (machines[i].deleted_first && !removing[i]) ahead.push_back(machines[i].name);
  }
  if (static_cast<int>(ahead.size()) > all - replicas) {
    return ProviderError(
        ProviderErrorKind::kUnavailable,
        group + ": the MachineSet would delete Machine(s) " + StrJoin(ahead, ", ") +
            " first (being deleted, marked for deletion, without a Node yet, or unhealthy), "
            "and the replicas (" +
            std::to_string(replicas) + " for " + std::to_string(all) +
            " Machines) do not count them as going; lowering the replicas now could delete them "
            "instead of the Machines asked for");
  }
  return plan;
}

}  // namespace gpu_autoscaler::cloud
