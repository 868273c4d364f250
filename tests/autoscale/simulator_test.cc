#include "autoscale/simulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autoscale/trace.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::autoscale {
namespace {

NodeSpec GpuNode(std::string name, int gpus) {
  NodeSpec n;
  n.name = std::move(name);
  n.cpu_milli = 64000;
  n.memory_mib = 1 << 20;
  n.gpu_model = "T4";
  n.gpu_count = gpus;
  return n;
}

PodSpec SharePod(std::string name, int milli) {
  PodSpec p;
  p.name = std::move(name);
  p.cpu_milli = 1000;
  p.memory_mib = 1;
  p.num_gpu = 1;
  p.gpu_milli = milli;
  return p;
}

const PreparedTrace& DefaultTrace() {
  static const PreparedTrace* trace = [] {
    auto nodes = LoadNodeCsv(testing::SourcePath("bench/data/openb/openb_node_list_gpu_node.csv"));
    auto pods = LoadPodCsv(testing::SourcePath("bench/data/openb/openb_pod_list_default.csv"));
    EXPECT_TRUE(nodes.ok() && pods.ok());
    auto prepared = PrepareTrace(std::move(*nodes), std::move(*pods));
    EXPECT_TRUE(prepared.ok());
    return new PreparedTrace(std::move(*prepared));
  }();
  return *trace;
}

TEST(SimulatorTest, PrepareTraceLeavesOutGpuLessNodesAndSortsByName) {
  NodeSpec cpu_only = GpuNode("a-cpu", 0);
  cpu_only.gpu_model.clear();
  Result<PreparedTrace> trace = PrepareTrace({GpuNode("z", 2), cpu_only, GpuNode("b", 1)},
                                             {SharePod("p2", 500), SharePod("p1", 300)});
  ASSERT_TRUE(trace.ok()) << trace.error().ToString();
  ASSERT_EQ(trace->empty_cluster.node_count(), 2);
  EXPECT_EQ(trace->empty_cluster.spec(0).name, "b");
  EXPECT_EQ(trace->pods[0].name, "p1");
  EXPECT_EQ(trace->total_demand_milli, 800);
  EXPECT_FALSE(PrepareTrace({cpu_only}, {}).ok());
}

TEST(SimulatorTest, DefaultTraceTargetWorkloadMatchesTheProtocol) {
  const PreparedTrace& trace = DefaultTrace();
  EXPECT_EQ(trace.empty_cluster.node_count(), 1213);
  EXPECT_EQ(trace.empty_cluster.total_gpus(), 6212);
  const TargetWorkload& w = trace.workload;
  EXPECT_EQ(w.distinct_shapes(), 91);
  ASSERT_EQ(w.shapes().size(), 35u);
  EXPECT_EQ(w.shapes()[0].cpu_milli, 3152);
  EXPECT_EQ(w.shapes()[0].gpu_milli, 810);
  EXPECT_NEAR(w.shapes()[0].probability, 0.1348, 5e-5);
  EXPECT_EQ(w.shapes()[1].cpu_milli, 11300);
  EXPECT_NEAR(w.shapes()[1].probability, 0.1125, 5e-5);
  EXPECT_EQ(w.shapes()[2].cpu_milli, 11400);
  EXPECT_NEAR(w.shapes()[2].probability, 0.0771, 5e-5);
  int64_t kept = 0;
  for (const TypicalPod& s : w.shapes())
    kept += s.count;
  EXPECT_NEAR(100.0 * static_cast<double>(kept) / 8152, 95.26, 0.005);
}

TEST(SimulatorTest, WorkloadIsAShuffledTraceFollowedByResamples) {
  const PreparedTrace& trace = DefaultTrace();
  const Workload w = GenerateWorkload(trace, 42);
  const int n = static_cast<int>(trace.pods.size());
  ASSERT_GT(static_cast<int>(w.arrivals.size()), n);
  std::vector<int> head(w.arrivals.begin(), w.arrivals.begin() + n);
  EXPECT_FALSE(std::is_sorted(head.begin(), head.end()));
  std::sort(head.begin(), head.end());
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(head[i], i);
  int64_t demand = 0;
  for (int i : w.arrivals)
    demand += trace.requests[i].total_gpu_milli();
  const int64_t target = 8'075'600;
  EXPECT_GT(demand, target - 1000);
  EXPECT_LE(demand, target + 7000);
  EXPECT_NEAR(static_cast<double>(w.arrivals.size()), 10800, 300);
  std::vector<int> ranks = w.node_ranks;
  std::sort(ranks.begin(), ranks.end());
  for (int i = 0; i < 1213; ++i)
    ASSERT_EQ(ranks[i], i);

  const Workload again = GenerateWorkload(trace, 42);
  EXPECT_EQ(again.arrivals, w.arrivals);
  EXPECT_EQ(again.node_ranks, w.node_ranks);
  EXPECT_NE(GenerateWorkload(trace, 43).arrivals, w.arrivals);
}

TEST(SimulatorTest, TuneDownThinsWithoutReordering) {
  std::vector<PodSpec> pods;
  for (int i = 0; i < 100; ++i)
    pods.push_back(SharePod("p" + std::to_string(1000 + i), 500));
  Result<PreparedTrace> trace = PrepareTrace({GpuNode("n", 8)}, pods);
  ASSERT_TRUE(trace.ok());
  SimulationOptions options;
  options.shuffle = false;
  options.tune_ratio = 2.0;  // 16000 milli of 50000
  const Workload w = GenerateWorkload(*trace, 1, options);
  EXPECT_EQ(w.arrivals.size(), 32u);
  EXPECT_TRUE(std::is_sorted(w.arrivals.begin(), w.arrivals.end()));
  EXPECT_NE(w.arrivals.back(), 31);  // the survivors are a random subset
}

TEST(SimulatorTest, CountsTheCpuOfRefusedCpuOnlyPods) {
  // One GPU and 64 cores: of the 40-core CPU-only pods only one ever fits.
  PodSpec big_a = SharePod("cpu-a", 0), big_b = SharePod("cpu-b", 0);
  big_a.num_gpu = big_b.num_gpu = 0;
  big_a.cpu_milli = big_b.cpu_milli = 40000;
  Result<PreparedTrace> trace = PrepareTrace({GpuNode("n", 1)}, {SharePod("a", 500), big_a, big_b});
  ASSERT_TRUE(trace.ok()) << trace.error().ToString();
  for (uint64_t seed : {1, 2, 3}) {
    Result<RunResult> run = Simulate(*trace, "FGD", seed, {.tune_ratio = 1.0});
    ASSERT_TRUE(run.ok()) << run.error().ToString();
    const int cpu_only = static_cast<int>(PodClass::kCpuOnly);
    EXPECT_GE(run->arrived_by_class[cpu_only], 2);
    EXPECT_EQ(run->failed_by_class[cpu_only], run->arrived_by_class[cpu_only] - 1);
    EXPECT_EQ(run->failed_cpu_only_cpu_milli, 40000 * run->failed_by_class[cpu_only]);
  }
}

TEST(SimulatorTest, RecordsAllocationPerArrivedPercentAndCountsFailures) {
  // One GPU; two 500 pods fit, the tune-up adds copies that fail.
  Result<PreparedTrace> trace =
      PrepareTrace({GpuNode("n", 1)}, {SharePod("a", 500), SharePod("b", 500), SharePod("c", 500)});
  ASSERT_TRUE(trace.ok());
  SimulationOptions options;
  options.tune_ratio = 2.0;  // T = 2000: one resample of 500 brings D to 2000
  Result<RunResult> run = Simulate(*trace, "BestFit", 42, options);
  ASSERT_TRUE(run.ok()) << run.error().ToString();
  EXPECT_EQ(run->pods, 4);
  EXPECT_EQ(run->placed, 2);
  EXPECT_EQ(run->failed_by_class[static_cast<int>(PodClass::kSharing)], 2);
  EXPECT_EQ(run->arrived_by_class[static_cast<int>(PodClass::kSharing)], 4);
  EXPECT_DOUBLE_EQ(run->alloc_pct[50], 50.0);
  EXPECT_DOUBLE_EQ(run->alloc_pct[100], 100.0);
  EXPECT_DOUBLE_EQ(run->alloc_pct[49], 50.0);    // falls back to 48..50
  EXPECT_DOUBLE_EQ(run->alloc_pct[101], 100.0);  // falls back to 100..102
  EXPECT_TRUE(std::isnan(run->alloc_pct[75]));
  EXPECT_TRUE(std::isnan(run->alloc_pct[130]));  // 150% and 200% are past the columns
  // The target workload is the one 500 shape: the free 500 after the first pod is usable.
  EXPECT_DOUBLE_EQ(run->frag_pct[50], 0.0);
  EXPECT_FALSE(Simulate(*trace, "NoSuchPolicy", 42, options).ok());
}

TEST(SimulatorTest, SameSeedSameResult) {
  const PreparedTrace& trace = DefaultTrace();
  Result<RunResult> a = Simulate(trace, "FGD", 7);
  Result<RunResult> b = Simulate(trace, "FGD", 7);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->alloc_pct, b->alloc_pct);
  EXPECT_EQ(a->failed_by_class, b->failed_by_class);
  EXPECT_EQ(a->pods, a->placed + std::accumulate(a->failed_by_class.begin(),
                                                 a->failed_by_class.end(), int64_t{0}));
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
