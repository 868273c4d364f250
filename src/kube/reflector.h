// File: src/kube/reflector.h
//
// The reflector keeps a cache in step with the API server: it lists a
// collection (in pages), then watches from the list's resourceVersion with
// bookmarks, resumes watches from the last resourceVersion it saw, renews
// watches the server closes, relists on 410 Gone, and backs off
// (exponentially, with jitter, on an injected clock) on errors. The protocol
// is the pure state machine in watcher_state.h; this class performs its
// actions.
//
//   auto lw = NewRestListerWatcher(client.get(), {resources::kPods});
//   Reflector reflector(std::move(lw), &sink, {.clock = &clock});
//   std::jthread t([&](std::stop_token st) { reflector.Run(st); });
//
// Decoding belongs to the ReflectorSink (the informer's typed codec); the
// reflector frames watch events and hands each object over on its own thread.
//
// Thread-safety: Run() runs on one thread; state() and stats() may be called
// from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <variant>

#include "common/clock.h"
#include "kube/error.h"
#include "kube/object_codec.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "kube/watcher_state.h"

namespace gpu_autoscaler::kube {

// Lists and watches one collection, returning raw bytes.
class ListerWatcher {
 public:
  virtual ~ListerWatcher() = default;
  // One page of the collection: a List body.
  virtual Result<std::string> List(const ListOptions& opts) = 0;
  // Streams a watch body to `on_chunk` (false stops it). OK when the server
  // ends the stream; an error for HTTP errors (410 included) and transport
  // failures.
  virtual Result<std::monostate> Watch(const ListOptions& opts,
                                       const std::function<bool(std::string_view)>& on_chunk,
                                       std::stop_token stop) = 0;
};

// A ListerWatcher over RestClient::ListPage/WatchRaw for `collection`
// (ref.name empty; ref.ns empty for all namespaces), with optional selectors.
std::unique_ptr<ListerWatcher> NewRestListerWatcher(RestClient* client, ObjectRef collection,
                                                    std::string label_selector = "",
                                                    std::string field_selector = "");

// Receives what the reflector reads; called on the reflector's thread.
class ReflectorSink {
 public:
  virtual ~ReflectorSink() = default;
  // A list starts over: drop staged pages.
  virtual void BeginList() = 0;
  // Decodes one List page and stages its items.
  virtual Result<ListMeta> StagePage(std::string_view body) = 0;
  // The staged pages form the complete collection at `resource_version`.
  virtual void CommitList(std::string resource_version) = 0;
  // Decodes and delivers an ADDED/MODIFIED/DELETED object; returns its
  // resourceVersion.
  virtual Result<std::string> DeliverEvent(WatchEventType type, std::string_view object_json) = 0;
  virtual void OnBookmark(const std::string& resource_version) { (void)resource_version; }
};

// Exponential backoff with jitter: attempt n waits
// min(max, initial * factor^(n-1)) * (1 + jitter * U[0,1)).
struct BackoffPolicy {
  std::chrono::milliseconds initial{800};
  std::chrono::milliseconds max{30'000};
  double factor = 2.0;
  double jitter = 0.5;
  Clock::Duration Delay(int attempt, double unit_random) const;
};

struct ReflectorOptions {
  Clock* clock = &RealClock::Instance();
  std::string name = "reflector";  // for logs
  int64_t page_size = 500;         // list `limit`; 0 lists in one response
  // Watches ask the server to end them after a random time in
  // [watch_timeout, 2 * watch_timeout), as client-go does, so that load spreads.
  std::chrono::seconds watch_timeout{300};
  BackoffPolicy backoff;
  uint64_t seed = 0;  // jitter RNG; 0 seeds from std::random_device
};

class Reflector {
 public:
  struct Stats {
    int64_t list_pages = 0;
    int64_t lists_committed = 0;
    int64_t relists = 0;  // lists after 410 Gone
    int64_t watches = 0;
    int64_t events = 0;
    int64_t bookmarks = 0;
    int64_t backoffs = 0;
    int64_t errors = 0;
  };

  Reflector(std::unique_ptr<ListerWatcher> lister_watcher, ReflectorSink* sink,
            ReflectorOptions options = {});

  // Lists and watches until `stop` is requested.
  void Run(std::stop_token stop);

  WatcherState state() const;
  Stats stats() const;
  // Last error seen ("" when none), for diagnostics.
  std::string last_error() const;

 private:
  // Performs a list-page request and returns the input it produced.
  WatcherInput ListPage(const std::string& continue_token);
  // Runs one watch; returns the input that ended it, or nothing when stopped.
  std::optional<WatcherInput> Watch(const std::string& resource_version, std::stop_token stop);
  // Waits out a backoff; false when stopped.
  bool Sleep(int attempt, std::stop_token stop);
  // Applies a transition, queueing its actions.
  void Step(const WatcherInput& input);
  void RecordError(const std::string& what);

  std::unique_ptr<ListerWatcher> lister_watcher_;
  ReflectorSink* sink_;
  ReflectorOptions options_;
  std::mt19937_64 rng_;
  std::vector<WatcherAction> pending_;

  mutable std::mutex mu_;  // guards state_, stats_, last_error_
  WatcherState state_;
  Stats stats_;
  std::string last_error_;
};

}  // namespace gpu_autoscaler::kube
