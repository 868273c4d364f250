#include "kube/shared_informer.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace gpu_autoscaler::kube {
namespace informer_internal {

Runtime::Runtime(std::string name, Clock* clock, std::chrono::milliseconds resync_period)
    : name_(std::move(name)), clock_(clock), resync_period_(resync_period) {}

Runtime::~Runtime() {
  Stop();
}

void Runtime::Enqueue(std::function<void()> work) {
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(std::move(work));
    high_water_ = std::max<int64_t>(high_water_, static_cast<int64_t>(queue_.size() - queue_head_));
  }
  cv_.notify_all();
}

void Runtime::Start(std::function<void(std::stop_token)> reflect, std::function<void()> resync) {
  std::lock_guard<std::mutex> l(mu_);
  if (started_) return;
  started_ = true;
  resync_ = std::move(resync);
  dispatch_thread_ = std::jthread([this](std::stop_token stop) { DispatchLoop(stop); });
  reflector_thread_ = std::jthread(std::move(reflect));
}

void Runtime::Stop() {
  // Reflector first: nothing new is queued once it has returned.
  if (reflector_thread_.joinable()) {
    reflector_thread_.request_stop();
    reflector_thread_.join();
  }
  if (dispatch_thread_.joinable()) {
    dispatch_thread_.request_stop();
    { std::lock_guard<std::mutex> l(mu_); }
    cv_.notify_all();
    dispatch_thread_.join();
  }
}

void Runtime::DispatchLoop(std::stop_token stop) {
  std::stop_callback wake(stop, [this] {
    std::lock_guard<std::mutex> l(mu_);
    cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  Clock::TimePoint next_resync = clock_->Now() + resync_period_;
  while (!stop.stop_requested()) {
    if (queue_head_ < queue_.size()) {
      std::function<void()> work = std::move(queue_[queue_head_]);
      ++queue_head_;
      if (queue_head_ == queue_.size()) {  // drained: reuse the buffer
        queue_.clear();
        queue_head_ = 0;
      }
      lock.unlock();
      try {
        work();
      } catch (const std::exception& e) {
        spdlog::error("{}: dispatch: {}", name_, e.what());
      }
      lock.lock();
      continue;
    }
    const bool resync_enabled = resync_period_.count() > 0;
    if (resync_enabled && synced_ && clock_->Now() >= next_resync) {
      ++resyncs_;
      lock.unlock();
      resync_();
      lock.lock();
      next_resync = clock_->Now() + resync_period_;
      continue;
    }
    Clock::TimePoint deadline =
        resync_enabled ? next_resync : clock_->Now() + std::chrono::hours(1);
    clock_->WaitUntil(lock, cv_, deadline);
  }
}

void Runtime::MarkSynced() {
  {
    std::lock_guard<std::mutex> l(mu_);
    synced_ = true;
  }
  cv_.notify_all();
}

bool Runtime::HasSynced() const {
  std::lock_guard<std::mutex> l(mu_);
  return synced_;
}

bool Runtime::WaitForSync(std::stop_token stop, Clock::Duration timeout) {
  std::stop_callback wake(stop, [this] {
    std::lock_guard<std::mutex> l(mu_);
    cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  const Clock::TimePoint deadline = clock_->Now() + timeout;
  while (!synced_ && !stop.stop_requested() && clock_->Now() < deadline) {
    clock_->WaitUntil(lock, cv_, deadline);
  }
  return synced_;
}

void Runtime::CountHandlerError() {
  std::lock_guard<std::mutex> l(mu_);
  ++handler_errors_;
}

void Runtime::FillStats(InformerStats* stats) const {
  std::lock_guard<std::mutex> l(mu_);
  stats->queue_depth = static_cast<int64_t>(queue_.size() - queue_head_);
  stats->queue_high_water = high_water_;
  stats->handler_errors = handler_errors_;
  stats->resyncs = resyncs_;
}

void RunHandler(Runtime* runtime, const std::function<void()>& call) {
  try {
    call();
  } catch (const std::exception& e) {
    spdlog::error("{}: event handler threw: {}", runtime->name(), e.what());
    runtime->CountHandlerError();
  } catch (...) {
    spdlog::error("{}: event handler threw a non-exception", runtime->name());
    runtime->CountHandlerError();
  }
}

}  // namespace informer_internal

void InformerFactory::Start() {
  std::lock_guard<std::mutex> l(mu_);
  started_ = true;
  for (auto& [key, entry] : informers_)
    entry.informer->Start();
}

void InformerFactory::Stop() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [key, entry] : informers_)
    entry.informer->Stop();
  started_ = false;
}

bool InformerFactory::WaitForSync(std::stop_token stop, Clock::Duration timeout) {
  std::vector<std::shared_ptr<InformerBase>> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [key, entry] : informers_)
      all.push_back(entry.informer);
  }
  const Clock::TimePoint deadline = defaults_.clock->Now() + timeout;
  for (auto& informer : all) {
    Clock::Duration left = deadline - defaults_.clock->Now();
    if (left < Clock::Duration::zero()) left = Clock::Duration::zero();
    if (!informer->WaitForSync(stop, left)) return false;
  }
  return true;
}

}  // namespace gpu_autoscaler::kube
