// Budgets: parsing, periods, scope, spend, enforcement, forecasts and the
// alert state machine.
#include "cost/budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/clock.h"
#include "cost/alerts.h"
#include "cost/forecast.h"

namespace gpu_autoscaler::cost {
namespace {

using ::testing::HasSubstr;

constexpr char kBudgetYaml[] = R"(
apiVersion: gpuautoscaler.io/v1alpha1
kind: Budget
metadata:
  name: vision-monthly
  namespace: ml
spec:
  scope:
    namespaces: [ml]
    selector:
      matchLabels: {team: vision}
      matchExpressions:
        - {key: project, operator: NotIn, values: [sandbox]}
  amount: 1000
  currency: EUR
  period: monthly
  thresholds: [50, 80, 100]
  notifications:
    - {type: slack, secretRef: {name: alerts, key: slack-url}}
    - {type: email, secretRef: {name: smtp, key: url}, to: [ml-leads@example.com]}
  enforcement: blockNewGPUPods
)";

TEST(Budget, ParsesEveryField) {
  auto b = ParseBudget(kBudgetYaml, "budget.yaml");
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  EXPECT_EQ(b->name, "vision-monthly");
  EXPECT_EQ(b->ns, "ml");
  const BudgetSpec& s = b->spec;
  EXPECT_EQ(b->kind, BudgetKind::kBudget);
  EXPECT_EQ(s.scope.namespaces, (std::vector<std::string>{"ml"}));
  EXPECT_EQ(s.scope.match_labels.at("team"), "vision");
  ASSERT_EQ(s.scope.match_expressions.size(), 1u);
  EXPECT_EQ(s.scope.match_expressions[0].op, LabelRequirement::Op::kNotIn);
  EXPECT_DOUBLE_EQ(s.amount, 1000);
  EXPECT_EQ(s.currency, "EUR");
  EXPECT_EQ(s.period, BudgetPeriod::kMonthly);
  EXPECT_EQ(s.thresholds_percent, (std::vector<double>{50, 80, 100}));
  ASSERT_EQ(s.channels.size(), 2u);
  EXPECT_EQ(s.channels[1].type, ChannelType::kEmail);
  EXPECT_EQ(s.channels[1].secret_ref.name, "smtp");
  EXPECT_EQ(s.channels[1].to, (std::vector<std::string>{"ml-leads@example.com"}));
  EXPECT_EQ(s.enforcement, Enforcement::kBlockNewGpuPods);
}

TEST(Budget, ParsesJsonToo) {
  auto b = ParseBudget(
      R"({"apiVersion":"gpuautoscaler.io/v1alpha1","kind":"Budget","metadata":{"name":"x"},)"
      R"("spec":{"amount":5,"period":"custom","customPeriod":{"start":"2024-05-01T00:00:00Z",)"
      R"("days":14}}})",
      "b.json");
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  EXPECT_EQ(b->spec.period, BudgetPeriod::kCustom);
  EXPECT_EQ(b->spec.custom_start, 1714521600);
  EXPECT_EQ(b->spec.custom_days, 14);
  EXPECT_EQ(b->spec.enforcement, Enforcement::kAlert);
}

TEST(Budget, ErrorsNameTheField) {
  struct Case {
    const char* spec;
    const char* message;
  };
  const Case cases[] = {
      {"amount: 10\nperiod: yearly", "b.yaml: spec.period: \"yearly\" is not one of"},
      {"period: daily", "b.yaml: spec.amount: missing"},
      {"amount: -3", "b.yaml: spec.amount: must be greater than 0"},
      {"amount: ten", "b.yaml: spec.amount: expected a number, got \"ten\""},
      {"amount: 10\nthresholds: [80, 50]", "spec.thresholds: must be strictly ascending"},
      {"amount: 10\nperiod: custom", "b.yaml: spec.customPeriod: required for period custom"},
      {"amount: 10\nenforcement: shout", "spec.enforcement: \"shout\" is not one of"},
      {"amount: 10\nscope: {selector: {matchLabels: {app: web}}}",
       "label key \"app\" is not an attribution label"},
      {"amount: 10\nnotifications: [{type: email, secretRef: {name: s, key: k}}]",
       "spec.notifications[0].to: an email channel needs at least one recipient"},
      {"amount: 10\nnotifications: [{type: fax, secretRef: {name: s, key: k}}]",
       "spec.notifications[0].type: \"fax\" is not one of"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.spec);
    std::string yaml = "metadata: {name: b}\nspec:\n";
    yaml += "  ";
    for (const char* ch = c.spec; *ch; ++ch) {  // indent the spec under "spec:"
      yaml += *ch;
      if (*ch == '\n') yaml += "  ";
    }
    auto b = ParseBudget(yaml, "b.yaml");
    ASSERT_FALSE(b.ok());
    EXPECT_THAT(b.error().message(), HasSubstr(c.message));
  }
  EXPECT_THAT(ParseBudget("spec: [", "b.yaml").error().message(), HasSubstr("b.yaml:"));
  EXPECT_THAT(ParseBudget("apiVersion: v1\nkind: Budget\n", "b.yaml").error().message(),
              HasSubstr("apiVersion"));
}

TEST(Budget, PeriodsAreCalendarAlignedInUtc) {
  const int64_t t = 1715778000;  // 2024-05-15T13:00:00Z, a Wednesday
  struct Case {
    BudgetPeriod period;
    int64_t start, end;
  };
  const Case cases[] = {
      {BudgetPeriod::kDaily, 1715731200, 1715817600},    // 05-15 .. 05-16
      {BudgetPeriod::kWeekly, 1715558400, 1716163200},   // Mon 05-13 .. Mon 05-20
      {BudgetPeriod::kMonthly, 1714521600, 1717200000},  // 05-01 .. 06-01
  };
  for (const Case& c : cases) {
    BudgetSpec spec;
    spec.period = c.period;
    EXPECT_EQ(spec.PeriodAt(t), (PeriodWindow{c.start, c.end})) << BudgetPeriodName(c.period);
  }
  BudgetSpec feb;
  feb.period = BudgetPeriod::kMonthly;
  EXPECT_EQ(feb.PeriodAt(1709208000), (PeriodWindow{1706745600, 1709251200}));  // leap Feb 2024
  EXPECT_EQ(feb.PeriodAt(1735689599), (PeriodWindow{1733011200, 1735689600}));  // Dec 31 23:59:59

  BudgetSpec custom;
  custom.period = BudgetPeriod::kCustom;
  custom.custom_start = 1714521600;  // 2024-05-01
  custom.custom_days = 14;
  EXPECT_EQ(custom.PeriodAt(t), (PeriodWindow{1714521600 + 14 * 86400, 1714521600 + 28 * 86400}));
  EXPECT_EQ(custom.PeriodAt(1714521600 - 1), (PeriodWindow{1714521600 - 14 * 86400, 1714521600}));
}

TEST(Budget, Rfc3339RoundTrip) {
  EXPECT_EQ(ParseRfc3339("2024-05-15T13:00:00Z").value(), 1715778000);
  EXPECT_EQ(ParseRfc3339("2024-05-15T15:00:00+02:00").value(), 1715778000);
  EXPECT_EQ(ParseRfc3339("2024-05-15T13:00:00.250Z").value(), 1715778000);
  EXPECT_EQ(FormatRfc3339(1715778000), "2024-05-15T13:00:00Z");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_FALSE(ParseRfc3339("2024-02-30T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2024-05-15 13:00:00").ok());
  EXPECT_FALSE(ParseRfc3339("yesterday").ok());
}

CostSample Sample(std::string ns, std::string team, std::string project, int64_t second,
                  double cost) {
  CostSample s;
  s.ns = std::move(ns);
  s.team = std::move(team);
  s.project = std::move(project);
  s.second = second;
  s.gpu_cost = cost;
  return s;
}

TEST(Budget, SpendInPeriodFollowsTheScope) {
  auto b = ParseBudget(kBudgetYaml, "budget.yaml");
  ASSERT_TRUE(b.ok());
  const PeriodWindow may{1714521600, 1717200000};
  std::vector<CostSample> samples = {
      Sample("ml", "vision", "detector", 1715778000, 10),      // in
      Sample("ml", "vision", "", 1715778000, 5),               // in (no project: NotIn holds)
      Sample("ml", "vision", "sandbox", 1715778000, 100),      // excluded project
      Sample("ml", "speech", "detector", 1715778000, 1000),    // other team
      Sample("web", "vision", "detector", 1715778000, 10000),  // other namespace
      Sample("ml", "vision", "detector", 1717200000, 7),       // next month
  };
  samples[0].cpu_cost = 0.5;
  samples[0].idle_cost = 0.25;
  EXPECT_DOUBLE_EQ(SpendInPeriod(samples, b->spec, may), 15.75);

  BudgetSpec cluster;  // no scope: everything, idle included
  CostSample idle;
  idle.idle = true;
  idle.second = 1715778000;
  idle.gpu_cost = 3;
  samples.push_back(idle);
  EXPECT_DOUBLE_EQ(SpendInPeriod(samples, cluster, may), 11115.75 + 3);
}

TEST(BudgetEnforcer, SeveralExhaustedBudgetsNameTheFirstByName) {
  auto b = ParseBudget(kBudgetYaml, "budget.yaml");
  ASSERT_TRUE(b.ok());
  const PeriodWindow may{1714521600, 1717200000};
  Budget later = *b;
  later.name = "zz-later";
  Budget first = *b;
  first.name = "aa-first";
  BudgetEnforcer enforcer;
  // Listed in the other order, as an informer may list them.
  enforcer.SetBudgets({{.budget = later, .spend = 2000, .period = may},
                       {.budget = first, .spend = 2000, .period = may}});
  AdmissionDecision d = enforcer.MayStart({.ns = "ml", .labels = {{"team", "vision"}}, .gpus = 1});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason.rfind("budget ml/aa-first is exhausted", 0), 0u) << d.reason;
}

