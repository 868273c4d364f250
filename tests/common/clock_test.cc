#include "common/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace gpu_autoscaler {
namespace {

using namespace std::chrono_literals;

TEST(FakeClockTest, MovesOnlyWhenStepped) {
  FakeClock clock;
  auto t0 = clock.Now();
  auto w0 = clock.WallNow();
  EXPECT_EQ(clock.Now(), t0);
  clock.Step(5s);
  EXPECT_EQ(clock.Now() - t0, 5s);
  EXPECT_EQ(clock.WallNow() - w0, 5s);
}

TEST(FakeClockTest, StepWakesWaiterPastDeadline) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> done{false};
  auto deadline = clock.Now() + 10s;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (clock.Now() < deadline)
      clock.WaitUntil(lock, cv, deadline);
    done = true;
  });
  clock.Step(9s);
  EXPECT_FALSE(done.load());
  clock.Step(1s);
  waiter.join();
  EXPECT_TRUE(done.load());
}

}  // namespace
}  // namespace gpu_autoscaler
