// Crash points (docs/reliability.md): the manager is started with
// GPA_FAILPOINTS so that it dies (SIGKILL) at an exact point, then restarted
// without it, and the end state is read from the API server and the fakes.
//  - GPUNodePool, against the loopback GCP fake: killed after the cloud took
//    a new size and before the pool's status records it, the restarted
//    manager reads the size back and does not resize again. Scaling an
//    empty node down, killed after its termination intent, after the
//    instance's deletion and after the status records it: the restarted
//    manager deletes the instance exactly once, lowers the MIG's size
//    exactly once, deletes the Node and holds exactly one Terminate entry.
//    An interruption notice answered before a kill is not answered again.
//  - Budget alerts, to a loopback webhook receiver: killed after the crossing
//    is recorded (pending) and before any send, every channel gets the alert
//    once after the restart; killed after one channel's send and before its
//    delivery is recorded, that channel gets it again with the same
//    Idempotency-Key (at-least-once; the receiver dedupes by key) and the
//    others once.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iostream>
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
using testing::RunUntilFailpointKills;
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

// The embedded API server, a test namespace, a directory with the manager's
// kubeconfig, and the manager: run with GPA_FAILPOINTS until the failpoint
// kills it, then restarted without.
class ManagerCrashTest : public ::testing::Test {
 protected:
  // Skips on a real cluster (the tests use this machine's loopback fakes).
  void StartApiServer(const std::string& name) {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    if (server_->is_real_cluster()) GTEST_SKIP() << "uses fakes on this machine's loopback";
    auto made = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(made.ok());
    client_ = std::move(*made);
    ns_ = server_->CreateTestNamespace(name);
    dir_ = testing::MakeTempDir("gpa-crash-" + name);
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
  }
  void TearDown() override {
    manager_.Kill(SIGKILL);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }
  virtual std::vector<std::string> Args() const = 0;