TEST(BudgetEnforcer, BlocksNewGpuPodsOnlyWhenExhaustedAndInScope) {
  auto b = ParseBudget(kBudgetYaml, "budget.yaml");
  ASSERT_TRUE(b.ok());
  BudgetEnforcer enforcer;
  const PeriodWindow may{1714521600, 1717200000};
  PodAdmissionInfo vision_gpu{.ns = "ml", .labels = {{"team", "vision"}}, .gpus = 1};
  PodAdmissionInfo vision_cpu{.ns = "ml", .labels = {{"team", "vision"}}, .gpus = 0};
  PodAdmissionInfo speech_gpu{.ns = "ml", .labels = {{"team", "speech"}}, .gpus = 1};

  enforcer.SetBudgets({{.budget = *b, .spend = 999.99, .period = may}});
  EXPECT_TRUE(enforcer.MayStart(vision_gpu).allowed);

  enforcer.SetBudgets({{.budget = *b, .spend = 1000.5, .period = may}});
  AdmissionDecision d = enforcer.MayStart(vision_gpu);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason,
            "budget ml/vision-monthly is exhausted (1000.50 of 1000.00 EUR spent in the monthly "
            "period from 2024-05-01T00:00:00Z); new GPU pods are blocked until "
            "2024-06-01T00:00:00Z");
  EXPECT_TRUE(enforcer.MayStart(vision_cpu).allowed);
  EXPECT_TRUE(enforcer.MayStart(speech_gpu).allowed);
  EXPECT_TRUE(enforcer.SpotScaleDownRequests().empty());

  Budget alert_only = *b;
  alert_only.spec.enforcement = Enforcement::kAlert;
  Budget spot = *b;
  spot.name = "spot-saver";
  spot.spec.enforcement = Enforcement::kScaleDownSpot;
  enforcer.SetBudgets({{.budget = alert_only, .spend = 5000, .period = may},
                       {.budget = spot, .spend = 5000, .period = may}});
  EXPECT_TRUE(enforcer.MayStart(vision_gpu).allowed);
  EXPECT_EQ(enforcer.SpotScaleDownRequests(), (std::vector<std::string>{"ml/spot-saver"}));
}

