// The rescheduler end to end: the embedded API server and
// gpu-autoscaler-manager (--controllers=rescheduler) as separate processes.
// Two 2-GPU nodes each run one 1-GPU pod (GPU 0 on node a, GPU 1 on node b)
// and a 2-GPU pod waits: neither node has two free GPUs. The typical pods
// (learnt from these three) are 1-GPU with p = 2/3 and 2-GPU with p = 1/3, so
// each node's fragmentation is 1/3 × 1000 (the 2-GPU pod cannot use its free
// GPU). Moving pod a to node b's free GPU 0 frees node a: +0.67 usable GPU.
//   - dryRun: the move is in status and an Event, nothing is evicted;
//   - live (dryRun set to false): pod a is evicted with a "Rescheduled" Event;
//   - impossible thresholds: Accepted=False with the reason, nothing evicted;
//   - a PodDisruptionBudget: the eviction's 429 is counted as blocked; with
//     respectPDBs: false the pod is deleted instead.
#include <signal.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/conditions.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;

const kube::GroupVersionResource kPolicies{"gpuautoscaler.io", "v1alpha1", "reschedulepolicies",
                                           false};

class RescheduleIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // policy/v1 PodDisruptionBudgets, as every supported cluster serves them (1.21+).
    server_ = testing::TestApiServer::Start({.extra_args = {"--emulated-version=1.21"}});
    ASSERT_TRUE(server_) << "api server did not start";
    if (server_->is_real_cluster()) GTEST_SKIP() << "creates Nodes and evicts pods";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("resched");
    node_a_ = ns_ + "-a";
    node_b_ = ns_ + "-b";
    dir_ = testing::MakeTempDir("gpa-resched");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    CreateNode(node_a_);
    CreateNode(node_b_);
    CreatePod("pod-a", node_a_, "0", 1);
    CreatePod("pod-b", node_b_, "1", 1);
    CreatePod("train", "", "", 2);
    ASSERT_TRUE(manager_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig_,
         "--controllers=rescheduler", "--metrics-bind-address=127.0.0.1:0",
         "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0"},
        dir_ + "/manager.log"));
    ASSERT_TRUE(WaitFor([&] { return manager_.PortFromLog("metrics_port") > 0; }))
        << manager_.Log();
  }
  void TearDown() override {
    manager_.Kill(SIGTERM);
    for (const std::string& name : policies_)
      (void)client_->Delete({kPolicies, "", name});
    if (client_) {
      (void)client_->Delete({kube::resources::kNodes, "", node_a_});
      (void)client_->Delete({kube::resources::kNodes, "", node_b_});
    }
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  void CreateNode(const std::string& name) {
    json node = {{"apiVersion", "v1"},
                 {"kind", "Node"},
                 {"metadata", {{"name", name}, {"labels", {{"nvidia.com/gpu.product", "T4"}}}}},
                 {"spec", json::object()}};
    auto created = client_->Create({kube::resources::kNodes, "", name}, node);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    json status = *created;
    status["status"] = {
        {"allocatable",
         {{"cpu", "16"}, {"memory", "64Gi"}, {"pods", "110"}, {"nvidia.com/gpu", "2"}}},
        {"capacity", {{"cpu", "16"}, {"memory", "64Gi"}, {"pods", "110"}, {"nvidia.com/gpu", "2"}}},
        {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}};
    auto written = client_->Replace(
        kube::ObjectRef{kube::resources::kNodes, "", name}.WithSub("status"), status);
    ASSERT_TRUE(written.ok()) << written.error().ToString();
  }

  // A ReplicaSet's pod asking for `gpus` whole GPUs; bound to `node` on
  // `gpu_indices` (as the scheduler annotates it) and Running, or pending.
  void CreatePod(const std::string& name, const std::string& node, const std::string& gpu_indices,
                 int gpus) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata",
                 {{"name", name},
                  {"namespace", ns_},
                  {"labels", {{"app", "infer"}}},
                  {"ownerReferences",
                   {{{"apiVersion", "apps/v1"},
                     {"kind", "ReplicaSet"},
                     {"name", "infer-5d9c"},
                     {"uid", "3f0c7a52-1111-4d2b-9d7e-2b6f3f6c0a01"},
                     {"controller", true}}}}}},
                {"spec",
                 {{"containers",
                   {{{"name", "main"},
                     {"image", "registry.example/infer:1"},
                     {"resources",
                      {{"requests", {{"cpu", "1"}, {"memory", "1Gi"}, {"nvidia.com/gpu", gpus}}},
                       {"limits", {{"nvidia.com/gpu", gpus}}}}}}}}}}};
    if (!node.empty()) {
      pod["spec"]["nodeName"] = node;
      pod["metadata"]["annotations"] = {{"gpuautoscaler.io/gpu-indices", gpu_indices}};
    }
    auto created = client_->Create({kube::resources::kPods, ns_, name}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    json status = *created;
    status["status"] =
        node.empty()
            ? json{{"phase", "Pending"}}
            : json{{"phase", "Running"}, {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}};
    auto written = client_->Replace(
        kube::ObjectRef{kube::resources::kPods, ns_, name}.WithSub("status"), status);
    ASSERT_TRUE(written.ok()) << written.error().ToString();
  }

  void CreatePolicy(const std::string& name, json spec) {
    json policy = {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
                   {"kind", "ReschedulePolicy"},
                   {"metadata", {{"name", name}}},
                   {"spec", std::move(spec)}};
    auto created = client_->Create({kPolicies, "", name}, policy);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    policies_.push_back(name);
  }
  json Policy(const std::string& name) {
    auto got = client_->Get({kPolicies, "", name});
    return got.ok() ? *got : json();
  }
  json Status(const std::string& name) { return Policy(name).value("status", json::object()); }

  // True when the pod is gone or terminating.
  bool Evicted(const std::string& pod) {
    auto got = client_->Get({kube::resources::kPods, ns_, pod});
    return !got.ok() || (*got)["metadata"].contains("deletionTimestamp");
  }
  // Messages of the Events with `reason` about `pod`.
  std::vector<std::string> Events(const std::string& pod, const std::string& reason) {
    std::vector<std::string> out;
    auto list = client_->List({kube::resources::kEvents, ns_});
    if (!list.ok()) return out;
    for (const json& e : (*list)["items"]) {
      if (e.value("reason", "") == reason &&
          e.value("involvedObject", json::object()).value("name", "") == pod) {
        out.push_back(e.value("message", ""));
      }
    }
    return out;
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_, node_a_, node_b_, dir_, kubeconfig_;
  std::vector<std::string> policies_;
  ChildProcess manager_;
};

