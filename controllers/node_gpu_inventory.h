// File: controllers/node_gpu_inventory.h
//
// NodeGpuInventory: watches Nodes and keeps, per GPU model, how many GPU
// nodes there are and their GPU capacity and allocatable counts, exported as
//   gpu_autoscaler_gpu_nodes{model}
//   gpu_autoscaler_node_gpus{model,state="capacity"|"allocatable"|"ready_allocatable"}
// and records Events on nodes whose GPUs appear, drop or come back, or whose
// Ready condition goes away. Given the Pod cache too, it also exports the exact
// allocation per node and GPU resource (node_gpu_allocation.h):
//   gpu_autoscaler_node_allocatable_gpus{node,model,resource}
//   gpu_autoscaler_node_allocated_gpus{node,model,resource}
// recomputed on the request named kAllocationRequest, which AllocationMapper
// sends for every Pod and Node change (the queue folds a burst into one pass).
//
// The logic is a pure decision (`DecideInventory`) over node summaries; the
// reconciler only reads the informer cache, applies gauges and records events.
//
//   NodeGpuInventoryReconciler r(nodes_informer->store(), registry, &recorder);
//   Controller c({.name = "node-gpu-inventory"}, r);
//   c.For(node_source);
//   c.Watches(node_source, r.AllocationMapper());   // with a Pod store only
//   c.Watches(pod_source, r.AllocationMapper());
//
// Thread-safety: the reconciler serializes its state behind a mutex, so any
// number of controller workers may call it.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "controllers/node_gpu_allocation.h"
#include "kube/node_view.h"
#include "kube/pod_view.h"
#include "kube/store.h"
#include "reconcile/controller.h"
#include "reconcile/reconciler.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Gauge;
}  // namespace prometheus
namespace gpu_autoscaler::kube {
class EventRecorder;
}

namespace gpu_autoscaler::controllers {

inline constexpr std::string_view kGpuResource = "nvidia.com/gpu";
// The request that recomputes the allocation gauges ('~' is never in a Node name).
inline constexpr std::string_view kAllocationRequest = "~allocation";

struct NodeGpuSummary {
  std::string name{};
  std::string model{};  // nvidia.com/gpu.product, "unknown" when unlabelled
  int64_t capacity = 0;
  int64_t allocatable = 0;
  bool ready = false;
  bool unschedulable = false;
  friend bool operator==(const NodeGpuSummary&, const NodeGpuSummary&) = default;
};

// nullopt for nodes without GPU capacity.
std::optional<NodeGpuSummary> SummarizeNode(const kube::NodeView& node);

struct ModelInventory {
  int64_t nodes = 0;
  int64_t capacity = 0;
  int64_t allocatable = 0;
  int64_t ready_allocatable = 0;  // on Ready, schedulable nodes
  friend bool operator==(const ModelInventory&, const ModelInventory&) = default;
};

struct PlannedEvent {
  std::string node{};
  bool warning = false;
  std::string reason{};
  std::string message{};
  friend bool operator==(const PlannedEvent&, const PlannedEvent&) = default;
};

struct InventoryPlan {
  std::map<std::string, ModelInventory> models{};
  std::vector<PlannedEvent> events{};
};

// The inventory over `nodes` (all GPU nodes now known) and the events for
// one node changing from `before` to `after` (absent: not a GPU node / gone).
InventoryPlan DecideInventory(const std::map<std::string, NodeGpuSummary>& nodes,
                              const std::optional<NodeGpuSummary>& before,
                              const std::optional<NodeGpuSummary>& after);

class NodeGpuInventoryReconciler final : public reconcile::Reconciler {
 public:
  // `nodes`, `registry`, `recorder` (optional) and `pods` (optional: no
  // allocation gauges without it) must outlive the reconciler.
  NodeGpuInventoryReconciler(const kube::Store<kube::NodeView>& nodes,
                             prometheus::Registry& registry, kube::EventRecorder* recorder,
                             const kube::Store<kube::PodView>* pods = nullptr);

  // Maps any change to kAllocationRequest.
  static reconcile::RequestMapper AllocationMapper();

  reconcile::ReconcileResult Reconcile(const reconcile::Request& request,
                                       std::stop_token stop) override;

  std::map<std::string, ModelInventory> Inventory() const;
  std::map<NodeResourceKey, NodeResourceAllocation> Allocation() const;

 private:
  void ApplyGauges(const std::map<std::string, ModelInventory>& models);
  void ReconcileAllocation();

  struct AllocationSeries {
    NodeResourceAllocation value{};
    prometheus::Gauge* allocatable = nullptr;
    prometheus::Gauge* allocated = nullptr;
  };

  const kube::Store<kube::NodeView>& nodes_;
  kube::EventRecorder* recorder_;
  prometheus::Family<prometheus::Gauge>& nodes_gauge_;
  prometheus::Family<prometheus::Gauge>& gpus_gauge_;
  const kube::Store<kube::PodView>* pods_;
  prometheus::Family<prometheus::Gauge>& allocatable_gauge_;
  prometheus::Family<prometheus::Gauge>& allocated_gauge_;

  mutable std::mutex mu_;
  std::map<std::string, NodeGpuSummary> known_;
  std::map<std::string, ModelInventory> inventory_;
  std::map<NodeResourceKey, AllocationSeries> allocation_;
};

}  // namespace gpu_autoscaler::controllers