// ---- Namespaced Budgets stay in their namespace; ClusterBudgets select namespaces ----

TEST(Budget, ANamespacedBudgetCoversOnlyItsOwnNamespace) {
  // Listing another namespace is refused, naming the entry.
  auto other = ParseBudget(
      "kind: Budget\nmetadata: {name: b, namespace: ml}\n"
      "spec: {amount: 10, scope: {namespaces: [ml, web]}}",
      "b.yaml");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().message(),
            "b.yaml: spec.scope.namespaces[1]: a Budget covers only its own namespace \"ml\", "
            "not \"web\"; use a ClusterBudget");
  // So is a namespaceSelector.
  auto selector = ParseBudget(
      "kind: Budget\nmetadata: {name: b, namespace: ml}\n"
      "spec: {amount: 10, scope: {namespaceSelector: {matchLabels: {org: a}}}}",
      "b.yaml");
  ASSERT_FALSE(selector.ok());
  EXPECT_THAT(selector.error().message(),
              HasSubstr("b.yaml: spec.scope.namespaceSelector: a Budget covers only its own"));
  // An empty scope is its namespace, not the cluster: no idle capacity, no
  // other namespace's pods.
  auto empty = ParseBudget("metadata: {name: b, namespace: ml}\nspec: {amount: 10}", "b.yaml");
  ASSERT_TRUE(empty.ok()) << empty.error().ToString();
  EXPECT_EQ(empty->spec.scope.namespaces, (std::vector<std::string>{"ml"}));
  EXPECT_FALSE(empty->spec.scope.cluster_wide());
  CostSample idle;
  idle.idle = true;
  idle.second = 1715778000;
  idle.gpu_cost = 3;
  const std::vector<CostSample> samples = {Sample("ml", "", "", 1715778000, 2),
                                           Sample("web", "", "", 1715778000, 40), idle};
  EXPECT_DOUBLE_EQ(SpendInPeriod(samples, empty->spec, {1714521600, 1717200000}), 2);
  // Without a namespace (a file), one namespace may still be named.
  auto file =
      ParseBudget("metadata: {name: b}\nspec: {amount: 10, scope: {namespaces: [ml]}}", "b.yaml");
  ASSERT_TRUE(file.ok()) << file.error().ToString();
  EXPECT_EQ(file->spec.scope.namespaces, (std::vector<std::string>{"ml"}));
}

