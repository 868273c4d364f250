#include "kube/quantity.h"

#include <cstdint>
#include <string>

namespace gpu_autoscaler::kube {
namespace {

using uint128 = unsigned __int128;

constexpr int kMaxMantissaDigits = 19;  // 10^19 - 1 < 2^64

Status Malformed(std::string_view text, std::string_view why) {
  return InvalidArgumentError("quantity \"" + std::string(text) + "\": " + std::string(why));
}

// Decodes the suffix into a power of ten and a power of 1024. Returns false
// when the suffix is not one the API server accepts.
bool ParseSuffix(std::string_view suffix, int64_t* exp10, int* exp1024) {
  *exp10 = 0;
  *exp1024 = 0;
  if (suffix.empty()) return true;
  if (suffix.size() == 2 && suffix[1] == 'i') {
    switch (suffix[0]) {
      case 'K':
        *exp1024 = 1;
        return true;
      case 'M':
        *exp1024 = 2;
        return true;
      case 'G':
        *exp1024 = 3;
        return true;
      case 'T':
        *exp1024 = 4;
        return true;
      case 'P':
        *exp1024 = 5;
        return true;
      case 'E':
        *exp1024 = 6;
        return true;
      default:
        return false;
    }
  }
  if (suffix.size() == 1) {
    switch (suffix[0]) {
      case 'n':
        *exp10 = -9;
        return true;
      case 'u':
        *exp10 = -6;
        return true;
      case 'm':
        *exp10 = -3;
        return true;
      case 'k':
        *exp10 = 3;
        return true;
      case 'M':
        *exp10 = 6;
        return true;
      case 'G':
        *exp10 = 9;
        return true;
      case 'T':
        *exp10 = 12;
        return true;
      case 'P':
        *exp10 = 15;
        return true;
      case 'E':
        *exp10 = 18;
        return true;
      default:
        return false;
    }
  }
  // Decimal exponent: e|E followed by a signed integer.
  if (suffix[0] != 'e' && suffix[0] != 'E') return false;
  size_t i = 1;
  bool negative = false;
  if (i < suffix.size() && (suffix[i] == '+' || suffix[i] == '-')) {
    negative = suffix[i] == '-';
    ++i;
  }
  if (i == suffix.size()) return false;
  int64_t value = 0;
  for (; i < suffix.size(); ++i) {
    char c = suffix[i];
    if (c < '0' || c > '9') return false;
    // Saturate: anything beyond a few hundred is out of range or zero anyway.
    if (value < 100'000) value = value * 10 + (c - '0');
  }
  *exp10 = negative ? -value : value;
  return true;
}

}  // namespace

gpu_autoscaler::Result<int64_t> ParseQuantityScaled(std::string_view text, int scale) {
  if (scale < 0 || scale > 18) return InvalidArgumentError("quantity scale out of range");
  if (text.empty()) return Malformed(text, "empty");
  size_t i = 0;
  bool negative = false;
  if (text[i] == '+' || text[i] == '-') {
    negative = text[i] == '-';
    ++i;
  }

  uint64_t mantissa = 0;
  int significant = 0;
  int64_t exp10 = 0;
  bool dropped_nonzero = false;  // digits beyond the mantissa's precision
  int digits = 0;
  auto take_digit = [&](int d, bool fraction) {
    ++digits;
    if (significant < kMaxMantissaDigits) {
      if (mantissa != 0 || d != 0) ++significant;
      mantissa = mantissa * 10 + static_cast<uint64_t>(d);
      if (fraction) --exp10;
    } else {
      dropped_nonzero |= d != 0;
      if (!fraction) ++exp10;
    }
  };
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i)
    take_digit(text[i] - '0', false);
  if (i < text.size() && text[i] == '.') {
    ++i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i)
      take_digit(text[i] - '0', true);
  }
  if (digits == 0) return Malformed(text, "expected a number");

  int64_t suffix_exp10 = 0;
  int exp1024 = 0;
  if (!ParseSuffix(text.substr(i), &suffix_exp10, &exp1024)) {
    return Malformed(text, "unknown suffix \"" + std::string(text.substr(i)) + "\"");
  }

  const uint128 limit = negative ? (uint128{1} << 63) : (uint128{1} << 63) - 1;
  uint128 value = uint128{mantissa} << (10 * exp1024);
  int64_t power = exp10 + suffix_exp10 + scale;
  bool inexact = dropped_nonzero;
  if (value == 0) {
    // A zero mantissa stays zero, whatever the dropped digits (they are zero too).
  } else if (power >= 0) {
    for (int64_t p = 0; p < power; ++p) {
      if (value > limit) break;
      value *= 10;
    }
  } else if (power < -38) {
    value = 0;
    inexact = true;
  } else {
    uint128 divisor = 1;
    for (int64_t p = 0; p < -power; ++p)
      divisor *= 10;
    inexact |= value % divisor != 0;
    value /= divisor;
  }
  if (inexact) value += 1;  // round away from zero, as Quantity.Value() does
  if (value > limit)
    return OutOfRangeError("quantity \"" + std::string(text) + "\" overflows int64");
  if (negative) return static_cast<int64_t>(-static_cast<__int128>(value));
  return static_cast<int64_t>(value);
}

bool IsMilliResource(std::string_view resource_name) {
  return resource_name == "cpu";
}

gpu_autoscaler::Result<int64_t> ResourceAmount(std::string_view resource_name,
                                               std::string_view quantity) {
  return ParseQuantityScaled(quantity, IsMilliResource(resource_name) ? 3 : 0);
}

}  // namespace gpu_autoscaler::kube
