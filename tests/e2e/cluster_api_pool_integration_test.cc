// The Cluster API provider driven by the controller: gpu-autoscaler-manager
// (--controllers=gpunodepool) and the embedded API server as processes, a
// GPUNodePool with provider cluster-api whose group is a MachineDeployment
// (Cluster API's CRDs from tests/data/capi, annotated with Cluster
// Autoscaler's min and max sizes). The test plays Cluster API's
// MachineDeployment controller and infrastructure provider: it keeps as many
// Machines as spec.replicas (deleting those marked
// cluster.x-k8s.io/delete-machine first) and registers a Node per Machine,
// with the Machine's providerID. Pending pods scale the MachineDeployment up
// through its scale subresource; once they finish, the empty nodes' Machines
// are marked and the replicas lowered. A manager killed right after lowering
// them, before the MachineDeployment controller deleted the marked Machine,
// does not lower them again after its restart.
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/yaml_json.h"
#include "kube/conditions.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/crd_apply.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;
using namespace std::chrono_literals;

const kube::GroupVersionResource kPools{"gpuautoscaler.io", "v1alpha1", "gpunodepools", false};
const kube::GroupVersionResource kMachineDeployments{"cluster.x-k8s.io", "v1beta1",
                                                     "machinedeployments"};
const kube::GroupVersionResource kMachines{"cluster.x-k8s.io", "v1beta1", "machines"};
constexpr char kDeployment[] = "gpu-l4";
constexpr char kDeploymentLabel[] = "cluster.x-k8s.io/deployment-name";
constexpr char kDeleteMachine[] = "cluster.x-k8s.io/delete-machine";

class ClusterApiPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (server_->is_real_cluster()) GTEST_SKIP() << "registers and deletes Nodes";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    auto crds = apiserver::YamlDocumentsToJson(
        testing::ReadFileOrDie(testing::SourcePath("tests/data/capi/crds.yaml")));
    ASSERT_TRUE(crds.ok());
    for (const json& crd : *crds)
      ASSERT_TRUE(testing::ApplyCrdAndWait(*client_, crd).ok()) << crd["metadata"]["name"];
    ns_ = server_->CreateTestNamespace("capi");
    dir_ = testing::MakeTempDir("gpa-capi");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);

    json md = {{"apiVersion", "cluster.x-k8s.io/v1beta1"},
               {"kind", "MachineDeployment"},
               {"metadata",
                {{"name", kDeployment},
                 {"namespace", ns_},
                 {"annotations",
                  {{"cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size", "0"},
                   {"cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size", "3"}}}}},
               {"spec", {{"clusterName", "work"}, {"replicas", 0}}}};
    auto created = client_->Create({kMachineDeployments, ns_, kDeployment}, md);
    ASSERT_TRUE(created.ok()) << created.error().ToString();

    ASSERT_TRUE(manager_.Spawn(ManagerArgs(), dir_ + "/manager.log"));
    ASSERT_TRUE(WaitFor([&] { return manager_.PortFromLog("metrics_port") > 0; }))
        << manager_.Log();
  }
  std::vector<std::string> ManagerArgs() const {
    return {testing::BinaryPath("gpu-autoscaler-manager"),
            "--kubeconfig=" + kubeconfig_,
            "--controllers=gpunodepool",
            "--metrics-bind-address=127.0.0.1:0",
            "--metrics-secure=false",
            "--health-probe-bind-address=127.0.0.1:0"};
  }
  // The pool "l4" over the MachineDeployment.
  void CreatePool(const std::string& consolidate_after) {
    json pool = json::parse(R"({
      "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
      "metadata": {"name": "l4"},
      "spec": {
        "provider": {"type": "cluster-api"},
        "instanceTypes": [{"name": "g2-standard-8", "gpuModel": "NVIDIA-L4", "gpuCount": 1,
                           "cpu": "8", "memory": "32Gi", "price": {"onDemand": 0.85}}],
        "maxNodes": 3,
        "disruption": {"budgets": [{"nodes": "100%"}]}
      }})");
    pool["spec"]["scaleDown"] = {{"policy", "WhenEmpty"}, {"consolidateAfter", consolidate_after}};
    pool["spec"]["provider"]["groups"] = {
        {"onDemand", "MachineDeployment/" + ns_ + "/" + kDeployment}};
    ASSERT_TRUE(client_->Create({kPools, "", "l4"}, pool).ok());
  }
  int Terminates() {
    int n = 0;
    for (const json& a : PoolStatus().value("recentActions", json::array()))
      n += a.value("action", "") == "Terminate" ? 1 : 0;
    return n;
  }
  void TearDown() override {
    if (manager_.running()) manager_.Kill(SIGTERM);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  int Replicas() {
    auto scale =
        client_->Get(kube::ObjectRef{kMachineDeployments, ns_, kDeployment}.WithSub("scale"));
    return scale.ok() ? (*scale)["spec"].value("replicas", -1) : -1;
  }
  json PoolStatus() {
    auto got = client_->Get({kPools, "", "l4"});
    return got.ok() ? (*got).value("status", json::object()) : json::object();
  }

  // Cluster API's share: as many Machines as replicas (marked ones deleted
  // first), each with a Ready Node of the same providerID; a Node whose
  // Machine is gone goes too.
  void ReconcileMachines() {
    // Replicas first, then the Machines: the provider marks a Machine before
    // it lowers the replicas, so a list read after the replicas has the mark.
    // Read the other way round, a stale list made this fake MachineSet delete
    // an unmarked Machine (ASan timing), which a real one, acting on the
    // replicas change its cache saw after the mark, does not.
    const int replicas = Replicas();
    if (replicas < 0) return;
    auto list = client_->List(
        {kMachines, ns_}, {.label_selector = std::string(kDeploymentLabel) + "=" + kDeployment});
    if (!list.ok()) return;
    std::vector<json> machines((*list)["items"].begin(), (*list)["items"].end());
    std::stable_partition(machines.begin(), machines.end(), [](const json& m) {
      return m["metadata"].value("annotations", json::object()).contains(kDeleteMachine);
    });
    int excess = static_cast<int>(machines.size()) - replicas;
    std::set<std::string> live;
    for (const json& m : machines) {
      const std::string name = m["metadata"]["name"];
      if (excess > 0) {
        (void)client_->Delete({kMachines, ns_, name});
        --excess;
        continue;
      }
      live.insert(name);
    }
    for (int k = static_cast<int>(live.size()); k < replicas; ++k) {
      const std::string name = std::string(kDeployment) + "-" + std::to_string(next_machine_++);
      const std::string provider_id = "gce://work-project/us-central1-a/" + name;
      json machine = {
          {"apiVersion", "cluster.x-k8s.io/v1beta1"},
          {"kind", "Machine"},
          {"metadata",
           {{"name", name}, {"namespace", ns_}, {"labels", {{kDeploymentLabel, kDeployment}}}}},
          {"spec",
           {{"clusterName", "work"},
            {"providerID", provider_id},
            {"failureDomain", "us-central1-a"}}}};
      auto created = client_->Create({kMachines, ns_, name}, machine);
      if (!created.ok()) continue;
      RegisterNode(name, provider_id);
      // The Node joined: Cluster API records it, and from then on its
      // MachineSet no longer deletes this Machine first.
      (*created)["status"] = {{"nodeRef", {{"kind", "Node"}, {"name", name}}}};
      (void)client_->Replace({kMachines, ns_, name, "status"}, *created);
      live.insert(name);
    }
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      if (live.count(*it)) {
        ++it;
        continue;
      }
      (void)client_->Delete({kube::resources::kNodes, "", *it});
      it = nodes_.erase(it);
    }
  }

  void RegisterNode(const std::string& name, const std::string& provider_id) {
    const json resources = {
        {"cpu", "8"}, {"memory", "32Gi"}, {"pods", "110"}, {"nvidia.com/gpu", "1"}};
    json node = {
        {"apiVersion", "v1"},
        {"kind", "Node"},
        {"metadata",
         {{"name", name},
          {"labels", {{"nvidia.com/gpu.product", "NVIDIA-L4"}, {"nvidia.com/gpu.count", "1"}}}}},
        {"spec", {{"providerID", provider_id}}},
        {"status",
         {{"capacity", resources},
          {"allocatable", resources},
          {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
    auto created = client_->Create({kube::resources::kNodes, "", name}, node);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    (*created)["status"] = node["status"];
    ASSERT_TRUE(client_->Replace({kube::resources::kNodes, "", name, "status"}, *created).ok());
    nodes_.insert(name);
  }

  // The MachineDeployment at 2 replicas, with their Machines and Nodes.
  void StartWithTwoNodes() {
    const json patch = {{"spec", {{"replicas", 2}}}};
    ASSERT_TRUE(client_
                    ->Patch(kube::ObjectRef{kMachineDeployments, ns_, kDeployment}.WithSub("scale"),
                            kube::PatchType::kMerge, patch.dump())
                    .ok());
    ReconcileMachines();
    ASSERT_EQ(nodes_.size(), 2u);
  }

  // A whole-GPU pod left Unschedulable, as kube-scheduler leaves it.
  void CreatePendingPod(const std::string& name) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", ns_}}},
                {"spec",
                 {{"containers",
                   {{{"name", "main"},
                     {"image", "registry.example/infer:1"},
                     {"resources",
                      {{"requests", {{"nvidia.com/gpu", "1"}}},
                       {"limits", {{"nvidia.com/gpu", "1"}}}}}}}}}}};
    auto created = client_->Create({kube::resources::kPods, ns_, name}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    (*created)["status"] = {{"phase", "Pending"},
                            {"conditions",
                             {{{"type", "PodScheduled"},
                               {"status", "False"},
                               {"reason", "Unschedulable"},
                               {"message", "0/0 nodes are available"}}}}};
    ASSERT_TRUE(client_
                    ->Replace(kube::ObjectRef{kube::resources::kPods, ns_, name}.WithSub("status"),
                              *created)
                    .ok());
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

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_, dir_, kubeconfig_;
  ChildProcess manager_;
  std::set<std::string> nodes_;
  int next_machine_ = 0;
};

TEST_F(ClusterApiPoolTest, PendingPodsScaleTheMachineDeploymentAndEmptyMachinesGo) {
  CreatePool("2s");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitFor([&] {
    auto c = kube::FindCondition(PoolStatus().value("conditions", json::array()), "Ready");
    return c && c->status == "True";
  })) << PoolStatus().dump(2)
      << manager_.Log();

  // Two pending pods: replicas 0 -> 2 through the scale subresource.
  for (const char* name : {"infer-0", "infer-1"})
    CreatePendingPod(name);
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 2; }, 60s))
      << PoolStatus().dump(2) << manager_.Log();
  ASSERT_TRUE(WaitFor([&] {
    ReconcileMachines();
    return PoolStatus().value("nodes", 0) == 2;
  })) << PoolStatus().dump(2);
  json status = PoolStatus();
  EXPECT_EQ(status["tiers"]["onDemand"]["desired"], 2);
  EXPECT_EQ(status["tiers"]["onDemand"]["group"], "MachineDeployment/" + ns_ + "/" + kDeployment);
  EXPECT_EQ(status["recentActions"][0]["action"], "ScaleUp");
  EXPECT_EQ(nodes_.size(), 2u);

  // Bound, then finished: both Machines marked for deletion, replicas 0.
  const std::vector<std::string> nodes(nodes_.begin(), nodes_.end());
  Bind("infer-0", nodes[0]);
  Bind("infer-1", nodes[1]);
  ASSERT_TRUE(WaitFor([&] { return PoolStatus().value("pendingGPUPods", -1) == 0; }));
  for (const char* name : {"infer-0", "infer-1"})
    ASSERT_TRUE(
        client_->Delete({kube::resources::kPods, ns_, name}, {.grace_period_seconds = 0}).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        ReconcileMachines();
        return Replicas() == 0 && nodes_.empty();
      },
      90s))
      << PoolStatus().dump(2) << manager_.Log();
  ASSERT_TRUE(WaitFor([&] {
    status = PoolStatus();
    return status.value("nodes", -1) == 0 && status.value("desired", -1) == 0;
  })) << status.dump(2);
  EXPECT_EQ(Terminates(), 2) << status.dump(2);
  auto machines = client_->List({kMachines, ns_});
  ASSERT_TRUE(machines.ok());
  EXPECT_TRUE((*machines)["items"].empty());
  std::cout << "--- cluster-api pool after consolidation ---\n" << status.dump(2) << "\n";
}

