// The QoS pool planner, with hand-computed pools, cpusets, cgroup settings
// and reclaimable amounts on a 2 x 8-CPU NUMA machine.
#include "node-agent/qos_pools.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::node_agent {
namespace {

constexpr int64_t kGi = 1LL << 30;
constexpr int64_t kMi = 1LL << 20;

std::vector<NumaNode> TwoNodes() {
  return {{.id = 0, .cpus = "0-7", .cpu_count = 8, .memory_bytes = 16 * kGi},
          {.id = 1, .cpus = "8-15", .cpu_count = 8, .memory_bytes = 16 * kGi}};
}

LocalPod MakePod(std::string name, QosLevel level, int64_t cpu_millis, int64_t memory) {
  LocalPod p;
  p.uid = "uid-" + name;
  p.ns = "team";
  p.name = std::move(name);
  p.phase = kube::PodPhase::kRunning;
  p.qos_level = level;
  p.qos_level_raw = std::string(QosLevelName(level));
  p.requests.cpu_millis = cpu_millis;
  p.requests.memory_bytes = memory;
  return p;
}

std::vector<LocalPod> MixedPods() {
  LocalPod agent = MakePod("agent", QosLevel::kSystem, 500, 256 * kMi);
  LocalPod batch = MakePod("batch", QosLevel::kReclaimed, 0, 0);
  batch.requests.reclaimed_millicpu = 2000;
  batch.limits.reclaimed_millicpu = 3000;
  batch.requests.reclaimed_memory_bytes = kGi;
  batch.limits.reclaimed_memory_bytes = 2 * kGi;
  LocalPod ded_a = MakePod("ded-a", QosLevel::kDedicated, 4000, 4 * kGi);
  ded_a.enhancements.numa_binding = true;
  LocalPod ded_b = MakePod("ded-b", QosLevel::kDedicated, 2500, 2 * kGi);
  LocalPod odd = MakePod("odd", QosLevel::kUnknown, 1000, kGi);
  odd.qos_level_raw = "gold";
  LocalPod web = MakePod("web", QosLevel::kShared, 2000, 2 * kGi);
  LocalPod done = MakePod("done", QosLevel::kDedicated, 8000, 0);
  done.phase = kube::PodPhase::kSucceeded;  // holds nothing
  return {agent, batch, ded_a, ded_b, done, odd, web};
}

PlannerInput Mixed() {
  return {.numa = TwoNodes(),
          .reserved_cpus = {0, 1},
          .reserved_memory_bytes = 2 * kGi,
          .reclaim_reserve_millicpu = 1000,
          .reclaim_reserve_memory_bytes = kGi,
          .pods = MixedPods()};
}

TEST(CpuList, ParseAndFormat) {
  EXPECT_EQ(ParseCpuList("0-3,8,10-11\n").value(), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(ParseCpuList("").value(), std::vector<int>{});
  EXPECT_EQ(ParseCpuList("3,1,2").value(), (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(ParseCpuList("3-1").ok());
  EXPECT_FALSE(ParseCpuList("a").ok());
  EXPECT_FALSE(ParseCpuList("1,,2").ok());
  EXPECT_FALSE(ParseCpuList("-1").ok());
  EXPECT_FALSE(ParseCpuList("0-8192").ok());  // beyond Linux's NR_CPUS
  EXPECT_EQ(ParseCpuList("8191").value(), std::vector<int>{8191});
  EXPECT_EQ(FormatCpuList({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_EQ(FormatCpuList({}), "");
  EXPECT_EQ(FormatCpuList({5}), "5");
}

TEST(PlanPools, EveryClassOnTwoNumaNodes) {
  PoolPlan plan = PlanPools(Mixed());
  ASSERT_EQ(plan.error, "");
  // Free after the reserved 0-1: node 0 has 2-7 (6), node 1 has 8-15 (8).
  // ded-a (4 CPUs, numa_binding): best fit is node 0 -> 2-5.
  // ded-b (ceil(2.5) = 3 CPUs): the node with most free, node 1 -> 8-10.
  // share: 6-7,11-15 (7 CPUs) with 2000m + 1000m (odd) requested;
  // reclaim: floor((7000 - 3000 - 1000 reserve) / 1000) = 3 CPUs from the top.
  ASSERT_EQ(plan.pools.size(), 4u);
  EXPECT_EQ(plan.pools[0], (Pool{.name = "dedicated",
                                 .level = QosLevel::kDedicated,
                                 .cpus = {2, 3, 4, 5, 8, 9, 10},
                                 .pods = 2,
                                 .requested_millicpu = 6500,
                                 .requested_memory_bytes = 6 * kGi}));
  EXPECT_EQ(plan.pools[1], (Pool{.name = "share",
                                 .level = QosLevel::kShared,
                                 .cpus = {6, 7, 11, 12, 13, 14, 15},
                                 .pods = 2,
                                 .requested_millicpu = 3000,
                                 .requested_memory_bytes = 3 * kGi}));
  EXPECT_EQ(plan.pools[2], (Pool{.name = "reclaim",
                                 .level = QosLevel::kReclaimed,
                                 .cpus = {13, 14, 15},
                                 .pods = 1,
                                 .requested_millicpu = 2000,
                                 .requested_memory_bytes = kGi}));
  EXPECT_EQ(plan.pools[3], (Pool{.name = "system",
                                 .level = QosLevel::kSystem,
                                 .cpus = {0, 1},
                                 .pods = 1,
                                 .requested_millicpu = 500,
                                 .requested_memory_bytes = 256 * kMi}));
  // cpu: (16 - 2 reserved - 7 dedicated) * 1000 - 3000 shared - 1000 reserve.
  EXPECT_EQ(plan.reclaimable_millicpu, 3000);
  // memory: 32Gi - 2Gi reserved - (0.25 + 4 + 2 + 1 + 2)Gi requested - 1Gi reserve.
  EXPECT_EQ(plan.reclaimable_memory_bytes, 32 * kGi - 2 * kGi - 9 * kGi - 256 * kMi - kGi);

  ASSERT_EQ(plan.pods.size(), 6u);  // "done" holds nothing
  const PodAssignment* agent = plan.Find("uid-agent");
  EXPECT_EQ(agent->cgroup, (CgroupSettings{.cpuset_cpus = "0-1", .cpuset_mems = "0"}));
  const PodAssignment* batch = plan.Find("uid-batch");
  EXPECT_EQ(batch->pool, "reclaim");
  EXPECT_EQ(batch->cgroup, (CgroupSettings{.cpuset_cpus = "13-15",
                                           .cpuset_mems = "1",
                                           .cpu_quota_micros = 300'000,
                                           .cpu_weight = 1,
                                           .memory_high_bytes = 2 * kGi}));
  const PodAssignment* ded_a = plan.Find("uid-ded-a");
  EXPECT_EQ(ded_a->numa_node, 0);
  EXPECT_EQ(
      ded_a->cgroup,
      (CgroupSettings{.cpuset_cpus = "2-5", .cpuset_mems = "0", .memory_min_bytes = 4 * kGi}));
  const PodAssignment* ded_b = plan.Find("uid-ded-b");
  EXPECT_EQ(ded_b->numa_node, -1);
  EXPECT_EQ(ded_b->cgroup.cpuset_cpus, "8-10");
  EXPECT_EQ(ded_b->cgroup.cpuset_mems, "1");
  const PodAssignment* odd = plan.Find("uid-odd");
  EXPECT_EQ(odd->level, QosLevel::kShared);
  EXPECT_EQ(odd->cgroup, (CgroupSettings{.cpuset_cpus = "6-7,11-15", .cpuset_mems = "0-1"}));
  EXPECT_EQ(plan.Find("uid-web")->cgroup, odd->cgroup);
  ASSERT_EQ(plan.problems.size(), 1u);
  EXPECT_EQ(plan.problems[0].name, "odd");
  EXPECT_EQ(plan.problems[0].reason, "UnknownQosLevel");
  EXPECT_EQ(plan.problems[0].message,
            "katalyst.kubewharf.io/qos_level \"gold\" is not dedicated_cores, shared_cores, "
            "reclaimed_cores or system_cores; treated as shared_cores");
}

TEST(PlanPools, NumaBindingThatCannotFitFailsClearly) {
  PlannerInput in{.numa = TwoNodes(), .reserved_cpus = {0, 1}};
  LocalPod big = MakePod("big", QosLevel::kDedicated, 9000, 0);
  big.enhancements.numa_binding = true;
  in.pods = {big, MakePod("web", QosLevel::kShared, 1000, 0)};
  PoolPlan plan = PlanPools(in);
  const PodAssignment* a = plan.Find("uid-big");
  EXPECT_EQ(a->level, QosLevel::kShared);
  EXPECT_EQ(a->pool, "share");
  EXPECT_EQ(a->error,
            "numa_binding needs 9 CPUs (and the memory request) on one NUMA node; the most free "
            "CPUs on an open NUMA node is 8");
  ASSERT_EQ(plan.problems.size(), 1u);
  EXPECT_EQ(plan.problems[0].reason, "DedicatedCpusUnavailable");
  // Its request then counts as shared: (14 * 1000) - 9000 - 1000.
  EXPECT_EQ(plan.reclaimable_millicpu, 4000);
}

TEST(PlanPools, BindingChecksNumaMemory) {
  PlannerInput in{.numa = TwoNodes()};
  LocalPod fat = MakePod("fat", QosLevel::kDedicated, 1000, 17 * kGi);
  fat.enhancements.numa_binding = true;
  in.pods = {fat};
  EXPECT_EQ(PlanPools(in).Find("uid-fat")->level, QosLevel::kShared);
  in.pods[0].requests.memory_bytes = 16 * kGi;
  EXPECT_EQ(PlanPools(in).Find("uid-fat")->cpus, (std::vector<int>{0}));
}

TEST(PlanPools, NumaExclusiveKeepsOthersOff) {
  PlannerInput in{.numa = TwoNodes(), .reserved_cpus = {0, 1}};
  LocalPod x = MakePod("x", QosLevel::kDedicated, 2000, 0);
  x.enhancements.numa_binding = true;
  x.enhancements.numa_exclusive = true;
  LocalPod y = MakePod("y", QosLevel::kDedicated, 2000, 0);
  y.enhancements.numa_binding = true;
  LocalPod z = MakePod("z", QosLevel::kDedicated, 1000, 0);
  in.pods = {x, y, z};
  PoolPlan plan = PlanPools(in);
  // x: best fit node 0 (6 free) -> 2-3, and node 0 is x's alone.
  EXPECT_EQ(plan.Find("uid-x")->cgroup.cpuset_cpus, "2-3");
  EXPECT_EQ(plan.Find("uid-y")->cgroup.cpuset_cpus, "8-9");
  EXPECT_EQ(plan.Find("uid-z")->cgroup.cpuset_cpus, "10");
  EXPECT_EQ(plan.FindPool("share")->cpus, (std::vector<int>{4, 5, 6, 7, 11, 12, 13, 14, 15}));
}

TEST(PlanPools, RunningDedicatedPodsKeepTheirCpus) {
  PoolPlan first = PlanPools(Mixed());
  PlannerInput in = Mixed();
  // "ded-0" sorts first; fresh it would take 8-9 and push ded-b to 10-12.
  in.pods.insert(in.pods.begin() + 2, MakePod("ded-0", QosLevel::kDedicated, 2000, 0));
  in.previous = &first;
  PoolPlan second = PlanPools(in);
  EXPECT_EQ(second.Find("uid-ded-a")->cgroup.cpuset_cpus, "2-5");
  EXPECT_EQ(second.Find("uid-ded-b")->cgroup.cpuset_cpus, "8-10");
  EXPECT_EQ(second.Find("uid-ded-0")->cgroup.cpuset_cpus, "11-12");
  in.previous = nullptr;
  EXPECT_EQ(PlanPools(in).Find("uid-ded-b")->cgroup.cpuset_cpus, "10-12");
}

TEST(PlanPools, NamedSharedPoolAndNoReserve) {
  PlannerInput in{.numa = {{.id = 0, .cpus = "0-3", .cpu_count = 4, .memory_bytes = 8 * kGi}}};
  LocalPod batch = MakePod("batch", QosLevel::kShared, 1500, kGi);
  batch.enhancements.cpuset_pool = "batch";
  LocalPod sys = MakePod("sys", QosLevel::kSystem, 250, 0);
  in.pods = {batch, sys, MakePod("web", QosLevel::kShared, 750, kGi)};
  PoolPlan plan = PlanPools(in);
  // "batch" pool: ceil(1.5) = 2 CPUs from the top; the default keeps 0-1.
  EXPECT_EQ(plan.Find("uid-batch")->pool, "share-batch");
  EXPECT_EQ(plan.Find("uid-batch")->cgroup.cpuset_cpus, "2-3");
  // No reserved CPUs: system_cores share the default pool.
  EXPECT_EQ(plan.Find("uid-sys")->pool, "share");
  EXPECT_EQ(plan.Find("uid-web")->cgroup.cpuset_cpus, "0-1");
  // reclaim: (2000 - 750 - 250) / 1000 = 1 CPU -> 1.
  EXPECT_EQ(plan.FindPool("reclaim")->cpus, std::vector<int>{1});
  EXPECT_EQ(plan.FindPool("system"), nullptr);
  EXPECT_EQ(plan.reclaimable_millicpu, 4000 - 1500 - 250 - 750);
  EXPECT_EQ(plan.reclaimable_memory_bytes, 6 * kGi);
}

TEST(PlanPools, DedicatedNeverTakesTheLastSharedCpu) {
  PlannerInput in{.numa = {{.id = 0, .cpus = "0-3", .cpu_count = 4, .memory_bytes = kGi}}};
  in.pods = {MakePod("all", QosLevel::kDedicated, 4000, 0),
             MakePod("none", QosLevel::kDedicated, 0, 0)};
  PoolPlan plan = PlanPools(in);
  EXPECT_EQ(plan.Find("uid-all")->error,
            "needs 4 exclusive CPUs; 4 are free (one always stays with the shared pool)");
  EXPECT_EQ(plan.Find("uid-none")->level, QosLevel::kShared);
  ASSERT_EQ(plan.problems.size(), 2u);
  EXPECT_EQ(plan.problems[0].message,  // found before any placement
            "dedicated_cores needs a cpu request; running in the shared pool");
}

TEST(PlanPools, NoTopologyIsAnError) {
  EXPECT_EQ(PlanPools({}).error, "no CPUs known: the NUMA topology is empty");
  EXPECT_EQ(PlanPools({.numa = {{.id = 0, .cpus = "x"}}}).error,
            "NUMA node 0: malformed cpulist \"x\"");
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
