// The report's readers of outside input: the alert receiver's log, the
// simulator's arrived curve and API list bodies, good and bad.
#include "report/inputs.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::report {
namespace {

using nlohmann::json;

TEST(ParseAlertLogTest, ReadsWebhookSlackAndPagerDutyBodies) {
  const std::string log =
      json({{"path", "/hook"},
            {"idempotency_key", "k1"},
            {"signature", "sha256=ab"},
            {"body", json({{"summary", "Budget a/b reached 80%"},
                           {"thresholdPercent", 80},
                           {"time", "2026-12-05T05:00:00Z"}})
                         .dump()}})
          .dump() +
      "\n\n" + json({{"path", "/slack"}, {"body", json({{"text", "slack text"}}).dump()}}).dump() +
      "\r\n" +
      json({{"path", "/pd"},
            {"body", json({{"payload",
                            {{"summary", "pd summary"},
                             {"timestamp", "2026-12-05T05:00:01Z"},
                             {"custom_details", {{"threshold_percent", 100}}}}}})
                         .dump()}})
          .dump() +
      "\n" + json({{"path", "/raw"}, {"body", "not json"}}).dump();
  auto alerts = ParseAlertLog(log);
  ASSERT_TRUE(alerts.ok()) << alerts.error().message();
  ASSERT_EQ(alerts->size(), 4u);
  EXPECT_EQ((*alerts)[0].channel, "/hook");
  EXPECT_EQ((*alerts)[0].summary, "Budget a/b reached 80%");
  EXPECT_EQ((*alerts)[0].threshold, 80);
  EXPECT_EQ((*alerts)[0].time, "2026-12-05T05:00:00Z");
  EXPECT_TRUE((*alerts)[0].signed_request);
  EXPECT_EQ((*alerts)[1].summary, "slack text");
  EXPECT_EQ((*alerts)[1].threshold, -1);
  EXPECT_FALSE((*alerts)[1].signed_request);
  EXPECT_EQ((*alerts)[2].summary, "pd summary");
  EXPECT_EQ((*alerts)[2].threshold, 100);
  EXPECT_EQ((*alerts)[3].summary, "not json");
}

TEST(ParseAlertLogTest, MalformedLineIsAnErrorNamingIt) {
  auto alerts = ParseAlertLog("{\"path\": \"/a\", \"body\": \"{}\"}\n{\"path\": \n");
  ASSERT_FALSE(alerts.ok());
  EXPECT_EQ(alerts.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(alerts.error().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(ParseAlertLog("[1, 2]").ok());
}

TEST(ParsePlacementCurveTest, ReadsEachPolicysColumns) {
  auto curves = ParsePlacementCurve(
      "arrived_pct,FGD_alloc_mean,FGD_alloc_sd,FGD_frag_mean,BestFit_alloc_mean,"
      "BestFit_alloc_sd,BestFit_frag_mean\n"
      "0,0.000,0.000,0.000,0.000,0.000,0.000\n"
      "100,95.500,0.100,3.250,92.000,0.200,6.000\n");
  ASSERT_TRUE(curves.ok()) << curves.error().message();
  ASSERT_EQ(curves->size(), 2u);
  EXPECT_EQ((*curves)[0].policy, "FGD");
  EXPECT_EQ((*curves)[0].arrived_pct, (std::vector<double>{0, 100}));
  EXPECT_EQ((*curves)[0].alloc_pct, (std::vector<double>{0, 95.5}));
  EXPECT_EQ((*curves)[0].frag_pct, (std::vector<double>{0, 3.25}));
  EXPECT_EQ((*curves)[1].policy, "BestFit");
  EXPECT_EQ((*curves)[1].alloc_pct, (std::vector<double>{0, 92}));
}

TEST(ParsePlacementCurveTest, BadInputIsAnError) {
  for (const char* bad :
       {"", "x,y\n", "arrived_pct,FGD_alloc_mean,FGD_alloc_sd\n", "arrived_pct,_alloc_mean,a,b\n",
        "arrived_pct,FGD_alloc_mean,FGD_alloc_sd,FGD_frag_mean\n1,2,3\n",
        "arrived_pct,FGD_alloc_mean,FGD_alloc_sd,FGD_frag_mean\n1,x,3,4\n",
        "arrived_pct,FGD_alloc_mean,FGD_alloc_sd,FGD_frag_mean\n1,nan,3,4\n"}) {
    auto curves = ParsePlacementCurve(bad);
    EXPECT_FALSE(curves.ok()) << bad;
    if (!curves.ok()) {
      EXPECT_EQ(curves.error().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(ParseClusterListsTest, BudgetsWithWrongTypesReadAsAbsent) {
  const json list = {
      {"items",
       {{{"metadata", {{"name", "b"}, {"namespace", "ns"}}},
         {"spec", {{"amount", 10}, {"currency", "EUR"}, {"enforcement", "blockNewGPUPods"}}},
         {"status",
          {{"currentSpend", 8.5},
           {"percent", 85},
           {"forecast", {{"linear", 12}, {"holtWinters", 11}}},
           {"conditions",
            {{{"type", "Exceeded"}, {"status", "False"}},
             {{"type", "ForecastExceeded"}, {"status", "True"}}}},
           {"lastAlert",
            {{{"threshold", 50}, {"state", "fired"}}, {{"threshold", 80}, {"state", "fired"}}}}}}},
        {{"metadata", "oops"}, {"status", {{"percent", "85"}, {"conditions", 3}}}}}}};
  auto budgets = ParseBudgets(list);
  ASSERT_TRUE(budgets.ok());
  ASSERT_EQ(budgets->size(), 2u);
  const BudgetInput& b = (*budgets)[0];
  EXPECT_EQ(b.ns + "/" + b.name, "ns/b");
  EXPECT_EQ(b.currency, "EUR");
  EXPECT_EQ(b.spend, 8.5);
  EXPECT_EQ(b.percent, 85);
  EXPECT_EQ(b.forecast, 12);
  EXPECT_EQ(b.true_conditions, (std::vector<std::string>{"ForecastExceeded"}));
  EXPECT_EQ(b.fired_thresholds, (std::vector<double>{50, 80}));
  EXPECT_EQ((*budgets)[1].percent, 0);
  EXPECT_EQ((*budgets)[1].enforcement, "alert");
  EXPECT_FALSE(ParseBudgets(json::object()).ok());
  EXPECT_FALSE(ParseBudgets(json::array()).ok());
}

TEST(ParseClusterListsTest, EventsTakeTheirTimesAndCount) {
  const json list = {{"items",
                      {{{"involvedObject", {{"kind", "GPUNodePool"}, {"name", "p"}}},
                        {"reason", "ScaleUp"},
                        {"message", "+2 x"},
                        {"firstTimestamp", "2026-12-05T05:00:00Z"},
                        {"lastTimestamp", "2026-12-05T05:00:10Z"},
                        {"count", 3}},
                       {{"involvedObject", {{"kind", "Node"}, {"name", "n"}}},
                        {"reason", "InterruptionDrained"},
                        {"eventTime", "2026-12-05T05:00:20.123456Z"},
                        {"count", "many"}}}}};
  auto events = ParseEvents(list);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].first, 1'796'446'800);
  EXPECT_EQ((*events)[0].last, 1'796'446'810);
  EXPECT_EQ((*events)[0].count, 3);
  EXPECT_EQ((*events)[1].first, 1'796'446'820);
  EXPECT_EQ((*events)[1].last, 1'796'446'820);
  EXPECT_EQ((*events)[1].count, 1);
}

TEST(ParseClusterListsTest, PoolsProfilesReschedulesAndSharingPolicies) {
  auto pools =
      ParseNodePools({{"items",
                       {{{"metadata", {{"name", "p"}}},
                         {"status", {{"nodes", 2}, {"desired", 3}, {"hourlyCost", 1.2}}}}}}});
  ASSERT_TRUE(pools.ok());
  EXPECT_EQ((*pools)[0].desired, 3);
  EXPECT_EQ((*pools)[0].hourly_cost, 1.2);
  auto profiles = ParseServiceProfiles(
      {{"items",
        {{{"metadata", {{"name", "chat"}, {"namespace", "nlp"}}},
          {"spec", {{"targetRef", {{"kind", "Deployment"}, {"name", "chat"}}}}},
          {"status",
           {{"conditions",
             {{{"type", "RecommendationProvided"}, {"status", "True"}, {"message", "ok"}}}},
            {"recommendations",
             {{{"containerName", "server"},
               {"cpu", {{"target", "350m"}, {"lowerBound", "300m"}}},
               {"memory", {{"target", "629145600"}}},
               {"gpu", {{"share", "timeSlicing"}}}}}}}}}}}});
  ASSERT_TRUE(profiles.ok());
  EXPECT_EQ((*profiles)[0].target, "Deployment/chat");
  EXPECT_TRUE((*profiles)[0].provided);
  ASSERT_EQ((*profiles)[0].containers.size(), 1u);
  EXPECT_EQ((*profiles)[0].containers[0].cpu_target, "350m");
  EXPECT_EQ((*profiles)[0].containers[0].gpu_share, "timeSlicing");
  auto reschedules = ParseReschedulePolicies(
      {{"items",
        {{{"metadata", {{"name", "d"}}},
          {"status",
           {{"lastRun", {{"dryRun", false}, {"planned", 1}, {"executed", 1}}},
            {"plannedMoves",
             {{{"result", "Executed"},
               {"namespace", "defrag"},
               {"pod", "infer-1"},
               {"fromNode", "a"},
               {"toNode", "b"},
               {"reason", "frees 2 GPUs"}}}}}}}}}});
  ASSERT_TRUE(reschedules.ok());
  EXPECT_FALSE((*reschedules)[0].dry_run);
  EXPECT_EQ((*reschedules)[0].moves,
            (std::vector<std::string>{"Executed defrag/infer-1 a -> b: frees 2 GPUs"}));
  auto policies = ParseSharingPolicies(
      {{"items", {{{"metadata", {{"name", "ts"}}}, {"status", {{"matchedPods", 4}}}}}}});
  ASSERT_TRUE(policies.ok());
  EXPECT_EQ((*policies)[0].matched_pods, 4);
}

}  // namespace
}  // namespace gpu_autoscaler::report
