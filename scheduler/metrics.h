// File: scheduler/metrics.h
//
// The scheduler's Prometheus metrics (docs/scheduler.md lists them):
//   gpu_autoscaler_scheduler_attempts_total{result}        scheduled|unschedulable|error
//   gpu_autoscaler_scheduler_attempt_duration_seconds      one decision, cache to choice
//   gpu_autoscaler_scheduler_extender_requests_total{verb,code}
//   gpu_autoscaler_scheduler_extender_request_duration_seconds{verb}
//   gpu_autoscaler_scheduler_bind_total{result}            bound|conflict|error
//   gpu_autoscaler_scheduler_cluster_fragmentation_ratio   after each bind
//   gpu_autoscaler_scheduler_pending_pods                  in the standalone queue
// prometheus-cpp stays out of this header.
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <memory>
#include <string_view>

namespace prometheus {
class Registry;
}

namespace gpu_autoscaler::scheduler {

class SchedulerMetrics {
 public:
  // Registers the families in `registry`; a null registry makes every call a no-op.
  explicit SchedulerMetrics(prometheus::Registry* registry);
  ~SchedulerMetrics();

  void Attempt(std::string_view result, double seconds);
  void ExtenderRequest(std::string_view verb, int code, double seconds);
  void Bind(std::string_view result);
  void Fragmentation(double ratio);
  void PendingPods(double count);

 private:
  struct Families;
  std::unique_ptr<Families> f_;
};

}  // namespace gpu_autoscaler::scheduler
