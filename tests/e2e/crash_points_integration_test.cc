// Crash points (docs/reliability.md): the manager is started with
// GPA_FAILPOINTS so that it dies (SIGKILL) at an exact point, then restarted
// without it, and the end state is read from the API server and the fakes.
//  - GPUNodePool, against the loopback GCP fake: killed after the cloud took
//    a new size and before the pool's status records it, the restarted
//    manager reads the size back and does not resize again.
//  - Budget alerts, to a loopback webhook receiver: killed after the crossing
//    is recorded (pending) and before any send, every channel gets the alert
//    once after the restart; killed after one channel's send and before its
//    delivery is recorded, that channel gets it again with the same
//    Idempotency-Key (at-least-once; the receiver dedupes by key) and the
//    others once.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "kube/transport.h"
#include "net/http_server.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/fake_gcp.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;
using namespace std::chrono_literals;

const kube::GroupVersionResource kPools{"gpuautoscaler.io", "v1alpha1", "gpunodepools", false};

// Sums the samples of the manager's counter lines starting `prefix` on its
// plain /metrics; -1 when it cannot be read.
double CounterSum(int metrics_port, const std::string& prefix) {
  kube::ClientConfig cfg;
  cfg.server = "http://127.0.0.1:" + std::to_string(metrics_port);
  auto transport = kube::NewCurlTransport(cfg);
  if (!transport.ok()) return -1;
  auto reply = (*transport)->Do({"GET", cfg.server + "/metrics", {}, "", 5s});
  if (!reply.ok() || reply->status != 200) return -1;
  double total = 0;
  size_t at = 0;
  while ((at = reply->body.find(prefix, at)) != std::string::npos) {
    if (at > 0 && reply->body[at - 1] != '\n') {  // a "# HELP" or "# TYPE" line
      at += prefix.size();
      continue;
    }
    const size_t space = reply->body.find(' ', reply->body.find('}', at));
    total += std::stod(reply->body.substr(space + 1));
    at = space;
  }
  return total;
}

// The manager's reconciles of `controller`, all results.
double Reconciles(int metrics_port, const std::string& controller) {
  return CounterSum(metrics_port,
                    "controller_runtime_reconcile_total{controller=\"" + controller + "\"");
}

const kube::GroupVersionResource kBudgets{"gpuautoscaler.io", "v1alpha1", "budgets", true};

