// The manager over real HTTP: /healthz, /readyz and /metrics; graceful stop
// that drains in-flight reconciles before releasing the Lease; and the
// gpu-autoscaler-manager program end to end (SIGTERM included).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "kube/rest_client.h"
#include "kube/transport.h"
#include "reconcile/controller.h"
#include "reconcile/manager.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/test_paths.h"

extern char** environ;

namespace gpu_autoscaler::reconcile {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::TestApiServer;
using testing::WaitFor;

// GET http://127.0.0.1:<port><path>; status 0 when the connection failed.
kube::HttpResponse HttpGet(int port, const std::string& path) {
  kube::ClientConfig cfg;
  cfg.server = "http://127.0.0.1:" + std::to_string(port);
  auto transport = kube::NewCurlTransport(cfg);
  if (!transport.ok()) return {};
  kube::HttpRequest req;
  req.method = "GET";
  req.url = cfg.server + path;
  req.timeout = 10s;
  auto resp = (*transport)->Do(req);
  return resp.ok() ? *resp : kube::HttpResponse{};
}

class NoopSource final : public EventSource {
 public:
  void Subscribe(std::function<void(const ChangedObject&)> cb) override { handler = std::move(cb); }
  bool HasSynced() const override { return true; }
  std::function<void(const ChangedObject&)> handler;
};

class GatedReconciler final : public Reconciler {
 public:
  ReconcileResult Reconcile(const Request&, std::stop_token) override {
    ++started;
    while (!release.load())
      std::this_thread::sleep_for(1ms);
    ++finished;
    return Done{};
  }
  std::atomic<bool> release{false};
  std::atomic<int> started{0}, finished{0};
};

TEST(ManagerTest, ServesHealthReadinessAndMetrics) {
  std::atomic<bool> synced{false};
  Manager manager(
      {.metrics_bind_address = "127.0.0.1:0", .health_probe_bind_address = "127.0.0.1:0"});
  GatedReconciler reconciler;
  reconciler.release = true;
  NoopSource source;
  Controller controller({.name = "probe-test", .metrics = &manager.registry()}, reconciler);
  controller.For(source);
  manager.AddController(controller);
  manager.AddReadyzCheck(
      "informers", [&] { return synced ? Status::Ok() : UnavailableError("caches not synced"); });
  ASSERT_TRUE(manager.Serve().ok());
  ASSERT_GT(manager.metrics_port(), 0);
  ASSERT_GT(manager.health_port(), 0);
  ASSERT_NE(manager.metrics_port(), manager.health_port());

  std::stop_source stop;
  std::jthread run([&] { EXPECT_TRUE(manager.Run(stop.get_token()).ok()); });

  auto healthz = HttpGet(manager.health_port(), "/healthz");
  EXPECT_EQ(healthz.status, 200);
  EXPECT_EQ(healthz.body, "ok");
  auto readyz = HttpGet(manager.health_port(), "/readyz");
  EXPECT_EQ(readyz.status, 500);
  EXPECT_NE(readyz.body.find("[-]informers failed: caches not synced"), std::string::npos)
      << readyz.body;
  synced = true;
  readyz = HttpGet(manager.health_port(), "/readyz?verbose");
  EXPECT_EQ(readyz.status, 200);
  EXPECT_NE(readyz.body.find("[+]informers ok"), std::string::npos) << readyz.body;
  EXPECT_EQ(HttpGet(manager.health_port(), "/nope").status, 404);

  source.handler({"ns", "a", {}});
  ASSERT_TRUE(WaitFor([&] { return reconciler.finished.load() == 1; }));
  kube::HttpResponse metrics;
  ASSERT_TRUE(WaitFor([&] {
    metrics = HttpGet(manager.metrics_port(), "/metrics");
    return metrics.body.find(
               R"(controller_runtime_reconcile_total{controller="probe-test",result="success"} 1)") !=
           std::string::npos;
  })) << metrics.body;
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.Header("Content-Type").find("text/plain"), std::string::npos);
  EXPECT_NE(metrics.body.find(R"(workqueue_adds_total{name="probe-test"} 1)"), std::string::npos);
  EXPECT_NE(metrics.body.find("workqueue_longest_running_processor_seconds"), std::string::npos);

