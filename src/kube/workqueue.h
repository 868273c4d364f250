// File: src/kube/workqueue.h
//
// The controller work queue, with client-go util/workqueue semantics:
//  - fair: items are handed out in the order they were added (FIFO), or,
//    with WorkQueueOptions::priority, highest priority first and in the
//    order added among equals (kube-scheduler's activeQ with PrioritySort);
//  - deduplicated: adding a key that is already queued does nothing;
//  - stingy: a key being processed is never handed to a second worker; if it
//    is added again meanwhile it is queued once more when Done() is called;
//  - delaying: AddAfter() holds a key until the injected Clock reaches its
//    ready time (an earlier AddAfter for the same key wins);
//  - rate limited: AddRateLimited() delays by the QueueRateLimiter (per-item
//    exponential backoff max'ed with a token bucket by default).
//
//   WorkQueue q({.name = "nodes", .clock = &clock});
//   q.Add("ns/a");
//   std::string key;
//   while (q.Get(&key)) {          // false once shut down and empty
//     if (Sync(key).ok()) q.Forget(key); else q.AddRateLimited(key);
//     q.Done(key);
//   }
//
// Metrics (when a registry is given): workqueue_depth, workqueue_adds_total,
// workqueue_queue_duration_seconds, workqueue_work_duration_seconds,
// workqueue_retries_total, workqueue_unfinished_work_seconds and
// workqueue_longest_running_processor_seconds, all labelled {name}. The last
// two are refreshed by UpdateUnfinishedWorkMetrics() (call it before a scrape).
//
// Thread-safety: every method is safe to call from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "kube/queue_rate_limiter.h"

namespace prometheus {
class Registry;
}

namespace gpu_autoscaler::kube {

struct WorkQueueOptions {
  std::string name = "default";  // the {name} metric label
  Clock* clock = &RealClock::Instance();
  prometheus::Registry* metrics = nullptr;  // optional
  // Null: DefaultControllerRateLimiter(*clock).
  std::unique_ptr<QueueRateLimiter> rate_limiter = nullptr;
  // When set, a key's priority, read each time it becomes ready; higher goes
  // first. Called under the queue's lock: it must not call the queue.
  std::function<int64_t(const std::string& key)> priority = nullptr;
};

class WorkQueue {
 public:
  using Duration = Clock::Duration;

  explicit WorkQueue(WorkQueueOptions opts = {});
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `key` unless it is already queued. Ignored after shutdown.
  void Add(const std::string& key);
  // Queues `key` once `delay` has passed on the clock (at once if <= 0).
  void AddAfter(const std::string& key, Duration delay);
  // AddAfter(key, rate_limiter.When(key)).
  void AddRateLimited(const std::string& key);
  // Clears `key`'s retry history.
  void Forget(const std::string& key);
  int NumRequeues(const std::string& key);

  // Blocks until a key is ready and marks it as being processed. Returns false
  // once the queue is shut down and holds no ready key.
  bool Get(std::string* key);
  // Like Get but never blocks; false when nothing is ready.
  bool TryGet(std::string* key);
  // Ends processing of `key`; re-queues it if it was added meanwhile.
  void Done(const std::string& key);

  // Ignores further adds and wakes every Get(); ready keys are still handed
  // out, delayed keys are dropped.
  void ShutDown();
  // ShutDown, then blocks until every key being processed is Done().
  void ShutDownWithDrain();
  bool ShuttingDown() const;

  // Keys ready to be handed out (not processing, not delayed).
  size_t Len() const;
  // Keys waiting for their AddAfter time.
  size_t NumWaiting() const;
  // Keys currently being processed.
  size_t NumProcessing() const;

  void UpdateUnfinishedWorkMetrics();

 private:
  struct ItemState {
    bool dirty = false;       // queued, or re-added while processing
    bool processing = false;  // handed out by Get, Done not yet called
    Clock::TimePoint queued_at{};
    Clock::TimePoint started_at{};
  };
  using Item = std::pair<const std::string, ItemState>;
  struct Waiting {
    Clock::TimePoint ready;
    uint64_t seq;  // FIFO among keys with the same ready time
    std::string key;
  };
  struct Metrics;

  void AddLocked(const std::string& key);
  // The ready keys, in the order handed out.
  void PushReadyLocked(Item* item);
  size_t ReadyLocked() const;
  // Moves delayed keys whose time has come into the queue.
  void PromoteReadyLocked();
  bool PopLocked(std::string* key);

  Clock& clock_;
  std::unique_ptr<QueueRateLimiter> rate_limiter_;
  std::unique_ptr<Metrics> metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;        // a key became ready, or shutdown
  std::condition_variable drain_cv_;  // processing count reached zero
  // A key has an entry while it is queued or being processed; the node
  // addresses are stable, so queue_ points into the map.
  std::unordered_map<std::string, ItemState> items_;
  std::deque<Item*> queue_;  // FIFO, without a priority function
  struct Ranked {
    int64_t priority;
    uint64_t seq;
    Item* item;
    bool operator<(const Ranked& o) const {
      return priority != o.priority ? priority > o.priority : seq < o.seq;
    }
  };
  std::function<int64_t(const std::string&)> priority_{};
  std::set<Ranked> ranked_{};  // with one
  uint64_t ranked_seq_ = 0;
  std::vector<Waiting> waiting_heap_;  // min-heap on (ready, seq)
  std::unordered_map<std::string, Clock::TimePoint> waiting_ready_;
  uint64_t waiting_seq_ = 0;
  size_t processing_ = 0;
  int idle_getters_ = 0;
  bool shutting_down_ = false;
  bool draining_ = false;
};

}  // namespace gpu_autoscaler::kube
