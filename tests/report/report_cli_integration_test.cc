// `gpu-autoscaler report` as a real process against the test API server and a
// SQLite cost history the test fills: the figures it prints, the HTML page it
// writes, and clear errors for bad inputs.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cost/sqlite_store.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;

constexpr int64_t kT0 = 1'800'000'000 - 1'800'000'000 % 86400;  // 2027-01-15T00:00:00Z
constexpr char kModel[] = "NVIDIA-A100-SXM4-40GB";

class ReportCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cli_ = testing::BinaryPath("gpu-autoscaler");
    if (::access(cli_.c_str(), X_OK) != 0) GTEST_SKIP() << cli_ << " is not built";
    dir_ = testing::MakeTempDir("gpa-report-cli");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void StartCluster() {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_);
    if (server_->is_real_cluster()) GTEST_SKIP() << "needs a cluster with only the test's objects";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("report");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
  }

  void Create(const kube::GroupVersionResource& gvr, const std::string& ns, json object) {
    auto created = client_->Create({gvr, ns, "", ""}, object);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    if (!object.contains("status")) return;
    (*created)["status"] = object["status"];
    const std::string name = (*created)["metadata"]["name"];
    auto replaced =
        client_->Replace(kube::ObjectRef{gvr, ns, name, ""}.WithSub("status"), *created);
    ASSERT_TRUE(replaced.ok()) << replaced.error().ToString();
  }

  void Pod(const std::string& name, const std::string& node, json requests, json annotations) {
    Create(kube::resources::kPods, ns_,
           {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata",
             {{"name", name}, {"labels", {{"team", "nlp"}}}, {"annotations", annotations}}},
            {"spec",
             {{"nodeName", node},
              {"containers",
               {{{"name", "c"}, {"image", "i"}, {"resources", {{"requests", requests}}}}}}}}});
  }

  // One hour: team vision on a whole spot A100 charged 1.60/h; team nlp on a
  // quarter of an on-demand A100 charged 1.00/h (4.00/h held whole).
  void FillCostHistory() {
    auto store = cost::SqliteCostStore::Open(dir_ + "/cost.db");
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    cost::CostSample vision;
    vision.pod_uid = "u-vision";
    vision.pod_name = "train";
    vision.ns = "team-vision";
    vision.team = "vision";
    vision.node = "a";
    vision.gpu_model = kModel;
    vision.tier = cost::CapacityTier::kSpot;
    vision.gpu_share = 1;
    vision.gpu_cost = 1.6 / 3600;
    cost::CostSample nlp = vision;
    nlp.pod_uid = "u-nlp";
    nlp.pod_name = "nb";
    nlp.ns = "team-nlp";
    nlp.team = "nlp";
    nlp.node = "b";
    nlp.tier = cost::CapacityTier::kOnDemand;
    nlp.gpu_share = 0.25;
    nlp.gpu_cost = 1.0 / 3600;
    std::vector<cost::CostSample> batch;
    for (int64_t t = kT0; t < kT0 + 3600; ++t) {
      for (cost::CostSample* s : {&vision, &nlp}) {
        s->second = t;
        batch.push_back(*s);
      }
    }
    ASSERT_TRUE((*store)->Append(batch).ok());
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string cli_, dir_, ns_, kubeconfig_;
  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
};

