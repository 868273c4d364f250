// The GPUNodePool loop end to end: the embedded API server and
// gpu-autoscaler-manager (--controllers=gpunodepool) as separate processes,
// a simulated pool, and pending GPU pods created through the API. The pool
// scales up (sharing-aware: 8 quarter-GPU time-sliced pods need 2 one-GPU
// nodes), the simulated nodes register, the test binds the pods, deletes
// them, and the empty nodes are consolidated after consolidateAfter. A pool
// with minNodes > maxNodes gets Ready=False while the good one keeps working.
// Predictive pools, their demand history seeded in checkpoint ConfigMaps,
// grow ahead of a seasonal rise within maxNodes and the cost ceiling.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

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

const kube::GroupVersionResource kPools{"gpuautoscaler.io", "v1alpha1", "gpunodepools", false};
constexpr char kPoolLabel[] = "gpuautoscaler.io/node-pool";

class GpuNodePoolIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (server_->is_real_cluster()) GTEST_SKIP() << "creates and deletes Nodes";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("pool");
    dir_ = testing::MakeTempDir("gpa-pool");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    ASSERT_TRUE(manager_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig_,
         "--controllers=gpunodepool", "--metrics-bind-address=127.0.0.1:0",
         "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0"},
        dir_ + "/manager.log"));
    ASSERT_TRUE(WaitFor([&] { return manager_.PortFromLog("metrics_port") > 0; }))
        << manager_.Log();
  }
  void TearDown() override {
    manager_.Kill(SIGTERM);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  json Pool(const std::string& name) {
    auto got = client_->Get({kPools, "", name});
    return got.ok() ? *got : json();
  }
  std::optional<kube::ObjectCondition> PoolCondition(const std::string& name,
                                                     std::string_view type) {
    const json pool = Pool(name);
    if (!pool.is_object() || !pool.contains("status")) return std::nullopt;
    return kube::FindCondition(pool["status"].value("conditions", json::array()), type);
  }
  std::vector<std::string> PoolNodes(const std::string& pool) {
    std::vector<std::string> out;
    auto list =
        client_->List({kube::resources::kNodes}, {.label_selector = kPoolLabel + ("=" + pool)});
    if (!list.ok()) return out;
    for (const json& n : (*list)["items"])
      out.push_back(n["metadata"]["name"]);
    return out;
  }

  // A pod asking for one replica of a four-way time-sliced GPU, as the
  // webhook rewrites it, left Unschedulable as kube-scheduler would.
  void CreatePendingPod(const std::string& name, bool whole_gpu = false) {
    json pod = json::parse(R"({
      "apiVersion": "v1", "kind": "Pod",
      "metadata": {"annotations": {"gpuautoscaler.io/sharing": "timeSlicing",
                                   "gpuautoscaler.io/replicas": "4"}},
      "spec": {"containers": [{"name": "main", "image": "registry.example/infer:1",
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu.shared": "1"},
                      "limits": {"nvidia.com/gpu.shared": "1"}}}]}})");
    pod["metadata"]["name"] = name;
    pod["metadata"]["namespace"] = ns_;
    if (whole_gpu) {
      pod["metadata"].erase("annotations");
      pod["spec"]["containers"][0]["resources"] = {{"requests", {{"nvidia.com/gpu", "1"}}},
                                                   {"limits", {{"nvidia.com/gpu", "1"}}}};
    }
    auto created = client_->Create({kube::resources::kPods, ns_, name}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    json status = *created;
    status["status"] = {
        {"phase", "Pending"},
        {"conditions",
         {{{"type", "PodScheduled"},
           {"status", "False"},
           {"reason", "Unschedulable"},
           {"message", "0/0 nodes are available: Insufficient nvidia.com/gpu.shared."}}}}};
    auto written = client_->Replace(
        kube::ObjectRef{kube::resources::kPods, ns_, name}.WithSub("status"), status);
    ASSERT_TRUE(written.ok()) << written.error().ToString();
  }

  void Bind(const std::string& pod, const std::string& node) {
    json binding = {{"apiVersion", "v1"},
                    {"kind", "Binding"},
                    {"metadata", {{"name", pod}, {"namespace", ns_}}},
                    {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
    auto bound = client_->Create(
        kube::ObjectRef{kube::resources::kPods, ns_, pod}.WithSub("binding"), binding);
    ASSERT_TRUE(bound.ok()) << bound.error().ToString();
  }

  // A pod that belongs to `node`: a DaemonSet's, or the API mirror of a
  // static pod (controlled by the Node, annotated kubernetes.io/config.mirror).
  void CreateNodePod(const std::string& name, const std::string& node, bool static_pod) {
    json pod = json::parse(R"({
      "apiVersion": "v1", "kind": "Pod",
      "spec": {"containers": [{"name": "main", "image": "registry.example/agent:1",
                               "resources": {"requests": {"cpu": "100m"}}}]}})");
    pod["metadata"] = {{"name", name}, {"namespace", ns_}};
    pod["spec"]["nodeName"] = node;
    json owner = {{"apiVersion", static_pod ? "v1" : "apps/v1"},
                  {"kind", static_pod ? "Node" : "DaemonSet"},
                  {"name", static_pod ? node : "gpu-agent"},
                  {"uid", "uid-" + name},
                  {"controller", true}};
    pod["metadata"]["ownerReferences"] = json::array({owner});
    if (static_pod) pod["metadata"]["annotations"] = {{"kubernetes.io/config.mirror", "abc123"}};
    auto created = client_->Create({kube::resources::kPods, ns_, name}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
  }

  void FinishTerminatingPods() {
    auto pods = client_->List({kube::resources::kPods, ns_});
    if (!pods.ok()) return;
    for (const json& p : (*pods)["items"]) {
      if (!p["metadata"].contains("deletionTimestamp")) continue;
      (void)client_->Delete({kube::resources::kPods, ns_, p["metadata"]["name"]},
                            {.grace_period_seconds = 0});
    }
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_, dir_, kubeconfig_;
  ChildProcess manager_;
};

TEST_F(GpuNodePoolIntegrationTest, ScalesUpForSharedPodsAndConsolidatesWhenTheyFinish) {
  const json good = json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
    "metadata": {"name": "t4-sim"},
    "spec": {
      "provider": {"type": "simulated", "zone": "sim-a", "provisioningDelay": "2s",
                   "groups": {"spot": "t4-spot", "onDemand": "t4-ondemand"}},
      "instanceTypes": [{"name": "sim.t4x1", "gpuModel": "Tesla-T4", "gpuCount": 1,
                         "cpu": "8", "memory": "32Gi", "price": {"spot": 0.16, "onDemand": 0.53}}],
      "maxNodes": 4,
      "tiers": {"spot": {"weight": 1, "maxNodes": 4}, "onDemand": {"weight": 1}},
      "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "3s"},
      "disruption": {"budgets": [{"nodes": "100%"}]}
    }})");
  const json bad = json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
    "metadata": {"name": "broken"},
    "spec": {
      "provider": {"type": "simulated", "groups": {"onDemand": "b"}},
      "instanceTypes": [{"name": "sim.t4x1", "gpuModel": "Tesla-T4", "gpuCount": 1,
                         "cpu": "8", "memory": "32Gi", "price": {"onDemand": 0.53}}],
      "minNodes": 5, "maxNodes": 2
    }})");
  ASSERT_TRUE(client_->Create({kPools, "", "broken"}, bad).ok());
  ASSERT_TRUE(client_->Create({kPools, "", "t4-sim"}, good).ok());

  ASSERT_TRUE(WaitFor([&] {
    auto c = PoolCondition("broken", "Ready");
    return c && c->status == "False";
  })) << manager_.Log();
  auto broken = PoolCondition("broken", "Ready");
  EXPECT_EQ(broken->reason, "InvalidSpec");
  EXPECT_NE(broken->message.find("minNodes 5 > maxNodes 2"), std::string::npos) << broken->message;
  ASSERT_TRUE(WaitFor([&] {
    auto c = PoolCondition("t4-sim", "Ready");
    return c && c->status == "True";
  })) << manager_.Log();

  // 8 pending quarter-GPU pods: two one-GPU spot nodes, not eight.
  for (int i = 0; i < 8; ++i)
    CreatePendingPod("infer-" + std::to_string(i));
  ASSERT_TRUE(WaitFor([&] { return PoolNodes("t4-sim").size() == 2; })) << manager_.Log();
  ASSERT_TRUE(WaitFor([&] {
    const json s = Pool("t4-sim").value("status", json::object());
    return s.value("nodes", 0) == 2 &&
           !kube::IsConditionTrue(s.value("conditions", json()), "ScalingUp");
  })) << Pool("t4-sim").dump(2);
  json status = Pool("t4-sim")["status"];
  EXPECT_EQ(status["desired"], 2);
  EXPECT_EQ(status["tiers"]["spot"]["nodes"], 2);
  EXPECT_EQ(status["tiers"]["onDemand"]["nodes"], 0);
  EXPECT_EQ(status["pendingGPUPods"], 8);  // still pending: nobody has bound them yet
  EXPECT_EQ(PoolNodes("t4-sim").size(), 2u);
  EXPECT_EQ(status["recentActions"][0]["action"], "ScaleUp");
  EXPECT_EQ(status["recentActions"][0]["count"], 2);
  std::cout << "--- status after scale-up ---\n" << status.dump(2) << "\n";

  // The test plays the scheduler: four pods per node.
  const std::vector<std::string> nodes = PoolNodes("t4-sim");
  auto node = client_->Get({kube::resources::kNodes, "", nodes[0]});
  ASSERT_TRUE(node.ok());
  EXPECT_EQ((*node)["status"]["allocatable"]["nvidia.com/gpu"], "1");
  EXPECT_EQ((*node)["metadata"]["labels"]["karpenter.sh/capacity-type"], "spot");
  for (int i = 0; i < 8; ++i)
    Bind("infer-" + std::to_string(i), nodes[i / 4]);
  ASSERT_TRUE(WaitFor([&] {
    return Pool("t4-sim").value("status", json::object()).value("pendingGPUPods", -1) == 0;
  }));

  // Pods that belong to their node do not keep it: a DaemonSet's on one, a
  // static pod on the other (as Karpenter and Cluster Autoscaler treat them).
  CreateNodePod("gpu-agent-a", nodes[0], /*static_pod=*/false);
  CreateNodePod("kube-proxy-b", nodes[1], /*static_pod=*/true);

  // The pods finish; the empty nodes go after consolidateAfter (3 s).
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(client_
                    ->Delete({kube::resources::kPods, ns_, "infer-" + std::to_string(i)},
                             {.grace_period_seconds = 0})
                    .ok());
  ASSERT_TRUE(WaitFor([&] { return PoolNodes("t4-sim").empty(); }, std::chrono::seconds(60)))
      << manager_.Log();
  // The status catches up a reconcile after the Nodes go: wait for both.
  std::set<std::string> seen;
  ASSERT_TRUE(WaitFor([&] {
    status = Pool("t4-sim").value("status", json::object());
    seen.clear();
    for (const json& a : status.value("recentActions", json::array()))
      seen.insert(a.value("action", ""));
    return status.value("nodes", -1) == 0 && status.value("desired", -1) == 0 &&
           seen.count("Cordon") && seen.count("Terminate");
  })) << status.dump(2);
  std::cout << "--- status after consolidation ---\n" << status.dump(2) << "\n";

  // The actions as Prometheus counters.
  auto metrics = kube::RestClient::Create(
      {.server = "http://127.0.0.1:" + std::to_string(manager_.PortFromLog("metrics_port"))});
  ASSERT_TRUE(metrics.ok());
  auto scraped = (*metrics)->Request("GET", "/metrics");
  ASSERT_TRUE(scraped.ok());
  EXPECT_NE(scraped->body.find("gpu_autoscaler_node_pool_scale_actions_total{action=\"ScaleUp\","
                               "pool=\"t4-sim\",tier=\"spot\"} 2"),
            std::string::npos)
      << scraped->body;
  EXPECT_NE(scraped->body.find("gpu_autoscaler_node_pool_nodes{pool=\"t4-sim\",tier=\"spot\"} 0"),
            std::string::npos);
  EXPECT_NE(scraped->body.find("gpu_autoscaler_node_pool_pending_gpu_pods{pool=\"t4-sim\"} 0"),
            std::string::npos);

  // The broken pool is still reported, and unchanged.
  EXPECT_EQ(PoolCondition("broken", "Ready")->reason, "InvalidSpec");
  EXPECT_TRUE(PoolNodes("broken").empty());
}