// Crash point gpunodepool.scale_down.after_terminate (docs/reliability.md):
// the manager marked the empty node's Machine and lowered the replicas 2 -> 1,
// then died; the MachineDeployment controller has not deleted the Machine yet
// (the test stops playing it), so the instance is still listed. Restarted,
// the manager finds its intent on the Node, sees the replicas already below
// the intent's 2 and does not lower them again; it records one Terminate and
// deletes the Node.
TEST_F(ClusterApiPoolTest, KilledAfterLoweringTheReplicasTheRestartDoesNotLowerThemAgain) {
  manager_.Kill(SIGKILL);  // SetUp's; this test runs its own
  StartWithTwoNodes();
  if (HasFatalFailure()) return;
  const std::string empty = *nodes_.begin(), busy = *nodes_.rbegin();
  CreatePendingPod("server");
  Bind("server", busy);
  CreatePool("0s");
  if (HasFatalFailure()) return;

  ASSERT_EQ(testing::RunUntilFailpointKills(manager_, ManagerArgs(), dir_ + "/manager.log",
                                            "gpunodepool.scale_down.after_terminate=kill"),
            "");
  EXPECT_EQ(Replicas(), 1);
  auto marked = client_->Get({kMachines, ns_, empty});
  ASSERT_TRUE(marked.ok());
  EXPECT_TRUE((*marked)["metadata"].value("annotations", json::object()).contains(kDeleteMachine))
      << marked->dump(2);
  EXPECT_EQ(Terminates(), 0);

  ASSERT_TRUE(manager_.Spawn(ManagerArgs(), dir_ + "/manager-restarted.log"));
  ASSERT_TRUE(WaitFor(
      [&] {
        const bool node_gone = !client_->Get({kube::resources::kNodes, "", empty}).ok();
        return node_gone && Terminates() == 1 && PoolStatus().value("nodes", -1) == 1;
      },
      60s))
      << PoolStatus().dump(2) << manager_.Log();
  EXPECT_EQ(Replicas(), 1) << manager_.Log();
  EXPECT_TRUE(client_->Get({kube::resources::kNodes, "", busy}).ok());
  EXPECT_TRUE(client_->Get({kMachines, ns_, busy}).ok());
  EXPECT_EQ(Terminates(), 1) << PoolStatus().dump(2);
}

