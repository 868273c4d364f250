#include "node-agent/pressure_eviction.h"

#include <algorithm>
#include <cstdio>
#include <tuple>

namespace gpu_autoscaler::node_agent {
namespace {

std::string Format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string Bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  const bool negative = b < 0;
  if (negative) b = -b;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return (negative ? "-" : "") + (u == 0 ? Format("%.0f", b) : Format("%.1f", b)) + " " + units[u];
}

// What `pod` uses of `r` and, for shared pods, how far over its request; the
// score ranks victims (higher goes first). nullopt: no figure, or nothing to
// free.
struct Score {
  double value;
  std::string note;
};
std::optional<Score> ScoreOf(const EvictionCandidate& pod, PressureResource r) {
  const bool shared = pod.tier == EvictionTier::kShared;
  switch (r) {
    case PressureResource::kMemory: {
      if (!pod.usage.memory_bytes) return std::nullopt;
      const double used = static_cast<double>(*pod.usage.memory_bytes);
      const double request = static_cast<double>(pod.memory_request_bytes);
      const double score = shared ? used - request : used;
      if (score <= 0) return std::nullopt;
      return Score{score, "using " + Bytes(used) + " of memory (request " + Bytes(request) + ")"};
    }
    case PressureResource::kCpu: {
      if (!pod.usage.cpu_millicores) return std::nullopt;
      const double used = *pod.usage.cpu_millicores;
      const double request = static_cast<double>(pod.cpu_request_millis);
      const double score = shared ? used - request : used;
      if (score <= 0) return std::nullopt;
      return Score{score, "using " + Format("%.0f", used) + "m CPU (request " +
                              Format("%.0f", request) + "m)"};
    }
    case PressureResource::kIo: {
      if (!pod.usage.io_bytes_per_second) return std::nullopt;
      const double used = *pod.usage.io_bytes_per_second;
      if (used <= 0) return std::nullopt;
      return Score{used, "doing " + Bytes(used) + "/s of IO"};
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view EvictionTierName(EvictionTier t) {
  switch (t) {
    case EvictionTier::kReclaimed:
      return "reclaimed_cores";
    case EvictionTier::kShared:
      return "shared_cores";
    case EvictionTier::kProtected:
      return "protected";
  }
  return "protected";
}

std::optional<double> SelectPressure(const std::optional<PsiFile>& file,
                                     std::optional<double> some_rate,
                                     std::optional<double> full_rate,
                                     const PressureTrigger& trigger) {
  const bool full = trigger.line == PsiLineKind::kFull;
  if (trigger.average == PsiAverage::kTotal) return full ? full_rate : some_rate;
  if (!file) return std::nullopt;
  if (full && !file->full) return std::nullopt;
  const PsiLine& line = full ? *file->full : file->some;
  switch (trigger.average) {
    case PsiAverage::kAvg10:
      return line.avg10;
    case PsiAverage::kAvg60:
      return line.avg60;
    case PsiAverage::kAvg300:
      return line.avg300;
    case PsiAverage::kTotal:
      break;
  }
  return std::nullopt;
}

PressureEvictionPlanner::PressureEvictionPlanner(PressureEvictionConfig config)
    : config_(std::move(config)) {}

void PressureEvictionPlanner::SetConfig(const PressureEvictionConfig& config) {
  for (PressureResource r : kPressureResources) {
    if (!(config.trigger(r) == config_.trigger(r))) state_[static_cast<size_t>(r)] = State{};
  }
  config_ = config;
}

std::optional<size_t> PressureEvictionPlanner::PickVictim(
    PressureResource r, const std::vector<EvictionCandidate>& pods, Clock::TimePoint now) const {
  std::optional<size_t> best;
  double best_score = 0;
  for (size_t i = 0; i < pods.size(); ++i) {
    const EvictionCandidate& pod = pods[i];
    if (pod.tier == EvictionTier::kProtected || pod.terminating) continue;
    if (auto it = picked_.find(pod.uid);
        it != picked_.end() && now - it->second < config_.rate_window)
      continue;
    auto score = ScoreOf(pod, r);
    if (!score) continue;
    if (!best) {
      best = i;
      best_score = score->value;
      continue;
    }
    const EvictionCandidate& b = pods[*best];
    // Reclaimed before shared; then the higher score; then by name, for a
    // deterministic choice.
    const auto key = [](const EvictionCandidate& p) { return p.tier == EvictionTier::kReclaimed; };
    bool better;
    if (key(pod) != key(b)) {
      better = key(pod);
    } else if (score->value != best_score) {
      better = score->value > best_score;
    } else {
      better = std::tie(pod.ns, pod.name) < std::tie(b.ns, b.name);
    }
    if (better) {
      best = i;
      best_score = score->value;
    }
  }
  return best;
}

EvictionPlan PressureEvictionPlanner::Plan(Clock::TimePoint now, const NodePressure& pressure,
                                           const std::vector<EvictionCandidate>& pods) {
  EvictionPlan plan;
  while (!recent_.empty() && now - recent_.front() >= config_.rate_window)
    recent_.pop_front();
  std::erase_if(picked_, [&](const auto& kv) { return now - kv.second >= config_.rate_window; });

  // Memory first: its stalls end in the OOM killer.
  for (PressureResource r :
       {PressureResource::kMemory, PressureResource::kCpu, PressureResource::kIo}) {
    State& s = state_[static_cast<size_t>(r)];
    const PressureTrigger& t = config_.trigger(r);
    const std::optional<double> value = pressure[static_cast<size_t>(r)];
    if (!config_.enabled || !t.enabled || !value) {
      s = State{};
      continue;
    }
    if (!s.high && *value > t.threshold) {
      s = State{.high = true, .since = now};
    } else if (s.high && *value < t.disarm_below) {
      s = State{};
    }
    if (!s.high || now - s.since < t.window) continue;

    if (!recent_.empty() && now - recent_.back() < config_.cool_down) {
      plan.held.emplace_back(r, "cool-down");
      continue;
    }
    if (static_cast<int64_t>(recent_.size()) >= config_.max_evictions) {
      plan.held.emplace_back(r, "rate limit");
      continue;
    }
    const std::optional<size_t> victim = PickVictim(r, pods, now);
    if (!victim) {
      plan.held.emplace_back(r, "no candidate");
      continue;
    }
    const EvictionCandidate& pod = pods[*victim];
    const auto high_for = std::chrono::duration_cast<std::chrono::milliseconds>(now - s.since);
    PlannedEviction e{.ns = pod.ns,
                      .name = pod.name,
                      .uid = pod.uid,
                      .tier = pod.tier,
                      .resource = r,
                      .pressure = *value,
                      .threshold = t.threshold,
                      .high_for = high_for,
                      .message = {}};
    e.message = std::string(PressureResourceName(r)) + " pressure " +
                std::string(PsiLineKindName(t.line)) + " " +
                std::string(PsiAverageName(t.average)) + " " + Format("%.1f", *value) + "% above " +
                Format("%g", t.threshold) + "% for " + std::to_string(high_for.count() / 1000) +
                "s; " + std::string(EvictionTierName(pod.tier)) + " pod " + ScoreOf(pod, r)->note;
    plan.evictions.push_back(std::move(e));
    recent_.push_back(now);
    picked_[pod.uid] = now;
  }
  return plan;
}

void PressureEvictionPlanner::Remember(const std::string& uid, Clock::TimePoint when) {
  recent_.insert(std::upper_bound(recent_.begin(), recent_.end(), when), when);
  auto [it, inserted] = picked_.emplace(uid, when);
  if (!inserted) it->second = std::max(it->second, when);
}

}  // namespace gpu_autoscaler::node_agent
