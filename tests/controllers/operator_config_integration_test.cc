// The operator end to end, its configuration: the cost history in PostgreSQL
// with its URL read from a Secret, through an outage and a kill -9; the
// manager's ConfigMap watched live (a bad version is refused with an Event);
// a bad configuration at start refused with the field's path. Same processes
// and fixture as operator_integration_test.cc.
#include <libpq-fe.h>
#include <signal.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "controllers/operator_fixture.h"
#include "cost/store_factory.h"
#include "support/postgres_fixture.h"

namespace gpu_autoscaler {
namespace {

using namespace operator_testing;  // NOLINT: the fixture's vocabulary (operator_fixture.h)

// Runs one SQL statement as the server's superuser; "" or the error.
std::string AdminSql(int port, const std::string& sql) {
  const std::string conninfo =
      "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres";
  PGconn* conn = PQconnectdb(conninfo.c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
      error = PQerrorMessage(conn);
    PQclear(r);
  }
  PQfinish(conn);
  return error;
}

// The cost history in PostgreSQL, its URL read from a Secret. The database
// goes away mid-run (connections refused, open ones terminated), the manager
// is killed with SIGKILL during the outage, the database comes back, the
// manager restarts: every second is stored once, none is missing.
TEST_F(OperatorTest, PostgresFromASecretSurvivesAnOutageAndACrashWithoutLosingASecond) {
  std::string why;
  testing::TestPostgres* pg = testing::TestPostgres::Shared(&why);
  if (pg == nullptr) GTEST_SKIP() << "no PostgreSQL: " << why;
  auto url = pg->CreateDatabase("operator");
  ASSERT_TRUE(url.ok()) << url.error().ToString();
  const std::string db = url->substr(url->rfind('/') + 1);
  Create(kube::resources::kSecrets, ns_,
         {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "cost-db"}}},
          {"data", {{"url", Base64Encode(*url)}}}});
  const std::string node_name = "pg-node-" + ns_;
  json node = Create(kube::resources::kNodes, "",
                     {{"apiVersion", "v1"},
                      {"kind", "Node"},
                      {"metadata",
                       {{"name", node_name},
                        {"labels", {{"node.kubernetes.io/instance-type", "p4d.24xlarge"}}}}}});
  SetStatus(kube::resources::kNodes, "", node,
            {{"allocatable", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}}});
  json pod = Create(kube::resources::kPods, ns_,
                    {{"apiVersion", "v1"},
                     {"kind", "Pod"},
                     {"metadata", {{"name", "trainer"}}},
                     {"spec",
                      {{"nodeName", node_name},
                       {"containers",
                        {{{"name", "main"},
                          {"image", "cuda"},
                          {"resources", {{"limits", {{"nvidia.com/gpu", "2"}}}}}}}}}}});
  SetStatus(kube::resources::kPods, ns_, pod, {{"phase", "Running"}});

  auto start = [&] {
    ASSERT_TRUE(manager_.Spawn({testing::BinaryPath("gpu-autoscaler-manager"),
                                "--kubeconfig=" + kubeconfig_, "--metrics-bind-address=127.0.0.1:0",
                                "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0",
                                "--controllers=cost", "--cost-db-secret=" + ns_ + "/cost-db/url"},
                               dir_ + "/manager.log"));
  };
  auto stored = [&] {
    Seconds s;
    auto store = cost::OpenCostStore(*url);
    if (!store.ok()) return s;
    auto report = (*store)->Query({.window = {0, 4'000'000'000},
                                   .resolution = cost::Resolution::kSecond,
                                   .group_by = {cost::Dimension::kPod},
                                   .filters = {{cost::Dimension::kPod, ns_ + "/trainer"}},
                                   .bucket = cost::Resolution::kSecond});
    if (!report.ok()) return s;
    for (const auto& row : report->rows) {
      s.count += row.totals.samples;
      if (s.first == 0 || row.bucket < s.first) s.first = row.bucket;
      s.last = std::max(s.last, row.bucket);
    }
    return s;
  };
  start();
  Seconds before;
  ASSERT_TRUE(WaitFor([&] { return (before = stored()).count >= 3; })) << manager_.Log();

  // The outage: no new connections, the open ones cut.
  ASSERT_EQ(AdminSql(pg->port(), "ALTER DATABASE " + db + " ALLOW_CONNECTIONS false"), "");
  ASSERT_EQ(AdminSql(pg->port(),
                     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = '" +
                         db + "'"),
            "");
  ASSERT_TRUE(WaitFor([&] {
    return manager_.Log().find("cost metering failed") != std::string::npos;
  })) << manager_.Log();
  std::this_thread::sleep_for(std::chrono::seconds(2));  // seconds pile up unstored
  manager_.Kill(SIGKILL);                                // and the manager dies meanwhile
  ASSERT_EQ(AdminSql(pg->port(), "ALTER DATABASE " + db + " ALLOW_CONNECTIONS true"), "");
  const int64_t back = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  start();
  Seconds after;
  ASSERT_TRUE(WaitFor([&] { return (after = stored()).last >= back + 2; })) << manager_.Log();
  EXPECT_EQ(after.first, before.first);
  EXPECT_EQ(after.count, after.last - after.first + 1)
      << "seconds lost or doubled across the outage and the crash: " << after.count << " stored "
      << "for " << after.first << ".." << after.last;
  EXPECT_NE(manager_.Log().find("resuming cost metering after the newest stored second"),
            std::string::npos);
  // The database URL (with its credentials) never reaches the log, even
  // through the outage's connection errors.
  EXPECT_EQ(manager_.Log().find(*url), std::string::npos) << manager_.Log();
  const size_t at = url->find('@');
  if (at != std::string::npos) {
    EXPECT_EQ(manager_.Log().find(url->substr(0, at)), std::string::npos) << manager_.Log();
  }
}

