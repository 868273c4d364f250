#include "node-agent/pod_attributor.h"

#include <set>

namespace gpu_autoscaler::node_agent {

std::string_view PodResourcesStateName(PodResourcesState s) {
  switch (s) {
    case PodResourcesState::kDisabled:
      return "Disabled";
    case PodResourcesState::kPending:
      return "Pending";
    case PodResourcesState::kUp:
      return "Up";
    case PodResourcesState::kNoSocket:
      return "NoSocket";
    case PodResourcesState::kTimedOut:
      return "TimedOut";
    case PodResourcesState::kFailed:
      break;
  }
  return "Failed";
}

PodAttributor::PodAttributor(PodAttributorOptions options, PodResolver resolve)
    : options_(std::move(options)), resolve_(std::move(resolve)) {
  if (options_.socket_path.empty()) {
    status_.state = PodResourcesState::kDisabled;
    status_.error = FailedPreconditionError("--pod-resources-socket is empty");
    return;
  }
  status_.error = UnavailableError("PodResources not asked yet");
  client_ = podresources::PodResourcesClient::Create(
      {.socket_path = options_.socket_path, .call_timeout = options_.call_timeout});
}

PodAttributor::~PodAttributor() = default;

Status PodAttributor::Refresh() {
  if (!client_) return Status::Ok();
  auto pods = client_->List();
  PodResourcesStatus next;
  if (!pods.ok()) {
    const Status& e = pods.error();
    next.state = e.code() == StatusCode::kNotFound           ? PodResourcesState::kNoSocket
                 : e.code() == StatusCode::kDeadlineExceeded ? PodResourcesState::kTimedOut
                                                             : PodResourcesState::kFailed;
    next.error = e;
    std::lock_guard<std::mutex> lock(mu_);
    pods_.clear();
    status_ = std::move(next);
    return e;
  }
  next.state = PodResourcesState::kUp;
  next.pods = pods->size();
  for (const auto& pod : *pods)
    for (const auto& c : pod.containers)
      for (const auto& d : c.devices)
        if (IsGpuResource(d.resource_name)) next.assigned[d.resource_name] += d.device_ids.size();
  // Allocatable devices are informative; an old kubelet without the call is fine.
  auto allocatable = client_->GetAllocatableResources();
  if (allocatable.ok()) {
    for (const auto& d : allocatable->devices)
      if (IsGpuResource(d.resource_name)) next.allocatable[d.resource_name] += d.device_ids.size();
  }
  std::lock_guard<std::mutex> lock(mu_);
  pods_ = std::move(pods).value();
  status_ = std::move(next);
  return Status::Ok();
}

std::optional<PodCgroupRef> PodAttributor::LookupCgroup(uint32_t pid) {
  // Called under mu_ from Attribute.
  auto it = cgroups_.find(pid);
  if (it != cgroups_.end()) return it->second;
  auto read = ReadProcessCgroup(options_.proc_root, pid);
  std::optional<PodCgroupRef> ref = read.ok() ? *read : std::nullopt;
  cgroups_.emplace(pid, ref);
  return ref;
}

Attribution PodAttributor::Attribute(const nvml::GpuSnapshot& snapshot) {
  std::lock_guard<std::mutex> lock(mu_);
  // Forget pids NVML no longer reports, so a reused pid is read afresh.
  std::set<uint32_t> live;
  for (const auto& g : snapshot.gpus)
    for (const auto& p : g.processes)
      live.insert(p.pid);
  for (auto it = cgroups_.begin(); it != cgroups_.end();)
    it = live.count(it->first) ? std::next(it) : cgroups_.erase(it);
  return node_agent::Attribute(
      snapshot, pods_, [this](uint32_t pid) { return LookupCgroup(pid); }, resolve_);
}

PodResourcesStatus PodAttributor::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

}  // namespace gpu_autoscaler::node_agent
