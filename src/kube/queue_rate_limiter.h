// File: src/kube/queue_rate_limiter.h
//
// Per-item retry delays for the workqueue, with client-go's
// util/workqueue semantics (not the client's request limiter in
// kube/rate_limiter.h). `When(key)` returns how long to wait before the item
// may be processed again and records one more failure; `Forget(key)` clears
// its history after a success.
//
//   auto limiter = DefaultControllerRateLimiter(clock);
//   limiter->When("ns/a");   // 5ms, then 10ms, 20ms, ... capped at 1000s
//   limiter->Forget("ns/a");  // back to 5ms
//
// DefaultControllerRateLimiter is the max of a per-item exponential backoff
// (5 ms doubling up to 1000 s) and an overall token bucket (10 qps, burst
// 100), like client-go's DefaultControllerRateLimiter.
//
// Thread-safety: every implementation is safe to call from many threads.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"

namespace gpu_autoscaler::kube {

class QueueRateLimiter {
 public:
  using Duration = Clock::Duration;
  virtual ~QueueRateLimiter() = default;
  // Records a failure of `key` and returns the delay before it may run again.
  virtual Duration When(const std::string& key) = 0;
  // Drops `key`'s failure history (call after it succeeded).
  virtual void Forget(const std::string& key) = 0;
  // How many times `key` failed since its last Forget.
  virtual int NumRequeues(const std::string& key) = 0;
};

// base * 2^failures, capped at `max`.
class ItemExponentialFailureRateLimiter final : public QueueRateLimiter {
 public:
  ItemExponentialFailureRateLimiter(Duration base, Duration max);
  Duration When(const std::string& key) override;
  void Forget(const std::string& key) override;
  int NumRequeues(const std::string& key) override;

 private:
  const Duration base_;
  const Duration max_;
  std::mutex mu_;
  std::unordered_map<std::string, int> failures_;
};

// A token bucket shared by all items: each When() reserves one token and
// returns how long until that token exists (golang.org/x/time/rate
// Reserve().Delay()). Forget is a no-op; NumRequeues is always 0.
class BucketRateLimiter final : public QueueRateLimiter {
 public:
  BucketRateLimiter(double qps, int burst, Clock& clock);
  Duration When(const std::string& key) override;
  void Forget(const std::string&) override {}
  int NumRequeues(const std::string&) override { return 0; }

 private:
  const double qps_;
  const double burst_;
  Clock& clock_;
  std::mutex mu_;
  double tokens_;  // negative when reservations are outstanding
  Clock::TimePoint last_;
};

// The longest delay of its members; NumRequeues is the largest of theirs.
class MaxOfRateLimiter final : public QueueRateLimiter {
 public:
  explicit MaxOfRateLimiter(std::vector<std::unique_ptr<QueueRateLimiter>> limiters);
  Duration When(const std::string& key) override;
  void Forget(const std::string& key) override;
  int NumRequeues(const std::string& key) override;

 private:
  std::vector<std::unique_ptr<QueueRateLimiter>> limiters_;
};

// max(ItemExponential(5ms, 1000s), Bucket(10 qps, burst 100)).
std::unique_ptr<QueueRateLimiter> DefaultControllerRateLimiter(Clock& clock);

}  // namespace gpu_autoscaler::kube
