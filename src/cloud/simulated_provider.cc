#include "cloud/simulated_provider.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "api/nvidia.h"
#include "kube/error.h"
#include "kube/meta_time.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::cloud {
namespace {

constexpr std::string_view kProviderIdPrefix = "simulated:///";

std::string CapacityType(Lifecycle l) {
  switch (l) {
    case Lifecycle::kSpot:
      return "spot";
    case Lifecycle::kReserved:
      return "reserved";
    default:
      return "on-demand";
  }
}

}  // namespace

SimulatedCloud::SimulatedCloud(kube::RestClient* client, Clock& clock,
                               SimulatedCloudOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {}

void SimulatedCloud::AddGroup(const SimulatedGroup& group) {
  std::lock_guard<std::mutex> lock(mu_);
  groups_[group.name].spec = group;
}

void SimulatedCloud::SetCapacityError(const std::string& group, bool failing) {
  std::lock_guard<std::mutex> lock(mu_);
  groups_[group].capacity_error = failing;
}

void SimulatedCloud::SetLaunchFailure(const std::string& group, bool failing) {
  std::lock_guard<std::mutex> lock(mu_);
  groups_[group].launch_failure = failing;
}

Status SimulatedCloud::LaunchFailure(const std::string& group) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = groups_.find(group);
  if (it == groups_.end() || !it->second.launch_failure ||
      static_cast<int>(it->second.instances.size()) >= it->second.desired) {
    return Status::Ok();
  }
  return ProviderError(ProviderErrorKind::kInsufficientCapacity,
                       "simulated: launching " + it->second.spec.instance_type + " in " + group +
                           " failed: no " + CapacityType(it->second.spec.lifecycle) +
                           " capacity in " + options_.zone);
}

void SimulatedCloud::SetFailure(const std::string& group, ProviderErrorKind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  groups_[group].failure = kind;
}

std::string SimulatedCloud::ProviderIdOf(const std::string& id) const {
  return std::string(kProviderIdPrefix) + options_.zone + "/" + id;
}

Result<std::string> SimulatedCloud::InstanceIdFromProviderId(std::string_view provider_id) const {
  if (!provider_id.starts_with(kProviderIdPrefix))
    return InvalidArgumentError("not a simulated providerID: " + std::string(provider_id));
  const std::string_view rest = provider_id.substr(kProviderIdPrefix.size());
  const size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos || slash + 1 == rest.size())
    return InvalidArgumentError("malformed simulated providerID: " + std::string(provider_id));
  return std::string(rest.substr(slash + 1));
}

Result<SimulatedCloud::Group*> SimulatedCloud::FindLocked(const std::string& name) {
  auto it = groups_.find(name);
  if (it == groups_.end() || it->second.spec.name.empty())
    return ProviderError(ProviderErrorKind::kNotFound, "simulated group " + name + " not found");
  if (it->second.failure != ProviderErrorKind::kNone) {
    return ProviderError(it->second.failure,
                         "simulated " + std::string(ProviderErrorKindName(it->second.failure)) +
                             " on group " + name);
  }
  return &it->second;
}

Status SimulatedCloud::WriteNode(const Group& g, const SimInstance& instance) {
  if (client_ == nullptr) return Status::Ok();
  const SimulatedGroup& s = g.spec;
  const std::string now = kube::FormatTime(clock_.WallNow());
  nlohmann::json labels = {
      {"kubernetes.io/hostname", instance.id},
      {"kubernetes.io/os", "linux"},
      {std::string(kInstanceTypeLabel), s.instance_type},
      {std::string(kZoneLabel), options_.zone},
      {std::string(kCapacityTypeLabel), CapacityType(s.lifecycle)},
      {std::string(kSimulatedGroupLabel), s.name},
      {std::string(api::kGpuProductLabel), s.gpu_model},
      {std::string(api::kGpuCountLabel), std::to_string(s.gpu_count)},
  };
  for (const auto& [k, v] : s.labels)
    labels[k] = v;
  const nlohmann::json resources = {
      {"cpu", std::to_string(s.cpu_milli) + "m"},
      {"memory", std::to_string(s.memory_mib) + "Mi"},
      {"pods", std::to_string(s.max_pods)},
      {std::string(api::kGpuResource), std::to_string(s.gpu_count)},
  };
  nlohmann::json node = {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata",
       {{"name", instance.id},
        {"labels", labels},
        // KWOK's marker: no kubelet stands behind this Node.
        {"annotations", {{"kwok.x-k8s.io/node", "fake"}}}}},
      {"spec", {{"providerID", ProviderIdOf(instance.id)}}},
      {"status",
       {{"capacity", resources},
        {"allocatable", resources},
        {"conditions",
         {{{"type", "Ready"},
           {"status", "True"},
           {"reason", "KubeletReady"},
           {"message", "simulated node is ready"},
           {"lastHeartbeatTime", now},
           {"lastTransitionTime", now}}}},
        {"nodeInfo", {{"kubeletVersion", "simulated"}}}}},
  };
  auto created = client_->Create({kube::resources::kNodes, "", instance.id}, node);
  if (!created.ok() && !kube::IsAlreadyExists(created.error()))
    return created.error().ToStatus().WithContext("creating simulated Node " + instance.id);
  return Status::Ok();
}

