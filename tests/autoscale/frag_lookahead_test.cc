// Tests of our FragLookahead policy: its look-ahead fragmentation, its CPU
// terms, its model scarcity term, and that it beats FGD on the openb default
// trace.
#include <gtest/gtest.h>

#include "autoscale/experiment.h"
#include "autoscale/policy.h"
#include "autoscale/policy_internal.h"
#include "autoscale/scheduler.h"
#include "autoscale/trace.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::autoscale {
namespace {

TypicalPod Shape(int64_t cpu, int gpu_milli, int num_gpu, double p, ModelMask models = kAnyModel) {
  TypicalPod s;
  s.cpu_milli = cpu;
  s.gpu_milli = gpu_milli;
  s.num_gpu = num_gpu;
  s.probability = p;
  s.models = models;
  return s;
}

NodeSpec GpuNode(std::string name, int gpus, std::string model, int64_t cpu = 64000) {
  NodeSpec n;
  n.name = std::move(name);
  n.cpu_milli = cpu;
  n.memory_mib = 1 << 20;
  n.gpu_model = std::move(model);
  n.gpu_count = gpus;
  return n;
}

PodSpec Pod(int64_t cpu, int num_gpu, int gpu_milli, std::vector<std::string> models = {}) {
  return PodSpec{"p", cpu, 1, num_gpu, gpu_milli, std::move(models), {}};
}

TEST(FragLookaheadTest, KeepsRemaindersUsableWhereFgdSeesNoDifference) {
  // Target: sharing pods of 400. A 200 pod on GPU 0 (free 800 → 600) or GPU 1
  // (free 1000 → 800). One 400 pod still fits either way, so FGD scores both
  // 50 and takes the lowest index. Filled with 400s, [600, 1000] strands
  // 200 + 200 while [800, 800] strands nothing, so the look-ahead takes GPU 1.
  // The unfillable term agrees: no sum of 400s fills 200 of a free 800 or 1000.
  ClusterState cluster;
  ASSERT_TRUE(cluster.AddNode(GpuNode("a", 2, "T4")).ok());
  ASSERT_TRUE(cluster.Place(cluster.Resolve(Pod(1000, 1, 200)), {0, {0}}).ok());  // [800, 1000]
  const TargetWorkload w = TargetWorkload::FromShapes({Shape(1000, 400, 1, 1)});
  const PodRequest pod = cluster.Resolve(Pod(1000, 1, 200));
  const NodeScore fgd = FgdScore(cluster.node(0), pod, w);
  EXPECT_EQ(fgd.score, 50);
  EXPECT_EQ(fgd.gpu, 0);
  auto ours = MakePolicy("FragLookahead", &w);
  ASSERT_TRUE(ours.ok());
  const NodeScore s = (*ours)->Score(cluster, 0, pod);
  EXPECT_EQ(s.gpu, 1);
  // Before: ½·0 + ½·200 look-ahead, plus 200 unfillable (1000 − 800); after:
  // 0. Δ = 300 → ⌊100·σ(0.3)⌋ = 57.
  EXPECT_EQ(s.score, 57);

  // With two GPUs at each free value, [800, 1000, 800, 1000], the pod takes
  // the first 1000: a later GPU with the same free milli scores the same.
  ClusterState four;
  ASSERT_TRUE(four.AddNode(GpuNode("b", 4, "T4")).ok());
  ASSERT_TRUE(four.Place(four.Resolve(Pod(1000, 1, 200)), {0, {0}}).ok());
  ASSERT_TRUE(four.Place(four.Resolve(Pod(1000, 1, 200)), {0, {2}}).ok());
  auto fresh = MakePolicy("FragLookahead", &w);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)->Score(four, 0, four.Resolve(Pod(1000, 1, 200))).gpu, 1);
}

