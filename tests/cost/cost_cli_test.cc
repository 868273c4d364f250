// Runs the real `gpu-autoscaler` program (cost, budget status, roi) on a
// SQLite cost history filled by the test, and checks the rows it prints.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cost/budget.h"
#include "cost/sqlite_store.h"
#include "gtest/gtest.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::cost {
namespace {

constexpr int64_t kT0 = 1'800'000'000 - 1'800'000'000 % 86400;  // midnight UTC
constexpr int64_t kHours = 2;

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CostCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = testing::BinaryPath("gpu-autoscaler");
    if (::access(binary_.c_str(), X_OK) != 0) GTEST_SKIP() << binary_ << " is not built";
    dir_ = std::filesystem::temp_directory_path() /
           ("gpa-cost-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "cost.db").string();
    Fill();
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Two hours of: ml/train-0 on half a spot A100 ($1.60/GPU-h), web/web-0 on a
  // whole on-demand L4 ($0.8048/h), and half a GPU of node gpu-a left idle.
  void Fill() {
    CostSample ml;
    ml.pod_uid = "uid-train-0";
    ml.pod_name = "train-0";
    ml.ns = "ml";
    ml.team = "vision";
    ml.project = "detector";
    ml.experiment = "exp-1";
    ml.node = "gpu-a";
    ml.gpu_model = "A100-SXM4-80GB";
    ml.tier = CapacityTier::kSpot;
    ml.gpu_share = 0.5;
    ml.gpu_cost = 0.5 * 1.6 / 3600;
    ml.cpu_cost = 0.2 / 3600;
    ml.memory_cost = 0.1 / 3600;
    ml.gpu_utilization = 0.5;
    ml.usage_cost = ml.gpu_cost * 0.5;
    CostSample web;
    web.pod_uid = "uid-web-0";
    web.pod_name = "web-0";
    web.ns = "web";
    web.node = "gpu-b";
    web.gpu_model = "L4";
    web.gpu_share = 1;
    web.gpu_cost = 0.8048 / 3600;
    web.cpu_cost = 0.2 / 3600;
    web.memory_cost = 0.1 / 3600;
    CostSample idle;
    idle.pod_uid = "idle/gpu-a";
    idle.node = "gpu-a";
    idle.gpu_model = "A100-SXM4-80GB";
    idle.tier = CapacityTier::kSpot;
    idle.idle = true;
    idle.gpu_share = 0.5;
    idle.gpu_cost = 0.8 / 3600;

    auto store = SqliteCostStore::Open(db_);
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    std::vector<CostSample> batch;
    for (int64_t t = kT0; t < kT0 + kHours * 3600; ++t) {
      for (CostSample* s : {&ml, &web, &idle}) {
        s->second = t;
        batch.push_back(*s);
      }
      if (batch.size() >= 3000) {
        ASSERT_TRUE((*store)->Append(batch).ok());
        batch.clear();
      }
    }
    ASSERT_TRUE((*store)->Append(batch).ok());
  }

  CliRun Exec(const std::vector<std::string>& args) {
    std::string command = binary_;
    for (const std::string& a : args)
      command += " '" + a + "'";
    const std::string err_path = (dir_ / "stderr.txt").string();
    command += " 2>'" + err_path + "'";
    CliRun run;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return run;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0)
      run.out.append(buf, n);
    const int status = ::pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.err = testing::ReadFileOrDie(err_path);
    return run;
  }

  std::vector<std::string> Window() const {
    return {"--since", FormatRfc3339(kT0), "--until", FormatRfc3339(kT0 + kHours * 3600), "--db",
            db_};
  }

  std::string binary_;
  std::filesystem::path dir_;
  std::string db_;
};

std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ','))
      cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    rows.push_back(cells);
  }
  return rows;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  return lines;
}