// A Machine someone marked cluster.x-k8s.io/delete-machine without lowering
// the replicas (a scale-down of theirs half done, or a stale mark) would be
// deleted first by the MachineSet. The manager therefore does not lower the
// replicas for the empty node while that mark stands: the busy Machine keeps
// running and the pool says why in its ProviderError condition. Once the
// mark is removed, the empty node goes. (This fake MachineSet deletes marked
// Machines in list order, so the busy one, listed first, would have gone.)
TEST_F(ClusterApiPoolTest, AMarkSomeoneElseLeftDoesNotMakeTheBusyMachineGoInstead) {
  StartWithTwoNodes();
  if (HasFatalFailure()) return;
  const std::string busy = *nodes_.begin(), empty = *nodes_.rbegin();
  CreatePendingPod("server");
  Bind("server", busy);
  ASSERT_TRUE(
      client_
          ->Patch({kMachines, ns_, busy}, kube::PatchType::kMerge,
                  json{{"metadata", {{"annotations", {{kDeleteMachine, "by hand"}}}}}}.dump())
          .ok());
  CreatePool("0s");
  if (HasFatalFailure()) return;

  std::string message;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto c =
            kube::FindCondition(PoolStatus().value("conditions", json::array()), "ProviderError");
        if (c && c->status == "True") message = c->message;
        return message.find("delete Machine(s) " + busy + " first") != std::string::npos;
      },
      60s))
      << PoolStatus().dump(2) << manager_.Log();
  std::cout << "ProviderError: " << message << "\n";
  ReconcileMachines();
  EXPECT_EQ(Replicas(), 2);
  EXPECT_TRUE(client_->Get({kMachines, ns_, busy}).ok());
  auto waiting = client_->Get({kMachines, ns_, empty});
  ASSERT_TRUE(waiting.ok());
  EXPECT_FALSE(
      (*waiting)["metadata"].value("annotations", json::object()).contains(kDeleteMachine));

  ASSERT_TRUE(client_
                  ->Patch({kMachines, ns_, busy}, kube::PatchType::kMerge,
                          json{{"metadata", {{"annotations", {{kDeleteMachine, nullptr}}}}}}.dump())
                  .ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        ReconcileMachines();
        return Replicas() == 1 && !client_->Get({kMachines, ns_, empty}).ok() && Terminates() == 1;
      },
      60s))
      << PoolStatus().dump(2) << manager_.Log();
  EXPECT_TRUE(client_->Get({kMachines, ns_, busy}).ok());
  EXPECT_TRUE(client_->Get({kube::resources::kNodes, "", busy}).ok());
}

}  // namespace
}  // namespace gpu_autoscaler