TEST(FragLookaheadTest, CountsCpuThatRunsOutBeforeTheGpus) {
  // Target: 500 sharing pods needing 4 cores each. Node a has 2 free GPUs and
  // 8 cores (CPU for 2 of the 4 copies the GPUs hold); node b has 24 cores. A
  // CPU-only pod of 4 cores: FGD sees one copy still fitting on both (Δ = 0,
  // a tie); the look-ahead sees node a lose a copy (Δ = −250) and b lose none.
  ClusterState cluster;
  ASSERT_TRUE(cluster.AddNode(GpuNode("a", 2, "T4", 8000)).ok());
  ASSERT_TRUE(cluster.AddNode(GpuNode("b", 2, "T4", 24000)).ok());
  const TargetWorkload w = TargetWorkload::FromShapes({Shape(4000, 500, 1, 1)});
  const PodRequest cpu_pod = cluster.Resolve(Pod(4000, 0, 0));
  EXPECT_EQ(FgdScore(cluster.node(0), cpu_pod, w).score,
            FgdScore(cluster.node(1), cpu_pod, w).score);
  auto ours = MakePolicy("FragLookahead", &w);
  ASSERT_TRUE(ours.ok());
  EXPECT_LT((*ours)->Score(cluster, 0, cpu_pod).score, (*ours)->Score(cluster, 1, cpu_pod).score);
  Scheduler scheduler(cluster, **ours, {}, 1);
  EXPECT_EQ(scheduler.Select(cpu_pod)->node, 1);
}

TEST(FragLookaheadTest, KeepsCpuInWholeMultiplesOfTypicalCpuOnlyPods) {
  // Target: CPU-only pods of 32 cores. Node a has 40 cores, b 64; both have
  // idle GPUs, which CPU-only shapes count as fragment on both sides, so FGD
  // scores an 8-core CPU-only pod 50 on both and rank picks b. Ours charges
  // the CPU that 32-core pods cannot use (free CPU mod 32000) at the cluster's
  // 16000 milli-GPU / 104000 milli-CPU, weight ½ (a workload without GPU
  // demand counts as fully CPU-bound): on a 8000 → 0, Δ = +615.4 →
  // ⌊100·σ(0.6154)⌋ = 64; on b 0 → 24000, Δ = −1846 → 13.
  ClusterState cluster;
  ASSERT_TRUE(cluster.AddNode(GpuNode("a", 8, "G2", 40000)).ok());
  ASSERT_TRUE(cluster.AddNode(GpuNode("b", 8, "G2", 64000)).ok());
  const TargetWorkload w = TargetWorkload::FromShapes({Shape(32000, 0, 0, 1)});
  auto ours = MakePolicy("FragLookahead", &w);
  auto fgd = MakePolicy("FGD", &w);
  ASSERT_TRUE(ours.ok() && fgd.ok());
  const PodRequest cpu_pod = cluster.Resolve(Pod(8000, 0, 0));
  EXPECT_EQ((*fgd)->Score(cluster, 0, cpu_pod).score, 50);
  EXPECT_EQ((*fgd)->Score(cluster, 1, cpu_pod).score, 50);
  EXPECT_EQ((*ours)->Score(cluster, 0, cpu_pod).score, 64);
  EXPECT_EQ((*ours)->Score(cluster, 1, cpu_pod).score, 13);
  Scheduler fgd_scheduler(cluster, **fgd, {1, 0}, 1);
  EXPECT_EQ(fgd_scheduler.Select(cpu_pod)->node, 1);
  Scheduler our_scheduler(cluster, **ours, {1, 0}, 1);
  EXPECT_EQ(our_scheduler.Select(cpu_pod)->node, 0);
}

