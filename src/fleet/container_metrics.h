// File: src/fleet/container_metrics.h
//
// cAdvisor-style container metrics of the simulated fleet, as the kubelet
// serves them on /metrics/cadvisor: per container of every running pod on a
// managed node,
//   container_cpu_usage_seconds_total{namespace,pod,container,node}   counter
//   container_memory_working_set_bytes{namespace,pod,container,node}  gauge
// The usage comes from the pod's fleet-usage annotation (usage_annotation.h),
// else a default. The CPU counter integrates the usage rate over time: a rate
// holds from one observation to the next (what a scrape or a tick saw).
//
//   ContainerMetrics metrics;
//   metrics.Observe(RunningContainers(snapshot, {.cpu_cores = 0.1}, nullptr), clock.Now());
//   std::string text = metrics.Render();   // Prometheus text format 0.0.4
//
// Thread-safety: RunningContainers is pure. ContainerMetrics is not
// thread-safe (the controller guards it with a mutex).
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "fleet/fleet_plan.h"
#include "fleet/usage_annotation.h"
#include "fleet/usage_trace_replay.h"

namespace gpu_autoscaler::fleet {

struct ContainerKey {
  std::string ns{};
  std::string pod{};
  std::string container{};
  std::string node{};
  bool operator<(const ContainerKey& o) const {
    return std::tie(ns, pod, container, node) < std::tie(o.ns, o.pod, o.container, o.node);
  }
};

struct ContainerReading {
  ContainerKey key{};
  ContainerUsage usage{};
};

// The containers of pods Running (and not terminating) on managed nodes, in
// namespace/pod/container order. A pod whose annotation does not parse gets
// `fallback` for all its containers, and "<ns>/<pod>: <why>" in `errors`
// (when not null). A container with a memory-trace reads its memory from
// `traces` (usage_trace_replay.h): the sample for the time since the pod's
// startTime times its memory limit (else the fallback memory); an unknown
// trace pod is an error and leaves the fallback memory.
std::vector<ContainerReading> RunningContainers(const FleetSnapshot& snapshot,
                                                const ContainerUsage& fallback,
                                                std::vector<std::string>* errors,
                                                const MemoryTraces* traces = nullptr);

class ContainerMetrics {
 public:
  // Integrates each known container's CPU rate up to `now`, then takes the
  // new rates and working sets. New containers start at 0 CPU seconds;
  // containers no longer running are forgotten (as cAdvisor drops them).
  void Observe(const std::vector<ContainerReading>& running, Clock::TimePoint now);
  // CPU seconds of a container so far; -1 when unknown.
  double CpuSeconds(const ContainerKey& key) const;
  size_t size() const { return series_.size(); }
  // Both families, HELP and TYPE as cAdvisor writes them.
  std::string Render() const;

 private:
  struct Series {
    double cpu_seconds = 0;
    ContainerUsage usage{};
    Clock::TimePoint last{};
  };
  std::map<ContainerKey, Series> series_;
};

}  // namespace gpu_autoscaler::fleet
