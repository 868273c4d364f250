// File: node-agent/pressure_evictor.h
//
// The apply layer of PSI eviction. Every pressureEviction.interval it reads
// the node's PSI (<proc-root>/pressure/*) and each pod's cgroup usage, asks
// the planner (pressure_eviction.h) whom to evict, and evicts through the
// Eviction API (pod_eviction.h, tried once: a PodDisruptionBudget's refusal
// is reported, not waited out). Each eviction gets an Event on the pod:
//   Warning PressureEviction "memory pressure some avg10 41.2% above 25% for
//   60s; reclaimed_cores pod using 2.0 GiB of memory (request 0 B); the pod
//   itself stalled 12.0% (memory some avg10)"
// and PressureEvictionFailed when the API refused.
// Crash safety (docs/reliability.md): the eviction is recorded on the Node
// before the Eviction call; an agent killed after it counts that eviction
// against its limits when it restarts, so no pod is evicted beyond them. An
// eviction recorded but not called (killed in between) is completed by the
// restarted agent when the pod still runs, and counts once.
// Metrics:
//   gpu_autoscaler_node_pressure_percent{resource}   the figure each trigger reads
//   gpu_autoscaler_node_pressure_high{resource}      1 while above (hysteresis)
//   gpu_autoscaler_node_pressure_evictions_total{resource,result}
//     result: evicted, gone, blocked_pdb, failed
//
//   auto pods = [&] { return EvictablePodsOf(*cache.Snapshot(), cgroup_dir_of); };
//   PressureEvictor evictor(client, &recorder, registry, {.proc_root = "/proc", .pods = pods},
//                           config.pressure_eviction);
//   watch->OnChange([&](const AgentConfig& c) { evictor.SetConfig(c.pressure_eviction); });
//   evictor.Run(stop);
//
// Thread-safety: SetConfig may be called from any thread; Tick and Run from
// one thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "node-agent/cgroup_usage.h"
#include "node-agent/local_pods.h"
#include "node-agent/pressure_eviction.h"
#include "node-agent/psi.h"

namespace prometheus {
class Registry;
}

namespace gpu_autoscaler::kube {
class EventRecorder;
class RestClient;
}  // namespace gpu_autoscaler::kube

namespace gpu_autoscaler::node_agent {

// A pod on this node as the evictor sees it.
struct EvictablePod {
  std::string ns{};
  std::string name{};
  std::string uid{};
  EvictionTier tier = EvictionTier::kProtected;
  int64_t memory_request_bytes = 0;  // memory + reclaimed_memory
  int64_t cpu_request_millis = 0;    // cpu + reclaimed_millicpu
  std::string cgroup_dir{};  // its cgroup v2 group; "" when unknown (no usage: never picked)
  bool terminating = false;
};

// reclaimed_cores and shared_cores may be evicted; dedicated_cores,
// system_cores and an unknown level never are (a typo must not expose a
// latency-critical pod).
EvictionTier EvictionTierOf(QosLevel level);

// The active pods of `snapshot`, with `cgroup_dir(pod)` as their group.
std::vector<EvictablePod> EvictablePodsOf(
    const LocalPodSnapshot& snapshot,
    const std::function<std::string(const LocalPod&)>& cgroup_dir);

struct PressureEvictorOptions {
  std::string proc_root = "/proc";
  // This node. When set, each eviction is first recorded on the Node
  // (api::kPressureEvictionsAnnotation) and the record is read back before
  // the first round, so a restarted agent keeps maxEvictions and coolDown.
  std::string node_name{};
  std::function<std::vector<EvictablePod>()> pods = nullptr;
  Clock* clock = &RealClock::Instance();
};

class PressureEvictor {
 public:
  // `client`, `recorder` (may be null) and `registry` must outlive it.
  PressureEvictor(kube::RestClient& client, kube::EventRecorder* recorder,
                  prometheus::Registry& registry, PressureEvictorOptions options,
                  PressureEvictionConfig config);
  ~PressureEvictor();

  void SetConfig(const PressureEvictionConfig& config);

  // One round: read, plan, evict. Returns the plan.
  EvictionPlan Tick(std::stop_token stop = {});
  // Ticks every interval until `stop`.
  void Run(std::stop_token stop);

 private:
  struct Metrics;

  kube::RestClient& client_;
  kube::EventRecorder* recorder_;
  PressureEvictorOptions options_;
  std::unique_ptr<Metrics> metrics_;

  std::mutex config_mu_;
  PressureEvictionConfig pending_;  // guarded by config_mu_
  bool config_changed_ = false;     // guarded by config_mu_

  PressureEvictionPlanner planner_;
  PsiRates psi_rates_;
  UsageRates usage_rates_;
  std::string logged_read_error_;
  std::string logged_held_;
  // The Node's record of evictions within the rate window (options_.node_name).
  bool history_loaded_ = false;
  struct Record {
    std::string uid, pod;  // pod: "ns/name"
    std::string resource;  // "memory", "cpu", "io"
    int64_t at = 0;        // unix seconds
  };
  std::vector<Record> records_;

  Status LoadHistory(Clock::TimePoint now, int64_t now_unix);
  Status RecordEviction(const PlannedEviction& e, int64_t now_unix);
  // Calls the Eviction API for recorded pods still running: an earlier run
  // recorded them and died before (or while) calling it.
  void CompleteRecordedEvictions(const std::vector<EvictablePod>& pods, std::stop_token stop);
};

}  // namespace gpu_autoscaler::node_agent