constexpr char kClusterBudgetYaml[] = R"(
apiVersion: gpuautoscaler.io/v1alpha1
kind: ClusterBudget
metadata:
  name: org-research
spec:
  scope:
    namespaceSelector:
      matchLabels: {org: research}
      matchExpressions:
        - {key: stage, operator: NotIn, values: [sandbox]}
  amount: 100
  enforcement: blockNewGPUPods
)";

TEST(ClusterBudget, ParsesANamespaceSelector) {
  auto b = ParseBudget(kClusterBudgetYaml, "cb.yaml");
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  EXPECT_EQ(b->kind, BudgetKind::kClusterBudget);
  EXPECT_EQ(b->ns, "");
  EXPECT_EQ(b->DisplayName(), "ClusterBudget org-research");
  ASSERT_TRUE(b->spec.scope.namespace_selector.has_value());
  EXPECT_EQ(b->spec.scope.namespace_selector->match_labels.at("org"), "research");
  ASSERT_EQ(b->spec.scope.namespace_selector->match_expressions.size(), 1u);
  EXPECT_FALSE(b->spec.scope.cluster_wide());

  auto namespaced = ParseBudget(
      "kind: ClusterBudget\nmetadata: {name: c, namespace: ml}\nspec: {amount: 1}", "cb.yaml");
  ASSERT_FALSE(namespaced.ok());
  EXPECT_THAT(namespaced.error().message(), HasSubstr("cb.yaml: metadata.namespace:"));
  auto no_values = ParseBudget(
      "kind: ClusterBudget\nmetadata: {name: c}\nspec: {amount: 1, scope: {namespaceSelector: "
      "{matchExpressions: [{key: org, operator: In}]}}}",
      "cb.yaml");
  ASSERT_FALSE(no_values.ok());
  EXPECT_THAT(no_values.error().message(),
              HasSubstr("cb.yaml: spec.scope.namespaceSelector.matchExpressions[0].values: "
                        "required for In and NotIn"));
  auto other_kind =
      ParseBudget("kind: ResourceQuota\nmetadata: {name: c}\nspec: {amount: 1}", "cb.yaml");
  ASSERT_FALSE(other_kind.ok());
  EXPECT_THAT(other_kind.error().message(), HasSubstr("want Budget or ClusterBudget"));
}