  stop.request_stop();
  run.join();
  // Endpoints are gone after shutdown.
  EXPECT_EQ(HttpGet(manager.health_port(), "/healthz").status, 0);
}

TEST(ManagerTest, RejectsBadBindAddress) {
  std::string host;
  int port = 0;
  EXPECT_TRUE(ParseBindAddress(":8080", &host, &port).ok());
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 8080);
  EXPECT_TRUE(ParseBindAddress("[::1]:9090", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_TRUE(ParseBindAddress("0", &host, &port).ok());
  EXPECT_EQ(port, -1);
  EXPECT_FALSE(ParseBindAddress("localhost", &host, &port).ok());
  EXPECT_FALSE(ParseBindAddress("127.0.0.1:99999", &host, &port).ok());
  EXPECT_FALSE(ParseBindAddress("127.0.0.1:http", &host, &port).ok());
  Manager manager({.metrics_bind_address = "nonsense", .health_probe_bind_address = "0"});
  EXPECT_EQ(manager.Serve().code(), StatusCode::kInvalidArgument);
}

class ManagerLeaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("manager");
  }
  json Lease(const std::string& name) {
    auto got = client_->Get({kube::resources::kLeases, ns_, name, ""});
    return got.ok() ? *got : json();
  }
  std::unique_ptr<TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_;
};

TEST_F(ManagerLeaderTest, StopDrainsInFlightReconcileThenReleasesLease) {
  Manager manager({.metrics_bind_address = "0",
                   .health_probe_bind_address = "0",
                   .leader_election = true,
                   .leader_election_namespace = ns_,
                   .leader_election_id = "drain-test",
                   .identity = "manager-1",
                   .client = client_.get()});
  GatedReconciler reconciler;
  NoopSource source;
  Controller controller({.name = "drain"}, reconciler);
  controller.For(source);
  manager.AddController(controller);
  // Runs on every replica; stops last, after the lease is released.
  std::atomic<bool> background_stopped{false};
  std::string holder_when_background_stopped = "<unset>";
  manager.Add(MakeRunnable("background", false, [&](std::stop_token stop) {
    while (!stop.stop_requested())
      std::this_thread::sleep_for(1ms);
    holder_when_background_stopped = Lease("drain-test")["spec"].value("holderIdentity", "?");
    background_stopped = true;
    return Status::Ok();
  }));

  std::stop_source stop;
  std::atomic<bool> returned{false};
  std::jthread run([&] {
    EXPECT_TRUE(manager.Run(stop.get_token()).ok());
    returned = true;
  });
  ASSERT_TRUE(WaitFor([&] { return manager.IsLeader(); }));
  source.handler({"ns", "slow", {}});
  ASSERT_TRUE(WaitFor([&] { return reconciler.started.load() == 1; }));

  stop.request_stop();  // what SIGTERM does
  // The reconcile is still running: the manager waits, and the lease stays held.
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(returned.load());
  EXPECT_EQ(Lease("drain-test")["spec"]["holderIdentity"], "manager-1");
  EXPECT_FALSE(background_stopped.load());

  reconciler.release = true;
  run.join();
  EXPECT_TRUE(returned.load());
  EXPECT_EQ(reconciler.finished.load(), 1);
  EXPECT_TRUE(background_stopped.load());
  EXPECT_EQ(holder_when_background_stopped, "");
  const json lease = Lease("drain-test");
  EXPECT_EQ(lease["spec"]["holderIdentity"], "") << lease.dump();
  EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 1);
}

