// File: node-agent/qos_pools.h
//
// The QoS pool planner (pure): from the NUMA topology, the reserved system
// CPUs and the pods on this node, which CPUs each Katalyst QoS class gets and
// what each pod's cgroup should say, plus the reclaimable CPU and memory the
// node can advertise for reclaimed_cores pods.
//
//   PoolPlan plan = PlanPools({.numa = nodes, .reserved_cpus = ParseCpuList("0-1").value(),
//                              .pods = snapshot->pods, .previous = &last_plan});
//   for (const PodAssignment& a : plan.pods) writer.Apply(a);
//
// Pools:
//   - dedicated_cores: whole CPUs, exclusive (ceil(cpu request)); with
//     numa_binding all on one NUMA node (best fit), or the pod gets a clear
//     error and runs in the shared pool; numa_exclusive keeps other bound
//     pods off that node. A pod keeps the CPUs it had in `previous` while they
//     remain valid, so a new pod never reshuffles running ones.
//   - system_cores: the reserved CPUs (the shared pool when none are reserved).
//   - shared_cores: what is left; a cpuset_pool other than "default" gets its
//     own pool sized to ceil(its requests), taken from the top of what is left.
//   - reclaimed_cores: the default shared pool's unrequested CPUs (at least
//     one), cpu.weight 1, cpu.max from its reclaimed_millicpu limit and
//     memory.high from its reclaimed_memory limit (or request).
//   - an unknown qos_level is treated as shared_cores (Katalyst's default)
//     and reported in `problems`.
// Reclaimable, Katalyst-style from requests:
//   cpu    = (CPUs - reserved - dedicated) * 1000 - shared requests - reserve
//   memory = memory - reserved memory - non-reclaimed requests - reserve
// (system_cores requests count against CPU only when nothing is reserved.)
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "node-agent/local_pods.h"
#include "node-agent/numa.h"

namespace gpu_autoscaler::node_agent {

// Sorted, unique CPU ids <-> the kernel's cpulist ("0-3,8,10-11").
Result<std::vector<int>> ParseCpuList(std::string_view list);
std::string FormatCpuList(const std::vector<int>& cpus);

inline constexpr int64_t kCpuPeriodMicros = 100'000;
inline constexpr uint64_t kReclaimedCpuWeight = 1;  // cgroup v2 minimum

// What one pod's cgroup should say; unset fields are left alone (the kubelet
// owns them).
struct CgroupSettings {
  std::string cpuset_cpus{};                  // cpulist; "" leaves it alone
  std::string cpuset_mems{};                  // NUMA node list; "" leaves it alone
  std::optional<int64_t> cpu_quota_micros{};  // per kCpuPeriodMicros; -1 = "max"
  std::optional<uint64_t> cpu_weight{};       // 1..10000
  std::optional<int64_t> memory_high_bytes{};
  std::optional<int64_t> memory_min_bytes{};
  friend bool operator==(const CgroupSettings&, const CgroupSettings&) = default;
};

struct PodAssignment {
  std::string uid{};
  std::string ns{};
  std::string name{};
  KubeQosClass qos_class = KubeQosClass::kBestEffort;  // finds the cgroup
  QosLevel level = QosLevel::kShared;                  // as planned (unknown -> shared)
  std::string pool{};
  std::vector<int> cpus{};
  int numa_node = -1;  // the bound NUMA node, -1 when not bound
  CgroupSettings cgroup{};
  std::string error{};  // why the pod did not get what it asked for
  friend bool operator==(const PodAssignment&, const PodAssignment&) = default;
};

struct Pool {
  std::string name{};  // "dedicated", "share", "share-<cpuset_pool>", "reclaim", "system"
  QosLevel level = QosLevel::kShared;
  std::vector<int> cpus{};  // for "dedicated": the union of all exclusive sets
  int pods = 0;
  int64_t requested_millicpu = 0;
  int64_t requested_memory_bytes = 0;
  friend bool operator==(const Pool&, const Pool&) = default;
};

struct PoolPlan;

struct PlannerInput {
  std::vector<NumaNode> numa{};
  std::vector<int> reserved_cpus{};  // for system_cores; kept out of every other pool
  int64_t reserved_memory_bytes = 0;
  int64_t reclaim_reserve_millicpu = 0;
  int64_t reclaim_reserve_memory_bytes = 0;
  std::vector<LocalPod> pods{};
  const PoolPlan* previous = nullptr;  // for stable dedicated cpusets
};

struct PodProblem {
  std::string uid{};
  std::string ns{};
  std::string name{};
  std::string reason{};  // "UnknownQosLevel", "DedicatedCpusUnavailable", ...
  std::string message{};
  friend bool operator==(const PodProblem&, const PodProblem&) = default;
};

struct PoolPlan {
  std::vector<Pool> pools{};           // dedicated, share*, reclaim, system (non-empty ones)
  std::vector<PodAssignment> pods{};   // sorted as the input pods
  std::vector<PodProblem> problems{};  // in the order found
  int64_t reclaimable_millicpu = 0;
  int64_t reclaimable_memory_bytes = 0;
  std::string error{};  // plan-wide (no CPUs known)

  const PodAssignment* Find(std::string_view uid) const;
  const Pool* FindPool(std::string_view name) const;
};

PoolPlan PlanPools(const PlannerInput& input);

}  // namespace gpu_autoscaler::node_agent
