// `gpu-autoscaler status` against the test API server: GPUs by model and
// tier, fractional allocation of shared GPUs, idle GPUs and their cost, and
// the Budgets at risk.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "net/http_server.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;

class StatusCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_);
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    if (server_->is_real_cluster()) GTEST_SKIP() << "needs a cluster with only the test's nodes";
    ns_ = server_->CreateTestNamespace("status");
    dir_ = testing::MakeTempDir("gpa-status");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Node(const std::string& name, const std::string& instance, const std::string& model,
            const std::string& tier) {
    json node = {
        {"apiVersion", "v1"},
        {"kind", "Node"},
        {"metadata",
         {{"name", name},
          {"labels",
           {{"node.kubernetes.io/instance-type", instance},
            {"nvidia.com/gpu.product", model},
            {"karpenter.sh/capacity-type", tier}}}}},
        {"status",
         {{"allocatable", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}}}}};
    auto created = client_->Create({kube::resources::kNodes, "", "", ""}, node);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    (*created)["status"] = node["status"];
    ASSERT_TRUE(
        client_
            ->Replace(kube::ObjectRef{kube::resources::kNodes, "", name, ""}.WithSub("status"),
                      *created)
            .ok());
  }
  void Pod(const std::string& name, const std::string& node, json requests, json annotations) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"annotations", annotations}}},
                {"spec",
                 {{"nodeName", node},
                  {"containers",
                   {{{"name", "c"}, {"image", "i"}, {"resources", {{"requests", requests}}}}}}}}};
    ASSERT_TRUE(client_->Create({kube::resources::kPods, ns_, "", ""}, pod).ok());
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_, dir_, kubeconfig_;
};

