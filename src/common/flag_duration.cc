#include "common/flag_duration.h"

#include <cstdlib>
#include <string>

namespace gpu_autoscaler {

bool ParseFlagDuration(std::string_view text, std::chrono::milliseconds* out) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  if (digits == 0 || digits > 9) return false;  // 9 digits cannot overflow in hours
  const long long value = std::atoll(std::string(text.substr(0, digits)).c_str());
  const std::string_view unit = text.substr(digits);
  if (unit == "ms") {
    *out = std::chrono::milliseconds(value);
  } else if (unit == "s" || unit.empty()) {
    *out = std::chrono::seconds(value);
  } else if (unit == "m") {
    *out = std::chrono::minutes(value);
  } else if (unit == "h") {
    *out = std::chrono::hours(value);
  } else {
    return false;
  }
  return out->count() > 0;
}

}  // namespace gpu_autoscaler
