#include "cost/waste.h"

#include <utility>

namespace gpu_autoscaler::cost {

std::string_view IdleEventKindName(IdleEvent::Kind kind) {
  switch (kind) {
    case IdleEvent::Kind::kBecameIdle:
      return "BecameIdle";
    case IdleEvent::Kind::kBecameBusy:
      return "BecameBusy";
    case IdleEvent::Kind::kStoppedMeasuring:
      return "StoppedMeasuring";
  }
  return "Unknown";
}

IdleGpuDetector::IdleGpuDetector(WasteOptions options) : options_(options) {}

void IdleGpuDetector::SetAllocation(std::string_view pod, double gpu_share,
                                    double cost_per_second) {
  auto it = pods_.find(pod);
  if (it == pods_.end()) {
    it = pods_.emplace(std::string(pod), PodState{}).first;
    it->second.waste.pod = std::string(pod);
  }
  it->second.waste.gpu_share = gpu_share;
  it->second.cost_per_second = cost_per_second;
}

void IdleGpuDetector::EndRun(PodState& s, const std::string& pod, int64_t t, double u,
                             IdleEvent::Kind kind, std::vector<IdleEvent>& events) {
  if (s.waste.idle) {
    events.push_back(IdleEvent{pod, kind, t, s.waste.idle_since, u});
    s.waste.idle = false;
    s.waste.idle_since = 0;
  }
  s.in_run = false;
  s.run_start = 0;
  s.run_gpu_seconds = 0;
  s.run_cost = 0;
}

void IdleGpuDetector::Observe(std::string_view pod, int64_t t, double utilization,
                              std::vector<IdleEvent>& events) {
  auto it = pods_.find(pod);
  if (it == pods_.end()) {
    SetAllocation(pod, 1.0, 0.0);
    it = pods_.find(pod);
  }
  PodState& s = it->second;
  const std::string& name = it->first;
  if (s.has_sample && t <= s.last_t) return;  // stale or duplicate

  const bool measured =
      s.has_sample && utilization >= 0 && (t - s.last_t) <= options_.max_gap_seconds;
  if (!measured) {
    if (s.in_run) EndRun(s, name, t, utilization, IdleEvent::Kind::kStoppedMeasuring, events);
    s.has_sample = true;
    s.last_t = t;
    return;
  }

  const double dt = static_cast<double>(t - s.last_t);
  const double gpu_seconds = dt * s.waste.gpu_share;
  const double cost = dt * s.cost_per_second;
  s.waste.measured_gpu_seconds += gpu_seconds;
  s.waste.measured_cost += cost;

  if (s.waste.gpu_share > 0 && utilization < options_.threshold) {
    if (!s.in_run) {
      s.in_run = true;
      s.run_start = s.last_t;
      s.run_gpu_seconds = 0;
      s.run_cost = 0;
    }
    if (s.waste.idle) {
      s.waste.idle_gpu_seconds += gpu_seconds;
      s.waste.idle_cost += cost;
    } else {
      s.run_gpu_seconds += gpu_seconds;
      s.run_cost += cost;
      if (t - s.run_start >= options_.window_seconds) {
        s.waste.idle = true;
        s.waste.idle_since = s.run_start;
        s.waste.idle_gpu_seconds += s.run_gpu_seconds;
        s.waste.idle_cost += s.run_cost;
        s.waste.idle_periods += 1;
        s.run_gpu_seconds = 0;
        s.run_cost = 0;
        events.push_back(
            IdleEvent{name, IdleEvent::Kind::kBecameIdle, t, s.run_start, utilization});
      }
    }
  } else if (s.in_run) {
    EndRun(s, name, t, utilization, IdleEvent::Kind::kBecameBusy, events);
  }
  s.last_t = t;
}

std::optional<PodWaste> IdleGpuDetector::Remove(std::string_view pod, int64_t t,
                                                std::vector<IdleEvent>& events) {
  auto it = pods_.find(pod);
  if (it == pods_.end()) return std::nullopt;
  EndRun(it->second, it->first, t, -1, IdleEvent::Kind::kStoppedMeasuring, events);
  PodWaste w = std::move(it->second.waste);
  pods_.erase(it);
  return w;
}

std::optional<PodWaste> IdleGpuDetector::Waste(std::string_view pod) const {
  auto it = pods_.find(pod);
  if (it == pods_.end()) return std::nullopt;
  return it->second.waste;
}

std::vector<PodWaste> IdleGpuDetector::AllWaste() const {
  std::vector<PodWaste> out;
  out.reserve(pods_.size());
  for (const auto& [name, s] : pods_)
    out.push_back(s.waste);
  return out;
}

WasteTotals IdleGpuDetector::Totals() const {
  WasteTotals t;
  for (const auto& [name, s] : pods_) {
    t.pods += 1;
    t.idle_pods += s.waste.idle ? 1 : 0;
    t.measured_gpu_seconds += s.waste.measured_gpu_seconds;
    t.measured_cost += s.waste.measured_cost;
    t.idle_gpu_seconds += s.waste.idle_gpu_seconds;
    t.idle_cost += s.waste.idle_cost;
  }
  return t;
}

}  // namespace gpu_autoscaler::cost