TEST_F(GpuNodePoolIntegrationTest, UnknownProviderAndMissingSecretAreConditions) {
  json pool = json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
    "metadata": {"name": "no-secret"},
    "spec": {
      "provider": {"type": "simulated", "groups": {"onDemand": "g"},
                   "credentialsSecretRef": {"namespace": "default", "name": "missing"}},
      "instanceTypes": [{"name": "sim.t4x1", "gpuModel": "Tesla-T4", "gpuCount": 1,
                         "cpu": "8", "memory": "32Gi", "price": {"onDemand": 0.53}}]
    }})");
  ASSERT_TRUE(client_->Create({kPools, "", "no-secret"}, pool).ok());
  pool["metadata"]["name"] = "strange-cloud";
  pool["spec"]["provider"] = {{"type", "ibm-vpc"}, {"groups", {{"onDemand", "g"}}}};
  ASSERT_TRUE(client_->Create({kPools, "", "strange-cloud"}, pool).ok());

  ASSERT_TRUE(WaitFor([&] {
    auto c = PoolCondition("no-secret", "ProviderError");
    return c && c->status == "True";
  })) << manager_.Log();
  EXPECT_EQ(PoolCondition("no-secret", "ProviderError")->reason, "MissingCredentials");
  EXPECT_EQ(PoolCondition("no-secret", "Ready")->status, "False");
  ASSERT_TRUE(WaitFor([&] {
    auto c = PoolCondition("strange-cloud", "Ready");
    return c && c->status == "False";
  }));
  EXPECT_NE(PoolCondition("strange-cloud", "Ready")->message.find("\"ibm-vpc\" is not one of"),
            std::string::npos);
}

std::set<std::string> Actions(const json& status) {
  std::set<std::string> out;
  for (const json& a : status.value("recentActions", json::array()))
    out.insert(a["action"].get<std::string>() + ":" + a["tier"].get<std::string>());
  return out;
}

// Spot has no capacity: the capacity error marks it unavailable and the same
// pass launches on-demand. Then a Budget asks scaleDownSpot... on a pool whose
// spot works: its spot nodes are cordoned, drained and terminated.
// AWS Auto Scaling takes a new desired size and finds the shortage later, in a
// failed launch: the controller reads it (NodeGroupProvider::LaunchFailure),
// stops asking the spot group and falls back to on-demand.
TEST_F(GpuNodePoolIntegrationTest, AShortageFoundAfterTheResizeFallsBackToOnDemand) {
  json pool = json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
    "metadata": {"name": "late"},
    "spec": {
      "provider": {"type": "simulated", "provisioningDelay": "1s",
                   "groups": {"spot": "late-spot", "onDemand": "late-od"},
                   "simulated": {"launchFailures": ["late-spot"]}},
      "instanceTypes": [{"name": "sim.a10x1", "gpuModel": "A10G", "gpuCount": 1,
                         "cpu": "4", "memory": "16Gi", "price": {"spot": 0.38, "onDemand": 1.01}}],
      "maxNodes": 4,
      "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "Never"}
    }})");
  ASSERT_TRUE(client_->Create({kPools, "", "late"}, pool).ok());
  for (int i = 0; i < 2; ++i)
    CreatePendingPod("late-" + std::to_string(i), /*whole_gpu=*/true);
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = Pool("late").value("status", json::object());
    return status.value("tiers", json::object())
               .value("onDemand", json::object())
               .value("nodes", 0) == 2;
  })) << status.dump(2)
      << manager_.Log();
  EXPECT_TRUE(Actions(status).count("ScaleUp:spot")) << status.dump(2);
  EXPECT_TRUE(Actions(status).count("CapacityError:spot")) << status.dump(2);
  EXPECT_TRUE(Actions(status).count("ScaleUp:onDemand")) << status.dump(2);
  EXPECT_EQ(status["tiers"]["spot"]["desired"], 0) << status.dump(2);
  EXPECT_EQ(status["unavailableOfferings"][0]["tier"], "spot") << status.dump(2);
}

TEST_F(GpuNodePoolIntegrationTest, SpotCapacityErrorFallsBackAndBudgetDrainsSpot) {
  json pool = json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
    "metadata": {"name": "fallback"},
    "spec": {
      "provider": {"type": "simulated", "provisioningDelay": "1s",
                   "groups": {"spot": "fb-spot", "onDemand": "fb-od"},
                   "simulated": {"capacityErrors": ["fb-spot"]}},
      "instanceTypes": [{"name": "sim.a10x1", "gpuModel": "A10G", "gpuCount": 1,
                         "cpu": "4", "memory": "16Gi", "price": {"spot": 0.38, "onDemand": 1.01}}],
      "maxNodes": 4,
      "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "Never"}
    }})");
  ASSERT_TRUE(client_->Create({kPools, "", "fallback"}, pool).ok());
  for (int i = 0; i < 2; ++i)
    CreatePendingPod("whole-" + std::to_string(i), /*whole_gpu=*/true);
  ASSERT_TRUE(WaitFor([&] { return PoolNodes("fallback").size() == 2; })) << manager_.Log();
  json status = Pool("fallback")["status"];
  ASSERT_TRUE(WaitFor([&] {
    status = Pool("fallback")["status"];
    return status["tiers"]["onDemand"].value("nodes", 0) == 2;
  })) << status.dump(2);
  EXPECT_EQ(status["tiers"]["spot"]["nodes"], 0);
  EXPECT_TRUE(Actions(status).count("CapacityError:spot")) << status.dump(2);
  EXPECT_TRUE(Actions(status).count("ScaleUp:onDemand")) << status.dump(2);
  ASSERT_EQ(status["unavailableOfferings"].size(), 1u);
  EXPECT_EQ(status["unavailableOfferings"][0]["tier"], "spot");
  for (const std::string& node : PoolNodes("fallback")) {
    auto n = client_->Get({kube::resources::kNodes, "", node});
    ASSERT_TRUE(n.ok());
    EXPECT_EQ((*n)["metadata"]["labels"]["karpenter.sh/capacity-type"], "on-demand");
  }
  std::cout << "--- status after the spot capacity error ---\n" << status.dump(2) << "\n";
  ASSERT_TRUE(client_->Delete({kPools, "", "fallback"}).ok());
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(client_
                    ->Delete({kube::resources::kPods, ns_, "whole-" + std::to_string(i)},
                             {.grace_period_seconds = 0})
                    .ok());

  // A pool with working spot, two busy spot nodes, then an exhausted Budget.
  pool["metadata"]["name"] = "spotty";
  pool["spec"]["provider"] = {{"type", "simulated"},
                              {"provisioningDelay", "1s"},
                              {"groups", {{"spot", "sp-spot"}, {"onDemand", "sp-od"}}}};
  pool["spec"]["tiers"] = {{"spot", {{"weight", 0.5}}}};
  ASSERT_TRUE(client_->Create({kPools, "", "spotty"}, pool).ok());
  for (int i = 0; i < 2; ++i)
    CreatePendingPod("train-" + std::to_string(i), /*whole_gpu=*/true);
  ASSERT_TRUE(WaitFor([&] { return PoolNodes("spotty").size() == 2; })) << manager_.Log();
  const std::vector<std::string> spot_nodes = PoolNodes("spotty");
  for (int i = 0; i < 2; ++i)
    Bind("train-" + std::to_string(i), spot_nodes[i]);
  ASSERT_TRUE(WaitFor([&] {
    return Pool("spotty").value("status", json::object()).value("pendingGPUPods", -1) == 0;
  }));
  EXPECT_EQ(Pool("spotty")["status"]["tiers"]["spot"]["nodes"], 2);

  json budget = {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "Budget"},
      {"metadata", {{"name", "ml-spend"}, {"namespace", ns_}}},
      {"spec",
       {{"amount", 100}, {"enforcement", "scaleDownSpot"}, {"scope", {{"namespaces", {ns_}}}}}}};
  const kube::GroupVersionResource budgets{"gpuautoscaler.io", "v1alpha1", "budgets", true};
  auto created = client_->Create({budgets, ns_, "ml-spend"}, budget);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  // What the budget controller writes when the budget is exhausted.
  (*created)["status"] = {{"conditions",
                           {{{"type", "ScaleDownSpotRequested"},
                             {"status", "True"},
                             {"reason", "BudgetExceeded"},
                             {"message", "spend 120 of 100"},
                             {"lastTransitionTime", "2026-12-01T00:00:00Z"}}}}};
  auto written =
      client_->Replace(kube::ObjectRef{budgets, ns_, "ml-spend"}.WithSub("status"), *created);
  ASSERT_TRUE(written.ok()) << written.error().ToString();

  // The default budget (10% of 2 nodes: 1) drains one spot node at a time.
  // No kubelet stands behind simulated nodes: the test finishes evicted pods
  // (KWOK's pod-delete stage does the same).
  ASSERT_TRUE(WaitFor(
      [&] {
        FinishTerminatingPods();
        return PoolNodes("spotty").empty();
      },
      std::chrono::seconds(60)))
      << Pool("spotty").dump(2) << "\n"
      << client_->Get({budgets, ns_, "ml-spend"})->dump(2) << "\n"
      << manager_.Log();
  status = Pool("spotty")["status"];
  ASSERT_TRUE(WaitFor([&] {
    status = Pool("spotty")["status"];
    return status["tiers"]["spot"].value("desired", -1) == 0;
  })) << status.dump(2);
  EXPECT_TRUE(Actions(status).count("Cordon:spot")) << status.dump(2);
  EXPECT_TRUE(Actions(status).count("Evict:spot")) << status.dump(2);
  EXPECT_TRUE(Actions(status).count("Terminate:spot")) << status.dump(2);
  bool named = false;
  for (const json& a : status["recentActions"]) {
    named = named || a["message"].get<std::string>().find("SpotScaleDown (" + ns_ + "/ml-spend)") !=
                         std::string::npos;
  }
  EXPECT_TRUE(named) << status.dump(2);
  std::cout << "--- status after scaleDownSpot ---\n" << status.dump(2) << "\n";
}

// A spot node gets an interruption notice (what the node agent writes: the
// interruption taint, a cordon and the notice annotation). Before its pod is
// evicted the controller orders its replacement on on-demand (spot is marked
// unavailable), records the Interruption; once the pod is gone the
// interrupted instance is terminated and the spot group shrinks.
TEST_F(GpuNodePoolIntegrationTest, AnInterruptionOrdersReplacementCapacityAtOnce) {
  json pool = json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
    "metadata": {"name": "notice"},
    "spec": {
      "provider": {"type": "simulated", "provisioningDelay": "1s",
                   "groups": {"spot": "nt-spot", "onDemand": "nt-od"}},
      "instanceTypes": [{"name": "sim.a10x1", "gpuModel": "A10G", "gpuCount": 1,
                         "cpu": "4", "memory": "16Gi", "price": {"spot": 0.38, "onDemand": 1.01}}],
      "maxNodes": 4,
      "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "Never"}
    }})");
  ASSERT_TRUE(client_->Create({kPools, "", "notice"}, pool).ok());
  CreatePendingPod("serve-0", /*whole_gpu=*/true);
  ASSERT_TRUE(WaitFor([&] { return PoolNodes("notice").size() == 1; })) << manager_.Log();
  const std::string spot_node = PoolNodes("notice")[0];
  Bind("serve-0", spot_node);
  ASSERT_TRUE(WaitFor([&] {
    const json st = Pool("notice").value("status", json::object());
    return st.value("pendingGPUPods", -1) == 0 && st["tiers"]["spot"].value("nodes", 0) == 1;
  })) << Pool("notice").dump(2);

  auto node = client_->Get({kube::resources::kNodes, "", spot_node});
  ASSERT_TRUE(node.ok());
  (*node)["metadata"]["annotations"]["gpu-autoscaler.io/interruption-notice"] =
      "SpotInterruption 2026-12-05T03:00:00Z";
  (*node)["spec"]["unschedulable"] = true;
  (*node)["spec"]["taints"] = {{{"key", "gpu-autoscaler.io/interruption"},
                                {"value", "SpotInterruption"},
                                {"effect", "NoSchedule"}}};
  ASSERT_TRUE(client_->Replace({kube::resources::kNodes, "", spot_node}, *node).ok());

  // The pod is still on the node: its replacement is on order already.
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = Pool("notice").value("status", json::object());
    return status.value("tiers", json::object())
               .value("onDemand", json::object())
               .value("desired", 0) == 1;
  })) << status.dump(2)
      << manager_.Log();
  EXPECT_TRUE(Actions(status).count("Interruption:spot")) << status.dump(2);
  EXPECT_TRUE(Actions(status).count("ScaleUp:onDemand")) << status.dump(2);
  ASSERT_EQ(status["unavailableOfferings"].size(), 1u) << status.dump(2);
  EXPECT_EQ(status["unavailableOfferings"][0]["tier"], "spot");
  EXPECT_EQ(status["tiers"]["spot"]["desired"], 1) << status.dump(2);  // not terminated yet

  // The node agent evicts the pod; the empty interrupted node goes.
  ASSERT_TRUE(
      client_->Delete({kube::resources::kPods, ns_, "serve-0"}, {.grace_period_seconds = 0}).ok());
  ASSERT_TRUE(WaitFor([&] {
    status = Pool("notice").value("status", json::object());
    return status["tiers"]["spot"].value("desired", -1) == 0;
  })) << status.dump(2)
      << manager_.Log();
  EXPECT_TRUE(Actions(status).count("Terminate:spot")) << status.dump(2);
  std::cout << "--- status after the interruption ---\n" << status.dump(2) << "\n";
}