// The configuration from a watched ConfigMap: a bad version gets a Warning
// Event and changes nothing; a good one is applied.
TEST_F(OperatorTest, AWatchedConfigMapRejectsABadVersionWithAnEvent) {
  if (!server_->supports_faults()) GTEST_SKIP() << "reads Events of our own server";
  const json configmap = {{"apiVersion", "v1"},
                          {"kind", "ConfigMap"},
                          {"metadata", {{"name", "manager-config"}}},
                          {"data", {{"config.yaml", "cost:\n  pricing: |\n    currency: USD\n"}}}};
  Create(kube::resources::kConfigMaps, ns_, configmap);
  ASSERT_TRUE(manager_.Spawn(
      {testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig_,
       "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
       "--health-probe-bind-address=127.0.0.1:0", "--controllers=cost",
       "--config-configmap=" + ns_ + "/manager-config", "--cost-db=" + dir_ + "/cost.db"},
      dir_ + "/manager.log"));
  auto event_reasons = [&] {
    std::vector<std::string> reasons;
    auto events = client_->List({kube::resources::kEvents, ns_, "", ""});
    if (!events.ok()) return reasons;
    for (const json& e : events->at("items"))
      if (e["involvedObject"]["name"] == "manager-config")
        reasons.push_back(e["reason"].get<std::string>() + ": " + e.value("message", ""));
    return reasons;
  };
  auto has = [&](const std::string& prefix) {
    for (const std::string& r : event_reasons())
      if (r.rfind(prefix, 0) == 0) return true;
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return has("ConfigApplied"); })) << manager_.Log();
  json bad = Get(kube::resources::kConfigMaps, ns_, "manager-config");
  bad["data"]["config.yaml"] = "cost:\n  pricng: oops\n";
  ASSERT_TRUE(
      client_->Replace({kube::resources::kConfigMaps, ns_, "manager-config", ""}, bad).ok());
  ASSERT_TRUE(WaitFor([&] { return has("InvalidConfig"); })) << manager_.Log();
  bool named = false;
  for (const std::string& r : event_reasons())
    named |= r.find("cost.pricng: unknown field") != std::string::npos &&
             r.find("last good configuration stays in force") != std::string::npos;
  EXPECT_TRUE(named);
  EXPECT_TRUE(manager_.running());
  EXPECT_FALSE(manager_.TryWait().has_value()) << "the manager must keep running";
}

TEST_F(OperatorTest, RejectsABadConfigurationAtStartWithTheFieldPath) {
  std::ofstream(config_, std::ios::trunc) << "cost:\n  intervall: 1s\n";
  ChildProcess bad;
  ASSERT_TRUE(bad.Spawn({testing::BinaryPath("gpu-autoscaler-manager"),
                         "--kubeconfig=" + kubeconfig_, "--config=" + config_},
                        dir_ + "/bad.log"));
  std::optional<int> status;
  ASSERT_TRUE(WaitFor([&] { return (status = bad.TryWait()).has_value(); })) << bad.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << bad.Log();
  EXPECT_NE(bad.Log().find("cost.intervall: unknown field"), std::string::npos) << bad.Log();
}

}  // namespace
}  // namespace gpu_autoscaler
