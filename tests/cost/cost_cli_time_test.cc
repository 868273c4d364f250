// Time arguments of the cost commands (cost/duration.h).
#include "cost/duration.h"
#include "gtest/gtest.h"

namespace gpu_autoscaler::cost {
namespace {

TEST(ParseDurationSeconds, AcceptsUnitsAndCombinations) {
  struct Case {
    const char* text;
    int64_t seconds;
  };
  for (const Case& c : {Case{"90s", 90}, Case{"15m", 900}, Case{"24h", 86400}, Case{"7d", 604800},
                        Case{"2w", 1209600}, Case{"1h30m", 5400}}) {
    Result<int64_t> d = ParseDurationSeconds(c.text);
    ASSERT_TRUE(d.ok()) << c.text;
    EXPECT_EQ(*d, c.seconds) << c.text;
  }
}

TEST(ParseDurationSeconds, RejectsGarbage) {
  for (const char* text : {"", "24", "h", "1x", "-1h", "0s", "1.5h", "99999999999d"}) {
    Result<int64_t> d = ParseDurationSeconds(text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_EQ(d.error().code(), StatusCode::kInvalidArgument);
  }
}

TEST(ParseTimePoint, NowDurationsAndRfc3339) {
  const int64_t now = 1'714'608'000;  // 2024-05-02T00:00:00Z
  EXPECT_EQ(ParseTimePoint("now", now).value(), now);
  EXPECT_EQ(ParseTimePoint("24h", now).value(), now - 86400);
  EXPECT_EQ(ParseTimePoint("2024-05-01T00:00:00Z", now).value(), 1'714'521'600);
  EXPECT_EQ(ParseTimePoint("2024-05-01T02:00:00+02:00", now).value(), 1'714'521'600);
  Result<int64_t> bad = ParseTimePoint("yesterday", now);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("RFC 3339"), std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler::cost