TEST(ClusterBudget, NamespaceSelectorPicksNamespacesByTheirLabels) {
  auto b = ParseBudget(kClusterBudgetYaml, "cb.yaml");
  ASSERT_TRUE(b.ok());
  const NamespaceLabelIndex namespaces = {
      {"vision", {{"org", "research"}}},
      {"speech", {{"org", "research"}, {"stage", "prod"}}},
      {"play", {{"org", "research"}, {"stage", "sandbox"}}},  // NotIn sandbox
      {"web", {{"org", "product"}}},
  };
  CostSample idle;
  idle.idle = true;
  idle.second = 1715778000;
  idle.gpu_cost = 3;
  const std::vector<CostSample> samples = {
      Sample("vision", "", "", 1715778000, 1),    Sample("speech", "", "", 1715778000, 10),
      Sample("play", "", "", 1715778000, 100),    Sample("web", "", "", 1715778000, 1000),
      Sample("unknown", "", "", 1715778000, 1e4), idle,
  };
  const PeriodWindow may{1714521600, 1717200000};
  EXPECT_DOUBLE_EQ(SpendInPeriod(samples, b->spec, may, {}, &namespaces), 11);
  // Without the Namespaces' labels nothing is selected.
  EXPECT_DOUBLE_EQ(SpendInPeriod(samples, b->spec, may), 0);
  // An empty selector ({}) selects every namespace, still not idle capacity.
  BudgetSpec every = b->spec;
  every.scope.namespace_selector = NamespaceSelector{};
  EXPECT_DOUBLE_EQ(SpendInPeriod(samples, every, may, {}, &namespaces), 1111);
  // A name list and a selector must both hold.
  BudgetSpec both = b->spec;
  both.scope.namespaces = {"speech", "web"};
  EXPECT_DOUBLE_EQ(SpendInPeriod(samples, both, may, {}, &namespaces), 10);
}

TEST(BudgetEnforcer, AClusterBudgetBlocksEverySelectedNamespaceAndIsNamedFirst) {
  auto cluster = ParseBudget(kClusterBudgetYaml, "cb.yaml");
  auto local = ParseBudget(kBudgetYaml, "budget.yaml");
  ASSERT_TRUE(cluster.ok() && local.ok());
  const PeriodWindow may{1714521600, 1717200000};
  BudgetEnforcer enforcer;
  enforcer.SetBudgets({{.budget = *local, .spend = 5000, .period = may},
                       {.budget = *cluster, .spend = 100, .period = may}});
  // In a selected namespace (and under the Budget too): the ClusterBudget is named.
  AdmissionDecision ml = enforcer.MayStart({.ns = "ml",
                                            .labels = {{"team", "vision"}},
                                            .gpus = 1,
                                            .namespace_labels = {{"org", "research"}}});
  EXPECT_FALSE(ml.allowed);
  EXPECT_EQ(ml.reason,
            "ClusterBudget org-research is exhausted (100.00 of 100.00 USD spent in the monthly "
            "period from 2024-05-01T00:00:00Z); new GPU pods are blocked until "
            "2024-06-01T00:00:00Z");
  AdmissionDecision other =
      enforcer.MayStart({.ns = "nlp", .gpus = 2, .namespace_labels = {{"org", "research"}}});
  EXPECT_FALSE(other.allowed);
  EXPECT_THAT(other.reason, HasSubstr("ClusterBudget org-research"));
  // Unselected namespaces: allowed (the Budget covers only "ml").
  EXPECT_TRUE(enforcer.MayStart({.ns = "web", .gpus = 1, .namespace_labels = {{"org", "product"}}})
                  .allowed);
  EXPECT_TRUE(enforcer
                  .MayStart({.ns = "play",
                             .gpus = 1,
                             .namespace_labels = {{"org", "research"}, {"stage", "sandbox"}}})
                  .allowed);
}