TEST_F(RescheduleIntegrationTest, DryRunReportsThenLiveEvictsTheDefragmentationMove) {
  const std::string name = ns_ + "-defrag";
  CreatePolicy(name, {{"dryRun", true},
                      {"intervalSeconds", 3600},
                      {"namespaces", {{"include", {ns_}}}},
                      {"defragmentation", {{"maxMovesPerRun", 3}, {"minGainMilliGPU", 100}}}});
  ASSERT_TRUE(WaitFor([&] { return Status(name).contains("lastRun"); })) << manager_.Log();
  json status = Status(name);
  EXPECT_EQ(status["lastRun"]["dryRun"], true);
  EXPECT_EQ(status["lastRun"]["planned"], 1);
  EXPECT_EQ(status["lastRun"]["executed"], 0);
  // 2 × 1000/3 fragmented milli before, 0 after.
  EXPECT_EQ(status["lastRun"]["recoveredMilliGPU"], 667);
  EXPECT_EQ(status["lastRun"]["fragmentationRatio"], 33.3);
  ASSERT_EQ(status["plannedMoves"].size(), 1u) << status.dump();
  const json move = status["plannedMoves"][0];
  EXPECT_EQ(move["kind"], "Defragmentation");
  EXPECT_EQ(move["pod"], "pod-a");
  EXPECT_EQ(move["fromNode"], node_a_);
  EXPECT_EQ(move["toNode"], node_b_);
  EXPECT_EQ(move["gainMilliGPU"], 667);
  EXPECT_EQ(move["result"], "Planned");
  const std::string reason = "GPU defragmentation: frees 1 whole GPU on node " + node_a_ +
                             "; pod fits on node " + node_b_ +
                             " (GPU 0); usable GPU capacity +0.67";
  EXPECT_EQ(move["reason"], reason);
  EXPECT_TRUE(kube::IsConditionTrue(status["conditions"], "Accepted"));
  ASSERT_TRUE(WaitFor([&] { return !Events("pod-a", "ReschedulePlanned").empty(); }));
  EXPECT_EQ(Events("pod-a", "ReschedulePlanned")[0],
            "dry run (ReschedulePolicy " + name + "), would evict: " + reason);
  EXPECT_FALSE(Evicted("pod-a"));

  // Live: a spec change plans at once.
  auto patched = client_->Patch({kPolicies, "", name}, kube::PatchType::kMerge,
                                R"({"spec":{"dryRun":false}})");
  ASSERT_TRUE(patched.ok()) << patched.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return Status(name)["lastRun"].value("executed", 0) == 1; }))
      << Status(name).dump() << manager_.Log();
  status = Status(name);
  EXPECT_EQ(status["lastRun"]["dryRun"], false);
  EXPECT_EQ(status["plannedMoves"][0]["result"], "Evicted");
  ASSERT_EQ(status["recentEvictions"].size(), 1u);
  EXPECT_EQ(status["recentEvictions"][0]["pod"], "pod-a");
  EXPECT_TRUE(Evicted("pod-a"));
  EXPECT_FALSE(Evicted("pod-b"));
  ASSERT_TRUE(WaitFor([&] { return !Events("pod-a", "Rescheduled").empty(); }));
  EXPECT_EQ(Events("pod-a", "Rescheduled")[0], reason + " (ReschedulePolicy " + name + ")");
}

