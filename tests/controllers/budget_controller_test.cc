// DecideBudget and RecordDeliveries: the pure half of the Budget controller.
#include "controllers/budget_controller.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "kube/conditions.h"
#include "kube/object_codec.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

constexpr char kBudget[] = R"(
apiVersion: gpuautoscaler.io/v1alpha1
kind: Budget
metadata: {name: gpu-monthly, namespace: ml}
spec:
  scope: {namespaces: [ml]}
  amount: 100
  currency: USD
  period: monthly
  thresholds: [50, 80, 100]
  notifications:
    - {type: slack, secretRef: {name: alerts, key: slack-url}}
    - {type: webhook, secretRef: {name: alerts, key: webhook-url}}
  enforcement: scaleDownSpot
)";

// 2026-12-10T00:00:00Z, inside December's period.
constexpr int64_t kNow = 1'796'860'800;

BudgetDecisionInput Input(double spent, json status = json::object(), int64_t now = kNow) {
  BudgetDecisionInput in;
  auto budget = cost::ParseBudget(kBudget, "budget.yaml");
  EXPECT_TRUE(budget.ok()) << budget.error().ToString();
  in.budget = *budget;
  in.budget->ns = "ml";
  in.budget->name = "gpu-monthly";
  in.generation = 3;
  in.status = std::move(status);
  in.now = now;
  in.evaluation.period = in.budget->spec.PeriodAt(now);
  in.evaluation.amount = 100;
  in.evaluation.forecast = {.spent = spent, .linear = spent * 3, .holt_winters = spent * 2};
  return in;
}

std::string Cond(const json& status, const std::string& type) {
  auto c = kube::FindCondition(status.value("conditions", json()), type);
  return c ? c->status : "absent";
}

TEST(BudgetDecisionTest, FirstCrossingRecordsTheAlertAsPendingOnEveryChannel) {
  BudgetPlan plan = DecideBudget(Input(60));
  const json& s = plan.status;
  EXPECT_EQ(s["observedGeneration"], 3);
  EXPECT_EQ(s["currentSpend"], 60.0);
  EXPECT_EQ(s["percent"], 60.0);
  EXPECT_EQ(s["periodStart"], "2026-12-01T00:00:00Z");
  EXPECT_EQ(s["periodEnd"], "2027-01-01T00:00:00Z");
  EXPECT_EQ(s["forecast"]["holtWinters"], 120.0);
  EXPECT_EQ(Cond(s, "Exceeded"), "False");
  EXPECT_EQ(Cond(s, "ForecastExceeded"), "True");
  EXPECT_EQ(Cond(s, "ScaleDownSpotRequested"), "False");
  EXPECT_EQ(Cond(s, "Invalid"), "False");
  ASSERT_EQ(s["lastAlert"].size(), 1u);
  const json& alert = s["lastAlert"][0];
  EXPECT_EQ(alert["threshold"], 50.0);
  EXPECT_EQ(alert["state"], "firing");
  EXPECT_EQ(alert["periodStart"], "2026-12-01T00:00:00Z");
  EXPECT_EQ(alert["pending"], json({"slack-0", "webhook-1"}));
  ASSERT_EQ(plan.deliveries.size(), 2u);
  EXPECT_EQ(plan.deliveries[0].channel, "slack-0");
  EXPECT_EQ(plan.deliveries[1].channel_index, 1u);
  EXPECT_EQ(plan.deliveries[1].notification.action, cost::AlertAction::kFire);
  EXPECT_EQ(plan.deliveries[1].notification.threshold_percent, 50);
  EXPECT_EQ(plan.deliveries[1].idempotency_key, alert["key"].get<std::string>() + "/fire");
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_EQ(plan.events[0].reason, "BudgetThresholdReached");
  EXPECT_EQ(plan.events[0].message, "threshold 50% reached: spent 60.00 of 100.00 USD");
}

