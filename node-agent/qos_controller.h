// File: node-agent/qos_controller.h
//
// Keeps the QoS pools: each pass takes the LocalPodCache snapshot and the
// NUMA topology, plans the pools (qos_pools.h, pure), writes the pods'
// cgroups (cgroup_writer.h; only changes), and applies what changed to
//   - the NodeResourceReport's status.qos (server-side apply, field manager
//     gpu-autoscaler-node-agent-qos, so the inventory reporter's fields stay
//     its own), and
//   - the Node's status.capacity/allocatable
//     resource.katalyst.kubewharf.io/reclaimed_millicpu and reclaimed_memory,
//     so reclaimed_cores pods can be scheduled onto the reclaimable amount.
// A pod the planner could not serve as asked (unknown qos_level, a
// dedicated_cores pod that does not fit, a malformed enhancement) gets one
// Warning Event and one log line per distinct problem; the agent keeps
// serving. Passes run when the pod set changes and every `resync` (a pod's
// cgroup may appear after the pod does).
//
//   QosController qos(client, pods, &recorder, &metrics, {.node_name = "gpu-1", ...});
//   manager.Add(MakeRunnable("qos", false, [&](std::stop_token t) { qos.Run(t); ... }));
//
// Thread-safety: Sync and Run from one thread; last_plan() copies under a lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "node-agent/cgroup_writer.h"
#include "node-agent/local_pods.h"
#include "node-agent/qos_pools.h"

namespace prometheus {
class Registry;
}

namespace gpu_autoscaler::kube {
class RestClient;
class EventRecorder;
}  // namespace gpu_autoscaler::kube

namespace gpu_autoscaler::node_agent {

inline constexpr const char* kQosFieldManager = "gpu-autoscaler-node-agent-qos";

// Metrics of the QoS pools:
//   gpu_autoscaler_node_qos_pool_cpus{pool}, gpu_autoscaler_node_qos_pool_pods{pool}
//   gpu_autoscaler_node_reclaimable_millicpu, gpu_autoscaler_node_reclaimable_memory_bytes
//   gpu_autoscaler_node_qos_pod_problems        pods the planner could not serve as asked
//   gpu_autoscaler_node_cgroup_writes_total{result}   written, error, vanished
//   gpu_autoscaler_node_qos_syncs_total{result}       ok, error
class QosMetrics {
 public:
  explicit QosMetrics(prometheus::Registry& registry);
  ~QosMetrics();
  void ObservePlan(const PoolPlan& plan);
  void CountWrites(uint64_t written, uint64_t errors, uint64_t vanished);
  void CountSync(bool ok);

 private:
  struct Impl;
  std::mutex mu_;
  std::unique_ptr<Impl> impl_;
};

struct QosControllerOptions {
  std::string node_name{};
  std::string sysfs_root = "/sys";
  std::string meminfo_path = "/proc/meminfo";  // when sysfs has no NUMA nodes
  std::vector<int> reserved_cpus{};
  int64_t reserved_memory_bytes = 0;
  int64_t reclaim_reserve_millicpu = 0;
  int64_t reclaim_reserve_memory_bytes = 0;
  // nullopt: do not write cgroups (no cgroup file system found, or turned off).
  std::optional<CgroupWriterOptions> cgroup{};
  CgroupDriver driver = CgroupDriver::kCgroupfs;  // reported even when writes are off
  std::chrono::milliseconds resync{10'000};
  // Everything is applied again this often, though unchanged: someone may have
  // removed it (a kubelet re-registering its Node resets extended resources).
  std::chrono::seconds reapply{600};
  Clock* clock = &RealClock::Instance();
};

// What the agent applies (exposed for tests): the report's status.qos and
// the Node's reclaimed resources.
struct QosReportContext {
  std::string cgroup_version{};  // "v1", "v2", "none"
  std::string cgroup_driver{};
  std::string reserved_cpus{};
};
std::string QosStatusApply(const std::string& node_name, const PoolPlan& plan,
                           const QosReportContext& context);
std::string NodeReclaimedApply(const std::string& node_name, int64_t millicpu,
                               int64_t memory_bytes);

// The CPUs and memory of a machine without NUMA directories in sysfs, as one
// node: <sysfs>/devices/system/cpu/online and MemTotal from `meminfo_path`.
Result<std::vector<NumaNode>> ReadSingleNodeTopology(const std::string& sysfs_root,
                                                     const std::string& meminfo_path);

class QosController {
 public:
  QosController(kube::RestClient& client, LocalPodCache& pods, kube::EventRecorder* recorder,
                QosMetrics* metrics, QosControllerOptions options);

  // One pass; an error (API unreachable, report not there yet) is retried on
  // the next pass. Cgroup problems are logged and counted, not errors.
  Status Sync();
  // Runs passes until `stop`: on each pod change, and every `resync`.
  void Run(std::stop_token stop);

  PoolPlan last_plan() const;
  bool synced_once() const;

 private:
  void WriteCgroups(const PoolPlan& plan);
  void ReportProblems(const PoolPlan& plan);
  Status ApplyStatus(const PoolPlan& plan);

  kube::RestClient& client_;
  LocalPodCache& pods_;
  kube::EventRecorder* recorder_;
  QosMetrics* metrics_;
  QosControllerOptions options_;
  std::unique_ptr<CgroupWriter> writer_;
  std::set<std::string> reported_;  // uid|reason|message already told
  std::set<std::string> vanished_logged_;
  std::string last_status_;
  std::string last_node_;
  std::string last_error_;
  Clock::TimePoint last_reapply_{};
  uint64_t counted_writes_ = 0;
  uint64_t counted_errors_ = 0;
  uint64_t counted_vanished_ = 0;

  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  uint64_t seen_generation_ = 0;  // guarded by mu_
  uint64_t want_generation_ = 0;  // guarded by mu_
  PoolPlan plan_;                 // guarded by mu_
  bool synced_once_ = false;      // guarded by mu_
};

}  // namespace gpu_autoscaler::node_agent
