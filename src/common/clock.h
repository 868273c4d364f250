// File: src/common/clock.h
//
// Time is injected. Every component that waits, expires or timestamps takes a
// `Clock&`; production passes `RealClock::Instance()`, tests pass a `FakeClock`
// and call `Step()` so that logic progresses without sleeping.
//
//   FakeClock clock;
//   DelayingQueue q(clock);
//   q.AddAfter("ns/a", 5s);
//   clock.Step(5s);          // "ns/a" is now ready
//
// Waiting goes through `WaitUntil`, so a FakeClock can wake waiters when it
// steps. Callers always re-check their condition in a loop (spurious wakeups).
//
// Thread-safety: all methods are safe to call from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

namespace gpu_autoscaler {

class Clock {
 public:
  using Duration = std::chrono::steady_clock::duration;
  using TimePoint = std::chrono::steady_clock::time_point;
  using WallTime = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;

  // Monotonic time, for deadlines, backoff and durations.
  virtual TimePoint Now() const = 0;
  // Calendar time, for timestamps written to the API (Lease renewTime, Events).
  virtual WallTime WallNow() const = 0;

  // Blocks on `cv` (whose mutex `lock` holds) until notified or until Now()
  // reaches `deadline`. May return early; callers loop on their predicate.
  virtual void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         TimePoint deadline) = 0;
};

class RealClock final : public Clock {
 public:
  static RealClock& Instance();
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 TimePoint deadline) override {
    cv.wait_until(lock, deadline);
  }
};

// A clock that moves only when told to. Waiters block for at most a
// millisecond of real time per call, so a Step() is noticed promptly even when
// it races with a waiter going to sleep.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(WallTime wall_start = WallTime(std::chrono::seconds(1'800'000'000)));

  TimePoint Now() const override;
  WallTime WallNow() const override;
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 TimePoint deadline) override;

  // Advances both clocks by `d` and wakes every waiter.
  void Step(Duration d);
  // Number of threads currently inside WaitUntil (lets tests wait for a
  // component to block before stepping).
  int waiters() const;

 private:
  mutable std::mutex mu_;
  Duration offset_{0};
  WallTime wall_start_;
  std::multiset<std::condition_variable*> waiting_;
};

}  // namespace gpu_autoscaler
