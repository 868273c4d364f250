// `gpu-autoscaler replay` end to end: the embedded API server and the
// scheduler as processes, the replay CLI on a three-node fleet and eight openb
// pods (tests/data/openb/replay_*.csv). Every placeable pod is bound, the
// 16-GPU pod and the pod held to a GPU model no node has never are,
// departures delete them all, and the fake Nodes keep heartbeat Leases.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/error.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::WaitFor;

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (server_->is_real_cluster()) GTEST_SKIP() << "creates cluster-wide fake Nodes";
    dir_ = testing::MakeTempDir("gpa-replay");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
  }
  void TearDown() override {
    if (scheduler_.running()) scheduler_.Kill(SIGTERM);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void StartScheduler() {
    ASSERT_TRUE(scheduler_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-scheduler"), "--kubeconfig=" + kubeconfig_,
         "--mode=standalone", "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
         "--health-probe-bind-address=127.0.0.1:0"},
        dir_ + "/scheduler.log"));
    int health = -1;
    ASSERT_TRUE(WaitFor([&] { return (health = scheduler_.PortFromLog("health_port")) > 0; }))
        << scheduler_.Log();
    ASSERT_TRUE(WaitFor([&] {
      return testing::RunCommand(
                 {"/usr/bin/curl", "-sf", "http://127.0.0.1:" + std::to_string(health) + "/readyz"})
                 .exit_code == 0;
    })) << scheduler_.Log();
  }

  std::vector<std::string> Replay(std::vector<std::string> extra) {
    std::vector<std::string> args = {testing::BinaryPath("gpu-autoscaler"),
                                     "replay",
                                     "--kubeconfig",
                                     kubeconfig_,
                                     "--nodes",
                                     testing::SourcePath("tests/data/openb/replay_nodes.csv"),
                                     "--pods",
                                     testing::SourcePath("tests/data/openb/replay_pods.csv")};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::unique_ptr<testing::TestApiServer> server_;
  testing::ChildProcess scheduler_;
  std::string dir_;
  std::string kubeconfig_;
};

TEST_F(ReplayTest, PlacesArrivalsDeletesDeparturesAndRenewsLeases) {
  StartScheduler();
  // 320 trace seconds at 25x: about 13 s; the shortest pod lives 4 s.
  testing::CommandResult r =
      testing::RunCommand(Replay({"--speed", "25", "--lease-interval", "300ms", "--poll-interval",
                                  "100ms", "--keep", "-o", "json", "--teams", "vision,nlp"}));
  ASSERT_EQ(r.exit_code, 0) << r.err << "\n" << scheduler_.Log();
  const json s = json::parse(r.out);
  EXPECT_EQ(s["nodes"], 3);
  EXPECT_EQ(s["gpus"], 12);  // 8 + 2 + 2
  EXPECT_EQ(s["trace_start"], 100);
  EXPECT_EQ(s["trace_end"], 420);
  EXPECT_EQ(s["pods"], 8);
  EXPECT_EQ(s["arrived"], 8);
  // All but the 16-GPU pod and the pod held (by node affinity) to P100, which no node has.
  EXPECT_EQ(s["placed"], 6) << r.err;
  EXPECT_EQ(s["never_placed"], 2);
  EXPECT_EQ(s["departed"], 8);
  EXPECT_EQ(s["rejected"], 0);
  EXPECT_GE(s["running_marked"].get<int>(), 1);
  EXPECT_GT(s["lease_renewals"].get<int>(), 0);
  // At most 4 + 0.5 + 0.25 + 2 + 1 GPUs are ever allocated (trace second 250).
  EXPECT_LE(s["peak_gpus_allocated"].get<double>(), 7.75);
  EXPECT_GE(s["peak_gpus_allocated"].get<double>(), 4);
  EXPECT_NE(r.err.find("trace d0 00:07:00  arrived 8"), std::string::npos) << r.err;

  auto client = kube::RestClient::Create(server_->config());
  ASSERT_TRUE(client.ok());
  // Every pod departed: none of the replay's is left.
  auto pods = (*client)->List({kube::resources::kPods, "", "", ""},
                              {.label_selector = "project=openb-replay"});
  ASSERT_TRUE(pods.ok());
  EXPECT_EQ((*pods)["items"].size(), 0u);
  // The teams' namespaces, labelled for cost by team.
  auto ns = (*client)->Get({kube::resources::kNamespaces, "", "replay-vision", ""});
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ((*ns)["metadata"]["labels"]["team"], "vision");

  // --keep left the fleet: catalogue names, a time-sliced node, a Lease each.
  auto v100 = (*client)->Get({kube::resources::kNodes, "", "openb-node-0227", ""});
  ASSERT_TRUE(v100.ok());
  const json& labels = (*v100)["metadata"]["labels"];
  EXPECT_EQ(labels["nvidia.com/gpu.product"], "Tesla-V100-SXM2-16GB");
  EXPECT_EQ(labels["node.kubernetes.io/instance-type"], "p3.16xlarge");
  EXPECT_EQ((*v100)["status"]["allocatable"]["nvidia.com/gpu"], "8");
  EXPECT_EQ((*v100)["status"]["conditions"][0]["type"], "Ready");
  auto t4 = (*client)->Get({kube::resources::kNodes, "", "openb-node-0300", ""});
  ASSERT_TRUE(t4.ok());
  EXPECT_EQ((*t4)["metadata"]["labels"]["nvidia.com/gpu.sharing-strategy"], "time-slicing");
  EXPECT_EQ((*t4)["status"]["allocatable"]["nvidia.com/gpu.shared"], "20");  // 2 GPUs x 10
  for (const char* node : {"openb-node-0227", "openb-node-0300", "openb-node-0301"}) {
    auto lease = (*client)->Get({kube::resources::kLeases, "kube-node-lease", node, ""});
    ASSERT_TRUE(lease.ok()) << node;
    EXPECT_EQ((*lease)["spec"]["holderIdentity"], node);
    EXPECT_TRUE((*lease)["spec"].contains("renewTime"));
  }

  // A second replay on the same fleet refuses, and deletes none of it.
  testing::CommandResult again = testing::RunCommand(Replay({"--speed", "1000"}));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("node openb-node-0227 already exists"), std::string::npos) << again.err;
  EXPECT_TRUE((*client)->Get({kube::resources::kNodes, "", "openb-node-0227", ""}).ok());
}

