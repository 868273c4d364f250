#include "common/json_read.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::json_read {

using nlohmann::json;

const json* Find(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

const json& Member(const json& obj, std::string_view key) {
  static const json kNull;
  const json* member = Find(obj, key);
  return member != nullptr ? *member : kNull;
}

const json& Object(const json& obj, std::string_view key) {
  static const json kEmpty = json::object();
  const json* member = Find(obj, key);
  return member != nullptr && member->is_object() ? *member : kEmpty;
}

const json& Array(const json& obj, std::string_view key) {
  static const json kEmpty = json::array();
  const json* member = Find(obj, key);
  return member != nullptr && member->is_array() ? *member : kEmpty;
}

std::string String(const json& obj, std::string_view key, std::string_view fallback) {
  const json* member = Find(obj, key);
  if (member == nullptr || !member->is_string()) return std::string(fallback);
  return member->get_ref<const std::string&>();
}

double Number(const json& obj, std::string_view key, double fallback) {
  const json* member = Find(obj, key);
  if (member == nullptr || !member->is_number()) return fallback;
  const double v = member->get<double>();
  return std::isfinite(v) ? v : fallback;
}

int64_t Integer(const json& obj, std::string_view key, int64_t fallback) {
  const json* member = Find(obj, key);
  if (member == nullptr) return fallback;
  if (member->is_number_unsigned()) {
    const uint64_t v = member->get<uint64_t>();
    return v <= static_cast<uint64_t>(INT64_MAX) ? static_cast<int64_t>(v) : fallback;
  }
  if (member->is_number_integer()) return member->get<int64_t>();
  if (member->is_number_float()) {
    constexpr double kExact = 9007199254740992.0;  // 2^53
    const double v = member->get<double>();
    if (std::isfinite(v) && std::fabs(v) <= kExact && v == std::trunc(v))
      return static_cast<int64_t>(v);
  }
  return fallback;
}

int32_t Int32(const json& obj, std::string_view key, int32_t fallback) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(Integer(obj, key, fallback), INT32_MIN, INT32_MAX));
}

bool Bool(const json& obj, std::string_view key, bool fallback) {
  const json* member = Find(obj, key);
  return member != nullptr && member->is_boolean() ? member->get<bool>() : fallback;
}

std::vector<std::string> Strings(const json& obj, std::string_view key) {
  std::vector<std::string> out;
  for (const json& v : Array(obj, key)) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace gpu_autoscaler::json_read