// Predictive scaling through the real processes. Each pool's demand history
// is seeded in its checkpoint ConfigMap (gpunodepool-<pool>-demand in the
// manager's namespace) before the pool exists: two 20-minute seasons of 5 m
// steps, 0, 6, 6, 0 GPUs, ending at the current step. No pod is pending, but
// a season ago demand rose to 6 GPUs in the next step: the pools grow ahead
// of it, up to maxNodes (3) or what the cost ceiling pays for (0.40/h at
// 0.16 a spot node: 2). Disabled, nothing happens; a corrupt checkpoint is a
// condition and the history starts over.
TEST_F(GpuNodePoolIntegrationTest, PreProvisionsAheadOfTheSeasonalRiseWithinLimits) {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t end = now - now % 300;
  std::string gpus;
  for (int i = 0; i < 8; ++i)
    gpus += std::string(i == 0 ? "" : ",") + (i % 4 == 1 || i % 4 == 2 ? "6" : "0");
  const std::string history =
      json{{"version", 1}, {"stepSeconds", 300}, {"start", end - 8 * 300}, {"gpus", gpus}}.dump();
  auto seed = [&](const std::string& pool, const std::string& text) {
    json cm = {
        {"apiVersion", "v1"},
        {"kind", "ConfigMap"},
        {"metadata", {{"name", "gpunodepool-" + pool + "-demand"}, {"namespace", "default"}}},
        {"data", {{"history.json", text}}}};
    auto created = client_->Create({kube::resources::kConfigMaps, "default", ""}, cm);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
  };
  auto pool = [&](const std::string& name, const json& predictive, const json& edit) {
    json p = json::parse(R"({
      "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
      "spec": {
        "provider": {"type": "simulated", "provisioningDelay": "1s"},
        "instanceTypes": [{"name": "sim.t4x1", "gpuModel": "Tesla-T4", "gpuCount": 1,
                           "cpu": "8", "memory": "32Gi", "price": {"spot": 0.16, "onDemand": 0.53}}],
        "maxNodes": 10,
        "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "1s"}
      }})");
    p["metadata"]["name"] = name;
    p["spec"]["provider"]["groups"] = {{"spot", name + "-spot"}, {"onDemand", name + "-od"}};
    p["spec"]["predictive"] = predictive;
    p["spec"].merge_patch(edit);
    auto created = client_->Create({kPools, "", name}, p);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
  };
  const json predictive = {{"enabled", true}, {"step", "5m"},        {"seasonality", "20m"},
                           {"horizon", "5m"}, {"minHistory", "40m"}, {"method", "SeasonalNaive"}};
  json off = predictive;
  off["enabled"] = false;
  for (const char* name : {"pred-max", "pred-cost", "pred-off"})
    seed(name, history);
  seed("pred-corrupt", R"({"version":1,"stepSeconds":300,"start":0,"gpus":"1,2,zebra"})");
  pool("pred-corrupt", predictive, json::object());
  pool("pred-off", off, json::object());
  pool("pred-max", predictive, {{"maxNodes", 3}});
  pool("pred-cost", predictive, {{"costPerHourCeiling", 0.4}});

  ASSERT_TRUE(WaitFor([&] { return PoolNodes("pred-max").size() == 3; })) << manager_.Log();
  ASSERT_TRUE(WaitFor([&] { return PoolNodes("pred-cost").size() == 2; })) << manager_.Log();
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = Pool("pred-max").value("status", json::object());
    return status.value("nodes", 0) == 3 &&
           status.value("predictive", json::object()).value("floorNodes", 0) == 3;
  })) << status.dump(2);
  EXPECT_EQ(status["desired"], 3);
  EXPECT_EQ(status["pendingGPUPods"], 0);
  EXPECT_EQ(status["predictive"]["method"], "seasonal-naive(season=4)");
  EXPECT_EQ(status["predictive"]["forecastGPUs"], 6.0);
  EXPECT_EQ(status["predictive"]["limitedBy"], "MaxNodes");
  EXPECT_GE(status["predictive"]["historyPoints"].get<int>(), 8);
  EXPECT_EQ(PoolCondition("pred-max", "Predicting")->status, "True");
  EXPECT_EQ(status["recentActions"].back()["action"], "ScaleUp");
  std::cout << "--- status of a pool scaled ahead of demand ---\n" << status.dump(2) << "\n";

  // The floor holds: the empty nodes are not consolidated (consolidateAfter 1s).
  const json cost = Pool("pred-cost")["status"];
  EXPECT_EQ(cost["predictive"]["floorNodes"], 2);
  EXPECT_EQ(cost["predictive"]["limitedBy"], "CostCeiling");
  EXPECT_LE(cost["hourlyCost"].get<double>(), 0.4);

  // An Event says why the pool grew.
  bool pre_provisioned = false;
  ASSERT_TRUE(WaitFor([&] {
    auto events = client_->List({kube::resources::kEvents, "default"});
    if (!events.ok()) return false;
    for (const json& e : (*events)["items"])
      pre_provisioned = pre_provisioned || e.value("reason", "") == "PreProvision";
    return pre_provisioned;
  }));

  // The forecast and the floor as Prometheus gauges.
  auto metrics = kube::RestClient::Create(
      {.server = "http://127.0.0.1:" + std::to_string(manager_.PortFromLog("metrics_port"))});
  ASSERT_TRUE(metrics.ok());
  auto scraped = (*metrics)->Request("GET", "/metrics");
  ASSERT_TRUE(scraped.ok());
  EXPECT_NE(
      scraped->body.find("gpu_autoscaler_node_pool_predictive_floor_nodes{pool=\"pred-max\"} 3"),
      std::string::npos)
      << scraped->body;
  EXPECT_NE(scraped->body.find("gpu_autoscaler_node_pool_forecast_gpus{pool=\"pred-max\"} 6"),
            std::string::npos);
  EXPECT_EQ(scraped->body.find("gpu_autoscaler_node_pool_forecast_gpus{pool=\"pred-off\"}"),
            std::string::npos);

  // Disabled: ready, reported, never grown.
  auto off_condition = PoolCondition("pred-off", "Predicting");
  ASSERT_TRUE(off_condition);
  EXPECT_EQ(off_condition->reason, "Disabled");
  EXPECT_TRUE(PoolNodes("pred-off").empty());
  EXPECT_EQ(Pool("pred-off")["status"]["desired"], 0);

  // The corrupt checkpoint: a condition, no growth, and the manager lives on.
  auto corrupt = PoolCondition("pred-corrupt", "Predicting");
  ASSERT_TRUE(corrupt);
  EXPECT_EQ(corrupt->status, "False");
  EXPECT_EQ(corrupt->reason, "HistoryReset");
  EXPECT_NE(corrupt->message.find("point 2 \"zebra\""), std::string::npos) << corrupt->message;
  EXPECT_TRUE(PoolNodes("pred-corrupt").empty());
  EXPECT_NE(manager_.Log().find("discarding demand history checkpoint"), std::string::npos);
  EXPECT_EQ(PoolCondition("pred-corrupt", "Ready")->status, "True");
}

}  // namespace
}  // namespace gpu_autoscaler
