#include "autoscale/cron.h"

#include <charconv>
#include <ctime>
#include <string>
#include <vector>

namespace gpu_autoscaler::autoscale {
namespace {

bool ParseNumber(std::string_view text, int* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Sets the bits of `field` (values lo..hi) that `text` selects; false when malformed.
template <size_t N>
bool ParseField(std::string_view text, int lo, int hi, std::bitset<N>* bits, bool* restricted) {
  *restricted = text != "*";
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) return false;
    int step = 1;
    if (const size_t slash = part.find('/'); slash != std::string_view::npos) {
      if (!ParseNumber(part.substr(slash + 1), &step) || step < 1) return false;
      part = part.substr(0, slash);
    }
    int from = lo, to = hi;
    if (part != "*") {
      const size_t dash = part.find('-');
      if (dash == std::string_view::npos) {
        if (!ParseNumber(part, &from)) return false;
        // "5/15" means 5, 20, 35, 50 as in Vixie cron; a plain number is just itself.
        to = step > 1 ? hi : from;
      } else if (!ParseNumber(part.substr(0, dash), &from) ||
                 !ParseNumber(part.substr(dash + 1), &to)) {
        return false;
      }
    }
    if (from < lo || to > hi || from > to) return false;
    for (int v = from; v <= to; v += step)
      bits->set(static_cast<size_t>(v));
  }
  return true;
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view text) {
  static constexpr std::pair<std::string_view, std::string_view> kMacros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  std::string_view spec = text;
  for (const auto& [macro, expansion] : kMacros)
    if (text == macro) spec = expansion;
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < spec.size()) {
    while (i < spec.size() && spec[i] == ' ')
      ++i;
    if (i == spec.size()) break;
    const size_t end = std::min(spec.find(' ', i), spec.size());
    fields.push_back(spec.substr(i, end - i));
    i = end;
  }
  const auto bad = [&](std::string why) {
    return InvalidArgumentError("schedule \"" + std::string(text) + "\": " + why);
  };
  if (fields.size() != 5) return bad("want 5 fields (minute hour day month weekday) or a macro");
  CronSchedule s;
  bool unused = false;
  std::bitset<8> weekdays;
  if (!ParseField(fields[0], 0, 59, &s.minutes_, &unused)) return bad("bad minute field");
  if (!ParseField(fields[1], 0, 23, &s.hours_, &unused)) return bad("bad hour field");
  if (!ParseField(fields[2], 1, 31, &s.days_, &s.day_restricted_)) return bad("bad day field");
  if (!ParseField(fields[3], 1, 12, &s.months_, &unused)) return bad("bad month field");
  if (!ParseField(fields[4], 0, 7, &weekdays, &s.weekday_restricted_))
    return bad("bad weekday field");
  if (weekdays.test(7)) weekdays.set(0);
  s.weekdays_ = weekdays;
  // "*/2" in a day field is a restriction in cron's sense only when it is not "*".
  return s;
}

bool CronSchedule::Matches(int64_t unix_seconds) const {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  if (!minutes_.test(tm.tm_min) || !hours_.test(tm.tm_hour) || !months_.test(tm.tm_mon + 1))
    return false;
  const bool day = days_.test(tm.tm_mday), weekday = weekdays_.test(tm.tm_wday);
  if (day_restricted_ && weekday_restricted_) return day || weekday;
  return day && weekday;
}

bool CronSchedule::InWindow(int64_t now, int64_t duration_seconds) const {
  if (duration_seconds <= 0) return false;
  // Walk back minute by minute over the window (at most a week of minutes for
  // a week-long duration; budgets are evaluated once per reconcile).
  const int64_t minute_start = now - ((now % 60) + 60) % 60;
  for (int64_t t = minute_start; t > now - duration_seconds; t -= 60) {
    if (Matches(t)) return true;
  }
  return false;
}

}  // namespace gpu_autoscaler::autoscale
