// The interruption handler against the repository's API server (a real
// process): a scripted notice source, a node with pods of every kind, and a
// PodDisruptionBudget that blocks one eviction. Checks the node's taint,
// cordon and notice annotation, which pods were evicted, and the report.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "node-agent/interruption.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"

namespace gpu_autoscaler::node_agent {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kNode = "spot-gpu-1";

// Answers the scripted notices in order, then the last one forever.
class ScriptedSource : public cloud::InterruptionSource {
 public:
  explicit ScriptedSource(std::deque<std::optional<cloud::InterruptionNotice>> script)
      : script_(std::move(script)) {}
  Result<std::optional<cloud::InterruptionNotice>> Poll() override {
    std::lock_guard<std::mutex> l(mu_);
    ++polls_;
    if (script_.size() > 1) {
      auto front = script_.front();
      script_.pop_front();
      return front;
    }
    return script_.front();
  }
  int polls() {
    std::lock_guard<std::mutex> l(mu_);
    return polls_;
  }

 private:
  std::mutex mu_;
  std::deque<std::optional<cloud::InterruptionNotice>> script_;
  int polls_ = 0;
};

class InterruptionIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // policy/v1 PodDisruptionBudgets, as every supported cluster serves them (1.21+).
    server_ = testing::TestApiServer::Start({.extra_args = {"--emulated-version=1.21"}});
    ASSERT_TRUE(server_) << "api server did not start";
    if (!server_->supports_faults()) GTEST_SKIP() << "needs the embedded API server";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    ns_ = server_->CreateTestNamespace("spot");
    json node = {
        {"apiVersion", "v1"},
        {"kind", "Node"},
        {"metadata", {{"name", kNode}}},
        {"spec",
         {{"taints", json::array({{{"key", "nvidia.com/gpu"}, {"effect", "NoSchedule"}}})}}}};
    ASSERT_TRUE(client_->Create({kube::resources::kNodes}, node).ok());
  }

  void CreatePod(const std::string& name, json labels, json extra_spec, bool running) {
    json spec = {{"nodeName", kNode},
                 {"containers", json::array({{{"name", "c"}, {"image", "x"}}})}};
    spec.update(extra_spec);
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", ns_}, {"labels", labels}}},
                {"spec", spec}};
    auto created = client_->Create({kube::resources::kPods, ns_}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    if (!running) return;
    json status = {{"status",
                    {{"phase", "Running"},
                     {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
    auto patched = client_->Patch({kube::resources::kPods, ns_, name, "status"},
                                  kube::PatchType::kMerge, status.dump());
    ASSERT_TRUE(patched.ok()) << patched.error().ToString();
  }

  // Pods not being deleted. An evicted pod that is bound to a node terminates
  // with its grace period (the kubelet would finish it), so it keeps existing
  // with a deletionTimestamp.
  std::set<std::string> PodsLeft() {
    std::set<std::string> out;
    auto list = client_->List({kube::resources::kPods, ns_});
    EXPECT_TRUE(list.ok());
    if (list.ok()) {
      for (const json& p : (*list)["items"]) {
        if (!p["metadata"].contains("deletionTimestamp")) out.insert(p["metadata"]["name"]);
      }
    }
    return out;
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_;
};

TEST_F(InterruptionIntegrationTest, SpotNoticeTaintsCordonsAndEvictsAroundABudget) {
  // The Priority admission plugin takes a pod's priority from its class.
  json web_class = {{"apiVersion", "scheduling.k8s.io/v1"},
                    {"kind", "PriorityClass"},
                    {"metadata", {{"name", "spot-test-web"}}},
                    {"value", 1000}};
  auto created_class = client_->Create({kube::resources::kPriorityClasses}, web_class);
  ASSERT_TRUE(created_class.ok() || kube::IsAlreadyExists(created_class.error()))
      << created_class.error().ToString();
  for (int i = 0; i < 20; ++i) {
    CreatePod("web-" + std::to_string(i), {{"app", "web"}},
              {{"priorityClassName", "spot-test-web"}}, true);
  }
  // A budget that lets none of the two "db" pods go.
  CreatePod("db-0", {{"app", "db"}}, json::object(), true);
  CreatePod("db-1", {{"app", "db"}}, json::object(), true);
  json pdb = {{"apiVersion", "policy/v1"},
              {"kind", "PodDisruptionBudget"},
              {"metadata", {{"name", "db"}, {"namespace", ns_}}},
              {"spec", {{"minAvailable", 2}, {"selector", {{"matchLabels", {{"app", "db"}}}}}}}};
  auto created_pdb = client_->Create({kube::resources::kPodDisruptionBudgets, ns_}, pdb);
  ASSERT_TRUE(created_pdb.ok()) << created_pdb.error().ToString();
  // Stays: it tolerates the interruption taint.
  CreatePod("agent", {{"app", "agent"}},
            {{"tolerations",
              json::array({{{"key", "gpu-autoscaler.io/interruption"}, {"operator", "Exists"}}})}},
            true);
  CreatePod("critical", {{"app", "c"}}, {{"priorityClassName", "system-node-critical"}}, true);

  const auto not_after = std::chrono::system_clock::now() + 3s;
  cloud::InterruptionNotice notice{
      cloud::InterruptionNotice::Kind::kSpotInterruption,
      std::chrono::duration_cast<std::chrono::seconds>(not_after.time_since_epoch()).count(),
      "terminate"};
  ScriptedSource source({std::nullopt, std::nullopt, notice});
  InterruptionHandler handler(*client_, nullptr,
                              {.node_name = kNode, .poll_interval = 10ms, .pdb_retry = 100ms});
  std::jthread runner([&](std::stop_token stop) { handler.Run(source, stop); });
  ASSERT_TRUE(testing::WaitFor([&] { return handler.drains() == 1; }, 30s));
  ASSERT_TRUE(testing::WaitFor([&] { return PodsLeft().size() == 3; }, 30s))
      << "left: " << PodsLeft().size();
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"agent", "db-0", "db-1"}));
  runner.request_stop();
  runner.join();
  EXPECT_GE(source.polls(), 3);
  EXPECT_EQ(handler.notices(), 1);

  auto node = client_->Get({kube::resources::kNodes, "", kNode});
  ASSERT_TRUE(node.ok());
  EXPECT_EQ((*node)["spec"].value("unschedulable", false), true);
  const json taints = (*node)["spec"]["taints"];
  ASSERT_EQ(taints.size(), 2u);  // the existing GPU taint is kept
  EXPECT_EQ(taints[0]["key"], "nvidia.com/gpu");
  EXPECT_EQ(taints[1]["key"], "gpu-autoscaler.io/interruption");
  EXPECT_EQ(taints[1]["effect"], "NoSchedule");
  EXPECT_EQ(taints[1]["value"], "SpotInterruption");
  const std::string annotation =
      (*node)["metadata"]["annotations"][std::string(api::kInterruptionNoticeAnnotation)];
  EXPECT_EQ(annotation.rfind("SpotInterruption 20", 0), 0u) << annotation;
}

TEST_F(InterruptionIntegrationTest, DrainReportCountsBlockedAndIsIdempotentOnTheNode) {
  CreatePod("db-0", {{"app", "db"}}, json::object(), true);
  CreatePod("batch", {{"app", "batch"}}, json::object(), false);
  json pdb = {{"apiVersion", "policy/v1"},
              {"kind", "PodDisruptionBudget"},
              {"metadata", {{"name", "db"}, {"namespace", ns_}}},
              {"spec", {{"maxUnavailable", 0}, {"selector", {{"matchLabels", {{"app", "db"}}}}}}}};
  ASSERT_TRUE(client_->Create({kube::resources::kPodDisruptionBudgets, ns_}, pdb).ok());
  InterruptionHandler handler(*client_, nullptr,
                              {.node_name = kNode, .default_notice = 1s, .pdb_retry = 100ms});
  // GCP's preempted flag names no time: the default notice bounds the retries.
  cloud::InterruptionNotice preempted{cloud::InterruptionNotice::Kind::kPreempted, 0, "TRUE"};
  auto report = handler.Drain(preempted);
  ASSERT_TRUE(report.ok()) << report.error().ToString();
  EXPECT_EQ(report->pods, 2);
  EXPECT_EQ(report->evicted, 1);
  EXPECT_EQ(report->blocked_pdb, 1);
  EXPECT_EQ(report->failed, 0);
  EXPECT_FALSE(report->in_time);
  // A second notice does not add a second taint.
  ASSERT_TRUE(handler.Drain(preempted).ok());
  auto node = client_->Get({kube::resources::kNodes, "", kNode});
  ASSERT_TRUE(node.ok());
  EXPECT_EQ((*node)["spec"]["taints"].size(), 2u);
  EXPECT_EQ((*node)["metadata"]["annotations"][std::string(api::kInterruptionNoticeAnnotation)],
            "Preempted");
}

TEST_F(InterruptionIntegrationTest, RebalanceRecommendationDoesNotDrain) {
  CreatePod("web", {{"app", "web"}}, json::object(), true);
  ScriptedSource source({cloud::InterruptionNotice{
      cloud::InterruptionNotice::Kind::kRebalanceRecommendation, 0, "rebalance"}});
  InterruptionHandler handler(*client_, nullptr, {.node_name = kNode, .poll_interval = 5ms});
  std::jthread runner([&](std::stop_token stop) { handler.Run(source, stop); });
  ASSERT_TRUE(testing::WaitFor([&] { return source.polls() >= 5; }, 30s));
  runner.request_stop();
  runner.join();
  EXPECT_EQ(handler.drains(), 0);
  EXPECT_EQ(PodsLeft(), (std::set<std::string>{"web"}));
  auto node = client_->Get({kube::resources::kNodes, "", kNode});
  ASSERT_TRUE(node.ok());
  EXPECT_FALSE((*node)["spec"].value("unschedulable", false));
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