TEST_F(RescheduleIntegrationTest, ImpossibleThresholdsAreRefusedAndAPdbBlocksTheEviction) {
  const std::string bad = ns_ + "-bad";
  CreatePolicy(bad, {{"namespaces", {{"include", {ns_}}}},
                     {"usageBalancing",
                      {{"enabled", true},
                       {"thresholds", {{"nvidia.com/gpu", 80}}},
                       {"targetThresholds", {{"nvidia.com/gpu", 60}}}}}});
  ASSERT_TRUE(WaitFor([&] {
    return kube::IsConditionFalse(Status(bad).value("conditions", json::array()), "Accepted");
  })) << Status(bad).dump()
      << manager_.Log();
  auto accepted = kube::FindCondition(Status(bad)["conditions"], "Accepted");
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->reason, "InvalidSpec");
  EXPECT_EQ(accepted->message,
            "spec.usageBalancing: thresholds.nvidia.com/gpu (80%) is above "
            "targetThresholds.nvidia.com/gpu (60%): no node could be both under one and not "
            "over the other. Nothing is evicted.");
  EXPECT_TRUE(Status(bad)["plannedMoves"].empty());

  // A budget that allows no disruption of the app's pods.
  json pdb = {{"apiVersion", "policy/v1"},
              {"kind", "PodDisruptionBudget"},
              {"metadata", {{"name", "infer"}, {"namespace", ns_}}},
              {"spec", {{"minAvailable", 2}, {"selector", {{"matchLabels", {{"app", "infer"}}}}}}}};
  auto created = client_->Create({kube::resources::kPodDisruptionBudgets, ns_, "infer"}, pdb);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  const std::string live = ns_ + "-live";
  CreatePolicy(live, {{"intervalSeconds", 3600}, {"namespaces", {{"include", {ns_}}}}});
  ASSERT_TRUE(WaitFor([&] { return Status(live).contains("lastRun"); })) << manager_.Log();
  const json status = Status(live);
  EXPECT_EQ(status["lastRun"]["planned"], 1);
  EXPECT_EQ(status["lastRun"]["executed"], 0);
  EXPECT_EQ(status["lastRun"]["blocked"], 1);
  EXPECT_EQ(status["plannedMoves"][0]["result"], "Blocked");
  EXPECT_TRUE(status["recentEvictions"].empty());
  ASSERT_TRUE(WaitFor([&] { return !Events("pod-a", "RescheduleBlocked").empty(); }));
  EXPECT_NE(Events("pod-a", "RescheduleBlocked")[0].find("disruption budget"), std::string::npos);
  EXPECT_FALSE(Evicted("pod-a"));
  EXPECT_FALSE(Evicted("pod-b"));

  // respectPDBs: false deletes the pod instead of evicting it: the budget does not hold.
  const std::string force = ns_ + "-force";
  CreatePolicy(
      force,
      {{"intervalSeconds", 3600}, {"respectPDBs", false}, {"namespaces", {{"include", {ns_}}}}});
  ASSERT_TRUE(WaitFor([&] { return Status(force).contains("lastRun"); })) << manager_.Log();
  EXPECT_EQ(Status(force)["lastRun"]["executed"], 1);
  EXPECT_EQ(Status(force)["plannedMoves"][0]["result"], "Evicted");
  EXPECT_TRUE(Evicted("pod-a"));
  EXPECT_FALSE(Evicted("pod-b"));
}

}  // namespace
}  // namespace gpu_autoscaler
