#include "autoscale/trace_replay.h"

#include <gtest/gtest.h>

#include <vector>

#include "autoscale/trace_replay_workload.h"

namespace gpu_autoscaler::autoscale {
namespace {

ReplayResult MustReplay(const ReplayWorkload& w, ScalingStrategy s, const ReplayOptions& o) {
  Result<ReplayResult> r = ReplayTrace(w, s, o);
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  return r.ok() ? *r : ReplayResult{};
}

// One 1-GPU pod arrives at t=100 and runs 3600 s; nodes of 8 GPUs, 90 s to
// provision, 600 s before an empty node goes.
ReplayWorkload OnePod() {
  return {.name = "one", .pods = {{.arrival = 100, .departure = 3700}}};
}

// Through the controller's DecidePool: the batching window (idle 1 s) comes
// before the scale-up, so the pod waits 1 + 90 s; the oracle foresees the
// window too.
TEST(TraceReplayTest, ThroughTheControllerPaysTheBatchingWindow) {
  ReplayOptions o{.through_controller = true, .record_series = false};
  ReplayResult r = MustReplay(OnePod(), ScalingStrategy::kReactive, o);
  EXPECT_EQ(r.pending_max, 91);
  // Requested at 101, ready at 191, the pod runs 191..3791.
  EXPECT_DOUBLE_EQ(r.gpu_hours, 3690.0 * 8 / 3600);
  EXPECT_EQ(r.end_time, 3791);
  EXPECT_EQ(r.nodes_requested, 1);
  ReplayResult oracle = MustReplay(OnePod(), ScalingStrategy::kOracle, o);
  EXPECT_EQ(oracle.pending_max, 0);
  // Foreseen at 9, requested at 10, ready at 100: billed 10..3700.
  EXPECT_DOUBLE_EQ(oracle.gpu_hours, 3690.0 * 8 / 3600);
  EXPECT_EQ(oracle.nodes_requested, 1);
  // Two pods 30 s apart, each a whole node: the empty first node goes
  // consolidateAfter (600 s) after its pod left, not at once.
  ReplayWorkload two{.name = "two",
                     .pods = {{.arrival = 0, .departure = 100, .num_gpu = 8},
                              {.arrival = 30, .departure = 2000, .num_gpu = 8}}};
  ReplayResult r2 = MustReplay(two, ScalingStrategy::kReactive, o);
  // Pod 0: requested 1, ready 91, runs 91..191; node 0 removed at 791.
  // Pod 1: requested 31, ready 121, runs 121..2091.
  EXPECT_EQ(r2.nodes_requested, 2);
  EXPECT_DOUBLE_EQ(r2.gpu_hours, ((791 - 1) + (2091 - 31)) * 8.0 / 3600);
  // The placement engine's nodes have at most 16 GPUs.
  EXPECT_FALSE(ReplayTrace(two, ScalingStrategy::kReactive,
                           {.gpus_per_node = 32, .through_controller = true})
                   .ok());
}

TEST(TraceReplayTest, ReactivePendsForTheProvisioningDelay) {
  ReplayResult r = MustReplay(OnePod(), ScalingStrategy::kReactive, {.price_per_gpu_hour = 2});
  EXPECT_EQ(r.pods, 1);
  EXPECT_EQ(r.pods_delayed, 1);
  EXPECT_EQ(r.pending_p50, 90);
  EXPECT_EQ(r.pending_p99, 90);
  EXPECT_EQ(r.pending_max, 90);
  // Requested at 100, ready at 190, the pod runs 190..3790, when the replay
  // ends: 3690 s × 8 GPUs.
  EXPECT_DOUBLE_EQ(r.gpu_hours, 3690.0 * 8 / 3600);
  EXPECT_DOUBLE_EQ(r.cost, 2 * 3690.0 * 8 / 3600);
  EXPECT_DOUBLE_EQ(r.demand_gpu_hours, 1.0);
  EXPECT_EQ(r.end_time, 3790);
  EXPECT_EQ(r.nodes_requested, 1);
  EXPECT_EQ(r.peak_nodes, 1);
}

TEST(TraceReplayTest, OracleProvisionsAheadAndRemovesAtOnce) {
  ReplayResult r = MustReplay(OnePod(), ScalingStrategy::kOracle, {});
  EXPECT_EQ(r.pending_p50, 0);
  EXPECT_EQ(r.pending_max, 0);
  EXPECT_EQ(r.pods_delayed, 0);
  // Requested at 100 - 90 = 10, the pod runs 100..3700, the node goes at 3700.
  EXPECT_DOUBLE_EQ(r.gpu_hours, 3690.0 * 8 / 3600);
  EXPECT_EQ(r.end_time, 3700);
}

TEST(TraceReplayTest, PredictiveWithoutHistoryIsReactive) {
  ReplayResult r = MustReplay(OnePod(), ScalingStrategy::kPredictive,
                              {.forecast = {.method = ForecastMethod::kLastValue}});
  EXPECT_EQ(r.pending_max, 90);
  EXPECT_DOUBLE_EQ(r.gpu_hours, 3690.0 * 8 / 3600);
}

// Pod A [100, 3700) and pod B [5000, 5100), each 1 GPU; steps of 300 s.
//  reactive:   A's node 100..4390 (empty at 3790, kept 600 s), B's 5000..5190;
//  predictive: A's node goes at the tick of 4200, the first whose last step
//              [3900, 4200) had no demand; B's node 5000..5190;
//  oracle:     A's node 10..3700, B's 4910..5100.
TEST(TraceReplayTest, EmptyNodesGoAfterTheScaleDownDelayOrTheForecast) {
  ReplayWorkload w{
      .name = "gap",
      .pods = {{.arrival = 100, .departure = 3700}, {.arrival = 5000, .departure = 5100}}};
  ReplayOptions o{.forecast = {.method = ForecastMethod::kLastValue}};
  ReplayResult reactive = MustReplay(w, ScalingStrategy::kReactive, o);
  EXPECT_DOUBLE_EQ(reactive.gpu_hours, (4290.0 + 190) * 8 / 3600);
  EXPECT_EQ(reactive.pending_p50, 90);
  EXPECT_EQ(reactive.end_time, 5190);
  ReplayResult predictive = MustReplay(w, ScalingStrategy::kPredictive, o);
  EXPECT_DOUBLE_EQ(predictive.gpu_hours, (4100.0 + 190) * 8 / 3600);
  EXPECT_EQ(predictive.pending_max, 90);
  ReplayResult oracle = MustReplay(w, ScalingStrategy::kOracle, o);
  EXPECT_DOUBLE_EQ(oracle.gpu_hours, (3690.0 + 190) * 8 / 3600);
  EXPECT_EQ(oracle.pending_max, 0);
  EXPECT_EQ(oracle.nodes_requested, 2);
}

// Nodes of one GPU. Pod A arrives at 50 and runs 1000 s; pod B arrives at 400.
// Reactive: A waits 90 s, and so does B (A holds the only node).
// Predictive (last value + 1 GPU headroom, step 300): the headroom alone keeps
// one node from t=0 (ready at 90, so A waits 40 s); the tick at 300 sees the
// peak of [0, 300), 1 GPU, and keeps 2 nodes, so B's node is ready at 390.
TEST(TraceReplayTest, PredictiveProvisionsAheadOfTheNextArrival) {
  ReplayWorkload w{
      .name = "two",
      .pods = {{.arrival = 50, .departure = 1050}, {.arrival = 400, .departure = 1400}}};
  ReplayOptions o{.gpus_per_node = 1};
  ReplayResult reactive = MustReplay(w, ScalingStrategy::kReactive, o);
  EXPECT_EQ(reactive.pending_max, 90);
  EXPECT_EQ(reactive.pending_p50, 90);
  EXPECT_EQ(reactive.nodes_requested, 2);
  o.forecast = {.method = ForecastMethod::kLastValue};
  o.headroom_gpus = 1;
  ReplayResult predictive = MustReplay(w, ScalingStrategy::kPredictive, o);
  EXPECT_EQ(predictive.pending_p50, 0);   // B: rank 1 of {0, 40}
  EXPECT_EQ(predictive.pending_max, 40);  // A
  EXPECT_EQ(predictive.pods_delayed, 1);
  ReplayResult oracle = MustReplay(w, ScalingStrategy::kOracle, o);
  EXPECT_EQ(oracle.pending_max, 0);
  // A's node is requested at -40 and goes at 1050; B's at 310, goes at 1400.
  EXPECT_DOUBLE_EQ(oracle.gpu_hours, (1090.0 + 1090.0) / 3600);
}

// A serving replica that leaves at a fixed time is cancelled if still pending.
TEST(TraceReplayTest, AReplicaLeavingWhilePendingIsCancelled) {
  ReplayWorkload w{.name = "short",
                   .pods = {{.arrival = 100, .departure = 150, .runs_for_duration = false}}};
  ReplayResult r = MustReplay(w, ScalingStrategy::kReactive, {});
  EXPECT_EQ(r.pods_cancelled, 1);
  EXPECT_EQ(r.pending_max, 50);
  EXPECT_DOUBLE_EQ(r.demand_gpu_hours, 0);
  // Requested at 100; the replay ends when the replica leaves at 150.
  EXPECT_DOUBLE_EQ(r.gpu_hours, 50.0 * 8 / 3600);
  EXPECT_EQ(r.end_time, 150);
}

// Two 0.6-GPU pods cannot share a GPU; two 0.5-GPU pods can.
TEST(TraceReplayTest, FractionalPodsShareAGpuOnlyWhenTheyFit) {
  ReplayOptions o{.gpus_per_node = 1};
  ReplayWorkload w{.name = "frac",
                   .pods = {{.arrival = 0, .departure = 100, .gpu_milli = 600},
                            {.arrival = 0, .departure = 100, .gpu_milli = 600}}};
  EXPECT_EQ(MustReplay(w, ScalingStrategy::kReactive, o).nodes_requested, 2);
  w.pods[0].gpu_milli = w.pods[1].gpu_milli = 500;
  ReplayResult r = MustReplay(w, ScalingStrategy::kReactive, o);
  EXPECT_EQ(r.nodes_requested, 1);
  EXPECT_DOUBLE_EQ(r.demand_gpu_hours, 100.0 / 3600);
}

TEST(TraceReplayTest, LimitsAndUnplaceablePods) {
  ReplayWorkload w{.name = "limits",
                   .pods = {{.arrival = 0, .departure = 100, .num_gpu = 9},
                            {.arrival = 0, .departure = 100, .num_gpu = 8},
                            {.arrival = 0, .departure = 100, .num_gpu = 8}}};
  ReplayResult r = MustReplay(w, ScalingStrategy::kReactive, {.max_nodes = 1});
  EXPECT_EQ(r.pods_unplaceable, 1);
  EXPECT_EQ(r.pods, 2);
  EXPECT_EQ(r.nodes_requested, 1);  // the second 8-GPU pod waits for the first
  // First: 90 s. Second: bound when the first leaves at 190, so 190 s.
  EXPECT_EQ(r.pending_max, 190);
  EXPECT_EQ(r.pending_p50, 90);
  EXPECT_EQ(r.pods_multi_gpu, 2);
  EXPECT_EQ(r.pods_multi_gpu_delayed, 2);
}

TEST(TraceReplayTest, ReportWindowCountsOnlyLaterPodsAndNodeTime) {
  ReplayResult r = MustReplay(OnePod(), ScalingStrategy::kReactive, {.report_from = 1000});
  EXPECT_EQ(r.pods, 0);
  EXPECT_DOUBLE_EQ(r.gpu_hours, 2790.0 * 8 / 3600);  // 1000..3790
}

TEST(TraceReplayTest, RejectsBadOptionsAndPods) {
  EXPECT_FALSE(ReplayTrace(OnePod(), ScalingStrategy::kReactive, {.gpus_per_node = 0}).ok());
  EXPECT_FALSE(ReplayTrace(OnePod(), ScalingStrategy::kReactive, {.step = 0}).ok());
  EXPECT_FALSE(
      ReplayTrace(OnePod(), ScalingStrategy::kReactive, {.min_nodes = 2, .max_nodes = 1}).ok());
  ReplayWorkload bad{.name = "bad", .pods = {{.arrival = 10, .departure = 5}}};
  EXPECT_FALSE(ReplayTrace(bad, ScalingStrategy::kReactive, {}).ok());
}

TEST(TraceReplayTest, SeriesRecordsDemandAndCapacityPerStep) {
  ReplayResult r = MustReplay(OnePod(), ScalingStrategy::kReactive, {.step = 100});
  ASSERT_GE(r.series.size(), 3u);
  EXPECT_EQ(r.series[1].time, 100);  // before the arrival at 100
  EXPECT_EQ(r.series[1].provisioned_gpus, 0);
  EXPECT_EQ(r.series[2].time, 200);
  EXPECT_EQ(r.series[2].demand_gpus, 1);
  EXPECT_EQ(r.series[2].ready_gpus, 8);
  EXPECT_EQ(r.series[2].provisioned_gpus, 8);
}

// Pods [0, 150) of 1 GPU and [100, 400) of half a GPU, in steps of 100.
TEST(TraceReplayTest, DemandPeaksPerStep) {
  ReplayWorkload w{.name = "d",
                   .pods = {{.arrival = 0, .departure = 150},
                            {.arrival = 100, .departure = 400, .gpu_milli = 500}}};
  EXPECT_EQ(DemandPeaks(w, 0, 400, 100), (std::vector<double>{1, 1.5, 0.5, 0.5}));
}

// Nodes of one GPU, predictive with no forecast target (last value of an empty
// history) and immediate scale-down. A leaves at 190 + 100 = 290, the instant B
// arrives: B takes A's node, which therefore is not removed (scale-down runs
// after binding), and waits 0 s.
TEST(TraceReplayTest, ScaleDownRunsAfterBinding) {
  ReplayWorkload w{
      .name = "handover",
      .pods = {{.arrival = 100, .departure = 200}, {.arrival = 290, .departure = 390}}};
  ReplayResult r = MustReplay(
      w, ScalingStrategy::kPredictive,
      {.gpus_per_node = 1, .step = 1000, .forecast = {.method = ForecastMethod::kLastValue}});
  EXPECT_EQ(r.nodes_requested, 1);
  EXPECT_EQ(r.pending_max, 90);  // A only
  EXPECT_EQ(r.pending_p50, 0);   // B
  // One node, requested at 100, removed when B leaves at 390.
  EXPECT_DOUBLE_EQ(r.gpu_hours, 290.0 / 3600);
}

// Two pods a day apart, steps of 12 h: the split falls on the second pod's
// arrival rounded down to a step, and training sees the steps before it.
TEST(TraceReplayTest, TrainPredictiveSplitsByArrivalsOnAStepBoundary) {
  ReplayWorkload w{
      .name = "split",
      .pods = {{.arrival = 0, .departure = 3600}, {.arrival = 90000, .departure = 93600}}};
  Result<ReplayTraining> t = TrainPredictive(w, {.step = 43200}, 0.5, 0.9);
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_EQ(t->split_time, 86400);
  EXPECT_EQ(t->training_steps, 2);
  EXPECT_EQ(PredictiveHorizonSteps({.provisioning_delay = 90, .step = 60}), 3);
  EXPECT_EQ(PredictiveHorizonSteps({.provisioning_delay = 90, .step = 300}), 2);
  EXPECT_FALSE(TrainPredictive(w, {.step = 7}, 0.5, 0.9).ok());  // 7 does not divide a day
  EXPECT_FALSE(TrainPredictive(w, {}, 1.0, 0.9).ok());
  EXPECT_FALSE(TrainPredictive({.name = "empty"}, {}, 0.5, 0.9).ok());
}

TEST(TraceReplayWorkloadTest, RateBecomesReplicas) {
  // Capacity 0.5 per replica: 0.2 -> 1 (the minimum), 1.2 -> 3, 0.4 -> 1.
  const std::vector<RateSample> rate = {{0, 0.2}, {60, 1.2}, {120, 0.4}};
  ReplayWorkload w = WorkloadFromRate("qps", rate, 60, {.capacity_per_replica = 0.5});
  ASSERT_EQ(w.pods.size(), 3u);
  EXPECT_EQ(w.pods[0].arrival, 0);
  EXPECT_EQ(w.pods[0].departure, 180);
  EXPECT_EQ(w.pods[1].arrival, 60);
  EXPECT_EQ(w.pods[1].departure, 120);  // the newest go first
  EXPECT_EQ(w.pods[2].arrival, 60);
  EXPECT_EQ(w.pods[2].departure, 120);
  EXPECT_FALSE(w.pods[0].runs_for_duration);
}

TEST(TraceReplayWorkloadTest, SumsRatePerBucketFromTheFirstBucket) {
  const std::vector<RateSample> samples = {{100, 1}, {130, 2}, {170, 0.5}, {250, 0.5}};
  std::vector<RateSample> sums = SumRatePerBucket(samples, 60);
  ASSERT_EQ(sums.size(), 4u);  // buckets 60, 120, 180, 240
  EXPECT_EQ(sums[0].time, 0);
  EXPECT_EQ(sums[0].value, 1);
  EXPECT_EQ(sums[1].value, 2.5);
  EXPECT_EQ(sums[2].value, 0);
  EXPECT_EQ(sums[3].time, 180);
  EXPECT_EQ(sums[3].value, 0.5);
}

TEST(TraceReplayWorkloadTest, TimedPodsKeepGpuPodsWithALifetime) {
  Result<std::vector<TimedPod>> pods = ParseTimedPodCsv(
      "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,creation_time,deletion_time\n"
      "b,1000,1024,1,460,,200,900\n"
      "a,1000,1024,2,1000,,100,700\n"
      "cpu,1000,1024,0,0,,0,50\n"
      "zero,1000,1024,1,1000,,300,300\n",
      "pods.csv");
  ASSERT_TRUE(pods.ok()) << pods.error().ToString();
  ReplayWorkload w = WorkloadFromTimedPods("t", *pods);
  ASSERT_EQ(w.pods.size(), 2u);
  EXPECT_EQ(w.pods[0].arrival, 100);
  EXPECT_EQ(w.pods[0].num_gpu, 2);
  EXPECT_EQ(w.pods[1].gpu_milli, 460);
  EXPECT_EQ(w.pods[1].departure, 900);
  EXPECT_TRUE(w.pods[1].runs_for_duration);

  Result<std::vector<TimedPod>> backwards = ParseTimedPodCsv(
      "name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time,deletion_time\n"
      "p,1,1,1,1000,500,400\n",
      "pods.csv");
  ASSERT_FALSE(backwards.ok());
  EXPECT_EQ(backwards.error().message(),
            "pods.csv:2: deletion_time 400 is before creation_time 500");
  EXPECT_FALSE(
      ParseTimedPodCsv("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1\n", "x").ok());
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