TEST_F(ReportCliTest, HelpAndUsageErrors) {
  auto help = testing::RunCommand({cli_, "report", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--placement FILE"), std::string::npos);
  EXPECT_EQ(testing::RunCommand({cli_, "report", "-o", "pdf"}).exit_code, 2);
  EXPECT_EQ(testing::RunCommand({cli_, "report", "--bogus", "1"}).exit_code, 2);
}

TEST_F(ReportCliTest, BadInputFilesFailNamingThem) {
  auto missing = testing::RunCommand({cli_, "report", "--alerts", dir_ + "/none.jsonl"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("none.jsonl"), std::string::npos) << missing.err;
  const std::string bad = Write("curve.csv", "arrived_pct,FGD_alloc_mean\n");
  auto malformed = testing::RunCommand({cli_, "report", "--placement", bad});
  EXPECT_EQ(malformed.exit_code, 1);
  EXPECT_NE(malformed.err.find("curve.csv: placement curve"), std::string::npos) << malformed.err;
  auto unreachable = testing::RunCommand({cli_, "report", "--kubeconfig",
                                          Write("kc",
                                                "apiVersion: v1\nkind: Config\nclusters: "
                                                "[{name: c, cluster: {server: "
                                                "\"http://127.0.0.1:1\"}}]\ncontexts: [{name: "
                                                "c, context: {cluster: c}}]\ncurrent-context: "
                                                "c\n")});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.err.find("127.0.0.1:1"), std::string::npos) << unreachable.err;
}

TEST_F(ReportCliTest, ReportsSharingCostBudgetsEventsAndPlacement) {
  StartCluster();
  if (IsSkipped()) return;
  FillCostHistory();
  const std::string node = "a100-spot-" + ns_;
  Create(kube::resources::kNodes, "",
         {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"name", node},
            {"labels",
             {{"node.kubernetes.io/instance-type", "p4d.24xlarge"},
              {"nvidia.com/gpu.product", kModel},
              {"karpenter.sh/capacity-type", "spot"}}}}},
          {"status",
           {{"allocatable", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}}}}});
  for (int i = 0; i < 4; ++i) {
    Pod("nb-" + std::to_string(i), node, {{"nvidia.com/gpu.shared", "1"}},
        {{"gpuautoscaler.io/mode", "timeSlicing"}, {"gpuautoscaler.io/replicas", "4"}});
  }
  Pod("train", node, {{"nvidia.com/gpu", "2"}}, json::object());
  Create({"gpuautoscaler.io", "v1alpha1", "budgets", true}, ns_,
         {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
          {"kind", "Budget"},
          {"metadata", {{"name", "over"}}},
          {"spec", {{"amount", 10}, {"enforcement", "blockNewGPUPods"}}},
          {"status", {{"currentSpend", 12.5}, {"percent", 125.0}, {"currency", "USD"}}}});
  // A cluster-scoped object's Events live in "default", as kube-apiserver keeps them.
  Create(kube::resources::kEvents, "default",
         {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", "pool-x." + ns_}}},
          {"involvedObject", {{"kind", "GPUNodePool"}, {"name", "pool-x"}}},
          {"reason", "ScaleUp"},
          {"message", "+2 sim.a10x2 in group <g> for 3 pending GPU pods"},
          {"type", "Normal"},
          {"count", 1},
          {"firstTimestamp", "2027-01-15T08:10:00Z"},
          {"lastTimestamp", "2027-01-15T08:10:00Z"}});
  Create(kube::resources::kEvents, ns_,
         {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", "batch-1.preempted"}}},
          {"involvedObject", {{"kind", "Pod"}, {"namespace", ns_}, {"name", "batch-1"}}},
          {"reason", "Preempted"},
          {"message", "Preempted by " + ns_ + "/online-0 on node l40s-1, with all of pod group " +
                          ns_ + "/etl, which cannot run without a member evicted there"},
          {"type", "Normal"},
          {"count", 1},
          {"firstTimestamp", "2027-01-15T08:20:00Z"},
          {"lastTimestamp", "2027-01-15T08:20:00Z"}});
  if (HasFatalFailure()) return;
  const std::string alerts =
      Write("alerts.jsonl",
            json({{"path", "/slack"}, {"body", json({{"text", "hi"}}).dump()}}).dump() + "\n");
  const std::string curve = Write("curve.csv",
                                  "arrived_pct,FGD_alloc_mean,FGD_alloc_sd,FGD_frag_mean,"
                                  "BestFit_alloc_mean,BestFit_alloc_sd,BestFit_frag_mean\n"
                                  "0,0,0,0,0,0,0\n100,95,0,3,92,0,6\n");
  const std::string denied = Write("denied.txt", "pod denied: budget exhausted\n");
  const std::vector<std::string> common = {cli_,           "report",
                                           "--kubeconfig", kubeconfig_,
                                           "--db",         dir_ + "/cost.db",
                                           "--since",      "1h",
                                           "--now",        "2027-01-15T01:00:00Z",
                                           "--alerts",     alerts,
                                           "--placement",  curve,
                                           "--denied",     denied};

  std::vector<std::string> text_args = common;
  text_args.insert(text_args.end(), {"--html-out", dir_ + "/same.html"});
  auto text = testing::RunCommand(text_args);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  // 4 slices of one GPU + 2 whole GPUs held, 4 + 2 whole GPUs without sharing.
  EXPECT_NE(text.out.find("pods hold 3.00 GPUs instead of 6 whole GPUs: 3.00 GPUs freed"),
            std::string::npos)
      << text.out;
  // Spot: 1 GPU-hour at the catalogue's A100-SXM4-40GB on-demand 4.0966, charged 1.60.
  // Sharing: the quarter GPU charged 1.00 would be 4.00 whole.
  EXPECT_NE(text.out.find("spot saved 2.4966 on the bill; sharing moved 3.0000"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find(ns_ + "/over"), std::string::npos);
  EXPECT_NE(text.out.find("in group <g> for"), std::string::npos);
  EXPECT_NE(text.out.find("2 nodes added"), std::string::npos);
  EXPECT_NE(text.out.find("1 alerts received, 1 on /slack"), std::string::npos);
  EXPECT_NE(text.out.find("BestFit"), std::string::npos);
  EXPECT_NE(text.out.find("denied at admission: pod denied: budget exhausted"), std::string::npos);
  EXPECT_NE(text.out.find("Preemptions: 1 pod(s) evicted for pods of higher priority, 1 pod "
                          "group(s) evicted whole"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find(ns_ + "/batch-1  " + ns_ + "/online-0  l40s-1  " + ns_ + "/etl"),
            std::string::npos)
      << text.out;

  std::vector<std::string> html_args = common;
  html_args.insert(html_args.end(), {"-o", "html", "--out", dir_ + "/report.html"});
  auto html_run = testing::RunCommand(html_args);
  ASSERT_EQ(html_run.exit_code, 0) << html_run.err;
  std::ifstream in(dir_ + "/report.html");
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // --html-out wrote the same page next to the text (same --now: same figures).
  std::ifstream same_in(dir_ + "/same.html");
  const std::string same((std::istreambuf_iterator<char>(same_in)),
                         std::istreambuf_iterator<char>());
  EXPECT_EQ(same, html);
  for (const char* id : {"sharing-gpus", "team-cost", "cost-over-time", "budget-percent",
                         "pool-nodes", "placement"}) {
    EXPECT_NE(html.find("data-chart=\"" + std::string(id) + "\""), std::string::npos) << id;
  }
  EXPECT_NE(html.find("in group &lt;g&gt; for"), std::string::npos);
  EXPECT_NE(html.find("<section id=\"preemptions\">"), std::string::npos);
  EXPECT_NE(html.find("<td>" + ns_ + "/online-0</td>"), std::string::npos);
  EXPECT_EQ(html.find("<g>"), std::string::npos);
  EXPECT_NE(html.find("data-series=\"actual\" data-label=\"vision\" data-value=\"1.6000\""),
            std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler
