#include "reconcile/controller.h"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "reconcile/logging.h"

namespace gpu_autoscaler::reconcile {

using namespace std::chrono_literals;

Request Request::FromKey(std::string_view key) {
  const auto slash = key.find('/');
  if (slash == std::string_view::npos) return {"", std::string(key)};
  return {std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

std::string_view ResultLabel(const ReconcileResult& result) {
  return std::visit(
      [](const auto& r) -> std::string_view {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, Done>) return "success";
        if constexpr (std::is_same_v<T, RequeueAfter>) return "requeue_after";
        if constexpr (std::is_same_v<T, TransientError>) return "error";
        if constexpr (std::is_same_v<T, Requeue>) return "requeue";
        return "terminal_error";
      },
      result);
}

void ApplyResultToQueue(kube::WorkQueue& queue, const std::string& key,
                        const ReconcileResult& result) {
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, Done>) {
          queue.Forget(key);
        } else if constexpr (std::is_same_v<T, RequeueAfter>) {
          // A deliberate requeue is not a failure: reset the backoff.
          queue.Forget(key);
          queue.AddAfter(key, r.after);
        } else if constexpr (std::is_same_v<T, TransientError> || std::is_same_v<T, Requeue>) {
          queue.AddRateLimited(key);
        } else {
          // Retrying cannot help; the next change to the object enqueues it again.
          queue.Forget(key);
        }
      },
      result);
}

namespace {

// ResultLabel of each ReconcileResult alternative, by variant index.
template <size_t... I>
std::array<std::string_view, sizeof...(I)> LabelsByIndex(std::index_sequence<I...>) {
  return {ResultLabel(ReconcileResult(std::in_place_index<I>))...};
}
std::array<std::string_view, std::variant_size_v<ReconcileResult>> LabelsByIndex() {
  return LabelsByIndex(std::make_index_sequence<std::variant_size_v<ReconcileResult>>());
}

}  // namespace

struct Controller::Metrics {
  Metrics(prometheus::Registry& r, const std::string& name) {
    const prometheus::Labels labels{{"controller", name}};
    auto& total = prometheus::BuildCounter()
                      .Name("controller_runtime_reconcile_total")
                      .Help("Total number of reconciliations per controller and result")
                      .Register(r);
    for (std::string_view result : LabelsByIndex()) {
      by_result.push_back(&total.Add({{"controller", name}, {"result", std::string(result)}}));
    }
    errors = &prometheus::BuildCounter()
                  .Name("controller_runtime_reconcile_errors_total")
                  .Help("Total number of reconciliation errors per controller")
                  .Register(r)
                  .Add(labels);
    panics = &prometheus::BuildCounter()
                  .Name("controller_runtime_reconcile_panics_total")
                  .Help("Total number of reconciliations that threw an exception")
                  .Register(r)
                  .Add(labels);
    time = &prometheus::BuildHistogram()
                .Name("controller_runtime_reconcile_time_seconds")
                .Help("Length of time per reconciliation per controller")
                .Register(r)
                .Add(labels, prometheus::Histogram::BucketBoundaries{
                                 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3,  0.35,
                                 0.4,   0.45, 0.5,   0.6,  0.7, 0.8,  0.9, 1.0,  1.25, 1.5,
                                 1.75,  2.0,  2.5,   3.0,  3.5, 4.0,  4.5, 5,    6,    7,
                                 8,     9,    10,    15,   20,  25,   30,  40,   50,   60});
  }
  std::vector<prometheus::Counter*> by_result;  // indexed like the result variant
  prometheus::Counter* errors;
  prometheus::Counter* panics;
  prometheus::Histogram* time;
};

Controller::Controller(ControllerOptions options, Reconciler& reconciler)
    : name_(std::move(options.name)),
      workers_(std::max(1, options.workers)),
      cache_sync_timeout_(options.cache_sync_timeout),
      clock_(*options.clock),
      reconciler_(reconciler) {
  queue_ = std::make_unique<kube::WorkQueue>(kube::WorkQueueOptions{
      .name = name_,
      .clock = options.clock,
      .metrics = options.metrics,
      .rate_limiter = std::move(options.rate_limiter),
  });
  if (options.metrics != nullptr) metrics_ = std::make_unique<Metrics>(*options.metrics, name_);
}

Controller::~Controller() {
  queue_->ShutDown();
}

void Controller::Enqueue(const Request& request) {
  queue_->Add(request.Key());
}