// One decision body for both kinds: a ClusterBudget's alerts carry its own
// idempotency keys (no namespace), and survive a restart the same way.
TEST(BudgetDecisionTest, AClusterBudgetAlertsOncePerThresholdWithItsOwnKeys) {
  BudgetDecisionInput in = Input(85);
  in.budget->kind = cost::BudgetKind::kClusterBudget;
  in.budget->ns = "";
  in.budget->name = "org-gpus";
  BudgetPlan plan = DecideBudget(in);
  ASSERT_EQ(plan.status["lastAlert"].size(), 2u);
  EXPECT_EQ(plan.status["lastAlert"][0]["key"],
            "gpu-autoscaler/clusterbudget/org-gpus/50/" + std::to_string(1'796'083'200));
  ASSERT_EQ(plan.deliveries.size(), 4u);
  EXPECT_EQ(plan.deliveries[0].notification.budget_kind, cost::BudgetKind::kClusterBudget);
  EXPECT_EQ(cost::NotificationSummary(plan.deliveries[0].notification),
            "ClusterBudget org-gpus reached 50% (85.00 USD of 100.00 USD)");
  json status = plan.status;
  RecordDeliveries(&status, plan.deliveries, std::vector<Status>(4, Status::Ok()), 3, kNow);
  BudgetDecisionInput again = in;
  again.status = status;
  again.now = kNow + 60;
  EXPECT_TRUE(DecideBudget(again).deliveries.empty());
}

TEST(BudgetDecisionTest, ADeliveredAlertIsNeverSentAgainInThePeriod) {
  BudgetPlan first = DecideBudget(Input(60));
  json status = first.status;
  RecordDeliveries(&status, first.deliveries, {Status::Ok(), Status::Ok()}, 3, kNow);
  EXPECT_FALSE(status["lastAlert"][0].contains("pending"));
  EXPECT_EQ(Cond(status, "NotificationFailed"), "False");
  // A restart: the next evaluation starts from the status alone.
  BudgetPlan again = DecideBudget(Input(70, status, kNow + 60));
  EXPECT_TRUE(again.deliveries.empty());
  EXPECT_TRUE(again.events.empty());
}

TEST(BudgetDecisionTest, AFailedChannelStaysPendingAndIsRetried) {
  BudgetPlan first = DecideBudget(Input(60));
  json status = first.status;
  RecordDeliveries(&status, first.deliveries,
                   {Status::Ok(), UnavailableError("POST http://127.0.0.1:1/hook: refused")}, 3,
                   kNow);
  EXPECT_EQ(status["lastAlert"][0]["pending"], json({"webhook-1"}));
  EXPECT_EQ(Cond(status, "NotificationFailed"), "True");
  auto failed = kube::FindCondition(status["conditions"], "NotificationFailed");
  EXPECT_EQ(failed->message, "webhook-1 (threshold 50%): POST http://127.0.0.1:1/hook: refused");
  BudgetPlan retry = DecideBudget(Input(60, status, kNow + 5));
  ASSERT_EQ(retry.deliveries.size(), 1u);
  EXPECT_EQ(retry.deliveries[0].channel, "webhook-1");
  EXPECT_EQ(retry.deliveries[0].idempotency_key, first.deliveries[1].idempotency_key);
  EXPECT_TRUE(retry.events.empty());
  json after = retry.status;
  RecordDeliveries(&after, retry.deliveries, {Status::Ok()}, 3, kNow + 5);
  EXPECT_EQ(Cond(after, "NotificationFailed"), "False");
}

TEST(BudgetDecisionTest, OverspendFiresTheRemainingThresholdsAndRequestsSpotScaleDown) {
  BudgetPlan first = DecideBudget(Input(60));
  json status = first.status;
  RecordDeliveries(&status, first.deliveries, {Status::Ok(), Status::Ok()}, 3, kNow);
  BudgetPlan plan = DecideBudget(Input(130, status, kNow + 3600));
  EXPECT_EQ(Cond(plan.status, "Exceeded"), "True");
  EXPECT_EQ(Cond(plan.status, "ScaleDownSpotRequested"), "True");
  ASSERT_EQ(plan.status["lastAlert"].size(), 3u);
  EXPECT_EQ(plan.status["lastAlert"][1]["threshold"], 80.0);
  EXPECT_EQ(plan.status["lastAlert"][2]["threshold"], 100.0);
  EXPECT_EQ(plan.deliveries.size(), 4u);  // 80% and 100%, two channels each
  ASSERT_EQ(plan.events.size(), 2u);
  EXPECT_FALSE(plan.events[0].warning);
  EXPECT_TRUE(plan.events[1].warning);  // 100%
}

TEST(BudgetDecisionTest, PeriodRolloverSendsTheResolves) {
  BudgetPlan first = DecideBudget(Input(60));
  json status = first.status;
  RecordDeliveries(&status, first.deliveries, {Status::Ok(), Status::Ok()}, 3, kNow);
  const int64_t january = 1'798'761'600 + 3600;  // 2027-01-01T01:00:00Z
  BudgetPlan plan = DecideBudget(Input(1, status, january));
  EXPECT_EQ(plan.status["periodStart"], "2027-01-01T00:00:00Z");
  ASSERT_EQ(plan.status["lastAlert"].size(), 1u);
  EXPECT_EQ(plan.status["lastAlert"][0]["state"], "resolved");
  ASSERT_EQ(plan.deliveries.size(), 2u);
  EXPECT_EQ(plan.deliveries[0].notification.action, cost::AlertAction::kResolve);
  EXPECT_EQ(plan.deliveries[0].notification.period.start, 1'796'083'200);  // December
  EXPECT_EQ(
      plan.deliveries[0].idempotency_key.substr(plan.deliveries[0].idempotency_key.size() - 8),
      "/resolve");
}

TEST(BudgetDecisionTest, InvalidSpecIsAConditionAndOneEvent) {
  BudgetDecisionInput in;
  in.generation = 2;
  in.invalid_reason = "Budget ml/x: spec.amount: must be > 0";
  in.now = kNow;
  BudgetPlan plan = DecideBudget(in);
  EXPECT_EQ(Cond(plan.status, "Invalid"), "True");
  EXPECT_EQ(kube::FindCondition(plan.status["conditions"], "Invalid")->message, in.invalid_reason);
  EXPECT_EQ(plan.events.size(), 1u);
  EXPECT_TRUE(plan.deliveries.empty());
  in.status = plan.status;
  EXPECT_TRUE(DecideBudget(in).events.empty());  // no event storm while it stays invalid
}

std::shared_ptr<const kube::GenericObject> ClusterBudget(const std::string& name, json scope) {
  json obj = {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
              {"kind", "ClusterBudget"},
              {"metadata", {{"name", name}, {"resourceVersion", "1"}}},
              {"spec", {{"scope", std::move(scope)}, {"amount", 10}, {"period", "monthly"}}}};
  auto decoded = kube::DecodeGenericObject(obj.dump());
  EXPECT_TRUE(decoded.ok());
  return std::make_shared<const kube::GenericObject>(std::move(*decoded));
}

// A namespace relabelled into (or out of) a ClusterBudget's namespaceSelector
// reaches that ClusterBudget at once; the manager maps its Namespace watch
// through this. ClusterBudgets that list namespaces do not depend on labels.
TEST(ClusterBudgetsSelectingNamespacesTest, ANamespaceChangeReachesTheSelectingClusterBudgets) {
  kube::Store<kube::GenericObject> cluster_budgets;
  cluster_budgets.Upsert(
      ClusterBudget("research", {{"namespaceSelector", {{"matchLabels", {{"cc", "r"}}}}}}));
  cluster_budgets.Upsert(ClusterBudget("listed", {{"namespaces", {"a", "b"}}}));
  cluster_budgets.Upsert(ClusterBudget("everything", json::object()));
  cluster_budgets.Upsert(ClusterBudget("expr", {{"namespaceSelector", json::object()}}));
  const reconcile::RequestMapper map = ClusterBudgetsSelectingNamespaces(&cluster_budgets);
  std::vector<std::string> names;
  for (const reconcile::Request& r : map({.ns = "", .name = "team-a"})) {
    EXPECT_EQ(r.ns, "");
    names.push_back(r.name);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"expr", "research"}));
  EXPECT_TRUE(ClusterBudgetsSelectingNamespaces(nullptr)({.name = "team-a"}).empty());
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
