#include "controllers/profile_usage_source.h"

#include <cmath>

namespace gpu_autoscaler::controllers {
namespace {

using profiling::Resource;

std::string Label(const cost::PromSample& s, const std::string& name) {
  auto exported = s.labels.find("exported_" + name);
  if (exported != s.labels.end() && !exported->second.empty()) return exported->second;
  auto it = s.labels.find(name);
  return it == s.labels.end() ? std::string() : it->second;
}

void AppendSeries(const std::vector<cost::PromSample>& samples, Resource r,
                  std::vector<ContainerUsageSample>* out) {
  for (const cost::PromSample& s : samples) {
    if (!std::isfinite(s.value) || s.value < 0) continue;
    ContainerUsageSample u{.ns = Label(s, "namespace"),
                           .pod = Label(s, "pod"),
                           .container = Label(s, "container"),
                           .resource = r,
                           .timestamp = static_cast<int64_t>(s.timestamp),
                           .value = s.value};
    if (u.pod.empty() || u.container.empty()) continue;
    out->push_back(std::move(u));
  }
}

}  // namespace

std::vector<ContainerUsageSample> UsageFromPrometheus(const std::vector<cost::PromSample>& cpu,
                                                      const std::vector<cost::PromSample>& memory,
                                                      const std::vector<cost::PromSample>& dcgm) {
  std::vector<ContainerUsageSample> out;
  AppendSeries(cpu, Resource::kCpu, &out);
  AppendSeries(memory, Resource::kMemory, &out);
  // One evaluation: every dcgm sample carries the same timestamp.
  int64_t dcgm_time = 0;
  for (const cost::PromSample& s : dcgm)
    dcgm_time = std::max(dcgm_time, static_cast<int64_t>(s.timestamp));
  for (const cost::PodGpuUsage& u : cost::AttributeDcgmSamplesByContainer(dcgm)) {
    if (u.container.empty()) continue;
    if (u.gpu_utilization >= 0) {
      out.push_back(
          {u.ns, u.pod, u.container, Resource::kGpuUtilization, dcgm_time, u.gpu_utilization});
    }
    if (u.gpu_memory_bytes >= 0) {
      out.push_back(
          {u.ns, u.pod, u.container, Resource::kGpuMemory, dcgm_time, u.gpu_memory_bytes});
    }
  }
  return out;
}

PrometheusProfileUsageSource::PrometheusProfileUsageSource(cost::PrometheusDcgmOptions options,
                                                           Clock& clock,
                                                           Clock::Duration min_interval)
    : options_(std::move(options)), clock_(clock), min_interval_(min_interval) {}

Result<std::shared_ptr<const std::vector<ContainerUsageSample>>>
PrometheusProfileUsageSource::Fetch() {
  std::lock_guard<std::mutex> lock(mu_);
  const Clock::TimePoint now = clock_.Now();
  if (cached_ && now - fetched_at_ < min_interval_) return cached_;
  auto cpu = cost::QueryPrometheusVector(options_, kCpuUsageQuery);
  if (!cpu.ok()) return cpu.error().WithContext("CPU usage");
  auto memory = cost::QueryPrometheusVector(options_, kMemoryUsageQuery);
  if (!memory.ok()) return memory.error().WithContext("memory usage");
  cost::PrometheusDcgmSource dcgm(options_);
  auto gpu = cost::QueryPrometheusVector(options_, dcgm.Query());
  if (!gpu.ok()) return gpu.error().WithContext("GPU usage");
  cached_ = std::make_shared<const std::vector<ContainerUsageSample>>(
      UsageFromPrometheus(*cpu, *memory, *gpu));
  fetched_at_ = now;
  return cached_;
}

}  // namespace gpu_autoscaler::controllers