TEST_F(CostCliTest, CostByNamespaceAsCsv) {
  std::vector<std::string> args = {"cost", "--by", "namespace", "-o", "csv"};
  for (const std::string& a : Window())
    args.push_back(a);
  CliRun run = Exec(args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto rows = ParseCsv(run.out);
  ASSERT_EQ(rows.size(), 4u) << run.out;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"NAMESPACE", "GPU-HOURS", "GPU", "CPU", "MEMORY",
                                               "IDLE", "TOTAL", "SHARE"}));
  // Sorted by total. web: 2 GPU-hours of an L4 at $0.8048 + CPU 0.40 + memory 0.20.
  EXPECT_EQ(rows[1], (std::vector<std::string>{"web", "2.00", "1.61", "0.40", "0.20", "0.00",
                                               "2.21", "36.8%"}));
  // ml: 1 GPU-hour (half a GPU for 2 h) at $1.60 + CPU 0.40 + memory 0.20.
  EXPECT_EQ(rows[2], (std::vector<std::string>{"ml", "1.00", "1.60", "0.40", "0.20", "0.00", "2.20",
                                               "36.6%"}));
  // Idle capacity last: half an A100 for 2 h at $0.80/h.
  EXPECT_EQ(rows[3], (std::vector<std::string>{"(idle)", "0.00", "0.00", "0.00", "0.00", "1.60",
                                               "1.60", "26.6%"}));
}

