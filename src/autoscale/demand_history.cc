#include "autoscale/demand_history.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::autoscale {
namespace {

constexpr double kMaxGpus = 1e6;
constexpr int64_t kLatestStart = 1'000'000'000'000;  // keeps end() far from overflow

// 2500 milli-GPUs -> "2.5"; 3000 -> "3".
void AppendMilli(std::string* out, int64_t milli) {
  *out += std::to_string(milli / 1000);
  int64_t frac = milli % 1000;
  if (frac == 0) return;
  std::string digits = std::to_string(frac);
  digits.insert(0, 3 - digits.size(), '0');
  while (!digits.empty() && digits.back() == '0')
    digits.pop_back();
  *out += "." + digits;
}

}  // namespace

size_t DemandHistory::observed() const {
  return static_cast<size_t>(
      std::count_if(gpus.begin(), gpus.end(), [](double v) { return !std::isnan(v); }));
}

bool DemandHistory::Append(int64_t step_start, double peak, size_t max_points) {
  if (step_seconds < 1 || step_start % step_seconds != 0) return false;
  if (gpus.empty()) {
    start = step_start;
  } else if (step_start < end()) {
    return false;
  }
  // A gap longer than what is kept: start over from this point.
  const int64_t missed = (step_start - end()) / step_seconds;
  if (missed >= static_cast<int64_t>(max_points)) {
    gpus.clear();
    start = step_start;
  } else {
    gpus.insert(gpus.end(), static_cast<size_t>(missed), std::nan(""));
  }
  gpus.push_back(std::clamp(std::isfinite(peak) ? peak : 0.0, 0.0, kMaxGpus));
  if (max_points > 0 && gpus.size() > max_points) {
    const size_t drop = gpus.size() - max_points;
    gpus.erase(gpus.begin(), gpus.begin() + static_cast<std::ptrdiff_t>(drop));
    start += static_cast<int64_t>(drop) * step_seconds;
  }
  // Leading gaps carry nothing.
  while (!gpus.empty() && std::isnan(gpus.front())) {
    gpus.erase(gpus.begin());
    start += step_seconds;
  }
  return true;
}

size_t MaxHistoryPoints(int64_t step_seconds, int64_t season_seconds) {
  if (step_seconds < 1) return kMaxHistoryPoints;
  const int64_t keep = std::max(kHistoryRetentionSeconds, 2 * season_seconds) / step_seconds;
  return static_cast<size_t>(std::clamp<int64_t>(keep, 1, kMaxHistoryPoints));
}

std::string EncodeDemandHistory(const DemandHistory& h) {
  std::string values;
  values.reserve(h.gpus.size() * 4);
  for (size_t i = 0; i < h.gpus.size(); ++i) {
    if (i > 0) values += ',';
    if (std::isnan(h.gpus[i])) continue;
    AppendMilli(&values, std::llround(std::clamp(h.gpus[i], 0.0, kMaxGpus) * 1000));
  }
  nlohmann::json doc = {
      {"version", 1}, {"stepSeconds", h.step_seconds}, {"start", h.start}, {"gpus", values}};
  return doc.dump();
}

Result<DemandHistory> DecodeDemandHistory(std::string_view text) {
  if (text.size() > kMaxHistoryText) {
    return InvalidArgumentError("demand history is " + std::to_string(text.size()) +
                                " bytes, more than " + std::to_string(kMaxHistoryText));
  }
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return InvalidArgumentError("demand history is not a JSON object");
  auto integer = [&](const char* key) -> std::optional<int64_t> {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };
  if (integer("version") != std::optional<int64_t>(1))
    return InvalidArgumentError("demand history: version is not 1");
  DemandHistory h;
  const auto step = integer("stepSeconds");
  if (!step || *step < 1 || *step > 86400)
    return InvalidArgumentError("demand history: stepSeconds is not an integer in 1..86400");
  h.step_seconds = *step;
  const auto start = integer("start");
  if (!start || *start < 0 || *start > kLatestStart || *start % h.step_seconds != 0)
    return InvalidArgumentError(
        "demand history: start is not a multiple of stepSeconds in 0..1e12");
  h.start = *start;
  auto values = doc.find("gpus");
  if (values == doc.end() || !values->is_string())
    return InvalidArgumentError("demand history: gpus is not a string");
  const std::string& list = values->get_ref<const std::string&>();
  if (list.empty()) return h;
  size_t from = 0;
  while (true) {
    const size_t comma = list.find(',', from);
    const std::string_view item =
        std::string_view(list).substr(from, comma == std::string::npos ? comma : comma - from);
    if (h.gpus.size() >= kMaxHistoryPoints) {
      return InvalidArgumentError("demand history: more than " + std::to_string(kMaxHistoryPoints) +
                                  " points");
    }
    if (item.empty()) {
      h.gpus.push_back(std::nan(""));
    } else {
      double v = 0;
      const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
      if (ec != std::errc() || end != item.data() + item.size() || !std::isfinite(v) || v < 0 ||
          v > kMaxGpus) {
        return InvalidArgumentError("demand history: point " + std::to_string(h.gpus.size()) +
                                    " \"" + std::string(item.substr(0, 32)) +
                                    "\" is not a number of GPUs in 0..1e6");
      }
      h.gpus.push_back(v);
    }
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  return h;
}

}  // namespace gpu_autoscaler::autoscale
