#include "scheduler/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <string>

namespace gpu_autoscaler::scheduler {

struct SchedulerMetrics::Families {
  prometheus::Family<prometheus::Counter>* attempts;
  prometheus::Family<prometheus::Histogram>* attempt_duration;
  prometheus::Family<prometheus::Counter>* extender_requests;
  prometheus::Family<prometheus::Histogram>* extender_duration;
  prometheus::Family<prometheus::Counter>* binds;
  prometheus::Gauge* fragmentation;
  prometheus::Gauge* pending;
  prometheus::Gauge* cache_nodes;
  prometheus::Gauge* cache_pods;
  prometheus::Gauge* gpu_shapes;
  prometheus::Gauge* cpu_only_shapes;
  prometheus::Family<prometheus::Counter>* preemption_attempts;
  prometheus::Counter* preemption_victims;
  prometheus::Family<prometheus::Histogram>* preemption_writes;
};

namespace {
const prometheus::Histogram::BucketBoundaries& Buckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
  return kBuckets;
}
// For API writes: milliseconds to seconds.
const prometheus::Histogram::BucketBoundaries& ApiBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets{0.005, 0.01, 0.025, 0.05, 0.1,
                                                                0.25,  0.5,  1,     2.5,  5};
  return kBuckets;
}
}  // namespace

SchedulerMetrics::SchedulerMetrics(prometheus::Registry* registry) {
  if (registry == nullptr) return;
  f_ = std::make_unique<Families>();
  f_->attempts = &prometheus::BuildCounter()
                      .Name("gpu_autoscaler_scheduler_attempts_total")
                      .Help("Scheduling attempts by result (scheduled, unschedulable, error).")
                      .Register(*registry);
  f_->attempt_duration =
      &prometheus::BuildHistogram()
           .Name("gpu_autoscaler_scheduler_attempt_duration_seconds")
           .Help("Time of one scheduling decision, from the cache to the chosen node.")
           .Register(*registry);
  f_->extender_requests = &prometheus::BuildCounter()
                               .Name("gpu_autoscaler_scheduler_extender_requests_total")
                               .Help("Extender requests by verb and HTTP code.")
                               .Register(*registry);
  f_->extender_duration = &prometheus::BuildHistogram()
                               .Name("gpu_autoscaler_scheduler_extender_request_duration_seconds")
                               .Help("Extender request handling time by verb.")
                               .Register(*registry);
  f_->binds = &prometheus::BuildCounter()
                   .Name("gpu_autoscaler_scheduler_bind_total")
                   .Help("Bindings by result (bound, conflict, error).")
                   .Register(*registry);
  f_->fragmentation =
      &prometheus::BuildGauge()
           .Name("gpu_autoscaler_scheduler_cluster_fragmentation_ratio")
           .Help("Expected fragmented share of idle GPU capacity after the last bind (0..1).")
           .Register(*registry)
           .Add({});
  f_->pending = &prometheus::BuildGauge()
                     .Name("gpu_autoscaler_scheduler_pending_pods")
                     .Help("Pods waiting in the standalone scheduler's queue.")
                     .Register(*registry)
                     .Add({});
  f_->cache_nodes = &prometheus::BuildGauge()
                         .Name("gpu_autoscaler_scheduler_cache_nodes")
                         .Help("Nodes in the scheduler's cache.")
                         .Register(*registry)
                         .Add({});
  f_->cache_pods = &prometheus::BuildGauge()
                        .Name("gpu_autoscaler_scheduler_cache_pods")
                        .Help("Bound or assumed pods the scheduler's cache accounts.")
                        .Register(*registry)
                        .Add({});
  auto& shapes = prometheus::BuildGauge()
                     .Name("gpu_autoscaler_scheduler_target_workload_shapes")
                     .Help("Pod shapes in the target workload learnt from the cluster's pods.")
                     .Register(*registry);
  f_->gpu_shapes = &shapes.Add({{"class", "gpu"}});
  f_->cpu_only_shapes = &shapes.Add({{"class", "cpu_only"}});
  f_->preemption_attempts =
      &prometheus::BuildCounter()
           .Name("gpu_autoscaler_scheduler_preemption_attempts_total")
           .Help(
               "Preemption attempts for unschedulable pods, and extender /preempt answers, by "
               "result (preempted, no_candidate, waiting, error, disabled).")
           .Register(*registry);
  // Exported at 0, so that dashboards and alerts see the series before the
  // first preemption.
  for (const char* result : {"preempted", "no_candidate", "waiting", "error"})
    f_->preemption_attempts->Add({{"result", result}});
  f_->preemption_victims = &prometheus::BuildCounter()
                                .Name("gpu_autoscaler_scheduler_preemption_victims_total")
                                .Help("Pods evicted to make room for pods of higher priority.")
                                .Register(*registry)
                                .Add({});
  f_->preemption_writes =
      &prometheus::BuildHistogram()
           .Name("gpu_autoscaler_scheduler_preemption_write_duration_seconds")
           .Help(
               "Time of one preemption's API writes (evictions, nominations), by result "
               "(success, error). Off the scheduling loop unless --async-preemption=false.")
           .Register(*registry);
  for (const char* result : {"success", "error"})
    f_->preemption_writes->Add({{"result", result}}, ApiBuckets());
}

SchedulerMetrics::~SchedulerMetrics() = default;

void SchedulerMetrics::Attempt(std::string_view result, double seconds) {
  if (!f_) return;
  f_->attempts->Add({{"result", std::string(result)}}).Increment();
  f_->attempt_duration->Add({}, Buckets()).Observe(seconds);
}

void SchedulerMetrics::ExtenderRequest(std::string_view verb, int code, double seconds) {
  if (!f_) return;
  f_->extender_requests->Add({{"verb", std::string(verb)}, {"code", std::to_string(code)}})
      .Increment();
  f_->extender_duration->Add({{"verb", std::string(verb)}}, Buckets()).Observe(seconds);
}

void SchedulerMetrics::Bind(std::string_view result) {
  if (f_) f_->binds->Add({{"result", std::string(result)}}).Increment();
}

void SchedulerMetrics::Fragmentation(double ratio) {
  if (f_) f_->fragmentation->Set(ratio);
}

void SchedulerMetrics::FragmentationAfterBind(const std::function<double()>& compute) {
  if (!f_) return;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_fragmentation_ns_.load();
  if (now - last < 1'000'000'000 || !last_fragmentation_ns_.compare_exchange_strong(last, now)) {
    return;  // measured less than a second ago, or another bind is measuring
  }
  f_->fragmentation->Set(compute());
}

void SchedulerMetrics::CacheSize(int nodes, int pods) {
  if (!f_) return;
  f_->cache_nodes->Set(nodes);
  f_->cache_pods->Set(pods);
}

void SchedulerMetrics::TargetWorkloadShapes(int gpu, int cpu_only) {
  if (!f_) return;
  f_->gpu_shapes->Set(gpu);
  f_->cpu_only_shapes->Set(cpu_only);
}

void SchedulerMetrics::Preemption(std::string_view result, int victims) {
  if (!f_) return;
  f_->preemption_attempts->Add({{"result", std::string(result)}}).Increment();
  f_->preemption_victims->Increment(victims);
}

void SchedulerMetrics::PreemptionWrites(std::string_view result, double seconds) {
  if (f_)
    f_->preemption_writes->Add({{"result", std::string(result)}}, ApiBuckets()).Observe(seconds);
}

void SchedulerMetrics::PendingPods(double count) {
  if (f_) f_->pending->Set(count);
}

}  // namespace gpu_autoscaler::scheduler
