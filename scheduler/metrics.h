// File: scheduler/metrics.h
//
// The scheduler's Prometheus metrics (docs/scheduler.md lists them):
//   gpu_autoscaler_scheduler_attempts_total{result}        scheduled|unschedulable|error
//   gpu_autoscaler_scheduler_attempt_duration_seconds      one decision, cache to choice
//   gpu_autoscaler_scheduler_extender_requests_total{verb,code}
//   gpu_autoscaler_scheduler_extender_request_duration_seconds{verb}
//   gpu_autoscaler_scheduler_bind_total{result}            bound|conflict|error
//   gpu_autoscaler_scheduler_cluster_fragmentation_ratio   after binds (once a second) and scrapes
//   gpu_autoscaler_scheduler_pending_pods                  in the standalone queue
//   gpu_autoscaler_scheduler_cache_nodes, ..._cache_pods   what the cache holds
//   gpu_autoscaler_scheduler_target_workload_shapes{class} gpu|cpu_only shapes learnt
//   gpu_autoscaler_scheduler_preemption_attempts_total{result}
//                                                          preempted|no_candidate|waiting|error
//   gpu_autoscaler_scheduler_preemption_victims_total      pods evicted by preemption
//   gpu_autoscaler_scheduler_preemption_write_duration_seconds{result}
//                                                          one preemption's API writes:
//                                                          success|error
// prometheus-cpp stays out of this header.
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
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
  // Sets the fragmentation gauge from compute() at most once a second: the
  // measure walks every node under the cache's lock, too much for each bind
  // at thousands of binds a second. Scrapes set it fresh (Fragmentation).
  void FragmentationAfterBind(const std::function<double()>& compute);
  void PendingPods(double count);
  void CacheSize(int nodes, int pods);
  void TargetWorkloadShapes(int gpu, int cpu_only);
  void Preemption(std::string_view result, int victims);
  // One preemption's API writes (evictions, nominations), as kube-scheduler's
  // preemption_goroutines_duration_seconds.
  void PreemptionWrites(std::string_view result, double seconds);

 private:
  struct Families;
  std::unique_ptr<Families> f_;
  std::atomic<int64_t> last_fragmentation_ns_{0};
};

}  // namespace gpu_autoscaler::scheduler
