// File: src/kube/rate_limiter.h
//
// A token-bucket limiter for client requests (client-go's
// flowcontrol.NewTokenBucketRateLimiter): `qps` tokens per second refill a
// bucket of `burst` tokens; each request takes one. Time comes from an
// injected Clock, so tests step a FakeClock instead of sleeping.
//
//   TokenBucketRateLimiter limiter(/*qps=*/50, /*burst=*/100, clock);
//   if (!limiter.Wait(stop)) return Error::Cancelled("shutting down");
//   if (limiter.TryAccept()) { ... }
//
// A qps <= 0 disables limiting. Waiters are served in arrival order: each
// Wait reserves the next token, so a steady stream of TryAccept calls cannot
// starve a blocked Wait.
//
// Thread-safety: all methods are safe to call from any thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <stop_token>

#include "common/clock.h"

namespace gpu_autoscaler::kube {

class TokenBucketRateLimiter {
 public:
  TokenBucketRateLimiter(double qps, int burst, Clock& clock = RealClock::Instance());

  // Takes a token if one is available now.
  bool TryAccept();
  // Blocks until a token is available (true) or `stop` is requested (false,
  // and the reservation is returned).
  bool Wait(std::stop_token stop = {});

  double qps() const { return qps_; }
  int burst() const { return burst_; }

 private:
  // Adds the tokens earned since the last refill. Requires mu_.
  void RefillLocked(Clock::TimePoint now);

  const double qps_;
  const int burst_;
  Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  double tokens_;  // may go negative: tokens reserved by blocked waiters
  Clock::TimePoint last_refill_;
};

}  // namespace gpu_autoscaler::kube
