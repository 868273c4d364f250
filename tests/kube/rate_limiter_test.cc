#include "kube/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace gpu_autoscaler::kube {
namespace {

using namespace std::chrono_literals;

// Waits (up to 30 s of real time) until `pred` holds; for handing off to a
// blocked thread, never for making logic progress.
template <typename Pred>
bool Eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(TokenBucketRateLimiterTest, BurstThenRefillAtQps) {
  FakeClock clock;
  TokenBucketRateLimiter limiter(/*qps=*/2, /*burst=*/3, clock);
  EXPECT_TRUE(limiter.TryAccept());
  EXPECT_TRUE(limiter.TryAccept());
  EXPECT_TRUE(limiter.TryAccept());
  EXPECT_FALSE(limiter.TryAccept());
  clock.Step(499ms);
  EXPECT_FALSE(limiter.TryAccept());
  clock.Step(1ms);  // half a second at 2 qps: one token
  EXPECT_TRUE(limiter.TryAccept());
  EXPECT_FALSE(limiter.TryAccept());
  clock.Step(1h);  // refills only up to the burst
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(limiter.TryAccept()) << i;
  EXPECT_FALSE(limiter.TryAccept());
}

TEST(TokenBucketRateLimiterTest, ZeroQpsIsUnlimited) {
  FakeClock clock;
  TokenBucketRateLimiter limiter(0, 1, clock);
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(limiter.TryAccept());
  EXPECT_TRUE(limiter.Wait());
}

TEST(TokenBucketRateLimiterTest, WaitBlocksUntilTheClockAdvances) {
  FakeClock clock;
  TokenBucketRateLimiter limiter(/*qps=*/1, /*burst=*/1, clock);
  EXPECT_TRUE(limiter.Wait());  // the burst token, no blocking
  std::atomic<bool> done{false};
  auto waiter = std::async(std::launch::async, [&] {
    bool ok = limiter.Wait();
    done = true;
    return ok;
  });
  ASSERT_TRUE(Eventually([&] { return clock.waiters() > 0; }));
  EXPECT_FALSE(done.load());
  clock.Step(500ms);
  EXPECT_FALSE(done.load()) << "woke before its token was due";
  clock.Step(500ms);
  EXPECT_TRUE(waiter.get());
  // The waiter's reservation consumed the refilled token.
  EXPECT_FALSE(limiter.TryAccept());
}

TEST(TokenBucketRateLimiterTest, WaitersAreServedInReservationOrder) {
  FakeClock clock;
  TokenBucketRateLimiter limiter(/*qps=*/1, /*burst=*/1, clock);
  ASSERT_TRUE(limiter.TryAccept());
  auto first = std::async(std::launch::async, [&] { return limiter.Wait(); });
  ASSERT_TRUE(Eventually([&] { return clock.waiters() >= 1; }));
  // A TryAccept while a waiter holds the next token must not steal it.
  clock.Step(1s);
  EXPECT_TRUE(first.get());
  EXPECT_FALSE(limiter.TryAccept());
}

TEST(TokenBucketRateLimiterTest, StopRequestReleasesWaiterAndReturnsReservation) {
  FakeClock clock;
  TokenBucketRateLimiter limiter(/*qps=*/1, /*burst=*/1, clock);
  ASSERT_TRUE(limiter.TryAccept());
  std::stop_source stop;
  auto waiter = std::async(std::launch::async, [&] { return limiter.Wait(stop.get_token()); });
  ASSERT_TRUE(Eventually([&] { return clock.waiters() > 0; }));
  stop.request_stop();
  EXPECT_FALSE(waiter.get());
  // The abandoned reservation was handed back: one second later a token exists.
  clock.Step(1s);
  EXPECT_TRUE(limiter.TryAccept());
}

TEST(TokenBucketRateLimiterTest, AlreadyStoppedDoesNotWait) {
  FakeClock clock;
  TokenBucketRateLimiter limiter(1, 1, clock);
  std::stop_source stop;
  stop.request_stop();
  EXPECT_FALSE(limiter.Wait(stop.get_token()));
  EXPECT_TRUE(limiter.TryAccept());  // nothing was consumed
}

}  // namespace
}  // namespace gpu_autoscaler::kube
