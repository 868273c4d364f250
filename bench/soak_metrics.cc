#include "soak_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace gpu_autoscaler::bench {
namespace {

double ParseValue(std::string_view s) {
  if (s == "+Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  std::string copy(s);
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (end == copy.c_str()) return std::numeric_limits<double>::quiet_NaN();
  return v;
}

// Parses `{a="x",b="y"}` starting at text[0] == '{'; returns the characters
// consumed, or 0 when malformed.
size_t ParseLabels(std::string_view text, std::map<std::string, std::string>& out) {
  size_t i = 1;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ',' || text[i] == ' '))
      ++i;
    if (i < text.size() && text[i] == '}') return i + 1;
    const size_t eq = text.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= text.size() || text[eq + 1] != '"') return 0;
    std::string key(text.substr(i, eq - i));
    std::string value;
    size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\' && j + 1 < text.size()) {
        ++j;
        value.push_back(text[j] == 'n' ? '\n' : text[j]);
      } else {
        value.push_back(text[j]);
      }
    }
    if (j >= text.size()) return 0;
    out.emplace(std::move(key), std::move(value));
    i = j + 1;
  }
  return 0;
}

}  // namespace

std::vector<MetricSample> ParseExposition(std::string_view text) {
  std::vector<MetricSample> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    if (line.empty() || line[0] == '#') continue;
    MetricSample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ')
      ++i;
    s.name = std::string(line.substr(0, i));
    if (s.name.empty()) continue;
    if (i < line.size() && line[i] == '{') {
      const size_t used = ParseLabels(line.substr(i), s.labels);
      if (used == 0) continue;
      i += used;
    }
    while (i < line.size() && line[i] == ' ')
      ++i;
    const size_t value_end = line.find(' ', i);
    s.value = ParseValue(
        line.substr(i, value_end == std::string_view::npos ? line.size() - i : value_end - i));
    if (std::isnan(s.value)) continue;
    out.push_back(std::move(s));
  }
  return out;
}

double SumSamples(const std::vector<MetricSample>& samples, std::string_view name,
                  const std::map<std::string, std::string>& match) {
  double total = 0;
  for (const MetricSample& s : samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : match) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) {
        all = false;
        break;
      }
    }
    if (all) total += s.value;
  }
  return total;
}

std::map<std::string, Buckets> HistogramBuckets(const std::vector<MetricSample>& samples,
                                                std::string_view family,
                                                std::string_view by_label) {
  const std::string name = std::string(family) + "_bucket";
  std::map<std::string, Buckets> out;
  for (const MetricSample& s : samples) {
    if (s.name != name) continue;
    auto le = s.labels.find("le");
    if (le == s.labels.end()) continue;
    auto key = s.labels.find(std::string(by_label));
    out[key == s.labels.end() ? "" : key->second].emplace_back(ParseValue(le->second), s.value);
  }
  for (auto& [key, b] : out)
    std::sort(b.begin(), b.end());
  return out;
}

namespace {

Buckets Combine(const Buckets& a, const Buckets& b, double sign) {
  std::map<double, double> merged;
  for (const auto& [le, n] : a)
    merged[le] += n;
  for (const auto& [le, n] : b)
    merged[le] += sign * n;
  return Buckets(merged.begin(), merged.end());
}

}  // namespace

Buckets Delta(const Buckets& now, const Buckets& before) {
  return Combine(now, before, -1);
}
Buckets Add(const Buckets& a, const Buckets& b) {
  return Combine(a, b, 1);
}

double Count(const Buckets& b) {
  return b.empty() ? 0 : b.back().second;
}

double Quantile(const Buckets& b, double q) {
  const double total = Count(b);
  if (total <= 0) return std::numeric_limits<double>::quiet_NaN();
  const double rank = q * total;
  double lower_bound = 0, lower_count = 0;
  for (const auto& [le, n] : b) {
    if (n >= rank) {
      if (std::isinf(le)) return lower_bound;
      if (n == lower_count) return le;
      return lower_bound + (le - lower_bound) * (rank - lower_count) / (n - lower_count);
    }
    lower_bound = le;
    lower_count = n;
  }
  return lower_bound;
}

double Slope(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = std::min(x.size(), y.size());
  if (n < 2) return 0;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  return sxx == 0 ? 0 : sxy / sxx;
}

}  // namespace gpu_autoscaler::bench
