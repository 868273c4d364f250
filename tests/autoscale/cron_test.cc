#include "autoscale/cron.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::autoscale {
namespace {

// 2026-12-04 is a Friday; 10:00 UTC that day.
constexpr int64_t kFriday10 = 1796378400;
constexpr int64_t kHour = 3600, kDay = 24 * kHour;

TEST(CronScheduleTest, WeekdayBusinessHours) {
  auto s = CronSchedule::Parse("0 9 * * 1-5");
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_FALSE(s->Matches(kFriday10));
  EXPECT_TRUE(s->Matches(kFriday10 - kHour));       // 09:00 Friday
  EXPECT_TRUE(s->Matches(kFriday10 - kHour + 59));  // the same minute
  EXPECT_FALSE(s->Matches(kFriday10 - kHour + 60));
  EXPECT_FALSE(s->Matches(kFriday10 - kHour + kDay));  // 09:00 Saturday
  // 8h window from 09:00: 10:00 and 16:59:59 are inside, 17:00 is not.
  EXPECT_TRUE(s->InWindow(kFriday10, 8 * kHour));
  EXPECT_TRUE(s->InWindow(kFriday10 + 7 * kHour - 1, 8 * kHour));
  EXPECT_FALSE(s->InWindow(kFriday10 + 7 * kHour, 8 * kHour));
  EXPECT_FALSE(s->InWindow(kFriday10 + kDay, 8 * kHour));       // Saturday 10:00
  EXPECT_FALSE(s->InWindow(kFriday10 - kHour - 1, 8 * kHour));  // 08:59:59
}

TEST(CronScheduleTest, ListsStepsRangesAndMacros) {
  auto s = CronSchedule::Parse("*/15 0,12 * * *");
  ASSERT_TRUE(s.ok());
  const int64_t midnight = kFriday10 - 10 * kHour;
  EXPECT_TRUE(s->Matches(midnight));
  EXPECT_TRUE(s->Matches(midnight + 45 * 60));
  EXPECT_FALSE(s->Matches(midnight + 50 * 60));
  EXPECT_TRUE(s->Matches(midnight + 12 * kHour + 30 * 60));
  EXPECT_FALSE(s->Matches(midnight + 13 * kHour));
  auto range_step = CronSchedule::Parse("10-30/10 * * * *");
  ASSERT_TRUE(range_step.ok());
  EXPECT_TRUE(range_step->Matches(midnight + 20 * 60));
  EXPECT_FALSE(range_step->Matches(midnight + 40 * 60));
  auto daily = CronSchedule::Parse("@daily");
  ASSERT_TRUE(daily.ok());
  EXPECT_TRUE(daily->Matches(midnight));
  EXPECT_FALSE(daily->Matches(kFriday10));
  auto hourly = CronSchedule::Parse("@hourly");
  ASSERT_TRUE(hourly.ok());
  EXPECT_TRUE(hourly->Matches(kFriday10));
  auto weekly = CronSchedule::Parse("@weekly");  // Sunday 00:00
  ASSERT_TRUE(weekly.ok());
  EXPECT_TRUE(weekly->Matches(midnight + 2 * kDay));
  EXPECT_FALSE(weekly->Matches(midnight));
}

TEST(CronScheduleTest, SundayIsZeroOrSeven) {
  const int64_t sunday_midnight = kFriday10 - 10 * kHour + 2 * kDay;
  for (const char* text : {"0 0 * * 0", "0 0 * * 7"}) {
    auto s = CronSchedule::Parse(text);
    ASSERT_TRUE(s.ok()) << text;
    EXPECT_TRUE(s->Matches(sunday_midnight)) << text;
    EXPECT_FALSE(s->Matches(sunday_midnight - kDay)) << text;
  }
}

TEST(CronScheduleTest, BothDayFieldsRestrictedMatchEither) {
  // The 1st of the month or any Friday, at 10:00.
  auto s = CronSchedule::Parse("0 10 1 * 5");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->Matches(kFriday10));             // Friday 4th
  EXPECT_FALSE(s->Matches(kFriday10 + kDay));     // Saturday 5th
  EXPECT_TRUE(s->Matches(kFriday10 - 3 * kDay));  // Tuesday 1st
  // Only the day of month restricted: weekday "*" does not widen it.
  auto only_day = CronSchedule::Parse("0 10 1 * *");
  ASSERT_TRUE(only_day.ok());
  EXPECT_FALSE(only_day->Matches(kFriday10));
}

TEST(CronScheduleTest, RejectsMalformedSchedules) {
  for (const char* text : {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
                           "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *",
                           "1, * * * *", "@every 5m", "1-2-3 * * * *"}) {
    auto s = CronSchedule::Parse(text);
    EXPECT_FALSE(s.ok()) << "\"" << text << "\"";
  }
  auto s = CronSchedule::Parse("61 * * * *");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("minute"), std::string::npos) << s.error().message();
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
