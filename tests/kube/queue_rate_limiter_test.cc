#include "kube/queue_rate_limiter.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::kube {
namespace {

using namespace std::chrono_literals;

TEST(ItemExponentialFailureRateLimiterTest, DoublesPerFailureAndForgets) {
  ItemExponentialFailureRateLimiter limiter(1ms, 1s);
  EXPECT_EQ(limiter.When("a"), 1ms);
  EXPECT_EQ(limiter.When("a"), 2ms);
  EXPECT_EQ(limiter.When("a"), 4ms);
  EXPECT_EQ(limiter.When("a"), 8ms);
  EXPECT_EQ(limiter.When("a"), 16ms);
  EXPECT_EQ(limiter.NumRequeues("a"), 5);
  // Other keys have their own history.
  EXPECT_EQ(limiter.When("b"), 1ms);
  limiter.Forget("a");
  EXPECT_EQ(limiter.NumRequeues("a"), 0);
  EXPECT_EQ(limiter.When("a"), 1ms);
}

TEST(ItemExponentialFailureRateLimiterTest, CapsAtMaxWithoutOverflow) {
  ItemExponentialFailureRateLimiter limiter(5ms, 1000s);
  Clock::Duration last{};
  for (int i = 0; i < 200; ++i)
    last = limiter.When("k");
  EXPECT_EQ(last, 1000s);
  EXPECT_EQ(limiter.NumRequeues("k"), 200);
}

TEST(BucketRateLimiterTest, BurstThenSpacedByQps) {
  FakeClock clock;
  BucketRateLimiter limiter(10.0, 3, clock);
  EXPECT_EQ(limiter.When("a"), 0ms);
  EXPECT_EQ(limiter.When("b"), 0ms);
  EXPECT_EQ(limiter.When("c"), 0ms);
  // Bucket empty: each further reservation waits one more 1/qps.
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(limiter.When("d")), 100ms);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(limiter.When("e")), 200ms);
  clock.Step(1s);  // refills 10 tokens, capped at burst 3, minus the 2 owed
  EXPECT_EQ(limiter.When("f"), 0ms);
  EXPECT_EQ(limiter.NumRequeues("f"), 0);
}

TEST(DefaultControllerRateLimiterTest, MaxOfBackoffAndBucket) {
  FakeClock clock;
  auto limiter = DefaultControllerRateLimiter(clock);
  EXPECT_EQ(limiter->When("a"), 5ms);
  EXPECT_EQ(limiter->When("a"), 10ms);
  EXPECT_EQ(limiter->NumRequeues("a"), 2);
  // Exhaust the 100-token burst with distinct keys: then the bucket dominates.
  for (int i = 0; i < 98; ++i)
    limiter->When("k" + std::to_string(i));
  const auto d = limiter->When("fresh");
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(d), 100ms);
  limiter->Forget("a");
  EXPECT_EQ(limiter->NumRequeues("a"), 0);
}

}  // namespace
}  // namespace gpu_autoscaler::kube