// ---- Forecasts ----

TEST(Forecast, HoltWintersMatchesAHandComputedSeries) {
  // Season 2, alpha = beta = gamma = 0.5, data 1 3 2 4:
  //   L = 2, T = 0.5, S = (-1, 1) from the first two seasons;
  //   t=2: L = 2.75, T = 0.625, S2 = -0.875; t=3: L = 3.1875, T = 0.53125, S3 = 0.90625;
  //   F(1) = 3.1875 + 0.53125 - 0.875 = 2.84375; F(2) = 3.1875 + 1.0625 + 0.90625 = 5.15625.
  HoltWintersOptions o{.alpha = 0.5, .beta = 0.5, .gamma = 0.5, .season_length = 2};
  const double x[] = {1, 3, 2, 4};
  EXPECT_NEAR(HoltWintersFutureSum(x, 1, o), 2.84375, 1e-12);
  EXPECT_NEAR(HoltWintersFutureSum(x, 2, o), 8.0, 1e-12);
  EXPECT_NEAR(HoltWintersFutureSum(x, 1.5, o), 2.84375 + 0.5 * 5.15625, 1e-12);
}

TEST(Forecast, HoltLinearWithLessThanTwoSeasons) {
  // alpha = beta = 0.5, data 1 2 3: L = 3, T = 1, so F(1) = 4, F(2) = 5.
  HoltWintersOptions o{.alpha = 0.5, .beta = 0.5, .gamma = 0.5, .season_length = 24};
  const double x[] = {1, 2, 3};
  EXPECT_NEAR(HoltWintersFutureSum(x, 2, o), 9.0, 1e-12);
  const double one[] = {2.5};
  EXPECT_NEAR(HoltWintersFutureSum(one, 4, o), 10.0, 1e-12);
  // Forecasts never go negative.
  const double falling[] = {10, 5, 0};
  EXPECT_NEAR(HoltWintersFutureSum(falling, 3, {.alpha = 1, .beta = 1, .season_length = 24}), 0,
              1e-12);
}

TEST(Forecast, PeriodForecastLinearAndHoltWinters) {
  const PeriodWindow day{0, 10 * 3600};
  // Four hourly buckets of 1.0, now at 4 h: run rate 1/h for 6 more hours.
  const double hourly[] = {1, 1, 1, 1};
  PeriodForecast f = ForecastPeriod(hourly, 3600, day, 4 * 3600);
  EXPECT_DOUBLE_EQ(f.spent, 4);
  EXPECT_NEAR(f.linear, 10, 1e-12);
  EXPECT_NEAR(f.holt_winters, 10, 1e-9);  // flat series: level 1, no trend

  // A rising series: Holt-Winters follows the trend, the run rate does not.
  const double rising[] = {1, 2, 3, 4};
  PeriodForecast r = ForecastPeriod(rising, 3600, day, 4 * 3600);
  EXPECT_NEAR(r.linear, 10 + 15, 1e-12);  // 10 spent at 2.5/h for 6 h
  EXPECT_GT(r.holt_winters, r.linear);

  // Nothing elapsed: the forecast is what was spent.
  PeriodForecast start = ForecastPeriod({}, 3600, day, 0);
  EXPECT_EQ(start.linear, 0);
  EXPECT_EQ(start.holt_winters, 0);
}