TEST_F(StatusCliTest, ShowsGpusByModelAndTierWithSharingIdleCostAndBudgetsAtRisk) {
  Node("a100-spot-" + ns_, "p4d.24xlarge", "A100-SXM4-40GB", "spot");
  Node("a100-od-" + ns_, "p4d.24xlarge", "A100-SXM4-40GB", "on-demand");
  Pod("whole", "a100-od-" + ns_, {{"nvidia.com/gpu", "2"}}, json::object());
  for (int i = 0; i < 4; ++i) {
    Pod("sliced-" + std::to_string(i), "a100-spot-" + ns_, {{"nvidia.com/gpu.shared", "1"}},
        {{"gpuautoscaler.io/mode", "timeSlicing"}, {"gpuautoscaler.io/replicas", "4"}});
  }
  json budget = {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
                 {"kind", "Budget"},
                 {"metadata", {{"name", "over"}}},
                 {"spec", {{"amount", 10}, {"enforcement", "blockNewGPUPods"}}}};
  auto created =
      client_->Create({{"gpuautoscaler.io", "v1alpha1", "budgets", true}, ns_, "", ""}, budget);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  (*created)["status"] = {{"currentSpend", 12.5},
                          {"percent", 125.0},
                          {"currency", "USD"},
                          {"conditions",
                           {{{"type", "Exceeded"},
                             {"status", "True"},
                             {"reason", "SpendReachedAmount"},
                             {"message", "m"},
                             {"lastTransitionTime", "2026-12-04T00:00:00Z"}}}}};
  ASSERT_TRUE(
      client_
          ->Replace(
              kube::ObjectRef{{"gpuautoscaler.io", "v1alpha1", "budgets", true}, ns_, "over", ""}
                  .WithSub("status"),
              *created)
          .ok());

  // A ClusterBudget at 85%: at risk too, named as no namespace can be.
  const kube::GroupVersionResource cluster_budgets{"gpuautoscaler.io", "v1alpha1", "clusterbudgets",
                                                   false};
  json cluster = budget;
  cluster["kind"] = "ClusterBudget";
  cluster["metadata"]["name"] = "org-" + ns_;
  created = client_->Create({cluster_budgets, "", "", ""}, cluster);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  (*created)["status"] = {{"currentSpend", 8.5}, {"percent", 85.0}, {"currency", "USD"}};
  ASSERT_TRUE(
      client_
          ->Replace(kube::ObjectRef{cluster_budgets, "", "org-" + ns_, ""}.WithSub("status"),
                    *created)
          .ok());

  const std::string cli = testing::BinaryPath("gpu-autoscaler");
  auto run = testing::RunCommand({cli, "status", "--kubeconfig", kubeconfig_, "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json report = json::parse(run.out);
  ASSERT_EQ(report["groups"].size(), 2u) << report.dump(2);
  const json& od = report["groups"][0];
  const json& spot = report["groups"][1];
  EXPECT_EQ(od["tier"], "on-demand");
  EXPECT_EQ(od["gpus"], 8.0);
  EXPECT_DOUBLE_EQ(od["allocatedGpus"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(od["idleGpus"].get<double>(), 6.0);
  EXPECT_GT(od["idleCostPerHour"].get<double>(), 0);
  EXPECT_EQ(spot["tier"], "spot");
  EXPECT_DOUBLE_EQ(spot["allocatedGpus"].get<double>(), 1.0);  // four pods on a quarter each
  EXPECT_EQ(spot["shared"]["timeSlicing"]["pods"], 4);
  EXPECT_DOUBLE_EQ(spot["idleGpus"].get<double>(), 7.0);
  // Spot is cheaper: idle spot capacity costs less per GPU than on-demand.
  EXPECT_LT(spot["idleCostPerHour"].get<double>() / 7, od["idleCostPerHour"].get<double>() / 6);
  ASSERT_EQ(report["budgetsAtRisk"].size(), 2u) << report.dump(2);
  EXPECT_EQ(report["budgetsAtRisk"][0]["budget"], ns_ + "/over");
  EXPECT_EQ(report["budgetsAtRisk"][0]["reason"], "exceeded");
  EXPECT_EQ(report["budgetsAtRisk"][1]["budget"], "ClusterBudget/org-" + ns_);
  EXPECT_EQ(report["budgetsAtRisk"][1]["reason"], "over 80%");
  EXPECT_EQ(report["budgetsTotal"], 2);

  run = testing::RunCommand({cli, "status", "--kubeconfig", kubeconfig_, "-o", "wide"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("A100-SXM4-40GB"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("timeSlicing:4/1.00"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("Idle GPUs by node"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(ns_ + "/over"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("ClusterBudget/org-" + ns_), std::string::npos) << run.out;
}

// UTIL from dcgm-exporter series through the Prometheus query API (a loopback
// server answering as Prometheus does): the mean over allocated GPUs, each
// pod weighted by its GPU share.
TEST_F(StatusCliTest, UtilisationComesFromDcgmExporterSeriesInPrometheus) {
  Node("a100-od-" + ns_, "p4d.24xlarge", "A100-SXM4-40GB", "on-demand");
  Pod("busy", "a100-od-" + ns_, {{"nvidia.com/gpu", "1"}}, json::object());
  Pod("lazy", "a100-od-" + ns_, {{"nvidia.com/gpu", "3"}}, json::object());
  auto series = [&](const std::string& pod, const std::string& gpu, double util) {
    return json{{"metric",
                 {{"__name__", "DCGM_FI_DEV_GPU_UTIL"},
                  {"gpu", gpu},
                  {"UUID", "GPU-" + pod + "-" + gpu},
                  {"Hostname", "a100-od-" + ns_},
                  {"namespace", ns_},
                  {"pod", pod},
                  {"container", "c"}}},
                {"value", {1800000000, std::to_string(util)}}};
  };
  json result = json::array({series("busy", "0", 80)});
  for (const char* gpu : {"1", "2", "3"})
    result.push_back(series("lazy", gpu, 0));
  const std::string body =
      json{{"status", "success"}, {"data", {{"resultType", "vector"}, {"result", result}}}}.dump();
  auto prometheus =
      net::HttpServer::Start({}, [&](const net::ServerRequest& r, net::ResponseWriter& w) {
        if (r.path == "/api/v1/query") {
          w.Respond(200, "application/json", body);
        } else {
          w.Respond(404, "text/plain", "not found");
        }
      });
  ASSERT_TRUE(prometheus.ok());
  auto run = testing::RunCommand({testing::BinaryPath("gpu-autoscaler"), "status", "--kubeconfig",
                                  kubeconfig_, "-o", "json", "--prometheus-url",
                                  "http://127.0.0.1:" + std::to_string((*prometheus)->port())});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json report = json::parse(run.out);
  ASSERT_EQ(report["groups"].size(), 1u) << report.dump(2);
  // (1 GPU x 80% + 3 GPUs x 0%) / 4 GPUs = 20%.
  EXPECT_NEAR(report["groups"][0]["utilization"].get<double>(), 0.20, 1e-9) << report.dump(2);
  EXPECT_FALSE(report.contains("utilizationNote"));

  // Prometheus down: the report still prints, saying why UTIL is empty.
  run = testing::RunCommand({testing::BinaryPath("gpu-autoscaler"), "status", "--kubeconfig",
                             kubeconfig_, "--prometheus-url", "http://127.0.0.1:1"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("UTIL: utilisation unavailable"), std::string::npos) << run.out;
}

TEST_F(StatusCliTest, AnUnreachableServerIsAnErrorNamingIt) {
  kube::ClientConfig cfg;
  cfg.server = "http://127.0.0.1:1";
  const std::string kubeconfig = testing::WriteKubeconfig(cfg, dir_);
  auto run = testing::RunCommand(
      {testing::BinaryPath("gpu-autoscaler"), "status", "--kubeconfig", kubeconfig});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("http://127.0.0.1:1"), std::string::npos) << run.err;
  run = testing::RunCommand(
      {testing::BinaryPath("gpu-autoscaler"), "status", "--kubeconfig", kubeconfig, "-o", "yaml"});
  EXPECT_EQ(run.exit_code, 2);
}

}  // namespace
}  // namespace gpu_autoscaler
