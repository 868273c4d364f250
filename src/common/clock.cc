#include "common/clock.h"

namespace gpu_autoscaler {

RealClock& RealClock::Instance() {
  static RealClock clock;
  return clock;
}

FakeClock::FakeClock(WallTime wall_start) : wall_start_(wall_start) {}

Clock::TimePoint FakeClock::Now() const {
  std::lock_guard<std::mutex> l(mu_);
  return TimePoint(offset_);
}

Clock::WallTime FakeClock::WallNow() const {
  std::lock_guard<std::mutex> l(mu_);
  return wall_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(offset_);
}

void FakeClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          TimePoint deadline) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (TimePoint(offset_) >= deadline) return;
    waiting_.insert(&cv);
  }
  cv.wait_for(lock, std::chrono::milliseconds(1));
  std::lock_guard<std::mutex> l(mu_);
  waiting_.erase(waiting_.find(&cv));
}

void FakeClock::Step(Duration d) {
  // Notify under mu_: a waiter unregisters under mu_ before its cv can die.
  std::lock_guard<std::mutex> l(mu_);
  offset_ += d;
  for (auto* cv : waiting_)
    cv->notify_all();
}

int FakeClock::waiters() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(waiting_.size());
}

}  // namespace gpu_autoscaler