TEST(FragLookaheadTest, KeepsCpuBesideIdleGpusForThePodsThatWouldUseThem) {
  // Target: whole-GPU pods of 8 cores, so κ = 8 milli-CPU per GPU milli.
  // Nodes a (3 GPUs, 24 cores) and b (3 GPUs, 60 cores): ρ = 8 · 6000 /
  // 84000 = 0.57, the shortfall term at its full weight ½. A 12-core 1-GPU
  // pod leaves one more 8-core pod fitting on either node, so FGD scores both
  // 50 and rank picks a. On a it leaves 2 idle GPUs with 12 cores, enough for
  // 1500 of their 2000 milli: Δ = −½·500 → ⌊100·σ(−0.25)⌋ = 43; on b the CPU
  // still feeds every idle GPU: 50.
  ClusterState cluster;
  ASSERT_TRUE(cluster.AddNode(GpuNode("a", 3, "G2", 24000)).ok());
  ASSERT_TRUE(cluster.AddNode(GpuNode("b", 3, "G2", 60000)).ok());
  const TargetWorkload w = TargetWorkload::FromShapes({Shape(8000, 1000, 1, 1)});
  const PodRequest pod = cluster.Resolve(Pod(12000, 1, 1000));
  auto ours = MakePolicy("FragLookahead", &w);
  auto fgd = MakePolicy("FGD", &w);
  ASSERT_TRUE(ours.ok() && fgd.ok());
  EXPECT_EQ((*fgd)->Score(cluster, 0, pod).score, 50);
  EXPECT_EQ((*fgd)->Score(cluster, 1, pod).score, 50);
  EXPECT_EQ((*ours)->Score(cluster, 0, pod).score, 43);
  EXPECT_EQ((*ours)->Score(cluster, 1, pod).score, 50);
  Scheduler our_scheduler(cluster, **ours, {0, 1}, 1);
  EXPECT_EQ(our_scheduler.Select(pod)->node, 1);
  // Without the term the two nodes tie, as under FGD.
  internal::FragLookaheadParams off;
  off.cpu_shortfall_weight = 0;
  auto without = internal::MakeFragLookahead(&w, off);
  EXPECT_EQ(without->Score(cluster, 0, pod).score, 50);

  // With b at 28 cores, ρ = 8 · 6000 / 52000 = 0.92: the CPU is nearly all
  // spoken for, and the term is off (it fades from ρ = 0.8 to 0.9).
  ClusterState tight;
  ASSERT_TRUE(tight.AddNode(GpuNode("a", 3, "G2", 24000)).ok());
  ASSERT_TRUE(tight.AddNode(GpuNode("b", 3, "G2", 28000)).ok());
  auto ours_tight = MakePolicy("FragLookahead", &w);
  ASSERT_TRUE(ours_tight.ok());
  const PodRequest tight_pod = tight.Resolve(Pod(12000, 1, 1000));
  EXPECT_EQ((*ours_tight)->Score(tight, 0, tight_pod).score, 50);
  EXPECT_EQ((*ours_tight)->Score(tight, 1, tight_pod).score, 50);
}

