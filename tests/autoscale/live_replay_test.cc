// The pure half of `gpu-autoscaler replay`: the window, the event order, the
// clock, node and pod shapes, and the tally, against hand-computed values.
#include "autoscale/live_replay.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::autoscale {
namespace {

TimedPod Pod(std::string name, int64_t created, int64_t deleted, int gpus = 1, int milli = 1000) {
  TimedPod p;
  p.spec.name = std::move(name);
  p.spec.num_gpu = gpus;
  p.spec.gpu_milli = milli;
  p.creation_time = created;
  p.deletion_time = deleted;
  return p;
}

using Kind = ReplayEvent::Kind;

NodeSpec Node(std::string name, std::string model, int gpus) {
  NodeSpec n;
  n.name = std::move(name);
  n.gpu_model = std::move(model);
  n.gpu_count = gpus;
  return n;
}

PodSpec Gpus(int num_gpu, int milli) {
  PodSpec p;
  p.num_gpu = num_gpu;
  p.gpu_milli = milli;
  return p;
}

TEST(PlanLiveReplayTest, WholeTraceInArrivalOrderDeparturesFirst) {
  // c arrives at 10 when a departs: a's departure comes first.
  const std::vector<TimedPod> pods = {Pod("b", 5, 30), Pod("a", 0, 10), Pod("c", 10, 20)};
  Result<LiveReplayPlan> plan = PlanLiveReplay(pods, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->start, 0);
  EXPECT_EQ(plan->end, 30);
  ASSERT_EQ(plan->pods.size(), 3u);
  EXPECT_EQ(plan->pods[0].pod.spec.name, "a");
  EXPECT_EQ(plan->pods[1].pod.spec.name, "b");
  EXPECT_EQ(plan->pods[2].pod.spec.name, "c");
  const std::vector<ReplayEvent> want = {{0, Kind::kArrive, 0},  {5, Kind::kArrive, 1},
                                         {10, Kind::kDepart, 0}, {10, Kind::kArrive, 2},
                                         {20, Kind::kDepart, 2}, {30, Kind::kDepart, 1}};
  EXPECT_EQ(plan->events, want);
}

TEST(PlanLiveReplayTest, WindowClipsArrivalsAndDepartures) {
  // Window [100, 200): a is alive at 100 and arrives then; d ends before; e
  // starts after; b departs at the window's end.
  const std::vector<TimedPod> pods = {Pod("a", 50, 150), Pod("b", 120, 500), Pod("d", 0, 100),
                                      Pod("e", 200, 300)};
  Result<LiveReplayPlan> plan = PlanLiveReplay(pods, {.start = 100, .window = 100});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->pods.size(), 2u);
  EXPECT_EQ(plan->pods[0].pod.spec.name, "a");
  EXPECT_EQ(plan->pods[0].arrive, 100);
  EXPECT_EQ(plan->pods[0].depart, 150);
  EXPECT_EQ(plan->pods[1].pod.spec.name, "b");
  EXPECT_EQ(plan->pods[1].arrive, 120);
  EXPECT_EQ(plan->pods[1].depart, 200);
  EXPECT_EQ(plan->end, 200);
}

TEST(PlanLiveReplayTest, LimitKeepsEarliestArrivals) {
  const std::vector<TimedPod> pods = {Pod("late", 9, 10), Pod("x", 1, 4), Pod("y", 2, 3)};
  Result<LiveReplayPlan> plan = PlanLiveReplay(pods, {.limit = 2});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->pods.size(), 2u);
  EXPECT_EQ(plan->pods[0].pod.spec.name, "x");
  EXPECT_EQ(plan->pods[1].pod.spec.name, "y");
  EXPECT_EQ(plan->end, 4);
}

TEST(PlanLiveReplayTest, EmptySelectionAndBadArgumentsAreErrors) {
  const std::vector<TimedPod> pods = {Pod("a", 0, 10)};
  Result<LiveReplayPlan> none = PlanLiveReplay(pods, {.start = 10});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("no pod of the trace is alive"), std::string::npos);
  EXPECT_FALSE(PlanLiveReplay(pods, {.window = -1}).ok());
  EXPECT_FALSE(PlanLiveReplay(pods, {.limit = -1}).ok());
  EXPECT_FALSE(PlanLiveReplay({}, {}).ok());
}

TEST(ReplayClockTest, CompressesTraceTime) {
  ReplayClock clock(1000, 300);  // 300 trace seconds per wall second
  EXPECT_DOUBLE_EQ(clock.TraceTime(0), 1000);
  EXPECT_DOUBLE_EQ(clock.TraceTime(2.5), 1750);
  EXPECT_DOUBLE_EQ(clock.WallOffset(1600), 2.0);
}

TEST(ReplayCursorTest, HandsOutEachEventOnce) {
  const std::vector<TimedPod> pods = {Pod("a", 0, 10), Pod("b", 5, 30)};
  LiveReplayPlan plan = *PlanLiveReplay(pods, {});
  ReplayCursor cursor(plan);
  EXPECT_EQ(cursor.Due(-1).size(), 0u);
  EXPECT_EQ(cursor.Due(4.9).size(), 1u);  // a arrives
  EXPECT_EQ(cursor.next_time(), 5);
  EXPECT_EQ(cursor.Due(4.9).size(), 0u);
  std::span<const ReplayEvent> due = cursor.Due(10);  // b arrives, a departs
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0], (ReplayEvent{5, Kind::kArrive, 1}));
  EXPECT_EQ(due[1], (ReplayEvent{10, Kind::kDepart, 0}));
  EXPECT_FALSE(cursor.done());
  EXPECT_EQ(cursor.Due(1e9).size(), 1u);
  EXPECT_TRUE(cursor.done());
}

