#include "controllers/profile_updater.h"

#include <algorithm>
#include <cmath>

namespace gpu_autoscaler::controllers {
namespace {

std::string Milli(double v) {
  return std::to_string(static_cast<int64_t>(std::ceil(v))) + "m";
}
std::string Bytes(double v) {
  return std::to_string(static_cast<int64_t>(std::ceil(v)));
}

// How far `value` lies outside `b`, relative to the nearer bound (0 inside).
double Outside(double value, const RequestBounds& b) {
  if (value < b.lower) return b.lower > 0 ? (b.lower - value) / b.lower : 0;
  if (b.upper && value > *b.upper) return *b.upper > 0 ? (value - *b.upper) / *b.upper : 1;
  return 0;
}

struct Drifted {
  std::string pod;
  double distance = 0;
  std::string message;
};

}  // namespace

EvictionPlan DecideProfileEvictions(const UpdaterInput& in) {
  EvictionPlan plan;
  std::vector<Drifted> drifted;
  int64_t running = 0;
  for (const UpdaterPod& pod : in.pods) {
    if (!pod.running) continue;
    ++running;
    Drifted d{pod.name, 0, ""};
    for (const auto& [container_name, bounds] : in.bounds) {
      // clang before 16 cannot capture a structured binding.
      const std::string& container = container_name;
      auto check = [&](const std::optional<RequestBounds>& b,
                       const std::map<std::string, int64_t>& requests, const char* what,
                       std::string (*fmt)(double)) {
        if (!b) return;
        auto it = requests.find(container);
        const double value = it == requests.end() ? 0 : static_cast<double>(it->second);
        const double out = Outside(value, *b);
        if (out <= 0) return;
        if (!d.message.empty()) d.message += "; ";
        d.message += "container " + container + ": " + what + " request " +
                     (it == requests.end() ? std::string("(none)") : fmt(value)) + " outside [" +
                     fmt(b->lower) + ", " + (b->upper ? fmt(*b->upper) : std::string("∞")) + "]";
        d.distance = std::max(d.distance, out);
      };
      check(bounds.cpu_millis, pod.cpu_millis, "cpu", Milli);
      check(bounds.memory_bytes, pod.memory_bytes, "memory", Bytes);
    }
    if (d.distance > 0) drifted.push_back(std::move(d));
  }
  if (drifted.empty()) return plan;

  const int64_t configured = in.replicas > 0 ? in.replicas : running;
  if (running < in.limits.min_replicas) {
    plan.held_back = std::to_string(running) + " running pods, fewer than minReplicas " +
                     std::to_string(in.limits.min_replicas);
    return plan;
  }
  const int64_t tolerance =
      static_cast<int64_t>(static_cast<double>(configured) * in.limits.eviction_tolerance);
  const int64_t should_be_alive = configured - tolerance;

  std::sort(drifted.begin(), drifted.end(), [](const Drifted& a, const Drifted& b) {
    if (a.distance != b.distance) return a.distance > b.distance;
    return a.pod < b.pod;
  });
  int64_t evicted = 0;
  for (const Drifted& d : drifted) {
    const bool allowed = running - evicted > should_be_alive ||
                         (running == configured && tolerance == 0 && evicted == 0);
    if (!allowed) {
      plan.held_back = "eviction tolerance: " + std::to_string(evicted) + " of " +
                       std::to_string(configured) + " replicas evicted this pass";
      break;
    }
    if (in.limits.rate_tokens >= 0 && evicted >= in.limits.rate_tokens) {
      plan.held_back = "eviction rate limit reached";
      break;
    }
    plan.evictions.push_back({d.pod, d.message});
    ++evicted;
  }
  return plan;
}

}  // namespace gpu_autoscaler::controllers