TEST(FragLookaheadTest, KeepsCpuAndMemoryInTheProportionCpuOnlyPodsNeed) {
  // Target, a third each: CPU-only pods of 8 cores and 32 GiB (S), of 4 cores
  // and 24 GiB (P), and whole-GPU pods of 8 cores. That is 20 milli-CPU per
  // GPU milli against the cluster's 20 (two 20-core nodes, one GPU each), so
  // ρ = 1 and the memory-strand term has its full weight 2.5 · 2000/40000 =
  // 0.125 milli-GPU per milli-CPU. Node a has 40 GiB, memory for one S and
  // one P: 12 and 16 of its 20 cores are stranded. A P pod leaves 16 cores and
  // 16 GiB, all stranded for both shapes: Δ = −⅓ · 0.125 · 4000 = −166.7 →
  // ⌊100·σ(−0.1667)⌋ = 45. Node b, 128 GiB, strands nothing before or after:
  // 50. FGD, blind to memory, scores both 50.
  TypicalPod s = Shape(8000, 0, 0, 1), p = Shape(4000, 0, 0, 1);
  s.memory_mib = 32768;
  p.memory_mib = 24576;
  const TargetWorkload w = TargetWorkload::FromShapes({s, p, Shape(8000, 1000, 1, 1)});
  ClusterState cluster;
  NodeSpec a = GpuNode("a", 1, "T4", 20000), b = GpuNode("b", 1, "T4", 20000);
  a.memory_mib = 40960;
  b.memory_mib = 131072;
  ASSERT_TRUE(cluster.AddNode(a).ok());
  ASSERT_TRUE(cluster.AddNode(b).ok());
  PodSpec spec = Pod(4000, 0, 0);
  spec.memory_mib = 24576;
  const PodRequest pod = cluster.Resolve(spec);
  auto ours = MakePolicy("FragLookahead", &w);
  auto fgd = MakePolicy("FGD", &w);
  ASSERT_TRUE(ours.ok() && fgd.ok());
  EXPECT_EQ((*fgd)->Score(cluster, 0, pod).score, 50);
  EXPECT_EQ((*fgd)->Score(cluster, 1, pod).score, 50);
  EXPECT_EQ((*ours)->Score(cluster, 0, pod).score, 45);
  EXPECT_EQ((*ours)->Score(cluster, 1, pod).score, 50);
  Scheduler scheduler(cluster, **ours, {0, 1}, 1);
  EXPECT_EQ(scheduler.Select(pod)->node, 1);
  // The term charges the shape's memory, not the pod's: scores are cached per
  // shape. A P-shaped pod asking 1 MiB scores as a P pod.
  PodSpec light = spec;
  light.memory_mib = 1;
  EXPECT_EQ((*ours)->Score(cluster, 0, cluster.Resolve(light)).score, 45);
  // Without the term (and the CPU-only tie-break, which would also pick b),
  // a wins on rank.
  internal::FragLookaheadParams off;
  off.memory_strand_weight = 0;
  off.oversubscribed_cpu_tiebreaks = false;
  auto without = internal::MakeFragLookahead(&w, off);
  Scheduler without_scheduler(cluster, *without, {0, 1}, 1);
  EXPECT_EQ(without_scheduler.Select(pod)->node, 0);

  // With 40-core nodes ρ = 0.5: CPU is plentiful and the term is off.
  ClusterState roomy;
  a.cpu_milli = b.cpu_milli = 40000;
  ASSERT_TRUE(roomy.AddNode(a).ok());
  ASSERT_TRUE(roomy.AddNode(b).ok());
  auto ours_roomy = MakePolicy("FragLookahead", &w);
  ASSERT_TRUE(ours_roomy.ok());
  EXPECT_EQ((*ours_roomy)->Score(roomy, 0, roomy.Resolve(spec)).score, 50);
}