TEST(FakeNodeShapeTest, CatalogueModelsAndSharing) {
  const NodeSpec v100 = Node("openb-node-0007", "V100M16", 8);
  FakeNodeShape s = FakeNodeShapeOf(v100, 0, 0.5, 4);
  EXPECT_EQ(s.name, "openb-node-0007");
  EXPECT_EQ(s.gpu_product, "Tesla-V100-SXM2-16GB");
  EXPECT_EQ(s.instance_type, "p3.16xlarge");
  EXPECT_EQ(s.gpus, 8);
  EXPECT_FALSE(s.shared);                                // floor(0.5) == floor(0)
  EXPECT_TRUE(FakeNodeShapeOf(v100, 1, 0.5, 4).shared);  // floor(1.0) > floor(0.5)
  EXPECT_EQ(FakeNodeShapeOf(v100, 1, 0.5, 4).replicas, 4);
  EXPECT_FALSE(FakeNodeShapeOf(v100, 1, 0.0, 4).shared);
  EXPECT_FALSE(FakeNodeShapeOf(v100, 1, 1.0, 1).shared);  // one replica is no sharing

  const NodeSpec t4 = Node("N_1", "T4", 2);
  s = FakeNodeShapeOf(t4, 0, 0, 4);
  EXPECT_EQ(s.name, "n-1");
  EXPECT_EQ(s.gpu_product, "Tesla-T4");
  EXPECT_EQ(s.instance_type, "");  // no 2 x T4 instance in the catalogue
  const NodeSpec g2 = Node("g", "G2", 8);
  EXPECT_EQ(FakeNodeShapeOf(g2, 0, 0, 4).gpu_product, "G2");
  // A pod's gpu_spec maps to the same labels.
  EXPECT_EQ(FakeGpuProduct("V100M32"), "Tesla-V100-SXM2-32GB");
  EXPECT_EQ(FakeGpuProduct("T4"), s.gpu_product);
  EXPECT_EQ(FakeGpuProduct("G2"), "G2");
}

TEST(SampleNodesTest, SpreadsOverTheList) {
  std::vector<NodeSpec> nodes(10);
  for (int i = 0; i < 10; ++i)
    nodes[i].name = "n" + std::to_string(i);
  std::vector<NodeSpec> three = SampleNodes(nodes, 3);  // 0, 10/3 = 3, 20/3 = 6
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(three[0].name, "n0");
  EXPECT_EQ(three[1].name, "n3");
  EXPECT_EQ(three[2].name, "n6");
  EXPECT_EQ(SampleNodes(nodes, 0).size(), 10u);
  EXPECT_EQ(SampleNodes(nodes, 50).size(), 10u);
}

TEST(FakePodRequestTest, WholeSharedAndNone) {
  FakePodRequest r = FakePodRequestOf(Gpus(2, 1000));
  EXPECT_EQ(r.kind, FakePodRequest::Kind::kWhole);
  EXPECT_EQ(r.whole_gpus, 2);
  EXPECT_DOUBLE_EQ(r.gpus(), 2);
  r = FakePodRequestOf(Gpus(1, 455));
  EXPECT_EQ(r.kind, FakePodRequest::Kind::kShared);
  EXPECT_EQ(r.compute_percent, 46);  // 45.5 rounded up
  EXPECT_DOUBLE_EQ(r.gpus(), 0.46);
  EXPECT_EQ(FakePodRequestOf(Gpus(1, 3)).compute_percent, 1);
  EXPECT_EQ(FakePodRequestOf(Gpus(0, 0)).kind, FakePodRequest::Kind::kNone);
  EXPECT_EQ(FakePodRequestOf(Gpus(1, 1000)).kind, FakePodRequest::Kind::kWhole);
}

TEST(TeamOfTest, StableHash) {
  const std::vector<std::string> teams = {"vision", "nlp"};
  // FNV-1a("a") = 0xe40c292c, even -> vision; FNV-1a("b") = 0xe70c2de5, odd -> nlp.
  EXPECT_EQ(TeamOf("a", teams), "vision");
  EXPECT_EQ(TeamOf("b", teams), "nlp");
  EXPECT_EQ(TeamOf("a", {}), "");
}

TEST(ReplayTallyTest, CountsAndPeak) {
  ReplayTally tally(3);
  tally.Arrived(0, 1);
  tally.Arrived(1, 0.5);
  tally.Arrived(2, 2);
  EXPECT_EQ(tally.counts().pending, 3);
  tally.Bound(0);
  tally.Bound(0);  // idempotent
  tally.Bound(2);
  EXPECT_EQ(tally.counts().bound, 2);
  EXPECT_DOUBLE_EQ(tally.counts().gpus_allocated, 3);
  tally.Departed(2);
  tally.Departed(1);  // never bound
  tally.Departed(1);  // twice is once
  EXPECT_EQ(tally.counts().departed, 2);
  EXPECT_EQ(tally.counts().pending, 0);
  EXPECT_EQ(tally.counts().bound, 1);
  EXPECT_DOUBLE_EQ(tally.counts().gpus_allocated, 1);
  EXPECT_DOUBLE_EQ(tally.counts().peak_gpus_allocated, 3);
  EXPECT_EQ(tally.counts().placed, 2);
  EXPECT_EQ(tally.never_placed(), 1);
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
