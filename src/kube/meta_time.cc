#include "kube/meta_time.h"

#include <cstdio>
#include <ctime>

namespace gpu_autoscaler::kube {

namespace {

std::tm UtcFields(std::chrono::sys_seconds secs) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

}  // namespace

std::string FormatTime(Clock::WallTime t) {
  const std::tm tm = UtcFields(std::chrono::floor<std::chrono::seconds>(t));
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

Clock::WallTime TruncateToMicros(Clock::WallTime t) {
  return std::chrono::time_point_cast<std::chrono::microseconds>(t);
}

std::string FormatMicroTime(Clock::WallTime t) {
  const auto micros = std::chrono::time_point_cast<std::chrono::microseconds>(t);
  auto secs = std::chrono::floor<std::chrono::seconds>(micros);
  const auto frac = (micros - secs).count();
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

Result<Clock::WallTime> ParseRfc3339(std::string_view text) {
  const auto bad = [&] {
    return Error::Decode("invalid RFC 3339 time \"" + std::string(text) + "\"");
  };
  if (text.size() < 20 || text.back() != 'Z') return bad();
  std::tm tm{};
  int consumed = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return bad();
  }
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return bad();
  }
  int64_t nanos = 0;
  size_t i = 19;
  if (s[i] == '.') {
    ++i;
    int digits = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits) {
      if (digits < 9) nanos = nanos * 10 + (s[i] - '0');
    }
    if (digits == 0) return bad();
    for (; digits < 9; ++digits)
      nanos *= 10;
  }
  if (i != s.size() - 1) return bad();
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t secs = timegm(&tm);
  // Outside the safe range (meta_time.h) a time overflows the nanosecond
  // clock (aws_xml_fuzz: an STS Expiration in 8652) or its difference from
  // now does (fleet_usage_fuzz: now minus a Lease renewed in 1678).
  if (secs < kFirstSafeUnixSecond || secs >= kEndSafeUnixSecond) {
    return Error::Decode("RFC 3339 time \"" + std::string(text) +
                         "\" is outside the years 1900 to 2189");
  }
  return Clock::WallTime(std::chrono::duration_cast<Clock::WallTime::duration>(
      std::chrono::seconds(secs) + std::chrono::nanoseconds(nanos)));
}

}  // namespace gpu_autoscaler::kube