Status SimulatedCloud::AdvanceLocked() {
  const Clock::TimePoint now = clock_.Now();
  Status first;
  for (auto& [name, g] : groups_) {
    // Launch up to desired (a terminated instance without decrement is replaced).
    while (!g.launch_failure && static_cast<int>(g.instances.size()) < g.desired) {
      SimInstance instance;
      instance.id = g.spec.name + "-" + std::to_string(next_id_++);
      instance.ready_at = now + options_.provisioning_delay;
      g.instances.push_back(std::move(instance));
    }
    for (SimInstance& instance : g.instances) {
      if (instance.node_written || now < instance.ready_at) continue;
      Status s = WriteNode(g, instance);
      if (s.ok()) {
        instance.node_written = true;
      } else if (first.ok()) {
        first = s;
      }
    }
  }
  return first;
}

Status SimulatedCloud::Advance() {
  std::lock_guard<std::mutex> lock(mu_);
  return AdvanceLocked();
}

std::optional<Clock::TimePoint> SimulatedCloud::NextReadyAt() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<Clock::TimePoint> next;
  for (const auto& [name, g] : groups_) {
    for (const SimInstance& i : g.instances)
      if (!i.node_written && (!next || i.ready_at < *next)) next = i.ready_at;
  }
  return next;
}

Result<NodeGroup> SimulatedCloud::Describe(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  (void)AdvanceLocked();  // a failed Node write is retried on the next call
  GPU_ASSIGN_OR_RETURN(Group * g, FindLocked(name));
  NodeGroup out;
  out.name = name;
  out.desired = g->desired;
  out.min = g->spec.min;
  out.max = g->spec.max;
  for (const SimInstance& i : g->instances) {
    out.instances.push_back({.id = i.id,
                             .provider_id = ProviderIdOf(i.id),
                             .zone = options_.zone,
                             .lifecycle = g->spec.lifecycle,
                             .state = i.node_written ? "Running" : "Pending"});
  }
  return out;
}

Status SimulatedCloud::SetDesiredSize(const std::string& name, int desired) {
  std::lock_guard<std::mutex> lock(mu_);
  return ResizeLocked(name, std::nullopt, desired);
}

Status SimulatedCloud::ResizeFrom(const std::string& name, int expected, int desired) {
  std::lock_guard<std::mutex> lock(mu_);
  return ResizeLocked(name, expected, desired);
}

Status SimulatedCloud::ResizeLocked(const std::string& name, std::optional<int> expected,
                                    int desired) {
  GPU_ASSIGN_OR_RETURN(Group * g, FindLocked(name));
  if (expected && *expected != g->desired) {
    return ProviderError(ProviderErrorKind::kConflict,
                         name + " asks for " + std::to_string(g->desired) + ", not the " +
                             std::to_string(*expected) + " read before");
  }
  if (desired < g->spec.min || desired > g->spec.max) {
    return ProviderError(ProviderErrorKind::kInvalid, "desired " + std::to_string(desired) +
                                                          " outside " + name + "'s [" +
                                                          std::to_string(g->spec.min) + ", " +
                                                          std::to_string(g->spec.max) + "]");
  }
  if (desired > g->desired && g->capacity_error) {
    return ProviderError(ProviderErrorKind::kInsufficientCapacity,
                         "simulated: no " + CapacityType(g->spec.lifecycle) + " capacity for " +
                             g->spec.instance_type + " in " + options_.zone);
  }
  g->desired = desired;
  // Shrinking without naming instances drops the newest (launching first).
  while (static_cast<int>(g->instances.size()) > desired) {
    const SimInstance victim = g->instances.back();
    g->instances.pop_back();
    if (victim.node_written && client_ != nullptr) {
      auto deleted = client_->Delete({kube::resources::kNodes, "", victim.id});
      if (!deleted.ok() && !kube::IsNotFound(deleted.error()))
        return deleted.error().ToStatus().WithContext("deleting simulated Node " + victim.id);
    }
  }
  return AdvanceLocked();
}

Status SimulatedCloud::TerminateInstances(const std::string& name,
                                          const std::vector<std::string>& instance_ids,
                                          bool decrement_desired) {
  std::lock_guard<std::mutex> lock(mu_);
  GPU_ASSIGN_OR_RETURN(Group * g, FindLocked(name));
  for (const std::string& id : instance_ids) {
    auto it = std::find_if(g->instances.begin(), g->instances.end(),
                           [&](const SimInstance& i) { return i.id == id; });
    if (it == g->instances.end()) {
      return ProviderError(ProviderErrorKind::kNotFound,
                           "instance " + id + " is not in simulated group " + name);
    }
  }
  for (const std::string& id : instance_ids) {
    auto it = std::find_if(g->instances.begin(), g->instances.end(),
                           [&](const SimInstance& i) { return i.id == id; });
    if (it->node_written && client_ != nullptr) {
      auto deleted = client_->Delete({kube::resources::kNodes, "", id});
      if (!deleted.ok() && !kube::IsNotFound(deleted.error()))
        return deleted.error().ToStatus().WithContext("deleting simulated Node " + id);
    }
    g->instances.erase(it);
    if (decrement_desired) g->desired = std::max(g->spec.min, g->desired - 1);
  }
  return AdvanceLocked();
}

}  // namespace gpu_autoscaler::cloud
