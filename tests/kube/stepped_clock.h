// File: tests/kube/stepped_clock.h
//
// A FakeClock for tests of components that sleep on the clock in their own
// threads (leader election). It steps only while every thread inside
// WaitUntil waits for a time still to come, at least `min_waiters` of them,
// and one has (re)entered since the previous step. A thread whose deadline
// has come must run before time moves again, and a thread busy elsewhere (in
// an HTTP call, say) holds time still when the test names it among
// `min_waiters`. So a thread on a loaded machine never sees time jump ahead
// of it, as it would not in production.
//
//   SteppedClock clock;
//   LeaderElector elector(leases, {.identity = "a", .clock = &clock});
//   ASSERT_TRUE(clock.StepUntil([&] { return elector.IsLeader(); }));
//
// Thread-safety: Now/WallNow/WaitUntil from any thread; StepUntil from one.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "common/clock.h"

namespace gpu_autoscaler::testing {

class SteppedClock final : public Clock {
 public:
  TimePoint Now() const override { return fake_.Now(); }
  WallTime WallNow() const override { return fake_.WallNow(); }
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 TimePoint deadline) override {
    ++entries_;
    {
      std::lock_guard<std::mutex> l(mu_);
      deadlines_.insert(deadline);
    }
    fake_.WaitUntil(lock, cv, deadline);
    std::lock_guard<std::mutex> l(mu_);
    deadlines_.erase(deadlines_.find(deadline));
  }
  // Steps by `step` while the waiters allow it (above), until `done` holds.
  // Real time is bounded generously; never hit when the code works.
  bool StepUntil(const std::function<bool()>& done, int min_waiters = 1,
                 Duration step = std::chrono::milliseconds(100)) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      const int64_t entries = entries_.load();
      if (entries > last_step_entries_ && AllWaitForTheFuture(std::max(min_waiters, 1))) {
        last_step_entries_ = entries;
        fake_.Step(step);
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
    return done();
  }

 private:
  bool AllWaitForTheFuture(int min_waiters) const {
    std::lock_guard<std::mutex> l(mu_);
    return static_cast<int>(deadlines_.size()) >= min_waiters && *deadlines_.begin() > fake_.Now();
  }

  mutable std::mutex mu_;
  std::multiset<TimePoint> deadlines_;  // of the threads inside WaitUntil
  FakeClock fake_;
  std::atomic<int64_t> entries_{0};
  int64_t last_step_entries_ = 0;
};

}  // namespace gpu_autoscaler::testing
