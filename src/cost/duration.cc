#include "cost/duration.h"

#include <string>

#include "cost/budget.h"

namespace gpu_autoscaler::cost {
namespace {

int64_t UnitSeconds(char unit) {
  switch (unit) {
    case 's':
      return 1;
    case 'm':
      return 60;
    case 'h':
      return 3600;
    case 'd':
      return 86400;
    case 'w':
      return 7 * 86400;
    default:
      return 0;
  }
}

}  // namespace

Result<int64_t> ParseDurationSeconds(std::string_view text) {
  auto bad = [&] {
    return InvalidArgumentError("bad duration \"" + std::string(text) +
                                "\": want e.g. 90s, 15m, 24h, 7d, 2w or 1h30m");
  };
  if (text.empty()) return bad();
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t number = 0;
    size_t digits = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
      if (number > 1'000'000'000) return bad();
      number = number * 10 + (text[i] - '0');
    }
    if (digits == 0 || i >= text.size() || UnitSeconds(text[i]) == 0) return bad();
    total += number * UnitSeconds(text[i]);
    if (total > int64_t{100} * 366 * 86400) return bad();  // beyond any history
    ++i;
  }
  if (total <= 0) return bad();
  return total;
}

Result<int64_t> ParseTimePoint(std::string_view text, int64_t now) {
  if (text == "now") return now;
  if (Result<int64_t> ago = ParseDurationSeconds(text); ago.ok()) return now - *ago;
  Result<int64_t> at = ParseRfc3339(text);
  if (at.ok()) return *at;
  return InvalidArgumentError("bad time \"" + std::string(text) +
                              "\": want now, a duration before now (24h, 7d) or RFC 3339 "
                              "(2024-05-01T00:00:00Z)");
}

}  // namespace gpu_autoscaler::cost
