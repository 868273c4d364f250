#include "kube/workqueue.h"

#include <algorithm>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace gpu_autoscaler::kube {

namespace {

bool LaterThan(const Clock::TimePoint& a_ready, uint64_t a_seq, const Clock::TimePoint& b_ready,
               uint64_t b_seq) {
  return a_ready != b_ready ? a_ready > b_ready : a_seq > b_seq;
}

double Seconds(Clock::Duration d) {
  return std::chrono::duration<double>(d).count();
}

// client-go's buckets: 1e-8 s .. 10 s, factor 10.
prometheus::Histogram::BucketBoundaries DurationBuckets() {
  return {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10};
}

}  // namespace

struct WorkQueue::Metrics {
  Metrics(prometheus::Registry& r, const std::string& name) {
    const prometheus::Labels labels{{"name", name}};
    depth = &prometheus::BuildGauge()
                 .Name("workqueue_depth")
                 .Help("Current depth of the workqueue")
                 .Register(r)
                 .Add(labels);
    adds = &prometheus::BuildCounter()
                .Name("workqueue_adds_total")
                .Help("Total number of adds handled by the workqueue")
                .Register(r)
                .Add(labels);
    queue_duration = &prometheus::BuildHistogram()
                          .Name("workqueue_queue_duration_seconds")
                          .Help(
                              "How long in seconds an item stays in the workqueue before "
                              "being requested")
                          .Register(r)
                          .Add(labels, DurationBuckets());
    work_duration = &prometheus::BuildHistogram()
                         .Name("workqueue_work_duration_seconds")
                         .Help("How long in seconds processing an item from the workqueue takes")
                         .Register(r)
                         .Add(labels, DurationBuckets());
    retries = &prometheus::BuildCounter()
                   .Name("workqueue_retries_total")
                   .Help("Total number of retries handled by the workqueue")
                   .Register(r)
                   .Add(labels);
    unfinished = &prometheus::BuildGauge()
                      .Name("workqueue_unfinished_work_seconds")
                      .Help(
                          "Seconds of work in progress not yet observed by "
                          "work_duration; large values indicate stuck threads")
                      .Register(r)
                      .Add(labels);
    longest = &prometheus::BuildGauge()
                   .Name("workqueue_longest_running_processor_seconds")
                   .Help(
                       "Seconds the longest running processor of the workqueue has "
                       "been running")
                   .Register(r)
                   .Add(labels);
  }
  prometheus::Gauge* depth;
  prometheus::Counter* adds;
  prometheus::Histogram* queue_duration;
  prometheus::Histogram* work_duration;
  prometheus::Counter* retries;
  prometheus::Gauge* unfinished;
  prometheus::Gauge* longest;
};

WorkQueue::WorkQueue(WorkQueueOptions opts)
    : clock_(*opts.clock),
      rate_limiter_(std::move(opts.rate_limiter)),
      priority_(std::move(opts.priority)) {
  if (!rate_limiter_) rate_limiter_ = DefaultControllerRateLimiter(clock_);
  if (opts.metrics != nullptr) metrics_ = std::make_unique<Metrics>(*opts.metrics, opts.name);
}

WorkQueue::~WorkQueue() {
  ShutDown();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  if (shutting_down_) return;
  AddLocked(key);
}

void WorkQueue::AddLocked(const std::string& key) {
  auto [it, inserted] = items_.try_emplace(key);
  ItemState& state = it->second;
  if (state.dirty) return;
  state.dirty = true;
  if (metrics_) {
    metrics_->adds->Increment();
    state.queued_at = clock_.Now();
  }
  if (state.processing) return;  // queued again by Done()
  PushReadyLocked(&*it);
}

void WorkQueue::PushReadyLocked(Item* item) {
  if (priority_) {
    ranked_.insert(Ranked{priority_(item->first), ranked_seq_++, item});
  } else {
    queue_.push_back(item);
  }
  if (metrics_) metrics_->depth->Set(static_cast<double>(ReadyLocked()));
  if (idle_getters_ > 0) cv_.notify_one();
}

size_t WorkQueue::ReadyLocked() const {
  return priority_ ? ranked_.size() : queue_.size();
}

void WorkQueue::AddAfter(const std::string& key, Duration delay) {
  if (delay <= Duration::zero()) {
    Add(key);
    return;
  }
  std::lock_guard<std::mutex> l(mu_);
  if (shutting_down_) return;
  const auto ready = clock_.Now() + delay;
  auto [it, inserted] = waiting_ready_.try_emplace(key, ready);
  if (!inserted) {
    if (it->second <= ready) return;  // already due earlier
    it->second = ready;               // the old heap entry becomes stale
  }
  waiting_heap_.push_back(Waiting{ready, waiting_seq_++, key});
  std::push_heap(
      waiting_heap_.begin(), waiting_heap_.end(),
      [](const Waiting& a, const Waiting& b) { return LaterThan(a.ready, a.seq, b.ready, b.seq); });
  // A blocked Get may need an earlier wake-up.
  if (idle_getters_ > 0) cv_.notify_all();
}