  // Runs the manager with `failpoints` until the failpoint kills it.
  void RunUntilKilled(const std::string& failpoints) {
    ASSERT_EQ(RunUntilFailpointKills(manager_, Args(), dir_ + "/manager.log", failpoints), "");
  }
  // Restarts it without failpoints (its own log: the killed run's says
  // metrics_port too); sets metrics_port_.
  void Restart() {
    ASSERT_TRUE(manager_.Spawn(Args(), dir_ + "/manager-restarted.log"));
    ASSERT_TRUE(WaitFor([&] { return (metrics_port_ = manager_.PortFromLog("metrics_port")) > 0; }))
        << manager_.Log();
  }
  // Waits for `n` more reconciles by `controller` of the restarted manager.
  void WaitForReconciles(const std::string& controller, int n) {
    const double seen = Reconciles(metrics_port_, controller);
    ASSERT_GE(seen, 0);
    ASSERT_TRUE(WaitFor([&] { return Reconciles(metrics_port_, controller) >= seen + n; }, 60s))
        << manager_.Log();
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_, dir_, kubeconfig_;
  ChildProcess manager_;
  int metrics_port_ = -1;
};

// The manager's cost metering and Budgets over one running GPU pod; a Budget
// so small that the first metered second crosses its 100% threshold, with
// two webhook channels (/a, /b).
class BudgetCrashTest : public ManagerCrashTest {
 protected:
  void SetUp() override {
    StartApiServer("budget-crash");
    if (HasFatalFailure() || IsSkipped()) return;
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

  std::vector<std::string> Args() const override {
    return {testing::BinaryPath("gpu-autoscaler-manager"),
            "--kubeconfig=" + kubeconfig_,
            "--controllers=cost,budget",
            "--metrics-bind-address=127.0.0.1:0",
            "--metrics-secure=false",
            "--health-probe-bind-address=127.0.0.1:0",
            "--config=" + dir_ + "/config.yaml",
            "--cost-db=" + dir_ + "/cost.db"};
  }
  json LastAlerts() {
    auto got = client_->Get({kBudgets, ns_, "tiny"});
    return got.ok() ? (*got).value("status", json::object()).value("lastAlert", json::array())
                    : json::array();
  }
  // Restarts the manager, waits until no channel is pending, then for three
  // more evaluations of the Budget.
  void RestartAndSettle() {
    Restart();
    if (HasFatalFailure()) return;
    json alerts;
    ASSERT_TRUE(WaitFor(
        [&] {
          alerts = LastAlerts();
          return alerts.size() == 1 && !alerts[0].contains("pending");
        },
        60s))
        << alerts.dump(2) << manager_.Log();
    const std::string evaluations = "gpu_autoscaler_budget_evaluations_total{";
    const double seen = CounterSum(metrics_port_, evaluations);
    ASSERT_TRUE(WaitFor([&] { return CounterSum(metrics_port_, evaluations) >= seen + 3; }, 60s))
        << manager_.Log();
  }

  AlertReceiver receiver_;
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

// The manager's GPUNodePool controller over one on-demand MIG of the
// loopback GCP fake ("gpu-od" in ml-prod/us-central1-a), its credentials in
// a Secret.
class PoolCrashTest : public ManagerCrashTest {
 protected:
  void SetUp() override {
    gcp_ = testing::FakeGcp::Start();
    ASSERT_TRUE(gcp_);
    StartApiServer("pool-crash");
    if (HasFatalFailure() || IsSkipped()) return;
    json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata", {{"name", "gcp-credentials"}, {"namespace", ns_}}},
                   {"data",
                    {{"key.json", Base64Encode(testing::ReadFileOrDie(gcp_->key_file()))},
                     {"endpoint", Base64Encode(gcp_->compute_endpoint())},
                     {"ca.crt", Base64Encode(gcp_->ca_pem())}}}};
    ASSERT_TRUE(client_->Create({kube::resources::kSecrets, ns_, "gcp-credentials"}, secret).ok());
  }
  // A failure seen once under load and never again: print what explains
  // one, since CI keeps no test directory.
  void TearDown() override {
    if (HasFailure() && client_ && gcp_) {
      std::cerr << "pool status: " << PoolStatus().dump(2) << "\ncloud calls:\n";
      for (const std::string& r : gcp_->requests())
        std::cerr << "  " << r << "\n";
      if (std::ifstream killed(dir_ + "/manager.log"); killed) {
        std::cerr << "killed run's log:\n" << killed.rdbuf() << "\n";
      }
      std::cerr << "latest run's log:\n" << manager_.Log() << "\n";
    }
    ManagerCrashTest::TearDown();
  }
  std::vector<std::string> Args() const override {
    return {testing::BinaryPath("gpu-autoscaler-manager"),
            "--kubeconfig=" + kubeconfig_,
            "--controllers=gpunodepool",
            "--metrics-bind-address=127.0.0.1:0",
            "--metrics-secure=false",
            "--health-probe-bind-address=127.0.0.1:0"};
  }

  // The pool "l4-crash" over the MIG (sized `mig_size` first), with
  // `scale_down`, and `groups` (other MIGs added by the test).
  void CreatePool(int mig_size, const json& scale_down,
                  const json& groups = {{"onDemand", "gpu-od"}}) {
    gcp_->AddMig("ml-prod", "us-central1-a", "gpu-od", mig_size, /*spot=*/false);
    json pool = json::parse(R"({
      "apiVersion": "gpuautoscaler.io/v1alpha1", "kind": "GPUNodePool",
      "metadata": {"name": "l4-crash"},
      "spec": {
        "provider": {"type": "gcp-mig", "project": "ml-prod", "zone": "us-central1-a",
                     "groups": {"onDemand": "gpu-od"}},
        "instanceTypes": [{"name": "g2-standard-8", "gpuModel": "NVIDIA-L4", "gpuCount": 1,
                           "cpu": "8", "memory": "32Gi", "price": {"spot": 0.3, "onDemand": 0.85}}],
        "maxNodes": 4,
        "disruption": {"budgets": [{"nodes": "100%"}]}
      }})");
    pool["spec"]["scaleDown"] = scale_down;
    pool["spec"]["provider"]["groups"] = groups;
    pool["spec"]["provider"]["credentialsSecretRef"] = {{"namespace", ns_},
                                                        {"name", "gcp-credentials"}};
    ASSERT_TRUE(client_->Create({kPools, "", "l4-crash"}, pool).ok());
  }
  // A one-GPU pod; bound to `node` and Running, or Pending and Unschedulable.
  void CreatePod(const std::string& name, const std::string& node = "") {
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
    if (!node.empty()) pod["spec"]["nodeName"] = node;
    auto created = client_->Create({kube::resources::kPods, ns_, name}, pod);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
    (*created)["status"] = node.empty() ? json{{"phase", "Pending"},
                                               {"conditions",
                                                {{{"type", "PodScheduled"},
                                                  {"status", "False"},
                                                  {"reason", "Unschedulable"},
                                                  {"message", "0/0 nodes are available"}}}}}
                                        : json{{"phase", "Running"}};
    ASSERT_TRUE(client_
                    ->Replace(kube::ObjectRef{kube::resources::kPods, ns_, name}.WithSub("status"),
                              *created)
                    .ok());
  }
  // A Ready Node for the MIG's instance `instance`; its uid.
  std::string CreateNode(const std::string& name, const std::string& instance) {
    auto node =
        client_->Create({kube::resources::kNodes},
                        {{"apiVersion", "v1"},
                         {"kind", "Node"},
                         {"metadata",
                          {{"name", name},
                           {"labels",
                            {{"node.kubernetes.io/instance-type", "g2-standard-8"},
                             {"nvidia.com/gpu.product", "NVIDIA-L4"}}}}},
                         {"spec", {{"providerID", "gce://ml-prod/us-central1-a/" + instance}}}});
    EXPECT_TRUE(node.ok()) << node.error().ToString();
    if (!node.ok()) return "";
    (*node)["status"] = {
        {"allocatable", {{"cpu", "8"}, {"memory", "32Gi"}, {"nvidia.com/gpu", "1"}}},
        {"capacity", {{"cpu", "8"}, {"memory", "32Gi"}, {"nvidia.com/gpu", "1"}}},
        {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}};
    EXPECT_TRUE(
        client_
            ->Replace(kube::ObjectRef{kube::resources::kNodes, "", name}.WithSub("status"), *node)
            .ok());
    return (*node)["metadata"].value("uid", "");
  }

