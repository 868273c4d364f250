// File: src/reconcile/reconciler.h
//
// The reconciler contract. A Reconciler brings one object (named by a
// Request) to its desired state and says what should happen next; only the
// Controller turns that answer into work-queue operations.
//
//   class GpuPoolReconciler : public Reconciler {
//     ReconcileResult Reconcile(const Request& req, std::stop_token stop) override {
//       auto pool = client.Get(...);
//       if (!pool.ok()) return TransientError{pool.error().ToString()};
//       if (waiting_for_nodes) return RequeueAfter{30s};
//       return Done{};
//     }
//   };
//
// Results: Done (forget the item), RequeueAfter (run again after d),
// TransientError (retry with rate-limited backoff), TerminalError (log and
// do not retry until the object changes again), Requeue (retry with the same
// backoff, but not a failure: the write lost an optimistic-concurrency race,
// typically a 409 because the cache had not yet seen our own last write).
//
// Thread-safety: a Controller calls Reconcile from several worker threads at
// once, never twice concurrently for the same Request.
#pragma once

#include <stop_token>
#include <string>
#include <string_view>
#include <variant>

#include "common/clock.h"

namespace gpu_autoscaler::reconcile {

struct Request {
  std::string ns{};  // empty for cluster-scoped objects
  std::string name{};

  // "namespace/name", or "name" when cluster-scoped (the work-queue key).
  std::string Key() const { return ns.empty() ? name : ns + "/" + name; }
  static Request FromKey(std::string_view key);
  friend bool operator==(const Request&, const Request&) = default;
};

struct Done {};
struct RequeueAfter {
  Clock::Duration after{};
};
struct TransientError {
  std::string message{};
};
struct TerminalError {
  std::string message{};
};
// controller-runtime's Result{Requeue: true}: rate-limited like an error,
// logged at debug and counted as result="requeue", not as an error.
struct Requeue {
  std::string reason{};
};
using ReconcileResult = std::variant<Done, RequeueAfter, TransientError, TerminalError, Requeue>;

// The metric label of a result: "success", "requeue_after", "error",
// "terminal_error", "requeue".
std::string_view ResultLabel(const ReconcileResult& result);

class Reconciler {
 public:
  virtual ~Reconciler() = default;
  // `stop` fires when the controller shuts down; in-flight calls are allowed
  // to finish (the manager drains them), so honour it only for long waits.
  virtual ReconcileResult Reconcile(const Request& request, std::stop_token stop) = 0;
};

}  // namespace gpu_autoscaler::reconcile