void WorkQueue::AddRateLimited(const std::string& key) {
  if (ShuttingDown()) return;
  if (metrics_) metrics_->retries->Increment();
  AddAfter(key, rate_limiter_->When(key));
}

void WorkQueue::Forget(const std::string& key) {
  rate_limiter_->Forget(key);
}

int WorkQueue::NumRequeues(const std::string& key) {
  return rate_limiter_->NumRequeues(key);
}

void WorkQueue::PromoteReadyLocked() {
  if (waiting_heap_.empty()) return;
  const auto now = clock_.Now();
  const auto later = [](const Waiting& a, const Waiting& b) {
    return LaterThan(a.ready, a.seq, b.ready, b.seq);
  };
  while (!waiting_heap_.empty() && waiting_heap_.front().ready <= now) {
    std::pop_heap(waiting_heap_.begin(), waiting_heap_.end(), later);
    Waiting w = std::move(waiting_heap_.back());
    waiting_heap_.pop_back();
    auto it = waiting_ready_.find(w.key);
    if (it == waiting_ready_.end() || it->second != w.ready) continue;  // superseded
    waiting_ready_.erase(it);
    AddLocked(w.key);
  }
}

bool WorkQueue::PopLocked(std::string* key) {
  if (ReadyLocked() == 0) return false;
  Item* item;
  if (priority_) {
    item = ranked_.begin()->item;
    ranked_.erase(ranked_.begin());
  } else {
    item = queue_.front();
    queue_.pop_front();
  }
  ItemState& state = item->second;
  state.dirty = false;
  state.processing = true;
  ++processing_;
  if (metrics_) {
    state.started_at = clock_.Now();
    metrics_->queue_duration->Observe(Seconds(state.started_at - state.queued_at));
    metrics_->depth->Set(static_cast<double>(ReadyLocked()));
  }
  *key = item->first;
  return true;
}

bool WorkQueue::Get(std::string* key) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    PromoteReadyLocked();
    if (ReadyLocked() > 0 || shutting_down_) break;
    ++idle_getters_;
    if (waiting_heap_.empty()) {
      cv_.wait(lock);
    } else {
      clock_.WaitUntil(lock, cv_, waiting_heap_.front().ready);
    }
    --idle_getters_;
  }
  return PopLocked(key);
}

bool WorkQueue::TryGet(std::string* key) {
  std::lock_guard<std::mutex> l(mu_);
  PromoteReadyLocked();
  return PopLocked(key);
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = items_.find(key);
  if (it == items_.end() || !it->second.processing) return;  // not handed out: ignore
  ItemState& state = it->second;
  state.processing = false;
  --processing_;
  if (metrics_) metrics_->work_duration->Observe(Seconds(clock_.Now() - state.started_at));
  if (state.dirty) {
    PushReadyLocked(&*it);
  } else {
    items_.erase(it);
  }
  if (processing_ == 0 && draining_) drain_cv_.notify_all();
}

void WorkQueue::ShutDown() {
  std::lock_guard<std::mutex> l(mu_);
  shutting_down_ = true;
  waiting_heap_.clear();
  waiting_ready_.clear();
  cv_.notify_all();
}

void WorkQueue::ShutDownWithDrain() {
  std::unique_lock<std::mutex> lock(mu_);
  shutting_down_ = true;
  draining_ = true;
  waiting_heap_.clear();
  waiting_ready_.clear();
  cv_.notify_all();
  drain_cv_.wait(lock, [this] { return processing_ == 0; });
  draining_ = false;
}

bool WorkQueue::ShuttingDown() const {
  std::lock_guard<std::mutex> l(mu_);
  return shutting_down_;
}

size_t WorkQueue::Len() const {
  std::lock_guard<std::mutex> l(mu_);
  size_t ready = ReadyLocked();
  // Count delayed keys that are due but not yet promoted by a Get.
  if (!waiting_heap_.empty()) {
    const auto now = clock_.Now();
    for (const auto& [key, at] : waiting_ready_) {
      if (at > now) continue;
      auto it = items_.find(key);
      if (it == items_.end() || (!it->second.dirty && !it->second.processing)) ++ready;
    }
  }
  return ready;
}

size_t WorkQueue::NumWaiting() const {
  std::lock_guard<std::mutex> l(mu_);
  const auto now = clock_.Now();
  size_t n = 0;
  for (const auto& [key, at] : waiting_ready_)
    n += at > now ? 1 : 0;
  return n;
}

size_t WorkQueue::NumProcessing() const {
  std::lock_guard<std::mutex> l(mu_);
  return processing_;
}

void WorkQueue::UpdateUnfinishedWorkMetrics() {
  if (!metrics_) return;
  std::lock_guard<std::mutex> l(mu_);
  const auto now = clock_.Now();
  double total = 0, longest = 0;
  for (const auto& [key, state] : items_) {
    if (!state.processing) continue;
    const double s = Seconds(now - state.started_at);
    total += s;
    longest = std::max(longest, s);
  }
  metrics_->unfinished->Set(total);
  metrics_->longest->Set(longest);
}

}  // namespace gpu_autoscaler::kube