TEST(FragLookaheadTest, OversubscribedCpuSortsCpuOnlyAndGpuPodsByMemoryToSpare) {
  // Target, half each: CPU-only pods of 8 cores and 8 GiB, whole-GPU pods of
  // 8 cores and 16 GiB (16 MiB per GPU milli). 16 milli-CPU per GPU milli
  // against the cluster's 16 (16-core nodes, one GPU each): ρ = 1. An 8-core
  // CPU-only pod changes no part of the measure on any node below (the GPU
  // shape still fits or the GPU is already taken; memory strands no CPU), so
  // every node scores 50 and the tie-break decides: the memory left beyond
  // what the node's idle GPUs' pods would take.
  TypicalPod cpu_only = Shape(8000, 0, 0, 1), gpu = Shape(8000, 1000, 1, 1);
  cpu_only.memory_mib = 8192;
  gpu.memory_mib = 16384;
  const TargetWorkload w = TargetWorkload::FromShapes({cpu_only, gpu});
  auto node = [](std::string name, int64_t memory_gib, int64_t cpu = 16000) {
    NodeSpec n = GpuNode(std::move(name), 1, "T4", cpu);
    n.memory_mib = memory_gib * 1024;
    return n;
  };
  auto two_nodes = [&node](int64_t a_gib, int64_t b_gib, int64_t cpu = 16000) {
    ClusterState cluster;
    EXPECT_TRUE(cluster.AddNode(node("a", a_gib, cpu)).ok());
    EXPECT_TRUE(cluster.AddNode(node("b", b_gib, cpu)).ok());
    return cluster;
  };
  PodSpec spec = Pod(8000, 0, 0);
  spec.memory_mib = 8192;

  // a: 64 GiB beside an idle GPU, 40 GiB to spare after the pod; b: 128 GiB
  // beside an idle GPU, 104 GiB. FGD and the policy without the tie-break
  // take a, on rank.
  {
    ClusterState cluster = two_nodes(64, 128);
    const PodRequest pod = cluster.Resolve(spec);
    auto ours = MakePolicy("FragLookahead", &w);
    auto fgd = MakePolicy("FGD", &w);
    ASSERT_TRUE(ours.ok() && fgd.ok());
    EXPECT_EQ((*ours)->Score(cluster, 0, pod).score, 50);
    EXPECT_EQ((*ours)->Score(cluster, 1, pod).score, 50);
    EXPECT_DOUBLE_EQ((*ours)->Score(cluster, 0, pod).tiebreak, 40.0 * 1024);
    EXPECT_DOUBLE_EQ((*ours)->Score(cluster, 1, pod).tiebreak, 104.0 * 1024);
    Scheduler scheduler(cluster, **ours, {0, 1}, 1);
    EXPECT_EQ(scheduler.Select(pod)->node, 1);
    Scheduler fgd_scheduler(cluster, **fgd, {0, 1}, 1);
    EXPECT_EQ(fgd_scheduler.Select(pod)->node, 0);
    internal::FragLookaheadParams off;
    off.oversubscribed_cpu_tiebreaks = false;
    auto without = internal::MakeFragLookahead(&w, off);
    Scheduler without_scheduler(cluster, *without, {0, 1}, 1);
    EXPECT_EQ(without_scheduler.Select(pod)->node, 0);
  }
  // a: 96 GiB beside an idle GPU, whose pods would take 16 GiB: 72 to spare.
  // b: 92 GiB, its GPU taken by a GPU pod of 8 cores and 8 GiB: 84 GiB free,
  // 76 after the pod, all of it to spare. Less free memory, more to spare.
  {
    ClusterState cluster = two_nodes(96, 92);
    PodSpec gpu_pod = Pod(8000, 1, 1000);
    gpu_pod.memory_mib = 8192;
    ASSERT_TRUE(cluster.Place(cluster.Resolve(gpu_pod), {.node = 1, .gpus = {0}}).ok());
    const PodRequest pod = cluster.Resolve(spec);
    auto ours = MakePolicy("FragLookahead", &w);
    ASSERT_TRUE(ours.ok());
    EXPECT_EQ((*ours)->Score(cluster, 0, pod).score, 50);
    EXPECT_EQ((*ours)->Score(cluster, 1, pod).score, 50);
    EXPECT_DOUBLE_EQ((*ours)->Score(cluster, 0, pod).tiebreak, 72.0 * 1024);
    EXPECT_DOUBLE_EQ((*ours)->Score(cluster, 1, pod).tiebreak, 76.0 * 1024);
    Scheduler scheduler(cluster, **ours, {0, 1}, 1);
    EXPECT_EQ(scheduler.Select(pod)->node, 1);
  }
  // A whole-GPU pod of the GPU shape (8 cores, 16 GiB) takes either node's
  // GPU and scores the same on both. It breaks the tie toward the node whose
  // spare memory, in CPU at the workload's 12 GiB per 8 cores (1.536 MiB per
  // milli-CPU), falls furthest short of the CPU it leaves: a leaves 8 cores
  // and 48 GiB, 8000 − 49152/1.536 = −24000; b 8 cores and 112 GiB,
  // 8000 − 114688/1.536 = −66667. a, so that b's memory stays for CPU-only
  // pods, though b comes first by rank.
  {
    ClusterState cluster = two_nodes(64, 128);
    PodSpec gpu_spec = Pod(8000, 1, 1000);
    gpu_spec.memory_mib = 16384;
    const PodRequest pod = cluster.Resolve(gpu_spec);
    auto ours = MakePolicy("FragLookahead", &w);
    auto fgd = MakePolicy("FGD", &w);
    ASSERT_TRUE(ours.ok() && fgd.ok());
    EXPECT_EQ((*ours)->Score(cluster, 0, pod).score, (*ours)->Score(cluster, 1, pod).score);
    EXPECT_NEAR((*ours)->Score(cluster, 0, pod).tiebreak, -24000, 1e-6);
    EXPECT_NEAR((*ours)->Score(cluster, 1, pod).tiebreak, 8000 - 114688 / 1.536, 1e-6);
    Scheduler scheduler(cluster, **ours, {1, 0}, 1);
    EXPECT_EQ(scheduler.Select(pod)->node, 0);
    Scheduler fgd_scheduler(cluster, **fgd, {1, 0}, 1);
    EXPECT_EQ(fgd_scheduler.Select(pod)->node, 1);
  }
  // With 20-core nodes ρ = 0.8: CPU is not oversubscribed, no tie-break.
  {
    ClusterState cluster = two_nodes(64, 128, 20000);
    auto ours = MakePolicy("FragLookahead", &w);
    ASSERT_TRUE(ours.ok());
    EXPECT_EQ((*ours)->Score(cluster, 1, cluster.Resolve(spec)).tiebreak, 0);
    Scheduler scheduler(cluster, **ours, {0, 1}, 1);
    EXPECT_EQ(scheduler.Select(cluster.Resolve(spec))->node, 0);
  }
}

