// File: tests/controllers/service_profile_fixture.h
//
// What the ServiceProfile integration tests share: a loopback
// Prometheus-compatible server answering the usage queries, pod builders,
// and a fixture that runs the embedded API server, and on demand
// gpu-autoscaler-manager (service-profile controller only) and
// gpu-autoscaler-webhook (registered for the test's pods only), as real
// processes.
//
//   class MyTest : public ServiceProfileTest {};
//   TEST_F(MyTest, X) { CreateDeployment("web", 2); CreateProfile("web", "web", "Initial");
//                       StartManager(); ... }
//
// Thread-safety: FakePrometheus answers on its server thread (guarded by a
// mutex); the fixture is used from the test's main thread.
#pragma once

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/conditions.h"
#include "kube/rest_client.h"
#include "net/http_server.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/loopback_port.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::testing {

using nlohmann::json;

inline const kube::GroupVersionResource kProfiles{"gpuautoscaler.io", "v1alpha1", "serviceprofiles",
                                                  true};
inline const kube::GroupVersionResource kDeployments{"apps", "v1", "deployments", true};
inline const kube::GroupVersionResource kMutating{"admissionregistration.k8s.io", "v1",
                                                  "mutatingwebhookconfigurations", false};
inline const kube::GroupVersionResource kValidating{"admissionregistration.k8s.io", "v1",
                                                    "validatingwebhookconfigurations", false};

inline constexpr double kCpuCores = 0.2;
inline constexpr double kMemoryBytes = 314572800;  // 300Mi

// Answers /api/v1/query like Prometheus: the CPU and memory queries get one
// series per (pod, container "server") of `pods`, the dcgm query none. Each
// answer is evaluated one minute after the previous one.
class FakePrometheus {
 public:
  explicit FakePrometheus(std::vector<std::string> pods) : pods_(std::move(pods)) {
    auto server = net::HttpServer::Start({}, [this](const net::ServerRequest& r,
                                                    net::ResponseWriter& w) {
      if (r.path != "/api/v1/query") {
        w.Respond(404, "text/plain", "not found");
        return;
      }
      const std::string query = r.QueryParam("query");
      json result = json::array();
      std::lock_guard<std::mutex> lock(mu_);
      time_ += 60;
      double value = -1;
      if (query.find("container_cpu_usage_seconds_total") != std::string::npos) {
        value = kCpuCores;
      } else if (query.find("container_memory_working_set_bytes") != std::string::npos) {
        value = kMemoryBytes;
      }
      if (value >= 0 && serving_) {
        for (const std::string& pod : pods_) {
          result.push_back({{"metric", {{"namespace", ns_}, {"pod", pod}, {"container", "server"}}},
                            {"value", json::array({time_, std::to_string(value)})}});
        }
      }
      w.Respond(
          200, "application/json",
          json{{"status", "success"}, {"data", {{"resultType", "vector"}, {"result", result}}}}
              .dump());
    });
    EXPECT_TRUE(server.ok());
    server_ = std::move(*server);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  void SetNamespace(const std::string& ns) {
    std::lock_guard<std::mutex> lock(mu_);
    ns_ = ns;
  }
  void SetServing(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    serving_ = on;
  }
  void SetPods(std::vector<std::string> pods) {
    std::lock_guard<std::mutex> lock(mu_);
    pods_ = std::move(pods);
  }

 private:
  std::mutex mu_;
  std::vector<std::string> pods_;
  std::string ns_;
  bool serving_ = true;
  int64_t time_ = 1'800'000'000;
  std::unique_ptr<net::HttpServer> server_;
};

inline json Pod(const std::string& name, const std::string& ns, const std::string& test_label,
                json resources, json annotations = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"labels", {{"app", "web"}, {"profile-test", test_label}}},
            {"annotations", std::move(annotations)}}},
          {"spec",
           {{"containers",
             json::array({{{"name", "server"}, {"image", "web:1"}, {"resources", resources}}})}}}};
}

class ServiceProfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("profiles");
    prometheus_.SetNamespace(ns_);
    dir_ = testing::MakeTempDir("gpa-profiles");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    config_ = dir_ + "/config.yaml";
    WriteConfig("1s");
  }
  // The manager's configuration file; `interval` is the periodic refresh.
  void WriteConfig(const std::string& interval) {
    std::ofstream(config_) << "apiVersion: gpuautoscaler.io/v1alpha1\nkind: ManagerConfig\n"
                              "profiles:\n  interval: "
                           << interval
                           << "\n  checkpointInterval: 1s\n"
                              "  updaterInterval: 1s\n  prometheusURL: "
                           << prometheus_.url() << "\n";
  }
  void TearDown() override {
    manager_.Kill(SIGKILL);
    webhook_.Kill(SIGTERM);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  void StartManager() {
    ASSERT_TRUE(manager_.Spawn({testing::BinaryPath("gpu-autoscaler-manager"),
                                "--kubeconfig=" + kubeconfig_, "--metrics-bind-address=127.0.0.1:0",
                                "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0",
                                "--controllers=service-profile", "--config=" + config_},
                               dir_ + "/manager.log"));
    ASSERT_TRUE(WaitFor([&] { return manager_.PortFromLog("metrics_port") > 0; }))
        << manager_.Log();
  }

  // Both webhooks, registered as a cluster has them, for this test's pods only.
  void StartWebhook() {
    const int port = testing::FreeLoopbackPort().value();
    const std::string base = "https://127.0.0.1:" + std::to_string(port);
    auto hook = [&](const std::string& name, const std::string& path) {
      return json{{"name", name},
                  {"admissionReviewVersions", {"v1"}},
                  {"sideEffects", "None"},
                  {"failurePolicy", "Fail"},
                  {"clientConfig", {{"url", base + path}}},
                  {"objectSelector", {{"matchLabels", {{"profile-test", ns_}}}}},
                  {"rules",
                   {{{"operations", {"CREATE"}},
                     {"apiGroups", {""}},
                     {"apiVersions", {"v1"}},
                     {"resources", {"pods"}}}}}};
    };
    Create(kMutating, "",
           {{"apiVersion", "admissionregistration.k8s.io/v1"},
            {"kind", "MutatingWebhookConfiguration"},
            {"metadata", {{"name", "gpu-autoscaler-webhook"}}},
            {"webhooks", {hook("pods.mutate.gpuautoscaler.io", "/mutate-pods")}}});
    Create(kValidating, "",
           {{"apiVersion", "admissionregistration.k8s.io/v1"},
            {"kind", "ValidatingWebhookConfiguration"},
            {"metadata", {{"name", "gpu-autoscaler-webhook"}}},
            {"webhooks", {hook("pods.validate.gpuautoscaler.io", "/validate-pods")}}});
    ASSERT_TRUE(webhook_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-webhook"), "--bind-address", "127.0.0.1", "--port",
         std::to_string(port), "--kubeconfig", kubeconfig_, "--self-signed", "--self-signed-ip",
         "127.0.0.1", "--metrics-bind-address", "0"},
        dir_ + "/webhook.log"));
    ASSERT_TRUE(WaitFor([&] {
      for (const auto& gvr : {kMutating, kValidating}) {
        const json config = Get(gvr, "", "gpu-autoscaler-webhook");
        if (!config.is_object() ||
            config["webhooks"][0]["clientConfig"].value("caBundle", "").empty()) {
          return false;
        }
      }
      return true;
    })) << webhook_.Log();
  }

  json Create(const kube::GroupVersionResource& gvr, const std::string& ns, const json& obj) {
    auto created = client_->Create({gvr, ns, "", ""}, obj);
    EXPECT_TRUE(created.ok()) << created.error().ToString();
    return created.ok() ? *created : json();
  }
  json Get(const kube::GroupVersionResource& gvr, const std::string& ns, const std::string& name) {
    auto got = client_->Get({gvr, ns, name, ""});
    return got.ok() ? *got : json();
  }
  std::optional<kube::ObjectCondition> Condition(const json& obj, const std::string& type) {
    if (!obj.is_object()) return std::nullopt;
    return kube::FindCondition(obj.value("status", json::object()).value("conditions", json()),
                               type);
  }
  void CreateDeployment(const std::string& name, int replicas) {
    Create(kDeployments, ns_,
           {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", name}, {"namespace", ns_}}},
            {"spec",
             {{"replicas", replicas},
              {"selector", {{"matchLabels", {{"app", "web"}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", "web"}}}}},
                {"spec",
                 {{"containers", json::array({{{"name", "server"}, {"image", "web:1"}}})}}}}}}}});
  }
  void CreateProfile(const std::string& name, const std::string& target, const std::string& mode,
                     const std::string& kind = "Deployment",
                     const std::string& api_version = "apps/v1") {
    Create(kProfiles, ns_,
           {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
            {"kind", "ServiceProfile"},
            {"metadata", {{"name", name}, {"namespace", ns_}}},
            {"spec",
             {{"targetRef", {{"apiVersion", api_version}, {"kind", kind}, {"name", target}}},
              {"updateMode", mode}}}});
  }
  void SetRunning(const std::string& pod) {
    json obj = Get(kube::resources::kPods, ns_, pod);
    obj["status"] = {{"phase", "Running"},
                     {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}};
    auto r = client_->Replace({kube::resources::kPods, ns_, pod, "status"}, obj);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }

  FakePrometheus prometheus_{{"web-a", "web-b", "web-c"}};
  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_, dir_, kubeconfig_, config_;
  ChildProcess manager_, webhook_;
};

// Requests and limits the tests' pods are created with (limits 2:1).
inline const json kOriginalResources = {{"requests", {{"cpu", "1"}, {"memory", "1Gi"}}},
                                        {"limits", {{"cpu", "2"}, {"memory", "2Gi"}}}};

}  // namespace gpu_autoscaler::testing