TEST_F(ReplayTest, InterruptDeletesOnlyWhatItMade) {
  StartScheduler();
  auto client = kube::RestClient::Create(server_->config());
  ASSERT_TRUE(client.ok());
  // Somebody else's node, which the replay must leave alone.
  const json other = {
      {"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "someone-elses-node"}}}};
  ASSERT_TRUE((*client)->Create({kube::resources::kNodes, "", "", ""}, other).ok());

  testing::ChildProcess replay;
  ASSERT_TRUE(replay.Spawn(Replay({"--speed", "2"}), dir_ + "/replay.log"));
  // Mid-replay: the first pod has arrived (a 320-s trace at 2x lasts minutes).
  ASSERT_TRUE(WaitFor([&] { return replay.Log().find("arrived 1") != std::string::npos; }))
      << replay.Log();
  replay.Signal(SIGINT);
  std::optional<int> status;
  ASSERT_TRUE(WaitFor([&] { return (status = replay.TryWait()).has_value(); })) << replay.Log();
  ASSERT_TRUE(WIFEXITED(*status)) << replay.Log();
  EXPECT_EQ(WEXITSTATUS(*status), 130) << replay.Log();
  EXPECT_NE(replay.Log().find("(interrupted)"), std::string::npos) << replay.Log();

  EXPECT_TRUE((*client)->Get({kube::resources::kNodes, "", "someone-elses-node", ""}).ok());
  for (const char* node : {"openb-node-0227", "openb-node-0300", "openb-node-0301"}) {
    auto gone = (*client)->Get({kube::resources::kNodes, "", node, ""});
    EXPECT_TRUE(!gone.ok() && kube::IsNotFound(gone.error())) << node;
    auto lease = (*client)->Get({kube::resources::kLeases, "kube-node-lease", node, ""});
    EXPECT_TRUE(!lease.ok() && kube::IsNotFound(lease.error())) << node;
  }
  auto pods = (*client)->List({kube::resources::kPods, "", "", ""},
                              {.label_selector = "project=openb-replay"});
  ASSERT_TRUE(pods.ok());
  EXPECT_EQ((*pods)["items"].size(), 0u);
}

TEST_F(ReplayTest, ClearErrors) {
  testing::CommandResult help =
      testing::RunCommand({testing::BinaryPath("gpu-autoscaler"), "replay", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--speed X"), std::string::npos) << help.out;
  EXPECT_EQ(testing::RunCommand(Replay({"--speed", "0"})).exit_code, 2);
  EXPECT_EQ(testing::RunCommand(Replay({"--bogus", "1"})).exit_code, 2);

  const std::string bad = dir_ + "/bad.csv";
  { std::ofstream(bad) << "sn,cpu_milli,memory_mib,gpu,model\nn1,abc,1,1,T4\n"; }
  testing::CommandResult r = testing::RunCommand(
      {testing::BinaryPath("gpu-autoscaler"), "replay", "--kubeconfig", kubeconfig_, "--nodes", bad,
       "--pods", testing::SourcePath("tests/data/openb/replay_pods.csv")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(bad + ":2:"), std::string::npos) << r.err;

  r = testing::RunCommand(Replay({"--start", "5000"}));  // after every pod
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no pod of the trace is alive"), std::string::npos) << r.err;

  // An unreachable server: port 1 on loopback refuses connections.
  const std::string unreachable = dir_ + "/unreachable.kubeconfig";
  {
    std::ofstream(unreachable) << "apiVersion: v1\nkind: Config\n"
                                  "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                                  "users: [{name: u, user: {token: t}}]\n"
                                  "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                                  "current-context: x\n";
  }
  r = testing::RunCommand({testing::BinaryPath("gpu-autoscaler"), "replay", "--kubeconfig",
                           unreachable, "--nodes",
                           testing::SourcePath("tests/data/openb/replay_nodes.csv"), "--pods",
                           testing::SourcePath("tests/data/openb/replay_pods.csv")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot reach the API server at http://127.0.0.1:1"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace gpu_autoscaler
