#include "controllers/node_gpu_inventory.h"

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "kube/event_recorder.h"

namespace gpu_autoscaler::controllers {

std::optional<NodeGpuSummary> SummarizeNode(const kube::NodeView& node) {
  const int64_t capacity = node.Capacity(kGpuResource);
  if (capacity <= 0) return std::nullopt;
  NodeGpuSummary s;
  s.name = std::string(node.name());
  s.model = node.gpu_product().empty() ? "unknown" : std::string(node.gpu_product());
  s.capacity = capacity;
  s.allocatable = node.Allocatable(kGpuResource);
  s.ready = node.ready() == kube::ConditionStatus::kTrue;
  s.unschedulable = node.unschedulable();
  return s;
}

InventoryPlan DecideInventory(const std::map<std::string, NodeGpuSummary>& nodes,
                              const std::optional<NodeGpuSummary>& before,
                              const std::optional<NodeGpuSummary>& after) {
  InventoryPlan plan;
  for (const auto& [name, n] : nodes) {
    ModelInventory& m = plan.models[n.model];
    ++m.nodes;
    m.capacity += n.capacity;
    m.allocatable += n.allocatable;
    if (n.ready && !n.unschedulable) m.ready_allocatable += n.allocatable;
  }
  if (!after) return plan;  // deleted or no longer a GPU node: nothing to tell it
  const std::string gpus = std::to_string(after->allocatable) + "/" +
                           std::to_string(after->capacity) + " " + after->model + " GPUs";
  if (!before) {
    plan.events.push_back(
        {after->name, false, "GpuNodeDiscovered", "node has " + gpus + " allocatable"});
    if (!after->ready) {
      plan.events.push_back(
          {after->name, true, "GpuNodeNotReady", "node with " + gpus + " is not Ready"});
    }
    return plan;
  }
  if (after->allocatable < before->allocatable) {
    plan.events.push_back({after->name, true, "GpuCapacityDropped",
                           "allocatable nvidia.com/gpu fell from " +
                               std::to_string(before->allocatable) + " to " +
                               std::to_string(after->allocatable)});
  } else if (after->allocatable > before->allocatable) {
    plan.events.push_back({after->name, false, "GpuCapacityRestored",
                           "allocatable nvidia.com/gpu rose from " +
                               std::to_string(before->allocatable) + " to " +
                               std::to_string(after->allocatable)});
  }
  if (before->ready && !after->ready) {
    plan.events.push_back(
        {after->name, true, "GpuNodeNotReady", "node with " + gpus + " is not Ready"});
  } else if (!before->ready && after->ready) {
    plan.events.push_back({after->name, false, "GpuNodeReady", "node with " + gpus + " is Ready"});
  }
  return plan;
}

NodeGpuInventoryReconciler::NodeGpuInventoryReconciler(const kube::Store<kube::NodeView>& nodes,
                                                       prometheus::Registry& registry,
                                                       kube::EventRecorder* recorder,
                                                       const kube::Store<kube::PodView>* pods)
    : nodes_(nodes),
      recorder_(recorder),
      nodes_gauge_(prometheus::BuildGauge()
                       .Name("gpu_autoscaler_gpu_nodes")
                       .Help("Nodes with nvidia.com/gpu capacity, per GPU model")
                       .Register(registry)),
      gpus_gauge_(prometheus::BuildGauge()
                      .Name("gpu_autoscaler_node_gpus")
                      .Help("GPUs on nodes per model; state is capacity, allocatable or "
                            "ready_allocatable (on Ready, schedulable nodes)")
                      .Register(registry)),
      pods_(pods),
      allocatable_gauge_(prometheus::BuildGauge()
                             .Name("gpu_autoscaler_node_allocatable_gpus")
                             .Help("GPU devices a node offers pods, by node, GPU model and "
                                   "resource (nvidia.com/gpu, nvidia.com/gpu.shared replicas, "
                                   "nvidia.com/mig-<profile> instances)")
                             .Register(registry)),
      allocated_gauge_(prometheus::BuildGauge()
                           .Name("gpu_autoscaler_node_allocated_gpus")
                           .Help("GPU devices requested by the pods bound to a node that are not "
                                 "Succeeded or Failed, by node, GPU model and resource")
                           .Register(registry)) {}

reconcile::RequestMapper NodeGpuInventoryReconciler::AllocationMapper() {
  return [](const reconcile::ChangedObject&) {
    return std::vector<reconcile::Request>{{"", std::string(kAllocationRequest)}};
  };
}

void NodeGpuInventoryReconciler::ReconcileAllocation() {
  const auto table = DecideGpuAllocation(nodes_.List(), pods_->List());
  std::lock_guard<std::mutex> l(mu_);
  // Series of nodes or resources that went away are removed, not left stale.
  for (auto it = allocation_.begin(); it != allocation_.end();) {
    auto now = table.find(it->first);
    if (now != table.end() && now->second.model == it->second.value.model) {
      ++it;
      continue;
    }
    allocatable_gauge_.Remove(it->second.allocatable);
    allocated_gauge_.Remove(it->second.allocated);
    it = allocation_.erase(it);
  }
  for (const auto& [key, value] : table) {
    AllocationSeries& s = allocation_[key];
    if (s.allocatable == nullptr) {
      const std::map<std::string, std::string> labels = {
          {"node", key.node}, {"model", value.model}, {"resource", key.resource}};
      s.allocatable = &allocatable_gauge_.Add(labels);
      s.allocated = &allocated_gauge_.Add(labels);
    }
    s.value = value;
    s.allocatable->Set(static_cast<double>(value.allocatable));
    s.allocated->Set(static_cast<double>(value.allocated));
  }
}

std::map<NodeResourceKey, NodeResourceAllocation> NodeGpuInventoryReconciler::Allocation() const {
  std::lock_guard<std::mutex> l(mu_);
  std::map<NodeResourceKey, NodeResourceAllocation> out;
  for (const auto& [key, s] : allocation_)
    out.emplace(key, s.value);
  return out;
}

reconcile::ReconcileResult NodeGpuInventoryReconciler::Reconcile(const reconcile::Request& request,
                                                                 std::stop_token) {
  if (request.name == kAllocationRequest) {
    if (pods_ != nullptr) ReconcileAllocation();
    return reconcile::Done{};
  }
  std::optional<NodeGpuSummary> after;
  if (auto node = nodes_.Get(request.name)) after = SummarizeNode(*node);

  InventoryPlan plan;
  {
    std::lock_guard<std::mutex> l(mu_);
    std::optional<NodeGpuSummary> before;
    if (auto it = known_.find(request.name); it != known_.end()) before = it->second;
    if (before == after) return reconcile::Done{};  // e.g. a resync, or a non-GPU change
    if (after) {
      known_[request.name] = *after;
    } else {
      known_.erase(request.name);
    }
    plan = DecideInventory(known_, before, after);
    ApplyGauges(plan.models);
    inventory_ = plan.models;
  }
  if (recorder_ != nullptr) {
    for (const PlannedEvent& e : plan.events) {
      recorder_->Record({"v1", "Node", "", e.node, ""},
                        e.warning ? kube::EventType::kWarning : kube::EventType::kNormal, e.reason,
                        e.message);
    }
  }
  return reconcile::Done{};
}

void NodeGpuInventoryReconciler::ApplyGauges(const std::map<std::string, ModelInventory>& models) {
  // Models that vanished read 0 rather than keeping a stale value.
  for (const auto& [model, old] : inventory_) {
    if (models.count(model) != 0) continue;
    nodes_gauge_.Add({{"model", model}}).Set(0);
    for (const char* state : {"capacity", "allocatable", "ready_allocatable"}) {
      gpus_gauge_.Add({{"model", model}, {"state", state}}).Set(0);
    }
  }
  for (const auto& [model, m] : models) {
    nodes_gauge_.Add({{"model", model}}).Set(static_cast<double>(m.nodes));
    gpus_gauge_.Add({{"model", model}, {"state", "capacity"}}).Set(static_cast<double>(m.capacity));
    gpus_gauge_.Add({{"model", model}, {"state", "allocatable"}})
        .Set(static_cast<double>(m.allocatable));
    gpus_gauge_.Add({{"model", model}, {"state", "ready_allocatable"}})
        .Set(static_cast<double>(m.ready_allocatable));
  }
}

std::map<std::string, ModelInventory> NodeGpuInventoryReconciler::Inventory() const {
  std::lock_guard<std::mutex> l(mu_);
  return inventory_;
}

}  // namespace gpu_autoscaler::controllers