// A webhook receiver: every request's path and Idempotency-Key.
class AlertReceiver {
 public:
  AlertReceiver() {
    auto server =
        net::HttpServer::Start({}, [this](const net::ServerRequest& r, net::ResponseWriter& w) {
          std::lock_guard<std::mutex> lock(mu_);
          keys_[r.path].push_back(std::string(r.Header("Idempotency-Key")));
          w.Respond(200, "text/plain", "ok");
        });
    EXPECT_TRUE(server.ok());
    if (server.ok()) server_ = std::move(*server);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  std::vector<std::string> KeysOn(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return keys_[path];
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> keys_;
  std::unique_ptr<net::HttpServer> server_;
};

// The manager's cost metering and Budgets over one running GPU pod; a Budget
// so small that the first metered second crosses its 100% threshold, with
// two webhook channels (/a, /b).
class BudgetCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (server_->is_real_cluster()) GTEST_SKIP() << "calls a webhook on this machine's loopback";
    auto made = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(made.ok());
    client_ = std::move(*made);
    ns_ = server_->CreateTestNamespace("budget-crash");
    dir_ = testing::MakeTempDir("gpa-crash-budget");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    std::ofstream(dir_ + "/config.yaml")
        << "apiVersion: gpuautoscaler.io/v1alpha1\nkind: ManagerConfig\n"
           "budgets:\n  evaluationPeriod: 1s\n";
    const std::string node_name = "gpu-node-" + ns_;
    auto node = client_->Create({kube::resources::kNodes},
                                {{"apiVersion", "v1"},
                                 {"kind", "Node"},
                                 {"metadata",
                                  {{"name", node_name},
                                   {"labels",
                                    {{"node.kubernetes.io/instance-type", "p4d.24xlarge"},
                                     {"nvidia.com/gpu.product", "A100-SXM4-40GB"}}}}}});
    ASSERT_TRUE(node.ok()) << node.error().ToString();
    (*node)["status"] = {
        {"allocatable", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}},
        {"capacity", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}},
        {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}};
    ASSERT_TRUE(
        client_
            ->Replace(kube::ObjectRef{kube::resources::kNodes, "", node_name}.WithSub("status"),
                      *node)
            .ok());
    auto pod = client_->Create({kube::resources::kPods, ns_},
                               {{"apiVersion", "v1"},
                                {"kind", "Pod"},
                                {"metadata", {{"name", "trainer"}, {"namespace", ns_}}},
                                {"spec",
                                 {{"nodeName", node_name},
                                  {"containers",
                                   {{{"name", "main"},
                                     {"image", "cuda"},
                                     {"resources",
                                      {{"requests", {{"nvidia.com/gpu", "1"}}},
                                       {"limits", {{"nvidia.com/gpu", "1"}}}}}}}}}}});
    ASSERT_TRUE(pod.ok()) << pod.error().ToString();
    (*pod)["status"] = {{"phase", "Running"}};
    ASSERT_TRUE(
        client_
            ->Replace(kube::ObjectRef{kube::resources::kPods, ns_, "trainer"}.WithSub("status"),
                      *pod)
            .ok());
    auto secret = client_->Create(
        {kube::resources::kSecrets, ns_},
        {{"apiVersion", "v1"},
         {"kind", "Secret"},
         {"metadata", {{"name", "alerts"}, {"namespace", ns_}}},
         {"data",
          {{"a", Base64Encode(receiver_.url("/a"))}, {"b", Base64Encode(receiver_.url("/b"))}}}});
    ASSERT_TRUE(secret.ok()) << secret.error().ToString();
    auto budget = client_->Create(
        {kBudgets, ns_},
        {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
         {"kind", "Budget"},
         {"metadata", {{"name", "tiny"}, {"namespace", ns_}}},
         {"spec",
          {{"scope", {{"namespaces", {ns_}}}},
           {"amount", 0.000001},
           {"currency", "USD"},
           {"period", "monthly"},
           {"thresholds", {100}},
           {"notifications",
            {{{"type", "webhook"}, {"secretRef", {{"name", "alerts"}, {"key", "a"}}}},
             {{"type", "webhook"}, {"secretRef", {{"name", "alerts"}, {"key", "b"}}}}}}}}});
    ASSERT_TRUE(budget.ok()) << budget.error().ToString();
  }
  void TearDown() override {
    manager_.Kill(SIGKILL);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> Args() const {
    return {testing::BinaryPath("gpu-autoscaler-manager"),
            "--kubeconfig=" + kubeconfig_,
            "--controllers=cost,budget",
            "--metrics-bind-address=127.0.0.1:0",
            "--metrics-secure=false",
            "--health-probe-bind-address=127.0.0.1:0",
            "--config=" + dir_ + "/config.yaml",
            "--cost-db=" + dir_ + "/cost.db"};
  }
  // Runs the manager with `failpoints` until the failpoint kills it.
  void RunUntilKilled(const std::string& failpoints) {
    setenv("GPA_FAILPOINTS", failpoints.c_str(), 1);
    const bool spawned = manager_.Spawn(Args(), dir_ + "/manager.log");
    unsetenv("GPA_FAILPOINTS");
    ASSERT_TRUE(spawned);
    std::optional<int> died;
    ASSERT_TRUE(WaitFor([&] { return (died = manager_.TryWait()).has_value(); }, 60s))
        << manager_.Log();
    ASSERT_TRUE(WIFSIGNALED(*died) && WTERMSIG(*died) == SIGKILL) << *died << manager_.Log();
  }
  json LastAlerts() {
    auto got = client_->Get({kBudgets, ns_, "tiny"});
    return got.ok() ? (*got).value("status", json::object()).value("lastAlert", json::array())
                    : json::array();
  }
  // Restarts the manager, waits until no channel is pending, then for three
  // more evaluations of the Budget.
  void RestartAndSettle() {
    // Its own log: the killed run's says metrics_port too.
    ASSERT_TRUE(manager_.Spawn(Args(), dir_ + "/manager-restarted.log"));
    int port = -1;
    ASSERT_TRUE(WaitFor([&] { return (port = manager_.PortFromLog("metrics_port")) > 0; }))
        << manager_.Log();
    json alerts;
    ASSERT_TRUE(WaitFor(
        [&] {
          alerts = LastAlerts();
          return alerts.size() == 1 && !alerts[0].contains("pending");
        },
        60s))
        << alerts.dump(2) << manager_.Log();
    const std::string evaluations = "gpu_autoscaler_budget_evaluations_total{";
    const double seen = CounterSum(port, evaluations);
    ASSERT_TRUE(WaitFor([&] { return CounterSum(port, evaluations) >= seen + 3; }, 60s))
        << manager_.Log();
  }

  AlertReceiver receiver_;
  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_, dir_, kubeconfig_;
  ChildProcess manager_;
};

