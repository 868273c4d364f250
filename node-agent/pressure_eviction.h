// File: node-agent/pressure_eviction.h
//
// Decides PSI evictions (pure: no I/O, time passed in). Per resource (cpu,
// memory, io) a hysteresis state machine watches the node's pressure, read
// as the trigger's line (some/full) and average (avg10/avg60/avg300, or
// "total": the stalled share between two reads):
//   calm --(above threshold)--> high --(below disarmBelow)--> calm
// A dip between disarmBelow and threshold keeps it high; missing data
// returns it to calm. Once high for the trigger's window, one pod is evicted
// for that resource, if the rate limit allows (at most maxEvictions in any
// rateWindow, and none within coolDown of the last, so pressure can fall).
//
// Victims, for the resource that fired:
//   1. reclaimed_cores pods, using the most first;
//   2. then shared_cores pods by how far their usage exceeds their request,
//      and only those that exceed it;
//   never dedicated_cores, system_cores, or a pod of unknown QoS level.
// "Usage": memory.current against the memory request (memory), CPU usage
// rate against the CPU request (cpu), and IO bytes per second (io: pods
// request no IO, so all of a shared pod's IO counts as excess). A pod with no
// usage figure for the resource, a terminating pod, and a pod already picked
// within the last rateWindow are never picked.
//
//   PressureEvictionPlanner planner(config.pressure_eviction);
//   EvictionPlan plan = planner.Plan(clock.Now(), node_pressure, candidates);
//   for (const PlannedEviction& e : plan.evictions) evict(e.ns, e.name, e.message);
//
// Thread-safety: one thread uses a planner at a time.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "node-agent/agent_config.h"
#include "node-agent/cgroup_usage.h"
#include "node-agent/psi.h"

namespace gpu_autoscaler::node_agent {

// What the planner may do with a pod (the adapter maps Katalyst's QoS level).
enum class EvictionTier : uint8_t { kReclaimed, kShared, kProtected };
std::string_view EvictionTierName(
    EvictionTier t);  // "reclaimed_cores", "shared_cores", "protected"

struct EvictionCandidate {
  std::string ns{};
  std::string name{};
  std::string uid{};
  EvictionTier tier = EvictionTier::kProtected;
  int64_t memory_request_bytes = 0;
  int64_t cpu_request_millis = 0;
  UsageNow usage{};
  bool terminating = false;
};

// The node's pressure for each resource as a trigger reads it; nullopt when
// there is no figure (no PSI file, no second reading for "total" yet).
using NodePressure = std::array<std::optional<double>, 3>;

// The figure `trigger` reads from `file`, or from `some_rate`/`full_rate`
// (PsiRates of the two totals) for PsiAverage::kTotal.
std::optional<double> SelectPressure(const std::optional<PsiFile>& file,
                                     std::optional<double> some_rate,
                                     std::optional<double> full_rate,
                                     const PressureTrigger& trigger);

struct PlannedEviction {
  std::string ns;
  std::string name;
  std::string uid;
  EvictionTier tier = EvictionTier::kProtected;
  PressureResource resource = PressureResource::kMemory;
  double pressure = 0;  // percent
  double threshold = 0;
  std::chrono::milliseconds high_for{0};
  // For the Event: "memory pressure some avg10 41.2% above 25% for 60s;
  // reclaimed_cores pod using 3.0 GiB of memory (request 0 B)".
  std::string message;
};

struct EvictionPlan {
  std::vector<PlannedEviction> evictions;
  // Resources past their window that evicted nothing, and why ("cool-down",
  // "rate limit", "no candidate").
  std::vector<std::pair<PressureResource, std::string>> held;
};

class PressureEvictionPlanner {
 public:
  explicit PressureEvictionPlanner(PressureEvictionConfig config);

  // Applies a new configuration. A resource whose trigger changed starts
  // calm; the rate-limit history stays.
  void SetConfig(const PressureEvictionConfig& config);
  const PressureEvictionConfig& config() const { return config_; }

  EvictionPlan Plan(Clock::TimePoint now, const NodePressure& pressure,
                    const std::vector<EvictionCandidate>& pods);

  bool high(PressureResource r) const { return state_[static_cast<size_t>(r)].high; }

  // An eviction made before this planner existed (an earlier process of the
  // agent): it counts against maxEvictions, coolDown and the pod's re-pick.
  void Remember(const std::string& uid, Clock::TimePoint when);

 private:
  struct State {
    bool high = false;
    Clock::TimePoint since{};
  };
  // Index of the best victim for `r`, or nullopt.
  std::optional<size_t> PickVictim(PressureResource r, const std::vector<EvictionCandidate>& pods,
                                   Clock::TimePoint now) const;

  PressureEvictionConfig config_;
  std::array<State, 3> state_{};
  std::deque<Clock::TimePoint> recent_;             // evictions within rate_window
  std::map<std::string, Clock::TimePoint> picked_;  // uid -> when
};

}  // namespace gpu_autoscaler::node_agent
