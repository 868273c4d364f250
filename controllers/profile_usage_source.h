// File: controllers/profile_usage_source.h
//
// Where the ServiceProfile controller gets per-container usage: the same
// Prometheus the manager reads dcgm-exporter series from for cost metering
// (cost::PrometheusDcgmSource), with three instant queries per poll:
//
//   CPU cores     sum by (namespace,pod,container)
//                   (rate(container_cpu_usage_seconds_total{container!="",container!="POD"}[5m]))
//   memory bytes  sum by (namespace,pod,container)
//                   (container_memory_working_set_bytes{container!="",container!="POD"})
//   GPU           {__name__=~"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_DEV_FB_USED"<,selector>},
//                 divided per container as cost::AttributeDcgmSamplesByContainer does
//
// (cAdvisor's series as kubelet exposes them; working set is what the
// kubelet evicts on and what VPA's recommender reads.) Each sample keeps
// Prometheus's evaluation timestamp, so the profile's dedup drops a poll
// that saw nothing new.
//
// The answer is cached for `min_interval`: every profile reconciled in one
// interval shares one round of queries.
//
//   PrometheusProfileUsageSource source({.url = "http://prometheus:9090"}, clock, 60s);
//   GPU_ASSIGN_OR_RETURN(auto usage, source.Fetch());
//   for (const ContainerUsageSample& s : *usage) ...
//
// Thread-safety: Fetch may be called from several workers at once (one
// fetch at a time; the others wait for its answer).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "cost/utilization.h"
#include "profiling/recommender.h"

namespace gpu_autoscaler::controllers {

struct ContainerUsageSample {
  std::string ns{};
  std::string pod{};
  std::string container{};
  profiling::Resource resource = profiling::Resource::kCpu;
  int64_t timestamp = 0;  // Unix seconds
  double value = 0;       // cores, bytes, 0..1
};

class ProfileUsageSource {
 public:
  virtual ~ProfileUsageSource() = default;
  // Every container's latest figures. Errors are values naming the source.
  virtual Result<std::shared_ptr<const std::vector<ContainerUsageSample>>> Fetch() = 0;
};

inline constexpr std::string_view kCpuUsageQuery =
    "sum by (namespace,pod,container) (rate(container_cpu_usage_seconds_total{container!=\"\","
    "container!=\"POD\"}[5m]))";
inline constexpr std::string_view kMemoryUsageQuery =
    "sum by (namespace,pod,container) (container_memory_working_set_bytes{container!=\"\","
    "container!=\"POD\"})";

// Turns the three answers into samples (pure; exposed for tests).
std::vector<ContainerUsageSample> UsageFromPrometheus(const std::vector<cost::PromSample>& cpu,
                                                      const std::vector<cost::PromSample>& memory,
                                                      const std::vector<cost::PromSample>& dcgm);

class PrometheusProfileUsageSource final : public ProfileUsageSource {
 public:
  PrometheusProfileUsageSource(cost::PrometheusDcgmOptions options, Clock& clock,
                               Clock::Duration min_interval);
  Result<std::shared_ptr<const std::vector<ContainerUsageSample>>> Fetch() override;

 private:
  cost::PrometheusDcgmOptions options_;
  Clock& clock_;
  Clock::Duration min_interval_;
  std::mutex mu_;
  std::shared_ptr<const std::vector<ContainerUsageSample>> cached_;  // guarded by mu_
  Clock::TimePoint fetched_at_{};                                    // guarded by mu_
};

}  // namespace gpu_autoscaler::controllers