TEST_F(BudgetCrashTest, KilledAfterRecordingTheCrossingEveryChannelGetsItOnce) {
  RunUntilKilled("budget.alert.after_record=kill");
  if (HasFatalFailure()) return;
  EXPECT_TRUE(receiver_.KeysOn("/a").empty());
  EXPECT_TRUE(receiver_.KeysOn("/b").empty());
  const json recorded = LastAlerts();
  ASSERT_EQ(recorded.size(), 1u) << recorded.dump(2);
  EXPECT_EQ(recorded[0]["pending"], json({"webhook-0", "webhook-1"})) << recorded.dump(2);

  RestartAndSettle();
  if (HasFatalFailure()) return;
  EXPECT_EQ(receiver_.KeysOn("/a").size(), 1u);
  EXPECT_EQ(receiver_.KeysOn("/b").size(), 1u);
}

TEST_F(BudgetCrashTest, KilledAfterOneSendItIsResentWithTheSameKeyAndTheOtherOnce) {
  RunUntilKilled("budget.alert.after_send=kill");
  if (HasFatalFailure()) return;
  ASSERT_EQ(receiver_.KeysOn("/a").size(), 1u);
  EXPECT_TRUE(receiver_.KeysOn("/b").empty());
  const std::string key = receiver_.KeysOn("/a")[0];
  EXPECT_FALSE(key.empty());
  const json recorded = LastAlerts();
  ASSERT_EQ(recorded.size(), 1u) << recorded.dump(2);
  EXPECT_EQ(recorded[0]["pending"], json({"webhook-0", "webhook-1"})) << recorded.dump(2);

  RestartAndSettle();
  if (HasFatalFailure()) return;
  // At least once: /a again, under the same key, so a receiver that dedupes
  // by Idempotency-Key acts once; /b once; nothing after that. The key names
  // the alert (Budget, threshold, period, action), so every channel gets it.
  EXPECT_EQ(receiver_.KeysOn("/a"), (std::vector<std::string>{key, key}));
  EXPECT_EQ(receiver_.KeysOn("/b"), (std::vector<std::string>{key}));
}

int Resizes(const testing::FakeGcp& gcp) {
  int n = 0;
  for (const std::string& r : gcp.requests())
    if (r.rfind("POST ", 0) == 0 && r.find("/resize") != std::string::npos) ++n;
  return n;
}