void Controller::For(EventSource& source) {
  sources_.push_back(&source);
  source.Subscribe([this](const ChangedObject& obj) { Enqueue({obj.ns, obj.name}); });
}

void Controller::Owns(EventSource& source, std::string owner_kind) {
  sources_.push_back(&source);
  source.Subscribe([this, kind = std::move(owner_kind)](const ChangedObject& obj) {
    for (const OwnerInfo& owner : obj.owners) {
      if (owner.controller && owner.kind == kind) Enqueue({obj.ns, owner.name});
    }
  });
}

void Controller::Watches(EventSource& source, RequestMapper mapper) {
  sources_.push_back(&source);
  source.Subscribe([this, mapper = std::move(mapper)](const ChangedObject& obj) {
    for (const Request& r : mapper(obj))
      Enqueue(r);
  });
}

bool Controller::HasSynced() const {
  for (const EventSource* s : sources_) {
    if (!s->HasSynced()) return false;
  }
  return true;
}

void Controller::ReconcileOne(const std::string& key, std::stop_token stop) {
  const Request request = Request::FromKey(key);
  const auto start = clock_.Now();
  ReconcileResult result;
  bool threw = false;
  try {
    result = reconciler_.Reconcile(request, stop);
  } catch (const std::exception& e) {
    threw = true;
    result = TransientError{std::string("reconciler threw: ") + e.what()};
  } catch (...) {
    threw = true;
    result = TransientError{"reconciler threw a non-standard exception"};
  }
  if (metrics_) {
    metrics_->time->Observe(std::chrono::duration<double>(clock_.Now() - start).count());
    metrics_->by_result[result.index()]->Increment();
    if (threw) metrics_->panics->Increment();
  }
  if (const auto* err = std::get_if<TransientError>(&result)) {
    if (metrics_) metrics_->errors->Increment();
    Log(LogLevel::kWarn, "reconcile failed, will retry",
        {{"controller", name_}, {"key", key}, {"error", err->message}});
  } else if (const auto* term = std::get_if<TerminalError>(&result)) {
    if (metrics_) metrics_->errors->Increment();
    Log(LogLevel::kError, "reconcile failed terminally, not retrying",
        {{"controller", name_}, {"key", key}, {"error", term->message}});
  } else if (const auto* requeue = std::get_if<Requeue>(&result)) {
    Log(LogLevel::kDebug, "reconcile requeued",
        {{"controller", name_}, {"key", key}, {"reason", requeue->reason}});
  } else {
    Log(LogLevel::kDebug, "reconciled",
        {{"controller", name_}, {"key", key}, {"result", ResultLabel(result)}});
  }
  ApplyResultToQueue(*queue_, key, result);
}

void Controller::Worker(std::stop_token stop) {
  std::string key;
  while (queue_->Get(&key)) {
    // After stop, keys still queued are dropped; only in-flight work finishes.
    if (!stop.stop_requested()) ReconcileOne(key, stop);
    queue_->Done(key);
  }
}

Status Controller::Run(std::stop_token stop) {
  // Informer sync is real-time I/O, so it is polled on the steady clock.
  const auto sync_deadline = std::chrono::steady_clock::now() + cache_sync_timeout_;
  while (!HasSynced()) {
    if (stop.stop_requested()) {
      queue_->ShutDown();
      return Status::Ok();
    }
    if (std::chrono::steady_clock::now() >= sync_deadline) {
      queue_->ShutDown();
      return DeadlineExceededError("controller " + name_ + ": caches did not sync within " +
                                   std::to_string(cache_sync_timeout_.count()) + " ms");
    }
    std::this_thread::sleep_for(10ms);
  }
  Log(LogLevel::kInfo, "starting workers",
      {{"controller", name_}, {"workers", std::to_string(workers_)}});
  std::vector<std::jthread> workers;
  workers.reserve(workers_);
  for (int i = 0; i < workers_; ++i) {
    workers.emplace_back([this, stop] { Worker(stop); });
  }
  {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, stop, [] { return false; });
  }
  Log(LogLevel::kInfo, "stopping workers, draining in-flight reconciles", {{"controller", name_}});
  queue_->ShutDownWithDrain();
  for (auto& w : workers)
    w.join();
  Log(LogLevel::kInfo, "controller stopped", {{"controller", name_}});
  return Status::Ok();
}

}  // namespace gpu_autoscaler::reconcile
