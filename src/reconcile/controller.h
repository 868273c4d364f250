// File: src/reconcile/controller.h
//
// A controller: event sources (informers) feed keys into a WorkQueue, N
// workers pop keys and call the Reconciler, and the controller alone maps
// each result onto the queue, like controller-runtime's reconcileHandler:
//
//   Done            -> Forget
//   RequeueAfter d  -> Forget + AddAfter(d)
//   TransientError  -> AddRateLimited (per-key exponential backoff)
//   TerminalError   -> Forget, logged, not retried
//   exception       -> treated as TransientError
//
//   Controller c({.name = "gpupool", .workers = 4, .metrics = &registry}, reconciler);
//   c.For(pool_source);                     // a changed GpuPool -> its own key
//   c.Owns(pod_source, "GpuPool");          // a changed Pod -> its controller owner's key
//   c.Watches(node_source, MapNodeToPools); // anything else -> custom mapping
//   c.Run(stop);                            // blocks; drains in-flight work on stop
//
// Metrics (labelled {controller}): controller_runtime_reconcile_total{result},
// controller_runtime_reconcile_time_seconds, controller_runtime_reconcile_errors_total,
// controller_runtime_reconcile_panics_total, plus the workqueue_* families.
//
// Thread-safety: For/Owns/Watches before Run. Run once. HasSynced, queue()
// and the event callbacks are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "kube/workqueue.h"
#include "reconcile/reconciler.h"

namespace prometheus {
class Registry;
}

namespace gpu_autoscaler::reconcile {

// An owner reference as event sources report it.
struct OwnerInfo {
  std::string api_version{};  // "gpu-autoscaler.io/v1alpha1"
  std::string kind{};
  std::string name{};
  bool controller = false;
};

// What a source says about an object that was added, updated or deleted.
struct ChangedObject {
  std::string ns{};
  std::string name{};
  std::vector<OwnerInfo> owners{};
};

// An informer as a controller sees it (adapters wrap SharedInformer).
class EventSource {
 public:
  virtual ~EventSource() = default;
  // Registers `on_change` for every add, update and delete (called on the
  // source's dispatch thread). Subscribe before the source starts.
  virtual void Subscribe(std::function<void(const ChangedObject&)> on_change) = 0;
  // True once the initial list has been delivered.
  virtual bool HasSynced() const = 0;
};

using RequestMapper = std::function<std::vector<Request>(const ChangedObject&)>;

struct ControllerOptions {
  std::string name = "controller";
  int workers = 1;
  Clock* clock = &RealClock::Instance();
  prometheus::Registry* metrics = nullptr;
  // Null: kube::DefaultControllerRateLimiter.
  std::unique_ptr<kube::QueueRateLimiter> rate_limiter = nullptr;
  // Run fails if the sources have not synced within this (real) time.
  std::chrono::milliseconds cache_sync_timeout{120'000};
};

// Applies one reconcile result to `queue` for `key` (the controller's only
// queue policy, exposed for tests).
void ApplyResultToQueue(kube::WorkQueue& queue, const std::string& key,
                        const ReconcileResult& result);

class Controller {
 public:
  // `reconciler` must outlive the controller.
  Controller(ControllerOptions options, Reconciler& reconciler);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  const std::string& name() const { return name_; }

  // The primary resource: each changed object enqueues itself.
  void For(EventSource& source);
  // Owned objects enqueue their controller owner of `owner_kind` (same namespace).
  void Owns(EventSource& source, std::string owner_kind);
  // Any other source with a custom mapping.
  void Watches(EventSource& source, RequestMapper mapper);

  // Waits for the sources to sync, runs the workers until `stop`, then shuts
  // the queue down with drain: in-flight reconciles finish, queued keys are dropped.
  Status Run(std::stop_token stop);

  bool HasSynced() const;
  kube::WorkQueue& queue() { return *queue_; }

 private:
  struct Metrics;
  void Enqueue(const Request& request);
  void Worker(std::stop_token stop);
  void ReconcileOne(const std::string& key, std::stop_token stop);

  const std::string name_;
  const int workers_;
  const std::chrono::milliseconds cache_sync_timeout_;
  Clock& clock_;
  Reconciler& reconciler_;
  std::unique_ptr<kube::WorkQueue> queue_;
  std::unique_ptr<Metrics> metrics_;
  std::vector<EventSource*> sources_;
};

}  // namespace gpu_autoscaler::reconcile
