// File: src/kube/event_recorder.h
//
// Records core/v1 Events about objects, like client-go's record package:
//  - asynchronous: Record() only queues (bounded; a full queue drops and
//    counts), a background thread talks to the API server;
//  - aggregated: the same object + type + reason + message seen again within
//    10 minutes PATCHes the existing Event's count and lastTimestamp instead of
//    creating a new one;
//  - rate limited per object (client-go EventSourceObjectSpamFilter): a token
//    bucket per (component, involved object) with burst 25, refilled at one
//    token per 5 minutes; events over the limit are dropped and counted.
//
// Metrics (when `options.metrics` is set): gpu_autoscaler_events_total with a
// `result` label: created, patched, dropped_spam, dropped_queue_full, failed.
//
//   auto sink = NewRestEventSink(client);
//   EventRecorder recorder(*sink, {.component = "gpu-autoscaler"});
//   recorder.Record(EventObject::Of(node_json), EventType::kWarning, "GpuLost",
//                   "2 of 8 GPUs disappeared");
//
// Thread-safety: Record/Flush/stats are safe from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "common/clock.h"
#include "kube/error.h"

namespace prometheus {
class Registry;
}

namespace gpu_autoscaler::kube {

class RestClient;

// The involvedObject of an Event.
struct EventObject {
  std::string api_version{};
  std::string kind{};
  std::string ns{};
  std::string name{};
  std::string uid{};
  // From a JSON object (apiVersion, kind, metadata.namespace/name/uid).
  static EventObject Of(const nlohmann::json& obj);
};

enum class EventType { kNormal, kWarning };

// Where events go: POST and PATCH of core/v1 events.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual Result<std::monostate> Create(const std::string& ns, const nlohmann::json& event) = 0;
  // Merge patch of one event.
  virtual Result<std::monostate> Patch(const std::string& ns, const std::string& name,
                                       const nlohmann::json& patch) = 0;
};

// An EventSink over the REST API (`client` must outlive it).
std::unique_ptr<EventSink> NewRestEventSink(RestClient& client);

struct EventRecorderOptions {
  std::string component = "gpu-autoscaler";  // source.component
  std::string host{};                        // source.host (optional)
  Clock* clock = &RealClock::Instance();
  size_t queue_capacity = 1000;
  Clock::Duration aggregation_window = std::chrono::minutes(10);
  int spam_burst = 25;
  Clock::Duration spam_refill_interval = std::chrono::minutes(5);  // one token per interval
  size_t max_cached_events = 4096;                                 // aggregation cache bound
  prometheus::Registry* metrics = nullptr;                         // optional
};

class EventRecorder {
 public:
  struct Stats {
    int64_t created = 0;
    int64_t patched = 0;
    int64_t dropped_spam = 0;
    int64_t dropped_queue_full = 0;
    int64_t failed = 0;  // the API call failed
  };

  // `sink` must outlive the recorder.
  EventRecorder(EventSink& sink, EventRecorderOptions options = {});
  // Stops the background thread; events still queued are dropped.
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // Queues an event; never blocks on I/O.
  void Record(const EventObject& object, EventType type, std::string reason, std::string message);

  // Waits (real time) until every queued event has been sent; false on timeout.
  bool Flush(std::chrono::milliseconds timeout);
  Stats stats() const;

 private:
  struct Pending {
    EventObject object;
    EventType type;
    std::string reason;
    std::string message;
    Clock::WallTime when;
  };
  struct Aggregate {
    std::string name;  // the Event object's name
    std::string ns;
    int64_t count = 0;
    Clock::TimePoint last_seen{};
  };
  struct Bucket {
    double tokens = 0;
    Clock::TimePoint last{};
  };

  enum class Outcome { kCreated, kPatched, kDroppedSpam, kDroppedQueueFull, kFailed };
  struct Metrics;

  // Counts one outcome in stats_ and the metrics. Requires mu_.
  void CountLocked(Outcome outcome);
  void Loop(std::stop_token stop);
  void Send(const Pending& event);
  bool AllowBySpamFilter(const Pending& event);
  void PruneAggregates(Clock::TimePoint now);

  EventSink& sink_;
  const EventRecorderOptions options_;
  Clock& clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // work queued, or stop
  std::condition_variable idle_cv_;  // queue drained
  std::deque<Pending> queue_;
  bool busy_ = false;  // the worker is sending an event
  Stats stats_;
  std::unique_ptr<Metrics> metrics_;

  // Worker thread only.
  std::unordered_map<std::string, Aggregate> aggregates_;
  std::unordered_map<std::string, Bucket> buckets_;
  uint64_t name_counter_ = 0;

  std::jthread worker_;
};

}  // namespace gpu_autoscaler::kube
