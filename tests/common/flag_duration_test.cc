#include "common/flag_duration.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler {
namespace {

using std::chrono::milliseconds;

TEST(ParseFlagDurationTest, AcceptsUnits) {
  milliseconds d{};
  ASSERT_TRUE(ParseFlagDuration("500ms", &d));
  EXPECT_EQ(d, milliseconds(500));
  ASSERT_TRUE(ParseFlagDuration("10s", &d));
  EXPECT_EQ(d, milliseconds(10'000));
  ASSERT_TRUE(ParseFlagDuration("7", &d));
  EXPECT_EQ(d, milliseconds(7'000));
  ASSERT_TRUE(ParseFlagDuration("2m", &d));
  EXPECT_EQ(d, milliseconds(120'000));
  ASSERT_TRUE(ParseFlagDuration("720h", &d));
  EXPECT_EQ(d, milliseconds(720ll * 3'600'000));
  ASSERT_TRUE(ParseFlagDuration("999999999h", &d));  // the largest: no overflow
  EXPECT_EQ(d, milliseconds(999'999'999ll * 3'600'000));
}

TEST(ParseFlagDurationTest, RejectsZeroJunkAndOverlongNumbers) {
  milliseconds d{};
  EXPECT_FALSE(ParseFlagDuration("0s", &d));
  EXPECT_FALSE(ParseFlagDuration("", &d));
  EXPECT_FALSE(ParseFlagDuration("s", &d));
  EXPECT_FALSE(ParseFlagDuration("5d", &d));
  EXPECT_FALSE(ParseFlagDuration("5H", &d));
  EXPECT_FALSE(ParseFlagDuration("-5s", &d));
  EXPECT_FALSE(ParseFlagDuration("1234567890m", &d));
}

}  // namespace
}  // namespace gpu_autoscaler
