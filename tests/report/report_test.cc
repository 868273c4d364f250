// BuildReport's figures against hand-computed values.
#include "report/report.h"

#include <gtest/gtest.h>

#include "report_fixture.h"

namespace gpu_autoscaler::report {
namespace {

TEST(BuildReportTest, SharingCountsWholeGpusEachPodWouldHoldWithoutIt) {
  ReportInputs in;
  for (int i = 0; i < 4; ++i)
    in.pods.push_back({.name = "nb" + std::to_string(i), .mode = "timeSlicing", .gpu_share = 0.25});
  in.pods.push_back({.name = "mps", .mode = "mps", .gpu_share = 0.5});
  in.pods.push_back({.name = "big", .mode = "exclusive", .gpu_share = 4});
  in.pods.push_back({.name = "two", .mode = "", .gpu_share = 2});
  in.pods.push_back({.name = "cpu-only", .mode = "exclusive", .gpu_share = 0});
  const Report r = BuildReport(in);
  // Held: 4 x 0.25 + 0.5 + 4 + 2 = 7.5. Whole: 4 x 1 + 1 + 4 + 2 = 11.
  EXPECT_DOUBLE_EQ(r.sharing.held_gpus, 7.5);
  EXPECT_DOUBLE_EQ(r.sharing.whole_gpus, 11);
  EXPECT_DOUBLE_EQ(r.sharing.freed_gpus(), 3.5);
  ASSERT_EQ(r.sharing.modes.size(), 3u);  // shared modes by name, exclusive last
  EXPECT_EQ(r.sharing.modes[0].mode, "mps");
  EXPECT_EQ(r.sharing.modes[1].mode, "timeSlicing");
  EXPECT_EQ(r.sharing.modes[1].pods, 4);
  EXPECT_DOUBLE_EQ(r.sharing.modes[1].held_gpus, 1);
  EXPECT_DOUBLE_EQ(r.sharing.modes[1].whole_gpus, 4);
  EXPECT_EQ(r.sharing.modes[2].mode, "exclusive");
  EXPECT_EQ(r.sharing.modes[2].pods, 2);
  EXPECT_DOUBLE_EQ(r.sharing.modes[2].whole_gpus, 6);
}

TEST(BuildReportTest, CostByTeamWithoutSharingIsAttributionAndWithoutSpotUsesOnDemandRate) {
  ReportInputs in;
  in.on_demand_gpu_rate = {{"A100", 4.0}};
  in.costs = {
      // 2 spot GPU-hours charged 2.00: at 4.00 on demand they would cost 8.00.
      {.team = "vision",
       .tier = "spot",
       .gpu_model = "A100",
       .gpu_seconds = 7200,
       .gpu_cost = 2.0,
       .exclusive_gpu_cost = 2.0,
       .other_cost = 0.5},
      // Shared GPUs charged 4.00 that would be 10.00 held whole.
      {.team = "nlp",
       .tier = "on-demand",
       .gpu_model = "A100",
       .gpu_seconds = 3600,
       .gpu_cost = 4.0,
       .exclusive_gpu_cost = 10.0,
       .other_cost = 1.0},
      // Spot with no on-demand rate: kept at its price, and said so.
      {.team = "nlp",
       .tier = "spot",
       .gpu_model = "X",
       .gpu_seconds = 1800,
       .gpu_cost = 0.3,
       .exclusive_gpu_cost = 0.3},
      {.team = "",
       .tier = "on-demand",
       .gpu_model = "A100",
       .gpu_seconds = 360,
       .gpu_cost = 0.1,
       .exclusive_gpu_cost = 0.1},
      {.idle = true, .idle_gpu_seconds = 36000, .idle_cost = 12},
  };
  const Report r = BuildReport(in);
  ASSERT_EQ(r.cost.teams.size(), 3u);
  EXPECT_EQ(r.cost.teams[0].team, "nlp");  // by actual cost
  EXPECT_DOUBLE_EQ(r.cost.teams[0].actual, 5.3);
  EXPECT_DOUBLE_EQ(r.cost.teams[0].without_sharing, 11.3);
  EXPECT_DOUBLE_EQ(r.cost.teams[0].without_spot, 5.3);
  EXPECT_DOUBLE_EQ(r.cost.teams[0].gpu_hours, 1.5);
  EXPECT_EQ(r.cost.teams[1].team, "vision");
  EXPECT_DOUBLE_EQ(r.cost.teams[1].actual, 2.5);
  EXPECT_DOUBLE_EQ(r.cost.teams[1].without_sharing, 2.5);
  EXPECT_DOUBLE_EQ(r.cost.teams[1].without_spot, 8.5);
  EXPECT_EQ(r.cost.teams[2].team, "(no team)");
  EXPECT_DOUBLE_EQ(r.cost.actual, 7.9);
  EXPECT_DOUBLE_EQ(r.cost.spot_saving(), 6.0);
  EXPECT_DOUBLE_EQ(r.cost.sharing_attributed(), 6.0);
  EXPECT_DOUBLE_EQ(r.cost.idle_gpu_hours, 10);
  EXPECT_DOUBLE_EQ(r.cost.idle_cost, 12);
  ASSERT_EQ(r.cost.notes.size(), 1u);
  EXPECT_NE(r.cost.notes[0].find("0.50 spot GPU-hours of X"), std::string::npos);
}

TEST(BuildReportTest, CostSeriesIsCumulativePerTeamInTimeOrder) {
  ReportInputs in;
  in.cost_series = {{.team = "vision", .bucket = 120, .cost = 1},
                    {.team = "vision", .bucket = 60, .cost = 2},
                    {.team = "", .bucket = 60, .cost = 0.5}};
  const Report r = BuildReport(in);
  ASSERT_EQ(r.cost.series.size(), 2u);
  EXPECT_EQ(r.cost.series[0].team, "(no team)");
  EXPECT_EQ(r.cost.series[1].time, (std::vector<int64_t>{60, 120}));
  EXPECT_EQ(r.cost.series[1].cumulative, (std::vector<double>{2, 3}));
}

TEST(BuildReportTest, PoolEventsGiveScaleUpsScaleDownsInterruptionsAndNodesOverTime) {
  const ReportInputs in = testing::DemoLikeReportInputs();
  const Report r = BuildReport(in);
  const PoolSection& p = r.pools;
  EXPECT_EQ(p.nodes_added, 3);     // +2, then +1
  EXPECT_EQ(p.nodes_removed, 3);   // one after the interruption, two empty (count 2)
  EXPECT_EQ(p.interruptions, 1);   // the pool's and the node agent's Events name one node
  ASSERT_EQ(p.events.size(), 6u);  // the Pod event is not the pool's
  EXPECT_EQ(p.events[0].kind, PoolEventKind::kScaleUp);
  EXPECT_EQ(p.events[0].node_delta, 2);
  EXPECT_EQ(p.events.back().node_delta, -2);
  // Rebuilt backwards from 0 nodes now: +2, -1, +1, -1, -1 starts from 0.
  const int64_t t0 = 1'796'000'000;
  std::vector<std::pair<int64_t, int>> steps;
  for (const NodeStep& s : p.nodes_over_time)
    steps.push_back({s.time - t0, s.nodes});
  EXPECT_EQ(steps, (std::vector<std::pair<int64_t, int>>{
                       {300, 2}, {370, 1}, {380, 2}, {450, 1}, {455, 0}, {600, 0}}));
}

TEST(BuildReportTest, PreemptionsNameVictimPreemptorNodeAndWholeGroups) {
  ReportInputs in;
  auto preempted = [](std::string name, int64_t at, std::string message) {
    return EventInput{.kind = "Pod",
                      .ns = "ml",
                      .name = std::move(name),
                      .reason = "Preempted",
                      .message = std::move(message),
                      .first = at,
                      .last = at};
  };
  in.events = {
      preempted("etl-1", 20,
                "Preempted by ml/online-2 on node l40s-3, with all of pod group ml/etl, which "
                "cannot run without a member evicted there"),
      preempted("batch-1", 10, "Preempted by ml/online-0 on node l40s-1"),
      // Newer kube-scheduler names the preemptor by UID (kubernetes#119866),
      // or not at all (#114923).
      preempted("web-0", 30, "Preempted by pod 0f9c-77 on node cpu-1"),
      preempted("etl-0", 20,
                "Preempted by ml/online-2 on node l40s-3, with all of pod group ml/etl, which "
                "cannot run without a member evicted there"),
      preempted("odd", 40, "evicted by someone"),
      preempted("anon", 50, "Preempted by a pod on node cpu-2"),
      {.kind = "Pod", .ns = "ml", .name = "x", .reason = "Scheduled", .last = 5},
  };
  const PreemptionSection p = BuildReport(in).preemptions;
  ASSERT_EQ(p.rows.size(), 6u);
  EXPECT_EQ(p.rows[0].victim, "ml/batch-1");
  EXPECT_EQ(p.rows[0].preemptor, "ml/online-0");
  EXPECT_EQ(p.rows[0].node, "l40s-1");
  EXPECT_EQ(p.rows[0].pod_group, "");
  EXPECT_EQ(p.rows[1].victim, "ml/etl-1");
  EXPECT_EQ(p.rows[1].node, "l40s-3");
  EXPECT_EQ(p.rows[1].pod_group, "ml/etl");
  EXPECT_EQ(p.rows[3].preemptor, "pod 0f9c-77");
  EXPECT_EQ(p.rows[3].node, "cpu-1");
  EXPECT_EQ(p.rows[4].preemptor, "(evicted by someone)");
  EXPECT_EQ(p.rows[5].preemptor, "a pod");
  EXPECT_EQ(p.rows[5].node, "cpu-2");
  EXPECT_EQ(p.whole_groups, 1);
  EXPECT_EQ(p.by_preemptor, (std::map<std::string, int>{{"ml/online-0", 1},
                                                        {"ml/online-2", 2},
                                                        {"pod 0f9c-77", 1},
                                                        {"a pod", 1},
                                                        {"(evicted by someone)", 1}}));
}

TEST(BuildReportTest, PlacementComparesEachPolicyToFgd) {
  const Report r = BuildReport(testing::DemoLikeReportInputs());
  ASSERT_TRUE(r.placement.has_fgd);
  ASSERT_EQ(r.placement.rows.size(), 3u);
  EXPECT_EQ(r.placement.rows[0].policy, "Random");
  EXPECT_DOUBLE_EQ(r.placement.rows[0].alloc_at_100, 84);
  EXPECT_DOUBLE_EQ(r.placement.rows[0].alloc_final, 86);
  EXPECT_DOUBLE_EQ(r.placement.rows[0].final_arrived, 130);
  EXPECT_DOUBLE_EQ(r.placement.rows[0].vs_fgd, -11);
  EXPECT_DOUBLE_EQ(r.placement.rows[1].vs_fgd, -3);
  EXPECT_DOUBLE_EQ(r.placement.rows[2].vs_fgd, 0);
}

TEST(BuildReportTest, BudgetsByPercentAndAlertsByChannel) {
  const Report r = BuildReport(testing::DemoLikeReportInputs());
  ASSERT_EQ(r.budgets.budgets.size(), 2u);
  EXPECT_EQ(r.budgets.budgets[0].name, "vision-gpus");
  EXPECT_EQ(r.budgets.alerts.size(), 6u);
  EXPECT_EQ(r.budgets.alerts_by_channel.at("/slack"), 3);
  EXPECT_EQ(r.budgets.alerts_by_channel.at("/hook"), 3);
  EXPECT_EQ(r.budgets.denied.size(), 1u);
}

TEST(BuildReportTest, DemoLikeFiguresByHand) {
  const Report r = BuildReport(testing::DemoLikeReportInputs());
  // 4 notebooks of 0.25 on one GPU instead of 4; training pods hold 10 whole GPUs.
  EXPECT_DOUBLE_EQ(r.sharing.held_gpus, 11);
  EXPECT_DOUBLE_EQ(r.sharing.whole_gpus, 14);
  // Spot: vision 1440 s + nlp 180 s at 4.0975/h = 1.843875, charged 0.72.
  EXPECT_NEAR(r.cost.spot_saving(), 1620.0 / 3600 * 4.0975 - 0.72, 1e-9);
  EXPECT_NEAR(r.cost.sharing_attributed(), 0.24, 1e-9);
  EXPECT_NEAR(r.cost.actual, 0.69 + 0.12 + 0.43, 1e-9);
}

TEST(BuildReportTest, EmptyInputsGiveAnEmptyReport) {
  const Report r = BuildReport(ReportInputs{});
  EXPECT_EQ(r.sharing.freed_gpus(), 0);
  EXPECT_TRUE(r.cost.teams.empty());
  EXPECT_TRUE(r.pools.nodes_over_time.empty());
  EXPECT_FALSE(r.placement.has_fgd);
}

}  // namespace
}  // namespace gpu_autoscaler::report
