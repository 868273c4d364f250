// File: tests/kube/stepped_clock.h
//
// A FakeClock for tests of components that sleep on the clock in their own
// threads (leader election). It steps only after some waiter has (re)entered
// WaitUntil since the previous step, so a descheduled thread cannot miss many
// steps at once and see a jump in time it would never see in production.
//
//   SteppedClock clock;
//   LeaderElector elector(leases, {.identity = "a", .clock = &clock});
//   ASSERT_TRUE(clock.StepUntil([&] { return elector.IsLeader(); }));
//
// Thread-safety: Now/WallNow/WaitUntil from any thread; StepUntil from one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
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
    fake_.WaitUntil(lock, cv, deadline);
  }
  // Steps by `step` whenever a waiter has (re)entered since the last step,
  // until `done` holds. Real time is bounded generously; never hit when the
  // code works.
  bool StepUntil(const std::function<bool()>& done,
                 Duration step = std::chrono::milliseconds(100)) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      const int64_t entries = entries_.load();
      if (fake_.waiters() > 0 && entries > last_step_entries_) {
        last_step_entries_ = entries;
        fake_.Step(step);
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
    return done();
  }

 private:
  FakeClock fake_;
  std::atomic<int64_t> entries_{0};
  int64_t last_step_entries_ = 0;
};

}  // namespace gpu_autoscaler::testing