// ---- Alert state machine ----

class BudgetAlertsTest : public ::testing::Test {
 protected:
  BudgetAlertsTest() {
    spec_.amount = 100;
    spec_.period = BudgetPeriod::kDaily;
    spec_.thresholds_percent = {50, 80, 100};
  }
  static std::vector<std::pair<AlertAction, double>> Summarise(
      const std::vector<AlertEvent>& events) {
    std::vector<std::pair<AlertAction, double>> out;
    for (const AlertEvent& e : events)
      out.emplace_back(e.action, e.threshold_percent);
    return out;
  }
  BudgetSpec spec_;
  FakeClock clock_;  // starts 2027-01-15T08:00:00Z
};

using Events = std::vector<std::pair<AlertAction, double>>;
constexpr AlertAction kFire = AlertAction::kFire;
constexpr AlertAction kResolve = AlertAction::kResolve;

TEST_F(BudgetAlertsTest, FiresOncePerThresholdPerPeriodAndResolvesOnRollover) {
  BudgetAlerts alerts(spec_, clock_);
  const PeriodWindow today = alerts.period();
  EXPECT_EQ(today.start, 1'800'000'000 - 8 * 3600);
  EXPECT_TRUE(alerts.Observe(10).empty());
  std::vector<AlertEvent> e = alerts.Observe(55);
  EXPECT_EQ(Summarise(e), (Events{{kFire, 50}}));
  EXPECT_EQ(e[0].period, today);
  EXPECT_EQ(e[0].spend, 55);
  EXPECT_EQ(e[0].amount, 100);
  EXPECT_EQ(e[0].at, 1'800'000'000);
  EXPECT_TRUE(alerts.Observe(60).empty());  // once only
  clock_.Step(std::chrono::hours(1));
  EXPECT_EQ(Summarise(alerts.Observe(120)), (Events{{kFire, 80}, {kFire, 100}}));
  EXPECT_TRUE(alerts.Observe(130).empty());
  EXPECT_TRUE(alerts.states()[2].firing);
  EXPECT_EQ(alerts.states()[2].fired_at, 1'800'000'000 + 3600);

  clock_.Step(std::chrono::hours(16));  // 01:00 the next day
  e = alerts.Observe(5);
  EXPECT_EQ(Summarise(e), (Events{{kResolve, 50}, {kResolve, 80}, {kResolve, 100}}));
  EXPECT_EQ(e[0].period, today);
  EXPECT_EQ(e[0].spend, 130);  // the period's last observed spend
  EXPECT_EQ(alerts.period().start, today.end);
  EXPECT_TRUE(alerts.Observe(6).empty());
  EXPECT_EQ(Summarise(alerts.Observe(50)), (Events{{kFire, 50}}));  // fires again, new period
}

TEST_F(BudgetAlertsTest, RestoredStateDoesNotRefire) {
  const int64_t today = 1'800'000'000 - 8 * 3600;
  BudgetAlerts alerts(spec_, clock_);
  ThresholdState saved[] = {
      {.threshold_percent = 50,
       .firing = true,
       .period_start = today,
       .fired_at = today + 60,
       .spend_at_fire = 51},
      {.threshold_percent = 80,
       .firing = true,
       .period_start = today - 86400,
       .fired_at = today - 100,
       .spend_at_fire = 85},
  };
  alerts.Restore(saved);
  std::vector<AlertEvent> e = alerts.Observe(60);
  // 80 fired yesterday: it resolves (with the spend it fired at); 50 stays quiet.
  EXPECT_EQ(Summarise(e), (Events{{kResolve, 80}}));
  EXPECT_EQ(e[0].period, (PeriodWindow{today - 86400, today}));
  EXPECT_EQ(e[0].spend, 85);
  EXPECT_EQ(Summarise(alerts.Observe(81)), (Events{{kFire, 80}}));
}

}  // namespace
}  // namespace gpu_autoscaler::cost