  json PoolStatus() {
    auto got = client_->Get({kPools, "", "l4-crash"});
    return got.ok() ? (*got).value("status", json::object()) : json::object();
  }
  // The recentActions entries whose action is `action`, in `status` or a fresh read.
  static std::vector<json> ActionsIn(const json& status, const std::string& action) {
    std::vector<json> out;
    for (const json& a : status.value("recentActions", json::array()))
      if (a.value("action", "") == action) out.push_back(a);
    return out;
  }
  std::vector<json> Actions(const std::string& action) { return ActionsIn(PoolStatus(), action); }
  // The fake's POSTs to instanceGroupManagers/<mig>/<call>.
  int Calls(const std::string& call) const {
    int n = 0;
    for (const std::string& r : gcp_->requests())
      if (r.rfind("POST ", 0) == 0 && r.find("/" + call) != std::string::npos) ++n;
    return n;
  }
  std::optional<json> Node(const std::string& name) {
    auto got = client_->Get({kube::resources::kNodes, "", name});
    if (got.ok()) return *got;
    return std::nullopt;
  }

  // Three more passes, each started by an edit of Node `node` (an idle pool
  // is otherwise looked at every 15 s).
  void NudgeThreeReconciles(const std::string& node) {
    for (int i = 0; i < 3; ++i) {
      const double seen = Reconciles(metrics_port_, "gpunodepool");
      ASSERT_GE(seen, 0);
      const json patch = {{"metadata", {{"annotations", {{"test/nudge", std::to_string(i)}}}}}};
      ASSERT_TRUE(
          client_->Patch({kube::resources::kNodes, "", node}, kube::PatchType::kMerge, patch.dump())
              .ok());
      ASSERT_TRUE(WaitFor([&] { return Reconciles(metrics_port_, "gpunodepool") > seen; }, 60s))
          << manager_.Log();
    }
  }

  std::unique_ptr<testing::FakeGcp> gcp_;
};

TEST_F(PoolCrashTest, AManagerKilledAfterAResizeDoesNotResizeAgainAfterRestart) {
  CreatePool(0, {{"policy", "WhenEmpty"}, {"consolidateAfter", "Never"}});
  if (HasFatalFailure()) return;
  for (const std::string name : {"infer-0", "infer-1"}) {
    CreatePod(name);
    if (HasFatalFailure()) return;
  }

  // 1. Killed right after the cloud took the new size.
  RunUntilKilled("gpunodepool.scale_up.after_resize=kill");
  if (HasFatalFailure()) return;
  EXPECT_EQ(gcp_->target_size("gpu-od"), 2);
  EXPECT_EQ(Calls("resize"), 1);
  // The status never recorded the resize.
  EXPECT_EQ(PoolStatus().value("desired", 0), 0) << PoolStatus().dump(2);

  // 2. Restarted without the failpoint: it reads desired 2 back from the MIG.
  Restart();
  if (HasFatalFailure()) return;
  json status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = PoolStatus();
        return status.value("desired", 0) == 2;
      },
      60s))
      << status.dump(2) << manager_.Log();
  // Several more passes over the still-pending pods (the fake's instances
  // never register as Nodes): none resizes again.
  WaitForReconciles("gpunodepool", 3);
  if (HasFatalFailure()) return;
  EXPECT_EQ(Calls("resize"), 1) << manager_.Log();
  EXPECT_EQ(gcp_->target_size("gpu-od"), 2);
}