TEST(CrashPointTest, AManagerKilledAfterAResizeDoesNotResizeAgainAfterRestart) {
  auto gcp = testing::FakeGcp::Start();
  ASSERT_TRUE(gcp);
  gcp->AddMig("ml-prod", "us-central1-a", "gpu-od", 0, /*spot=*/false);
  auto server = testing::TestApiServer::Start();
  ASSERT_TRUE(server) << "api server did not start";
  if (server->is_real_cluster()) GTEST_SKIP() << "uses cluster-scoped pools";
  auto made = kube::RestClient::Create(server->config());
  ASSERT_TRUE(made.ok());
  std::unique_ptr<kube::RestClient> client = std::move(*made);
  const std::string ns = server->CreateTestNamespace("crash");
  const std::string dir = testing::MakeTempDir("gpa-crash-pool");
  const std::string kubeconfig = testing::WriteKubeconfig(server->config(), dir);
  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"metadata", {{"name", "gcp-credentials"}, {"namespace", ns}}},
                 {"data",
                  {{"key.json", Base64Encode(testing::ReadFileOrDie(gcp->key_file()))},
                   {"endpoint", Base64Encode(gcp->compute_endpoint())},
                   {"ca.crt", Base64Encode(gcp->ca_pem())}}}};
  ASSERT_TRUE(client->Create({kube::resources::kSecrets, ns, "gcp-credentials"}, secret).ok());
  json pool = json::parse(R"({
    "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
    "metadata": {"name": "l4-crash"},
    "spec": {
      "provider": {"type": "gcp-mig", "project": "ml-prod", "zone": "us-central1-a",
                   "groups": {"onDemand": "gpu-od"}},
      "instanceTypes": [{"name": "g2-standard-8", "gpuModel": "NVIDIA-L4", "gpuCount": 1,
                         "cpu": "8", "memory": "32Gi", "price": {"onDemand": 0.85}}],
      "maxNodes": 4,
      "scaleDown": {"policy": "WhenEmpty", "consolidateAfter": "Never"}
    }})");
  pool["spec"]["provider"]["credentialsSecretRef"] = {{"namespace", ns},
                                                      {"name", "gcp-credentials"}};
  ASSERT_TRUE(client->Create({kPools, "", "l4-crash"}, pool).ok());
  for (const std::string name : {"infer-0", "infer-1"}) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", ns}}},
                {"spec",
                 {{"containers",
                   {{{"name", "main"},
                     {"image", "registry.example/infer:1"},
                     {"resources",
                      {{"requests", {{"nvidia.com/gpu", "1"}}},
                       {"limits", {{"nvidia.com/gpu", "1"}}}}}}}}}}};
    auto created = client->Create({kube::resources::kPods, ns, name}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    (*created)["status"] = {{"phase", "Pending"},
                            {"conditions",
                             {{{"type", "PodScheduled"},
                               {"status", "False"},
                               {"reason", "Unschedulable"},
                               {"message", "0/0 nodes are available"}}}}};
    ASSERT_TRUE(
        client
            ->Replace(kube::ObjectRef{kube::resources::kPods, ns, name}.WithSub("status"), *created)
            .ok());
  }
  const std::vector<std::string> args = {testing::BinaryPath("gpu-autoscaler-manager"),
                                         "--kubeconfig=" + kubeconfig,
                                         "--controllers=gpunodepool",
                                         "--metrics-bind-address=127.0.0.1:0",
                                         "--metrics-secure=false",
                                         "--health-probe-bind-address=127.0.0.1:0"};

  // 1. Killed right after the cloud took the new size.
  ChildProcess manager;
  setenv("GPA_FAILPOINTS", "gpunodepool.scale_up.after_resize=kill", 1);
  const bool spawned = manager.Spawn(args, dir + "/manager.log");
  unsetenv("GPA_FAILPOINTS");
  ASSERT_TRUE(spawned);
  std::optional<int> died;
  ASSERT_TRUE(WaitFor([&] { return (died = manager.TryWait()).has_value(); }, 60s))
      << manager.Log();
  ASSERT_TRUE(WIFSIGNALED(*died) && WTERMSIG(*died) == SIGKILL) << *died << manager.Log();
  EXPECT_EQ(gcp->target_size("gpu-od"), 2);
  EXPECT_EQ(Resizes(*gcp), 1);
  auto before = client->Get({kPools, "", "l4-crash"});
  ASSERT_TRUE(before.ok());
  // The status never recorded the resize.
  EXPECT_EQ((*before).value("status", json::object()).value("desired", 0), 0) << (*before).dump(2);

  // 2. Restarted without the failpoint (its own log: the killed run's says
  // metrics_port too): it reads desired 2 back from the MIG.
  ASSERT_TRUE(manager.Spawn(args, dir + "/manager-restarted.log"));
  int metrics_port = -1;
  ASSERT_TRUE(WaitFor([&] { return (metrics_port = manager.PortFromLog("metrics_port")) > 0; }))
      << manager.Log();
  json status;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto got = client->Get({kPools, "", "l4-crash"});
        status = got.ok() ? (*got).value("status", json::object()) : json::object();
        return status.value("desired", 0) == 2;
      },
      60s))
      << status.dump(2) << manager.Log();
  // Several more passes over the still-pending pods (the fake's instances
  // never register as Nodes): none resizes again.
  const double seen = Reconciles(metrics_port, "gpunodepool");
  ASSERT_GE(seen, 1);
  ASSERT_TRUE(WaitFor([&] { return Reconciles(metrics_port, "gpunodepool") >= seen + 3; }, 60s))
      << manager.Log();
  EXPECT_EQ(Resizes(*gcp), 1) << manager.Log();
  EXPECT_EQ(gcp->target_size("gpu-od"), 2);
  manager.Kill(SIGTERM);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gpu_autoscaler
