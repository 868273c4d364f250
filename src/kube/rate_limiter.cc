#include "kube/rate_limiter.h"

#include <algorithm>
#include <chrono>

namespace gpu_autoscaler::kube {

TokenBucketRateLimiter::TokenBucketRateLimiter(double qps, int burst, Clock& clock)
    : qps_(qps),
      burst_(std::max(burst, 1)),
      clock_(clock),
      tokens_(std::max(burst, 1)),
      last_refill_(clock.Now()) {}

void TokenBucketRateLimiter::RefillLocked(Clock::TimePoint now) {
  if (now <= last_refill_) return;
  double elapsed = std::chrono::duration<double>(now - last_refill_).count();
  tokens_ = std::min<double>(burst_, tokens_ + elapsed * qps_);
  last_refill_ = now;
}

bool TokenBucketRateLimiter::TryAccept() {
  if (qps_ <= 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  RefillLocked(clock_.Now());
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

bool TokenBucketRateLimiter::Wait(std::stop_token stop) {
  if (qps_ <= 0) return !stop.stop_requested();
  // Registered before taking mu_: a callback that runs inline (stop already
  // requested) must not find mu_ held by this thread.
  std::stop_callback on_stop(stop, [this] {
    std::lock_guard<std::mutex> l(mu_);
    cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  if (stop.stop_requested()) return false;
  RefillLocked(clock_.Now());
  // Reserve a token now; it is ours once the bucket climbs back to zero.
  tokens_ -= 1;
  if (tokens_ >= 0) return true;
  auto deficit = std::chrono::duration<double>(-tokens_ / qps_);
  Clock::TimePoint ready = last_refill_ + std::chrono::duration_cast<Clock::Duration>(deficit);
  while (clock_.Now() < ready) {
    if (stop.stop_requested()) {
      tokens_ += 1;  // give the reservation back
      return false;
    }
    clock_.WaitUntil(lock, cv_, ready);
  }
  return true;
}

}  // namespace gpu_autoscaler::kube