// An interruption notice is answered once: killed (SIGKILL) after the status
// recorded the Interruption and the replacement's resize, the restarted
// manager finds the notice answered in status.answeredInterruptions and
// neither records it, counts it nor resizes again.
TEST_F(PoolCrashTest, AnInterruptionAnsweredBeforeACrashIsNotAnsweredAgain) {
  // Two busy spot instances with Nodes; the replacement goes to on-demand (a
  // notice marks its own offering unavailable).
  gcp_->AddMig("ml-prod", "us-central1-a", "gpu-spot", 2, /*spot=*/true);
  CreatePool(0, {{"policy", "WhenEmpty"}, {"consolidateAfter", "Never"}},
             {{"spot", "gpu-spot"}, {"onDemand", "gpu-od"}});
  if (HasFatalFailure()) return;
  const std::vector<std::string> instances = gcp_->instance_names("gpu-spot");
  ASSERT_EQ(instances.size(), 2u);
  ASSERT_FALSE(CreateNode("l4-noticed", instances[0]).empty());
  ASSERT_FALSE(CreateNode("l4-other", instances[1]).empty());
  CreatePod("server", "l4-noticed");
  CreatePod("busy", "l4-other");  // no room for the replacement there
  if (HasFatalFailure()) return;
  ASSERT_TRUE(manager_.Spawn(Args(), dir_ + "/manager.log"));
  ASSERT_TRUE(WaitFor([&] { return (metrics_port_ = manager_.PortFromLog("metrics_port")) > 0; }))
      << manager_.Log();

  // What the node agent writes on a notice: the annotation, the taint, a cordon.
  const json notice = {
      {"metadata",
       {{"annotations",
         {{"gpu-autoscaler.io/interruption-notice", "Preemption 2026-12-05T03:00:00Z"}}}}},
      {"spec",
       {{"unschedulable", true},
        {"taints",
         {{{"key", "gpu-autoscaler.io/interruption"},
           {"value", "Preemption"},
           {"effect", "NoSchedule"}}}}}}};
  ASSERT_TRUE(client_
                  ->Patch({kube::resources::kNodes, "", "l4-noticed"}, kube::PatchType::kMerge,
                          notice.dump())
                  .ok());
  json status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = PoolStatus();
        return ActionsIn(status, "Interruption").size() == 1 && gcp_->target_size("gpu-od") == 1;
      },
      60s))
      << status.dump(2) << manager_.Log();
  EXPECT_EQ(status["answeredInterruptions"], json({"l4-noticed"})) << status.dump(2);
  EXPECT_EQ(CounterSum(metrics_port_, "gpu_autoscaler_node_pool_interruption_replacements_total"),
            1);
  EXPECT_EQ(Calls("resize"), 1);

  manager_.Kill(SIGKILL);
  Restart();
  if (HasFatalFailure()) return;
  NudgeThreeReconciles("l4-other");
  if (HasFatalFailure()) return;
  EXPECT_EQ(Actions("Interruption").size(), 1u) << PoolStatus().dump(2);
  EXPECT_EQ(CounterSum(metrics_port_, "gpu_autoscaler_node_pool_interruption_replacements_total"),
            0)
      << "the restarted manager answered the notice again";
  EXPECT_EQ(Calls("resize"), 1) << manager_.Log();
  EXPECT_EQ(gcp_->target_size("gpu-od"), 1);
  EXPECT_EQ(PoolStatus()["answeredInterruptions"], json({"l4-noticed"}));

  // Its pod evicted, the interrupted node is terminated and leaves the list.
  ASSERT_TRUE(
      client_->Delete({kube::resources::kPods, ns_, "server"}, {.grace_period_seconds = 0}).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        status = PoolStatus();
        return !status.contains("answeredInterruptions") &&
               ActionsIn(status, "Terminate").size() == 1;
      },
      60s))
      << status.dump(2) << manager_.Log();
  EXPECT_FALSE(Node("l4-noticed").has_value());
}

