// File: controllers/cost_metering.h
//
// The cost controller: every tick (1 s by default) it prices the cluster's
// scheduled pods and nodes (from the informer caches) with the cost engine's
// Meter and writes the cost runs that changed (a pod's constant per-second
// cost from one second on) to the cost store (SQLite or PostgreSQL); the
// store extends open runs to its watermark, so a steady cluster writes almost
// nothing per second. It also exports cost rate and totals as
// Prometheus metrics, with bounded label cardinality.
//
//   CostMeteringLoop loop(nodes->store(), pods->store(), open_store, pricing,
//                         registry, RealClock::Instance(), {});
//   nodes->AddEventHandler(...loop.MarkInventoryChanged()...);
//   loop.Run(stop);            // leader only: RunOnce() every interval
//
// No second lost, none counted twice. The loop's only state is a cursor: the
// next second to meter. On start (a restart or a new leader) it resumes from
// the store's newest stored second + 1 (its watermark), bounded by
// `max_backfill`, and meters the gap with the current inventory (a pod is
// charged only from its creation second). A store outage leaves the cursor
// where it was, so the missed seconds are metered when the store answers
// again; the meter then re-reports every run (complete), and the store keeps
// the runs that did not change. AppendRuns never meters a stored second
// again, so replaying after a crash changes nothing. Pods deleted while no manager ran are not in
// the cache and are not charged for that gap (docs/cost.md).
//
// Decide/apply split: BuildMeterInventory is the pure decision (what is
// metered at a second); RunOnce applies it to the store and the metrics.
//
// Utilisation and waste: with a UtilizationSource (Prometheus with NVIDIA
// dcgm-exporter series, or the node agent), each tick fetches the latest
// figure per pod, usage cost follows it, and an IdleGpuDetector marks GPUs
// allocated but under 5% for 30 minutes (defaults) as idle: an Event on the
// pod, gpu_autoscaler_idle_gpu_* metrics.
//
// Thread-safety: MarkInventoryChanged and SetPricing are safe from any thread
// (informer handlers, config reload). RunOnce/Run are called from one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "cost/metering.h"
#include "cost/pricing.h"
#include "cost/store.h"
#include "cost/utilization.h"
#include "cost/waste.h"
#include "kube/node_view.h"
#include "kube/pod_view.h"
#include "kube/store.h"

namespace prometheus {
class Registry;
}

namespace gpu_autoscaler::controllers {

// What the meter charges at one second, and until when that stays true.
struct MeterInventory {
  std::vector<cost::MeteredNode> nodes{};
  std::vector<cost::MeteredPod> pods{};
  // The first second after `second` at which a known pod's creation adds it
  // (INT64_MAX when none will).
  int64_t valid_until = INT64_MAX;
  // "ns/name: reason" for pods whose sharing annotations do not parse (they
  // are charged as exclusive GPU holders, never as free).
  std::vector<std::string> bad_annotations{};
};

// Pods are metered when scheduled (spec.nodeName set), not Succeeded/Failed,
// and created at or before `second`. GPUs = nvidia.com/gpu plus
// nvidia.com/gpu.shared (time-slicing and MPS) plus every nvidia.com/mig-*
// request. Nodes use allocatable CPU, memory and GPUs.
MeterInventory BuildMeterInventory(std::span<const std::shared_ptr<const kube::NodeView>> nodes,
                                   std::span<const std::shared_ptr<const kube::PodView>> pods,
                                   int64_t second);

struct CostMeteringOptions {
  std::chrono::milliseconds interval{1000};
  // How far back a restarted loop fills a gap (older seconds are lost, and
  // said so in the log and a metric).
  int64_t max_backfill_seconds = 3600;
  // Seconds per store transaction while catching up, at most. A transaction
  // writes only the runs that changed, at most one row per pod and idle node.
  int64_t chunk_seconds = 60;
  cost::MeterOptions meter{};
  // Series kept per metric family; the rest add up under the value "other".
  size_t metrics_top_n = 100;
  // Where GPU utilisation comes from (null: allocation cost only, no waste).
  // Fetched once per tick; must outlive the loop.
  cost::UtilizationSource* utilization = nullptr;
  // Idle GPU: allocated but under the threshold for the window.
  cost::WasteOptions waste{};
  // Called when a pod's GPU becomes idle or busy again ("ns/name", event).
  std::function<void(const std::string& pod, const cost::IdleEvent& event, double hourly_cost)>
      on_idle_event = nullptr;
};

class CostMeteringLoop {
 public:
  using StoreFactory = std::function<Result<std::unique_ptr<cost::CostStore>>()>;

  // The stores and the registry must outlive the loop.
  CostMeteringLoop(const kube::Store<kube::NodeView>& nodes, const kube::Store<kube::PodView>& pods,
                   StoreFactory open_store, std::shared_ptr<const cost::PricingSource> pricing,
                   prometheus::Registry& registry, Clock& clock, CostMeteringOptions options);
  ~CostMeteringLoop();
  CostMeteringLoop(const CostMeteringLoop&) = delete;
  CostMeteringLoop& operator=(const CostMeteringLoop&) = delete;

  // A node or pod changed: rebuild the inventory before the next second.
  void MarkInventoryChanged() { inventory_changed_.store(true, std::memory_order_release); }
  // New prices apply from the next metered second.
  void SetPricing(std::shared_ptr<const cost::PricingSource> pricing);

  // Meters and stores every whole second not yet stored, up to now - 1.
  // Returns how many seconds were stored. A store error leaves the cursor.
  Result<int64_t> RunOnce();
  // RunOnce every interval until `stop`. Errors are logged and retried.
  Status Run(std::stop_token stop);

  // The next second to meter (nullopt before the first RunOnce).
  std::optional<int64_t> cursor() const { return cursor_; }

 private:
  struct Metrics;
  Status EnsureStore();
  Status RebuildInventory(int64_t second);
  void WarnUnpricedNodes(const std::vector<cost::UnpricedNode>& unpriced);
  void PublishMetrics(const cost::TickResult& tick);
  void FetchUtilization();
  void ApplyUtilization();
  void ObserveWaste(const cost::TickResult& tick);

  const kube::Store<kube::NodeView>& nodes_;
  const kube::Store<kube::PodView>& pods_;
  StoreFactory open_store_;
  Clock& clock_;
  CostMeteringOptions options_;

  std::mutex pricing_mu_;
  std::shared_ptr<const cost::PricingSource> pending_pricing_;
  std::shared_ptr<const cost::PricingSource> pricing_;  // used by meter_
  std::unique_ptr<cost::Meter> meter_;

  std::atomic<bool> inventory_changed_{true};
  MeterInventory inventory_;
  int64_t inventory_second_ = INT64_MIN;
  std::unique_ptr<cost::CostStore> store_;
  std::optional<int64_t> cursor_;
  cost::RunChanges run_changes_;
  cost::TickResult tick_;
  std::vector<double> chunk_totals_;  // by metrics series, for one store transaction
  std::vector<double> chunk_last_;
  bool warned_no_utilization_ = false;
  bool utilization_failing_ = false;
  std::map<std::string, double> utilization_;  // "ns/name" -> share utilisation
  cost::IdleGpuDetector waste_;
  std::map<std::string, std::string> warned_bad_pods_;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace gpu_autoscaler::controllers
