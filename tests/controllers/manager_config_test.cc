#include "controllers/manager_config.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::controllers {
namespace {

TEST(ManagerConfigTest, EmptyTextGivesDefaults) {
  auto cfg = ParseManagerConfig("", "config.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->cost.interval, std::chrono::seconds(1));
  EXPECT_EQ(cfg->cost.max_backfill_seconds, 3600);
  EXPECT_EQ(cfg->cost.metrics_top_n, 100u);
  EXPECT_EQ(cfg->budgets.evaluation_period, std::chrono::seconds(30));
}

TEST(ManagerConfigTest, ReadsEverySection) {
  auto cfg = ParseManagerConfig(R"(
apiVersion: gpuautoscaler.io/v1alpha1
kind: ManagerConfig
cost:
  interval: 500ms
  database: /var/lib/gpu-autoscaler/cost.db
  maxBackfill: 2h
  shareIdleCost: true
  metricsTopN: 20
  attributionLabels: {team: owner, project: app, experiment: run}
  pricing: |
    currency: USD
  prometheusURL: http://127.0.0.1:9090
  prometheusSelector: job="dcgm"
  idleThreshold: 0.1
  idleWindow: 10m
budgets:
  evaluationPeriod: 2s
  clusterName: prod-eu
  pagerDutyEventsURL: http://127.0.0.1:9/v2/enqueue
sharingPolicies:
  resync: 1m
)",
                                "config.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->cost.interval, std::chrono::milliseconds(500));
  EXPECT_EQ(cfg->cost.database, "/var/lib/gpu-autoscaler/cost.db");
  EXPECT_EQ(cfg->cost.max_backfill_seconds, 7200);
  EXPECT_TRUE(cfg->cost.share_idle_cost);
  EXPECT_EQ(cfg->cost.metrics_top_n, 20u);
  EXPECT_EQ(cfg->cost.attribution_labels.team, "owner");
  EXPECT_EQ(cfg->cost.attribution_labels.experiment, "run");
  EXPECT_EQ(cfg->cost.pricing_overrides, "currency: USD\n");
  EXPECT_EQ(cfg->cost.prometheus_url, "http://127.0.0.1:9090");
  EXPECT_EQ(cfg->cost.prometheus_selector, "job=\"dcgm\"");
  EXPECT_DOUBLE_EQ(cfg->cost.idle_threshold, 0.1);
  EXPECT_EQ(cfg->cost.idle_window_seconds, 600);
  EXPECT_EQ(cfg->budgets.evaluation_period, std::chrono::seconds(2));
  EXPECT_EQ(cfg->budgets.cluster_name, "prod-eu");
  EXPECT_EQ(cfg->sharing_policies.resync, std::chrono::minutes(1));
}

TEST(ManagerConfigTest, UnknownFieldsAreErrorsWithTheirPath) {
  auto cfg = ParseManagerConfig("cost:\n  intervall: 1s\n", "config.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().message(),
            "config.yaml: cost.intervall: unknown field (known: interval, database, maxBackfill, "
            "shareIdleCost, metricsTopN, attributionLabels, pricing, prometheusURL, "
            "prometheusSelector, idleThreshold, idleWindow)");
  cfg = ParseManagerConfig("budget:\n  evaluationPeriod: 1s\n", "cm");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.error().message().find("cm: budget: unknown field"), std::string::npos);
}

TEST(ManagerConfigTest, BadValuesNameTheField) {
  auto cfg = ParseManagerConfig("cost:\n  interval: soon\n", "c.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.error().message().find("c.yaml: cost.interval: \"soon\" is not a duration"),
            std::string::npos)
      << cfg.error().message();
  cfg = ParseManagerConfig("cost:\n  metricsTopN: 0\n", "c.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.error().message().find("cost.metricsTopN"), std::string::npos);
  cfg = ParseManagerConfig("cost:\n  shareIdleCost: maybe\n", "c.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.error().message().find("cost.shareIdleCost: expected true or false"),
            std::string::npos);
  cfg = ParseManagerConfig("cost: [1, 2\n", "c.yaml");  // malformed YAML
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.error().message().find("c.yaml: line"), std::string::npos);
  cfg = ParseManagerConfig("kind: Deployment\n", "c.yaml");
  ASSERT_FALSE(cfg.ok());
}

TEST(ManagerConfigTest, RestartOnlyChangesAreNamed) {
  auto a = ParseManagerConfig("cost:\n  pricing: 'x: 1'\n", "a");
  auto b = ParseManagerConfig("cost:\n  pricing: 'x: 2'\n  database: other.db\n", "b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(RestartOnlyChanges(*a, *b), std::vector<std::string>{"cost.database"});
  EXPECT_TRUE(RestartOnlyChanges(*a, *a).empty());
}

TEST(ManagerConfigTest, ReadsProfiles) {
  auto defaults = ParseManagerConfig("", "config.yaml");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->profiles.interval, std::chrono::minutes(1));
  EXPECT_EQ(defaults->profiles.min_replicas, 2);                 // VPA's --min-replicas
  EXPECT_DOUBLE_EQ(defaults->profiles.eviction_tolerance, 0.5);  // VPA's --eviction-tolerance
  auto cfg = ParseManagerConfig(R"(
profiles:
  interval: 30s
  checkpointInterval: 5m
  updaterInterval: 2m
  minReplicas: 3
  evictionTolerance: 0.25
  prometheusURL: http://prometheus:9090
)",
                                "config.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->profiles.interval, std::chrono::seconds(30));
  EXPECT_EQ(cfg->profiles.checkpoint_interval, std::chrono::minutes(5));
  EXPECT_EQ(cfg->profiles.updater_interval, std::chrono::minutes(2));
  EXPECT_EQ(cfg->profiles.min_replicas, 3);
  EXPECT_DOUBLE_EQ(cfg->profiles.eviction_tolerance, 0.25);
  EXPECT_EQ(cfg->profiles.prometheus_url, "http://prometheus:9090");
  EXPECT_EQ(RestartOnlyChanges(*defaults, *cfg), std::vector<std::string>{"profiles"});

  auto bad = ParseManagerConfig("profiles:\n  evictionTolerance: 2\n", "config.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(),
            "config.yaml: profiles.evictionTolerance: expected a fraction from 0 to 1, e.g. 0.5");
  auto typo = ParseManagerConfig("profiles:\n  intervall: 1s\n", "config.yaml");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.error().message().find("profiles.intervall: unknown field"), std::string::npos);
}

TEST(ManagerConfigTest, NotANumberIsOutOfEveryRange) {
  // strtod reads "nan" and "inf", which a range check alone lets through
  // (found by manager_config_fuzz).
  for (const char* text : {"nan", "NaN", "-nan", "inf"}) {
    auto tolerance =
        ParseManagerConfig(std::string("profiles:\n  evictionTolerance: ") + text, "config.yaml");
    EXPECT_FALSE(tolerance.ok()) << text;
    auto threshold =
        ParseManagerConfig(std::string("cost:\n  idleThreshold: ") + text, "config.yaml");
    ASSERT_FALSE(threshold.ok()) << text;
    EXPECT_EQ(threshold.error().message(),
              "config.yaml: cost.idleThreshold: expected a utilisation between 0 and 1, e.g. 0.05");
  }
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