// Two instances with Nodes; the one without pods is consolidated (WhenEmpty,
// at once), the other keeps its running pod. Killed at `failpoint` inside
// the termination, then restarted: the end state is checked.
class ScaleDownCrashTest : public PoolCrashTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    PoolCrashTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    CreatePool(2, {{"policy", "WhenEmpty"}, {"consolidateAfter", "0s"}});
    if (HasFatalFailure()) return;
    const std::vector<std::string> instances = gcp_->instance_names("gpu-od");
    ASSERT_EQ(instances.size(), 2u);
    empty_instance_ = instances[0];
    empty_uid_ = CreateNode("l4-empty", empty_instance_);
    ASSERT_FALSE(empty_uid_.empty());
    ASSERT_FALSE(CreateNode("l4-busy", instances[1]).empty());
    CreatePod("server", "l4-busy");
  }
  std::string empty_instance_, empty_uid_;
};

TEST_P(ScaleDownCrashTest, TheEmptyNodeGoesOnceWithOneRecord) {
  const std::string failpoint = GetParam();
  RunUntilKilled(failpoint + "=kill");
  if (HasFatalFailure()) return;

  // What the killed run left: the intent on the Node in every case.
  const bool terminated = failpoint != "gpunodepool.scale_down.after_intent";
  const bool recorded = failpoint == "gpunodepool.scale_down.after_record";
  EXPECT_EQ(Calls("deleteInstances"), terminated ? 1 : 0);
  EXPECT_EQ(gcp_->target_size("gpu-od"), terminated ? 1 : 2);
  std::optional<json> node = Node("l4-empty");
  ASSERT_TRUE(node.has_value());
  const json annotations = (*node)["metadata"].value("annotations", json::object());
  const std::string key = "gpu-autoscaler.io/termination";
  EXPECT_TRUE(annotations.contains(key)) << node->dump(2);
  const json intent = json::parse(annotations.value(key, "{}"));
  EXPECT_EQ(intent.value("id", ""), empty_uid_);
  EXPECT_EQ(intent.value("instance", ""), empty_instance_);
  EXPECT_EQ(intent.value("group", ""), "gpu-od");
  EXPECT_EQ(intent.value("desiredBefore", -1), 2);
  EXPECT_EQ(Actions("Terminate").size(), recorded ? 1u : 0u) << PoolStatus().dump(2);

  // Restarted: it finishes the termination, and only that.
  Restart();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitFor([&] { return !Node("l4-empty") && Actions("Terminate").size() == 1; }, 60s))
      << PoolStatus().dump(2) << manager_.Log();
  NudgeThreeReconciles("l4-busy");
  if (HasFatalFailure()) return;
  EXPECT_EQ(Calls("deleteInstances"), 1) << manager_.Log();
  EXPECT_EQ(Calls("resize"), 0);
  EXPECT_EQ(gcp_->target_size("gpu-od"), 1);
  const std::vector<std::string> left = gcp_->instance_names("gpu-od");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_NE(left[0], empty_instance_);
  EXPECT_FALSE(Node("l4-empty").has_value());
  EXPECT_TRUE(Node("l4-busy").has_value());
  const std::vector<json> terminates = Actions("Terminate");
  ASSERT_EQ(terminates.size(), 1u) << PoolStatus().dump(2);
  EXPECT_EQ(terminates[0].value("id", ""), empty_uid_);
  EXPECT_NE(terminates[0].value("message", "").find(empty_instance_), std::string::npos)
      << terminates[0].dump();
  const json status = PoolStatus();
  EXPECT_EQ(status.value("desired", -1), 1) << status.dump(2);
  EXPECT_EQ(status.value("nodes", -1), 1) << status.dump(2);
}

INSTANTIATE_TEST_SUITE_P(
    KilledInsideTheTermination, ScaleDownCrashTest,
    ::testing::Values("gpunodepool.scale_down.after_intent",
                      "gpunodepool.scale_down.after_terminate",
                      "gpunodepool.scale_down.after_record"),
    [](const ::testing::TestParamInfo<const char*>& info) {
      std::string name =
          std::string(info.param).substr(std::string("gpunodepool.scale_down.").size());
      std::erase(name, '_');
      return name;
    });

}  // namespace
}  // namespace gpu_autoscaler