TEST(FragLookaheadTest, KeepsScarceModelsForPodsThatNeedThem) {
  // 0.5% of the target demand can only run on T4, one GPU of nine. FGD's own
  // model term is worth 5 milli here, lost in the truncation: both nodes score
  // 50 and rank picks T4. The scarcity term charges T4 0.5%·1000·9 = 45 milli
  // (⌊100·σ(−0.045)⌋ = 48), so an unconstrained pod goes to G2.
  ClusterState cluster;
  ASSERT_TRUE(cluster.AddNode(GpuNode("t4", 1, "T4")).ok());
  ASSERT_TRUE(cluster.AddNode(GpuNode("g2", 8, "G2")).ok());
  const ModelMask t4 = ModelMask{1} << cluster.ModelIndex("T4");
  const TargetWorkload w =
      TargetWorkload::FromShapes({Shape(1000, 1000, 1, 0.005, t4), Shape(1000, 1000, 1, 0.995)});
  auto ours = MakePolicy("FragLookahead", &w);
  auto fgd = MakePolicy("FGD", &w);
  ASSERT_TRUE(ours.ok() && fgd.ok());
  const PodRequest any = cluster.Resolve(Pod(1000, 1, 1000));
  EXPECT_EQ((*fgd)->Score(cluster, 0, any).score, 50);
  EXPECT_EQ((*fgd)->Score(cluster, 1, any).score, 50);
  Scheduler fgd_scheduler(cluster, **fgd, {0, 1}, 1);
  EXPECT_EQ(fgd_scheduler.Select(any)->node, 0);
  EXPECT_EQ((*ours)->Score(cluster, 0, any).score, 48);
  Scheduler our_scheduler(cluster, **ours, {0, 1}, 1);
  EXPECT_EQ(our_scheduler.Select(any)->node, 1);
  // A T4-only pod still goes to T4.
  EXPECT_EQ(our_scheduler.Select(cluster.Resolve(Pod(1000, 1, 1000, {"T4"})))->node, 0);
}

TEST(FragLookaheadTest, BeatsFgdOnTheDefaultTrace) {
  auto nodes = LoadNodeCsv(testing::SourcePath("bench/data/openb/openb_node_list_gpu_node.csv"));
  auto pods = LoadPodCsv(testing::SourcePath("bench/data/openb/openb_pod_list_default.csv"));
  ASSERT_TRUE(nodes.ok() && pods.ok());
  Result<PreparedTrace> trace = PrepareTrace(std::move(*nodes), std::move(*pods));
  ASSERT_TRUE(trace.ok());
  ExperimentOptions options;
  options.policies = {"FGD", "FragLookahead"};
  options.seeds = {42, 43};
  options.threads = 2;
  Result<std::vector<PolicySummary>> result = RunExperiment(*trace, options, {});
  ASSERT_TRUE(result.ok());
  for (int k : {100, 130}) {
    EXPECT_GT((*result)[1].alloc_pct[k].mean, (*result)[0].alloc_pct[k].mean) << "arrived " << k;
  }
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