// Runs the real program against the test API server.
class ManagerProgramTest : public ManagerLeaderTest {
 protected:
  void TearDown() override {
    manager_.Kill(SIGKILL);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string WriteKubeconfig() {
    dir_ = testing::MakeTempDir("gpa-manager-test");
    EXPECT_FALSE(dir_.empty());
    return testing::WriteKubeconfig(server_->config(), dir_);
  }
  void Spawn(const std::vector<std::string>& args) {
    ASSERT_TRUE(manager_.Spawn(args, dir_ + "/manager.log"));
  }
  std::string Log() { return manager_.Log(); }
  int PortFromLog(const std::string& key) { return manager_.PortFromLog(key); }

  testing::ChildProcess manager_;
  std::string dir_;
};

TEST_F(ManagerProgramTest, ReconcilesNodesServesProbesAndStopsOnSigterm) {
  const std::string kubeconfig = WriteKubeconfig();
  Spawn({testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig,
         "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
         "--health-probe-bind-address=127.0.0.1:0", "--leader-elect",
         "--leader-election-namespace=" + ns_, "--leader-election-id=program-test",
         "--log-level=debug"});
  int metrics_port = -1, health_port = -1;
  ASSERT_TRUE(WaitFor([&] {
    metrics_port = PortFromLog("metrics_port");
    health_port = PortFromLog("health_port");
    return metrics_port > 0 && health_port > 0;
  })) << Log();
  ASSERT_TRUE(WaitFor([&] { return HttpGet(health_port, "/readyz").status == 200; })) << Log();
  EXPECT_EQ(HttpGet(health_port, "/healthz").status, 200);

  // A GPU node appears: the inventory gauge follows and an Event is recorded.
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata",
                {{"name", "gpu-node-" + ns_},
                 {"labels", {{"nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"}}}}},
               {"status",
                {{"capacity", {{"nvidia.com/gpu", "8"}}},
                 {"allocatable", {{"nvidia.com/gpu", "8"}}},
                 {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
  auto created = client_->Create({kube::resources::kNodes, "", "", ""}, node);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  // Servers may drop status on create; set it through the status subresource too.
  (*created)["status"] = node["status"];
  auto status = client_->Replace(
      kube::ObjectRef{kube::resources::kNodes, "", "gpu-node-" + ns_, ""}.WithSub("status"),
      *created);
  ASSERT_TRUE(status.ok()) << status.error().ToString();

  std::string metrics;
  ASSERT_TRUE(WaitFor([&] {
    metrics = HttpGet(metrics_port, "/metrics").body;
    return metrics.find(
               R"(gpu_autoscaler_node_gpus{model="NVIDIA-H100-80GB-HBM3",state="capacity"} 8)") !=
           std::string::npos;
  })) << metrics
      << Log();
  ASSERT_TRUE(WaitFor([&] {
    auto events = client_->List({kube::resources::kEvents, "default", "", ""});
    if (!events.ok()) return false;
    for (const json& e : events->at("items")) {
      if (e["involvedObject"]["name"] == "gpu-node-" + ns_ && e["reason"] == "GpuNodeDiscovered") {
        return true;
      }
    }
    return false;
  })) << Log();
  EXPECT_EQ(Lease("program-test")["spec"]["holderIdentity"].get<std::string>().empty(), false);

  manager_.Signal(SIGTERM);
  std::optional<int> exit_status;
  ASSERT_TRUE(WaitFor([&] { return (exit_status = manager_.TryWait()).has_value(); })) << Log();
  const int wstatus = *exit_status;
  ASSERT_TRUE(WIFEXITED(wstatus)) << Log();
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << Log();
  const std::string log = Log();
  EXPECT_NE(log.find("SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("draining in-flight reconciles"), std::string::npos) << log;
  EXPECT_EQ(Lease("program-test")["spec"]["holderIdentity"], "") << log;
}

TEST(ManagerProgramFlagsTest, HelpAndBadFlags) {
  const std::string bin = testing::BinaryPath("gpu-autoscaler-manager");
  auto run = [&](const std::string& args) {
    std::string out;
    FILE* p = popen((bin + " " + args + " 2>&1").c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
      out.append(buf, n);
    const int status = pclose(p);
    return std::make_pair(WEXITSTATUS(status), out);
  };
  auto [rc, out] = run("--help");
  EXPECT_EQ(rc, 0);
  for (const char* flag :
       {"--kubeconfig", "--context", "--metrics-bind-address", "--metrics-secure",
        "--metrics-cert-dir", "--health-probe-bind-address", "--leader-elect",
        "--leader-election-namespace", "--leader-election-id", "--log-format", "--log-level"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag;
  }
  std::tie(rc, out) = run("--frobnicate");
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("unknown flag --frobnicate"), std::string::npos) << out;
  std::tie(rc, out) = run("--log-format=xml");
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("--log-format"), std::string::npos) << out;
  std::tie(rc, out) = run("--leader-elect=maybe");
  EXPECT_EQ(rc, 2);
}

}  // namespace
}  // namespace gpu_autoscaler::reconcile
