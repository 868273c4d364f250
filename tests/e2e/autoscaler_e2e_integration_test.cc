// The autoscaling loop end to end, through real processes and the AWS fake:
//   gpu-autoscaler-apiserver   the embedded API server;
//   gpu-autoscaler-manager     --controllers=gpunodepool, with an aws-asg
//                              GPUNodePool whose credentials Secret points
//                              `endpoint` and `ca.crt` at the loopback AWS fake;
//   gpu-autoscaler-scheduler   standalone, binding the pods;
//   gpu-autoscaler-node-agent  --interruption-source=aws against the fake IMDS.
// The fake AWS (Auto Scaling over HTTPS with SigV4, IMDSv2 over HTTP) runs in
// this test binary. The test also plays what a cluster adds around them: the
// kubelets that register a Node for each instance the fake launched (and the
// cloud controller manager that deletes the Node of a terminated instance),
// kubelets finishing pods, and the budget controller's verdict on a Budget.
//
// The steps (issue 11's "Done means"):
//   1. pending GPU pods;  2. scale-up (SetDesiredCapacity at the fake);
//   3. Nodes join;  4. the scheduler binds the pods;  5. the pods finish;
//   6. the empty nodes are consolidated (TerminateInstanceInAutoScalingGroup);
//   7. a spot notice on the fake IMDS drains a node (taint, cordon, eviction);
//   8. a Budget's scaleDownSpot shrinks the spot tier to zero.
// No step is timed: each waits for its condition with a generous deadline.
#include <signal.h>
#include <stdlib.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "common/base64.h"
#include "kube/conditions.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/fake_aws.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;
using namespace std::chrono_literals;

const kube::GroupVersionResource kPools{"gpuautoscaler.io", "v1alpha1", "gpunodepools", false};
const kube::GroupVersionResource kBudgets{"gpuautoscaler.io", "v1alpha1", "budgets", true};
constexpr char kSpotGroup[] = "gpu-spot";
constexpr char kOnDemandGroup[] = "gpu-od";
constexpr char kInstanceType[] = "g5.xlarge";
// Marks the Nodes this test's kubelets registered.
constexpr char kFakeKubeletLabel[] = "e2e.gpuautoscaler.io/fake-kubelet";

class AutoscalerEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto aws = testing::FakeAws::Start({});
    ASSERT_TRUE(aws.ok()) << aws.error().ToString();
    aws_ = std::move(*aws);
    aws_->AddGroup(
        {.name = kSpotGroup, .min = 0, .max = 4, .instance_type = kInstanceType, .all_spot = true});
    aws_->AddGroup({.name = kOnDemandGroup, .min = 0, .max = 4, .instance_type = kInstanceType});

    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (server_->is_real_cluster()) GTEST_SKIP() << "registers and deletes Nodes";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("e2e");
    dir_ = testing::MakeTempDir("gpa-e2e");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);

    // The pool's credentials: the fake's access key, endpoint and CA.
    json secret = {
        {"apiVersion", "v1"},
        {"kind", "Secret"},
        {"metadata", {{"name", "aws-credentials"}, {"namespace", ns_}}},
        {"type", "Opaque"},
        {"data",
         {{"aws_access_key_id", Base64Encode(testing::FakeAwsOptions{}.access_key_id)},
          {"aws_secret_access_key", Base64Encode(testing::FakeAwsOptions{}.secret_access_key)},
          {"endpoint", Base64Encode(aws_->endpoint())},
          {"ca.crt", Base64Encode(aws_->ca_pem())}}}};
    auto created = client_->Create({kube::resources::kSecrets, ns_, "aws-credentials"}, secret);
    ASSERT_TRUE(created.ok()) << created.error().ToString();

    ASSERT_TRUE(scheduler_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-scheduler"), "--kubeconfig=" + kubeconfig_,
         "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
         "--health-probe-bind-address=127.0.0.1:0", "--bind-address=127.0.0.1", "--port=0"},
        dir_ + "/scheduler.log"));
    ASSERT_TRUE(manager_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig_,
         "--controllers=gpunodepool", "--metrics-bind-address=127.0.0.1:0",
         "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0"},
        dir_ + "/manager.log"));
    ASSERT_TRUE(WaitFor([&] { return scheduler_.PortFromLog("metrics_port") > 0; }))
        << scheduler_.Log();
    ASSERT_TRUE(WaitFor([&] { return manager_.PortFromLog("metrics_port") > 0; }))
        << manager_.Log();
  }

  void TearDown() override {
    if (agent_.running()) agent_.Kill(SIGTERM);
    if (manager_.running()) manager_.Kill(SIGTERM);
    if (scheduler_.running()) scheduler_.Kill(SIGTERM);
    if (HasFailure()) {
      std::cout << "--- logs kept in " << dir_ << " ---\n";
    } else if (!dir_.empty()) {
      std::filesystem::remove_all(dir_);
    }
  }

  // What the processes' logs say, for a failed wait.
  std::string Logs() {
    return "--- manager ---\n" + manager_.Log() + "\n--- scheduler ---\n" + scheduler_.Log() +
           "\n--- agent ---\n" + (agent_.running() ? agent_.Log() : std::string("(not started)"));
  }

  json Pool() {
    auto got = client_->Get({kPools, "", "a10g"});
    return got.ok() ? *got : json::object();
  }
  json PoolStatus() { return Pool().value("status", json::object()); }
  std::set<std::string> PoolActions() {
    std::set<std::string> out;
    for (const json& a : PoolStatus().value("recentActions", json::array()))
      out.insert(a.value("action", "") + ":" + a.value("tier", ""));
    return out;
  }

  int Count(const std::vector<std::string>& actions, const std::string& name) {
    return static_cast<int>(std::count(actions.begin(), actions.end(), name));
  }

  // The kubelets and the cloud controller manager: a Ready Node with one A10G
  // for each instance the fake runs; the Node of a terminated instance goes.
  void SyncNodes() {
    std::set<std::string> live;
    for (const char* group : {kSpotGroup, kOnDemandGroup}) {
      auto g = aws_->Group(group);
      if (!g) continue;
      for (const testing::FakeAwsInstance& in : g->instances) {
        const std::string name = "ip-" + in.id;
        live.insert(name);
        if (known_nodes_.count(name)) continue;
        RegisterNode(name, "aws:///" + in.zone + "/" + in.id, in.zone,
                     std::string(group) == kSpotGroup ? "spot" : "on-demand");
        known_nodes_.insert(name);
      }
    }
    for (auto it = known_nodes_.begin(); it != known_nodes_.end();) {
      if (live.count(*it)) {
        ++it;
        continue;
      }
      (void)client_->Delete({kube::resources::kNodes, "", *it});
      it = known_nodes_.erase(it);
    }
  }

  void RegisterNode(const std::string& name, const std::string& provider_id,
                    const std::string& zone, const std::string& capacity_type) {
    const json resources = {
        {"cpu", "4"}, {"memory", "16Gi"}, {"pods", "110"}, {"nvidia.com/gpu", "1"}};
    json node = {
        {"apiVersion", "v1"},
        {"kind", "Node"},
        {"metadata",
         {{"name", name},
          {"labels",
           {{"kubernetes.io/hostname", name},
            {"kubernetes.io/os", "linux"},
            {"node.kubernetes.io/instance-type", kInstanceType},
            {"topology.kubernetes.io/zone", zone},
            {"karpenter.sh/capacity-type", capacity_type},
            {"nvidia.com/gpu.product", "NVIDIA-A10G"},
            {"nvidia.com/gpu.count", "1"},
            {kFakeKubeletLabel, "true"}}}}},
        {"spec", {{"providerID", provider_id}}},
        {"status",
         {{"capacity", resources},
          {"allocatable", resources},
          {"conditions", {{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}}}}}};
    auto created = client_->Create({kube::resources::kNodes, "", name}, node);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    (*created)["status"] = node["status"];  // a kubelet posts its status
    auto written = client_->Replace({kube::resources::kNodes, "", name, "status"}, *created);
    ASSERT_TRUE(written.ok()) << written.error().ToString();
  }

  // A whole-GPU pod for the project's scheduler.
  void CreatePod(const std::string& name) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", ns_}}},
                {"spec",
                 {{"schedulerName", "gpu-autoscaler"},
                  {"containers",
                   {{{"name", "main"},
                     {"image", "registry.example/train:1"},
                     {"resources",
                      {{"requests", {{"cpu", "1"}, {"memory", "2Gi"}, {"nvidia.com/gpu", "1"}}},
                       {"limits", {{"nvidia.com/gpu", "1"}}}}}}}}}}};
    auto created = client_->Create({kube::resources::kPods, ns_, name}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
  }

  json GetPod(const std::string& name) {
    auto got = client_->Get({kube::resources::kPods, ns_, name});
    return got.ok() ? *got : json();
  }
  std::string NodeOf(const std::string& pod) {
    const json p = GetPod(pod);
    return p.is_object() ? p["spec"].value("nodeName", "") : "";
  }

  // A kubelet reports its pod's containers exited 0.
  void Succeed(const std::string& name) {
    json pod = GetPod(name);
    ASSERT_TRUE(pod.is_object());
    pod["status"]["phase"] = "Succeeded";
    auto written =
        client_->Replace(kube::ObjectRef{kube::resources::kPods, ns_, name}.WithSub("status"), pod);
    ASSERT_TRUE(written.ok()) << written.error().ToString();
  }

  // Kubelets finish evicted pods once their grace period would have run out.
  void FinishTerminatingPods() {
    auto pods = client_->List({kube::resources::kPods, ns_});
    if (!pods.ok()) return;
    for (const json& p : (*pods)["items"]) {
      if (!p["metadata"].contains("deletionTimestamp")) continue;
      (void)client_->Delete({kube::resources::kPods, ns_, p["metadata"]["name"]},
                            {.grace_period_seconds = 0});
    }
  }

  // The kubelets' and the cloud controller manager's share of a wait.
  bool Cluster(const std::function<bool()>& done) {
    SyncNodes();
    FinishTerminatingPods();
    return done();
  }

  void StartAgent(const std::string& node) {
    const std::string scenario = dir_ + "/nvml.json";
    std::ofstream(scenario) << R"({"gpus": [{"name": "NVIDIA A10G", "memoryMiB": 23028}]})";
    setenv("GPA_FAKE_NVML_SCENARIO", scenario.c_str(), 1);
    ASSERT_TRUE(agent_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-node-agent"), "--node-name=" + node,
         "--kubeconfig=" + kubeconfig_,
         "--nvml-library=" + testing::BinaryPath("libgpa-fake-nvml.so"), "--report-interval=1s",
         "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
         "--health-probe-bind-address=127.0.0.1:0", "--sysfs-root=" + dir_ + "/sys",
         "--interruption-source=aws", "--metadata-endpoint=" + aws_->imds_endpoint(),
         "--interruption-poll-interval=100ms"},
        dir_ + "/agent.log"));
    ASSERT_TRUE(WaitFor([&] { return agent_.PortFromLog("metrics_port") > 0; })) << agent_.Log();
  }

  std::unique_ptr<testing::FakeAws> aws_;
  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_, dir_, kubeconfig_;
  ChildProcess scheduler_, manager_, agent_;
  std::set<std::string> known_nodes_;
};

