// File: src/autoscale/cron.h
//
// A matcher for the 5-field cron syntax disruption budgets use (Karpenter's
// `schedule`, UTC only): minute hour day-of-month month day-of-week, each a
// `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of
// those; and the macros @yearly, @annually, @monthly, @weekly, @daily,
// @midnight, @hourly. As in cron, when both day fields are restricted a day
// matches if either does. Day-of-week 0 and 7 are Sunday.
//
//   GPU_ASSIGN_OR_RETURN(CronSchedule s, CronSchedule::Parse("0 9 * * 1-5"));
//   bool in_window = s.InWindow(now_unix, /*duration_seconds=*/8 * 3600);
//
// Thread-safety: a parsed schedule is immutable; the methods are const.
#pragma once

#include <bitset>
#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace gpu_autoscaler::autoscale {

class CronSchedule {
 public:
  static Result<CronSchedule> Parse(std::string_view text);

  // Whether the minute that contains `unix_seconds` (UTC) matches.
  bool Matches(int64_t unix_seconds) const;

  // Whether some matching minute start t has t <= now < t + duration.
  bool InWindow(int64_t now_unix_seconds, int64_t duration_seconds) const;

 private:
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<8> weekdays_;  // 0..6 (7 folded onto 0)
  bool day_restricted_ = false;
  bool weekday_restricted_ = false;
};

}  // namespace gpu_autoscaler::autoscale