TEST_F(CostCliTest, CostTableIsAligned) {
  std::vector<std::string> args = {"cost", "--by", "team,tier"};
  for (const std::string& a : Window())
    args.push_back(a);
  CliRun run = Exec(args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto lines = Lines(run.out);
  ASSERT_GE(lines.size(), 7u) << run.out;
  EXPECT_EQ(lines[0], "Cost by team,tier, " + FormatRfc3339(kT0) + " to " +
                          FormatRfc3339(kT0 + 7200) + " (minute precision, sqlite)");
  // Header, three rows, a rule and TOTAL, all as wide as the header.
  const std::string& header = lines[2];
  EXPECT_EQ(header.substr(0, 4), "TEAM");
  for (size_t i = 3; i < lines.size(); ++i)
    EXPECT_EQ(lines[i].size(), header.size()) << lines[i];
  EXPECT_NE(run.out.find("(unlabelled)  on-demand"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("vision        spot"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("(idle)        spot"), std::string::npos) << run.out;
  // The TOTAL row ends with the grand total, right-aligned under TOTAL.
  const std::string& total = lines.back();
  EXPECT_EQ(total.substr(0, 5), "TOTAL");
  EXPECT_NE(total.find("6.01  100.0%"), std::string::npos) << total;
}

TEST_F(CostCliTest, CostAsJsonWithFilter) {
  std::vector<std::string> args = {"cost", "--by", "pod", "--filter", "tier=spot", "-o", "json"};
  for (const std::string& a : Window())
    args.push_back(a);
  CliRun run = Exec(args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  nlohmann::json doc = nlohmann::json::parse(run.out);
  EXPECT_EQ(doc["resolution"], "second");  // per-pod rows come from the raw seconds
  ASSERT_EQ(doc["rows"].size(), 2u);
  EXPECT_EQ(doc["rows"][0]["pod"], "ml/train-0");
  EXPECT_NEAR(doc["rows"][0]["total_cost"].get<double>(), 2.2, 1e-9);
  EXPECT_NEAR(doc["rows"][0]["usage_cost"].get<double>(), 0.8, 1e-9);
  EXPECT_EQ(doc["rows"][1]["pod"], "idle/gpu-a");
  EXPECT_TRUE(doc["rows"][1]["idle"].get<bool>());
  EXPECT_NEAR(doc["total"]["total_cost"].get<double>(), 3.8, 1e-9);
}

// Reports open the history read-only: they never migrate an old schema (they
// say to upgrade it through the manager) and never write to the file.
TEST_F(CostCliTest, ReportsNeverWriteOrMigrateTheHistory) {
  auto read_file = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  {
    auto checkpoint = SqliteCostStore::Open(db_);  // fold the WAL into the file first
    ASSERT_TRUE(checkpoint.ok());
  }
  const std::string before = read_file(db_);
  CliRun run = Exec({"cost", "--by", "namespace", "--since", FormatRfc3339(kT0), "--until",
                     FormatRfc3339(kT0 + 3600), "--db", db_});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(read_file(db_), before) << "a report changed the history file";

  const std::string old_db = (dir_ / "old.db").string();
  {
    auto old = SqliteCostStore::Open(old_db, {.schema_version = 2});
    ASSERT_TRUE(old.ok()) << old.error().ToString();
  }
  run = Exec({"cost", "--by", "namespace", "--db", old_db});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("schema version 2 is older than this program reads (" +
                         std::to_string(kLatestCostSchemaVersion) + ")"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("upgrade it by running gpu-autoscaler-manager"), std::string::npos)
      << run.err;
  auto still_old = SqliteCostStore::Open(old_db, {.schema_version = 2});
  ASSERT_TRUE(still_old.ok());
  EXPECT_EQ((*still_old)->SchemaVersion().value(), 2) << "a report migrated the history";
}

TEST_F(CostCliTest, BadArgumentsAreUsageErrors) {
  CliRun bad_by = Exec({"cost", "--by", "colour", "--db", db_});
  EXPECT_EQ(bad_by.exit_code, 2);
  EXPECT_NE(bad_by.err.find("unknown dimension \"colour\""), std::string::npos) << bad_by.err;
  CliRun bad_since = Exec({"cost", "--since", "yesterday", "--db", db_});
  EXPECT_EQ(bad_since.exit_code, 2);
  EXPECT_NE(bad_since.err.find("bad time \"yesterday\""), std::string::npos) << bad_since.err;
  CliRun missing = Exec({"cost", "--db", (dir_ / "typo.db").string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no such cost history"), std::string::npos) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "typo.db"));
  CliRun no_db = Exec({"cost"});
  EXPECT_EQ(no_db.exit_code, 2);
  EXPECT_NE(no_db.err.find("--db is required"), std::string::npos);
  CliRun help = Exec({"cost", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--by DIMS"), std::string::npos);
  for (const char* command : {"roi", "budget"}) {
    CliRun h = Exec({command, "--help"});
    EXPECT_EQ(h.exit_code, 0) << command;
    EXPECT_NE(h.out.find("Usage: gpu-autoscaler"), std::string::npos) << command;
  }
}

TEST_F(CostCliTest, BudgetStatus) {
  const std::string budgets = (dir_ / "budgets.yaml").string();
  std::ofstream(budgets) << R"(apiVersion: gpuautoscaler.io/v1alpha1
kind: Budget
metadata: {name: ml-daily, namespace: ml}
spec:
  scope: {namespaces: [ml]}
  amount: 4
  currency: USD
  period: daily
  thresholds: [50, 80, 100]
  enforcement: blockNewGPUPods
---
apiVersion: gpuautoscaler.io/v1alpha1
kind: ClusterBudget
metadata: {name: cluster}
spec:
  amount: 5
  period: daily
  enforcement: scaleDownSpot
)";
  CliRun run = Exec({"budget", "status", "--budgets", budgets, "--db", db_, "--now",
                     FormatRfc3339(kT0 + kHours * 3600), "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  nlohmann::json doc = nlohmann::json::parse(run.out);
  ASSERT_EQ(doc.size(), 2u);
  EXPECT_EQ(doc[0]["name"], "ml-daily");
  EXPECT_NEAR(doc[0]["spent"].get<double>(), 2.2, 1e-6);
  EXPECT_NEAR(doc[0]["forecast"]["linear"].get<double>(), 2.2 * 12, 1e-6);
  EXPECT_EQ(doc[0]["thresholdsReached"], nlohmann::json::array({50.0}));
  EXPECT_FALSE(doc[0]["enforcing"].get<bool>());
  EXPECT_EQ(doc[0]["kind"], "Budget");
  // A ClusterBudget with no scope: everything, idle capacity included, over its $5.
  EXPECT_EQ(doc[1]["kind"], "ClusterBudget");
  EXPECT_EQ(doc[1]["namespace"], "");
  EXPECT_NEAR(doc[1]["spent"].get<double>(), 2.2 + 2.2096 + 1.6, 1e-6);
  EXPECT_EQ(doc[1]["thresholdsReached"], nlohmann::json::array({50.0, 80.0, 100.0}));
  EXPECT_TRUE(doc[1]["enforcing"].get<bool>());

  CliRun table = Exec({"budget", "status", "--budgets", budgets, "--db", db_, "--now",
                       FormatRfc3339(kT0 + kHours * 3600)});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("ml/ml-daily"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("scaleDownSpot (active)"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("ClusterBudget/cluster"), std::string::npos) << table.out;
}

// `budget status` without --budgets lists the Budgets from the cluster (here
// the test API server, over HTTP, through a kubeconfig), like kubectl.
TEST_F(CostCliTest, BudgetStatusListsBudgetsFromTheCluster) {
  auto server = testing::TestApiServer::Start();
  ASSERT_TRUE(server) << "api server did not start";
  if (server->is_real_cluster()) GTEST_SKIP() << "creates namespace \"ml\"; test API server only";
  auto client = kube::RestClient::Create(server->config());
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  const kube::GroupVersionResource budgets{"gpuautoscaler.io", "v1alpha1", "budgets", true};
  const kube::GroupVersionResource cluster_budgets{"gpuautoscaler.io", "v1alpha1", "clusterbudgets",
                                                   false};
  auto created =
      (*client)->Create({kube::resources::kNamespaces},
                        {{"apiVersion", "v1"},
                         {"kind", "Namespace"},
                         {"metadata", {{"name", "ml"}, {"labels", {{"org", "research"}}}}}});
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  auto r = (*client)->Create({budgets, "ml"}, nlohmann::json::parse(R"(
      {"apiVersion":"gpuautoscaler.io/v1alpha1","kind":"Budget",
       "metadata":{"name":"ml-daily","namespace":"ml"},
       "spec":{"scope":{"namespaces":["ml"]},"amount":4,"currency":"USD",
               "period":"daily","thresholds":[50,80,100],"enforcement":"blockNewGPUPods"}})"));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  for (const char* budget : {
           R"({"apiVersion":"gpuautoscaler.io/v1alpha1","kind":"ClusterBudget",
               "metadata":{"name":"everything"},
               "spec":{"amount":5,"currency":"USD","period":"daily",
                       "enforcement":"scaleDownSpot"}})",
           R"({"apiVersion":"gpuautoscaler.io/v1alpha1","kind":"ClusterBudget",
               "metadata":{"name":"research"},
               "spec":{"scope":{"namespaceSelector":{"matchLabels":{"org":"research"}}},
                       "amount":100,"currency":"USD","period":"daily"}})"}) {
    r = (*client)->Create({cluster_budgets, ""}, nlohmann::json::parse(budget));
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }
  const std::string kubeconfig = (dir_ / "kubeconfig").string();
  std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\n"
                            << "clusters: [{name: test, cluster: {server: '" << server->url()
                            << "'}}]\n"
                            << "users: [{name: test, user: {token: '"
                            << server->config().bearer_token << "'}}]\n"
                            << "contexts: [{name: test, context: {cluster: test, user: test}}]\n"
                            << "current-context: test\n";
  const std::string now = FormatRfc3339(kT0 + kHours * 3600);

  CliRun run = Exec(
      {"budget", "status", "--kubeconfig", kubeconfig, "--db", db_, "--now", now, "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  nlohmann::json doc = nlohmann::json::parse(run.out);
  ASSERT_EQ(doc.size(), 3u) << run.out;
  std::map<std::string, nlohmann::json> by_name;
  for (const nlohmann::json& b : doc)
    by_name[b["name"].get<std::string>()] = b;
  ASSERT_EQ(by_name.count("ml-daily"), 1u) << run.out;
  EXPECT_EQ(by_name["ml-daily"]["namespace"], "ml");
  EXPECT_NEAR(by_name["ml-daily"]["spent"].get<double>(), 2.2, 1e-6);
  EXPECT_EQ(by_name["ml-daily"]["thresholdsReached"], nlohmann::json::array({50.0}));
  // A ClusterBudget with no scope: cluster-wide, idle capacity included, over its $5.
  ASSERT_EQ(by_name.count("everything"), 1u) << run.out;
  EXPECT_EQ(by_name["everything"]["kind"], "ClusterBudget");
  EXPECT_NEAR(by_name["everything"]["spent"].get<double>(), 2.2 + 2.2096 + 1.6, 1e-6);
  EXPECT_TRUE(by_name["everything"]["enforcing"].get<bool>());
  // One selecting namespaces by label: "ml" is labelled org=research.
  ASSERT_EQ(by_name.count("research"), 1u) << run.out;
  EXPECT_NEAR(by_name["research"]["spent"].get<double>(), 2.2, 1e-6);

  CliRun other = Exec(
      {"budget", "status", "--kubeconfig", kubeconfig, "--db", db_, "--now", now, "-n", "web"});
  EXPECT_EQ(other.exit_code, 0) << other.err;
  EXPECT_EQ(other.out, "No Budgets in the cluster.\n");

  // An unreachable API server is an error that says what was being read.
  const std::string unreachable = (dir_ / "unreachable").string();
  std::ofstream(unreachable) << "apiVersion: v1\nkind: Config\n"
                             << "clusters: [{name: x, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                             << "users: [{name: x, user: {}}]\n"
                             << "contexts: [{name: x, context: {cluster: x, user: x}}]\n"
                             << "current-context: x\n";
  CliRun down = Exec({"budget", "status", "--kubeconfig", unreachable, "--db", db_});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.err.find("listing budgets.gpuautoscaler.io on http://127.0.0.1:1"),
            std::string::npos)
      << down.err;

  CliRun both =
      Exec({"budget", "status", "--kubeconfig", kubeconfig, "--budgets", kubeconfig, "--db", db_});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("--budgets and --kubeconfig are exclusive"), std::string::npos);
}

TEST_F(CostCliTest, BudgetFileWithAMisspelledFieldIsRefused) {
  const std::string budgets = (dir_ / "typo.yaml").string();
  std::ofstream(budgets) << "apiVersion: gpuautoscaler.io/v1alpha1\nkind: Budget\n"
                         << "metadata: {name: b, namespace: ml}\n"
                         << "spec: {amount: 10, enforcment: blockNewGPUPods}\n";
  CliRun run = Exec({"budget", "status", "--budgets", budgets, "--db", db_});
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_NE(run.err.find(budgets + ": unknown field \"spec.enforcment\""), std::string::npos)
      << run.err;
}

TEST_F(CostCliTest, RoiSavings) {
  std::vector<std::string> args = {"roi", "-o", "json"};
  for (const std::string& a : Window())
    args.push_back(a);
  CliRun run = Exec(args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  nlohmann::json doc = nlohmann::json::parse(run.out);
  // Sharing: half an A100 for 2 h cost 1.60; a whole one would have cost 3.20.
  EXPECT_NEAR(doc["sharing"]["baseline"].get<double>(), 3.2, 1e-9);
  EXPECT_NEAR(doc["sharing"]["savings"].get<double>(), 1.6, 1e-9);
  // Spot: 1 GPU-hour of A100-SXM4-80GB at the catalogue's on-demand rate.
  Result<std::unique_ptr<CatalogPricingSource>> pricing = CatalogPricingSource::Builtin();
  ASSERT_TRUE(pricing.ok());
  const double rate = (*pricing)->GpuModelRate("A100-SXM4-80GB");
  ASSERT_GT(rate, 0);
  EXPECT_NEAR(doc["spot_gpu_hours"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(doc["spot"]["savings"].get<double>(), rate - 1.6, 1e-9);
  EXPECT_NEAR(doc["idle"]["cost"].get<double>(), 1.6, 1e-9);
  EXPECT_NEAR(doc["idle"]["gpu_hours"].get<double>(), 1.0, 1e-9);
  // Only spot changed the bill; sharing is attribution.
  EXPECT_NEAR(doc["realised_savings"].get<double>(), rate - 1.6, 1e-9);
  EXPECT_EQ(doc["sharing_is"], "attribution");

  std::vector<std::string> table_args = {"roi"};
  for (const std::string& a : Window())
    table_args.push_back(a);
  CliRun table = Exec(table_args);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("Realised (bill)"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("attributed: one whole GPU per pod"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("the nodes' bill is unchanged until fewer GPU nodes run"),
            std::string::npos)
      << table.out;
}

TEST_F(CostCliTest, WasteListsPodsWhoseGpusSatIdleWithTheirCost) {
  // A notebook holding a whole L4 at $1/h and using 2 % of it for the two hours.
  {
    auto store = SqliteCostStore::Open(db_);
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    CostSample notebook;
    notebook.pod_uid = "uid-notebook-0";
    notebook.pod_name = "notebook-0";
    notebook.ns = "ml";
    notebook.node = "gpu-b";
    notebook.gpu_model = "L4";
    notebook.gpu_share = 1;
    notebook.gpu_cost = 1.0 / 3600;
    notebook.gpu_utilization = 0.02;
    std::vector<CostSample> batch;
    for (int64_t t = kT0; t < kT0 + kHours * 3600; ++t) {
      notebook.second = t;
      batch.push_back(notebook);
    }
    ASSERT_TRUE((*store)->Append(batch).ok());
  }
  std::vector<std::string> args = {"waste", "-o", "json"};
  for (const std::string& a : Window())
    args.push_back(a);
  CliRun run = Exec(args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  nlohmann::json doc = nlohmann::json::parse(run.out);
  // ml/train-0 uses half of its half GPU; web/web-0 has no utilisation figure.
  ASSERT_EQ(doc["pods"].size(), 1u) << doc.dump(2);
  EXPECT_EQ(doc["pods"][0]["pod"], "ml/notebook-0");
  EXPECT_NEAR(doc["pods"][0]["idle_gpu_hours"].get<double>(), 2.0, 1e-6);
  EXPECT_NEAR(doc["pods"][0]["idle_cost"].get<double>(), 2.0, 1e-6);
  EXPECT_EQ(doc["pods"][0]["idle_now"], true);
  EXPECT_EQ(doc["pods"][0]["idle_since"], FormatRfc3339(kT0));
  EXPECT_EQ(doc["total"]["pods"], 3);
  EXPECT_NEAR(doc["total"]["measured_gpu_hours"].get<double>(), 2.0 + 1.0, 1e-6);

  // --all lists the busy and the unmeasured pods too; a 1 % threshold calls nothing idle.
  args.push_back("--all");
  EXPECT_EQ(nlohmann::json::parse(Exec(args).out)["pods"].size(), 3u);
  args.pop_back();
  args.insert(args.end(), {"--threshold", "1%"});
  EXPECT_EQ(nlohmann::json::parse(Exec(args).out)["pods"].size(), 0u);

  std::vector<std::string> table_args = {"waste"};
  for (const std::string& a : Window())
    table_args.push_back(a);
  CliRun table = Exec(table_args);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("ml/notebook-0"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("1 of 3 GPU pods idle for 2.00 GPU-hours, costing 2.00"),
            std::string::npos)
      << table.out;

  CliRun bad = Exec({"waste", "--window", "soon", "--db", db_});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad --window"), std::string::npos) << bad.err;
  EXPECT_EQ(Exec({"waste", "--help"}).exit_code, 0);
}

}  // namespace
}  // namespace gpu_autoscaler::cost