TEST_F(AutoscalerEndToEndTest, ScalesUpBindsConsolidatesDrainsOnANoticeAndHonoursABudget) {
  json pool = json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
    "metadata": {"name": "a10g"},
    "spec": {
      "provider": {"type": "aws-asg", "region": "us-east-1",
                   "groups": {"spot": "gpu-spot", "onDemand": "gpu-od"}},
      "instanceTypes": [{"name": "g5.xlarge", "gpuModel": "NVIDIA-A10G", "gpuCount": 1,
                         "cpu": "4", "memory": "16Gi",
                         "price": {"spot": 0.4523, "onDemand": 1.006}}],
      "maxNodes": 4,
      "tiers": {"spot": {"weight": 1, "maxNodes": 4}, "onDemand": {"weight": 1}},
      "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "2s"},
      "disruption": {"budgets": [{"nodes": "100%"}]}
    }})");
  pool["spec"]["provider"]["credentialsSecretRef"] = {{"namespace", ns_},
                                                      {"name", "aws-credentials"}};
  ASSERT_TRUE(client_->Create({kPools, "", "a10g"}, pool).ok());
  ASSERT_TRUE(WaitFor([&] {
    auto c = kube::FindCondition(PoolStatus().value("conditions", json::array()), "Ready");
    return c && c->status == "True";
  })) << PoolStatus().dump(2)
      << Logs();
  // The manager reached the fake with a valid signature.
  EXPECT_GE(Count(aws_->actions(), "DescribeAutoScalingGroups"), 1);
  EXPECT_TRUE(aws_->errors().empty()) << aws_->errors()[0];

  // 1. Two pending whole-GPU pods: the scheduler finds no node for them.
  for (const char* name : {"train-0", "train-1"})
    CreatePod(name);
  ASSERT_TRUE(WaitFor([&] { return PoolStatus().value("pendingGPUPods", 0) == 2; }))
      << PoolStatus().dump(2) << Logs();
  auto scheduled = kube::FindCondition(GetPod("train-0")["status"]["conditions"], "PodScheduled");
  ASSERT_TRUE(scheduled);
  EXPECT_EQ(scheduled->reason, "Unschedulable");

  // 2. Scale-up: the spot group (the cheaper tier) is asked for two instances.
  ASSERT_TRUE(WaitFor([&] { return aws_->Group(kSpotGroup)->desired == 2; }, 60s))
      << PoolStatus().dump(2) << Logs();
  const auto resize = aws_->LastParams("SetDesiredCapacity");
  EXPECT_NE(std::find(resize.begin(), resize.end(),
                      std::pair<std::string, std::string>("AutoScalingGroupName", kSpotGroup)),
            resize.end());
  EXPECT_NE(std::find(resize.begin(), resize.end(),
                      std::pair<std::string, std::string>("DesiredCapacity", "2")),
            resize.end());
  EXPECT_EQ(aws_->Group(kOnDemandGroup)->desired, 0);
  EXPECT_EQ(aws_->Group(kSpotGroup)->instances.size(), 2u);

  // 3-4. The instances' Nodes join and the scheduler binds one pod to each.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cluster([&] { return !NodeOf("train-0").empty() && !NodeOf("train-1").empty(); });
      },
      60s))
      << PoolStatus().dump(2) << Logs();
  EXPECT_NE(NodeOf("train-0"), NodeOf("train-1"));  // one A10G each
  EXPECT_EQ(GetPod("train-0")["metadata"]["annotations"].value(
                std::string(api::kGpuIndicesAnnotation), ""),
            "0");
  ASSERT_TRUE(WaitFor([&] {
    const json s = PoolStatus();
    return s.value("nodes", 0) == 2 && s.value("pendingGPUPods", -1) == 0;
  })) << PoolStatus().dump(2);
  EXPECT_EQ(PoolStatus()["tiers"]["spot"]["nodes"], 2);
  std::cout << "--- pool after scale-up and binding ---\n" << PoolStatus().dump(2) << "\n";

  // 5-6. The pods finish; the empty nodes are consolidated after 2 s:
  // cordoned, then their instances terminated with the desired size lowered.
  for (const char* name : {"train-0", "train-1"})
    Succeed(name);
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cluster([&] {
          return Count(aws_->actions(), "TerminateInstanceInAutoScalingGroup") == 2 &&
                 known_nodes_.empty();
        });
      },
      90s))
      << PoolStatus().dump(2) << Logs();
  EXPECT_EQ(aws_->Group(kSpotGroup)->desired, 0);
  EXPECT_TRUE(aws_->Group(kSpotGroup)->instances.empty());
  const auto terminate = aws_->LastParams("TerminateInstanceInAutoScalingGroup");
  EXPECT_NE(
      std::find(terminate.begin(), terminate.end(),
                std::pair<std::string, std::string>("ShouldDecrementDesiredCapacity", "true")),
      terminate.end());
  ASSERT_TRUE(WaitFor([&] {
    const auto a = PoolActions();
    return PoolStatus().value("nodes", -1) == 0 && a.count("Cordon:spot") &&
           a.count("Terminate:spot");
  })) << PoolStatus().dump(2);
  for (const char* name : {"train-0", "train-1"})
    ASSERT_TRUE(
        client_->Delete({kube::resources::kPods, ns_, name}, {.grace_period_seconds = 0}).ok());

  // Two more pods bring two fresh spot nodes.
  for (const char* name : {"serve-0", "serve-1"})
    CreatePod(name);
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cluster([&] { return !NodeOf("serve-0").empty() && !NodeOf("serve-1").empty(); });
      },
      90s))
      << PoolStatus().dump(2) << Logs();
  const std::string noticed = NodeOf("serve-0");
  const std::string other = NodeOf("serve-1");
  ASSERT_NE(noticed, other);

  // 7. The node agent on one of them polls the fake IMDS; AWS posts the
  // two-minute spot notice: the node is tainted, cordoned and drained.
  StartAgent(noticed);
  if (HasFatalFailure()) return;
  const std::time_t at = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() +
                                                              std::chrono::minutes(2));
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&at));
  aws_->SetSpotInstanceAction(std::string(R"({"action": "terminate", "time": ")") + stamp + "\"}");
  std::string drained;
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cluster([&] {
          auto events = client_->List({kube::resources::kEvents, "default"});
          if (events.ok()) {
            for (const json& e : (*events)["items"]) {
              if (e.value("reason", "") == "InterruptionDrained" &&
                  e["involvedObject"].value("name", "") == noticed)
                drained = e.value("message", "");
            }
          }
          return !drained.empty() && !GetPod("serve-0").is_object();
        });
      },
      60s))
      << Logs();
  EXPECT_EQ(drained.rfind("SpotInterruption: evicted 1 of 1 pods in ", 0), 0u) << drained;
  auto node = client_->Get({kube::resources::kNodes, "", noticed});
  if (node.ok()) {  // the pool may already have consolidated the emptied node
    EXPECT_TRUE((*node)["spec"].value("unschedulable", false));
    bool tainted = false;
    for (const json& t : (*node)["spec"].value("taints", json::array()))
      tainted = tainted || (t["key"] == std::string(api::kInterruptionTaintKey) &&
                            t["effect"] == "NoSchedule");
    EXPECT_TRUE(tainted) << node->dump(2);
    EXPECT_TRUE((*node)["metadata"]["annotations"].contains(
        std::string(api::kInterruptionNoticeAnnotation)))
        << node->dump(2);
  }
  EXPECT_EQ(NodeOf("serve-1"), other);  // the other node is untouched
  std::cout << "--- the spot notice: " << drained << " ---\n";

  // 8. A Budget over this namespace asks scaleDownSpot (what the budget
  // controller writes once the spend passes the amount): the spot tier drains
  // and shrinks to zero.
  json budget = {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "Budget"},
      {"metadata", {{"name", "ml-spend"}, {"namespace", ns_}}},
      {"spec",
       {{"amount", 100}, {"enforcement", "scaleDownSpot"}, {"scope", {{"namespaces", {ns_}}}}}}};
  auto created = client_->Create({kBudgets, ns_, "ml-spend"}, budget);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  (*created)["status"] = {{"conditions",
                           {{{"type", "ScaleDownSpotRequested"},
                             {"status", "True"},
                             {"reason", "BudgetExceeded"},
                             {"message", "spend 120 of 100"},
                             {"lastTransitionTime", "2026-12-01T00:00:00Z"}}}}};
  auto written =
      client_->Replace(kube::ObjectRef{kBudgets, ns_, "ml-spend"}.WithSub("status"), *created);
  ASSERT_TRUE(written.ok()) << written.error().ToString();
  ASSERT_TRUE(WaitFor(
      [&] {
        return Cluster([&] {
          auto spot = aws_->Group(kSpotGroup);
          return spot->desired == 0 && spot->instances.empty() && !GetPod("serve-1").is_object();
        });
      },
      90s))
      << PoolStatus().dump(2) << Logs();
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = PoolStatus();
    return status["tiers"]["spot"].value("desired", -1) == 0 &&
           status["tiers"]["spot"].value("nodes", -1) == 0;
  })) << status.dump(2);
  bool named = false;
  for (const json& a : status["recentActions"])
    named = named || a.value("message", "").find("SpotScaleDown (" + ns_ + "/ml-spend)") !=
                         std::string::npos;
  EXPECT_TRUE(named) << status.dump(2);
  EXPECT_TRUE(PoolActions().count("Evict:spot")) << status.dump(2);
  EXPECT_GE(Count(aws_->actions(), "TerminateInstanceInAutoScalingGroup"), 4);
  // Nothing was signed wrongly or refused along the way.
  EXPECT_TRUE(aws_->errors().empty()) << aws_->errors()[0];
  // The credentials the manager signed with never reach a log.
  const std::string logs = Logs();
  EXPECT_EQ(logs.find(testing::FakeAwsOptions{}.secret_access_key), std::string::npos);
  EXPECT_EQ(logs.find(Base64Encode(testing::FakeAwsOptions{}.secret_access_key)),
            std::string::npos);
  std::cout << "--- pool after scaleDownSpot ---\n" << status.dump(2) << "\n";
}

}  // namespace
}  // namespace gpu_autoscaler
