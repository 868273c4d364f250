// ServiceProfiles end to end through real processes: the embedded API server
// (which calls the admission webhooks), gpu-autoscaler-webhook and
// gpu-autoscaler-manager, with usage served by a loopback
// Prometheus-compatible server. A Deployment's profile gets a recommendation
// in status, a new pod of the Deployment is created with it, QoS-invalid pods
// are rejected with their reason, the histograms survive a manager restart
// (checkpoint ConfigMap), and under Auto a drifted pod is evicted within
// the eviction tolerance.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/conditions.h"
#include "kube/rest_client.h"
#include "net/http_server.h"
#include "profiling/histogram.h"
#include "profiling/service_profile.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/loopback_port.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;

const kube::GroupVersionResource kProfiles{"gpuautoscaler.io", "v1alpha1", "serviceprofiles", true};
const kube::GroupVersionResource kDeployments{"apps", "v1", "deployments", true};
const kube::GroupVersionResource kMutating{"admissionregistration.k8s.io", "v1",
                                           "mutatingwebhookconfigurations", false};
const kube::GroupVersionResource kValidating{"admissionregistration.k8s.io", "v1",
                                             "validatingwebhookconfigurations", false};

constexpr double kCpuCores = 0.2;
constexpr double kMemoryBytes = 314572800;  // 300Mi

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

 private:
  std::mutex mu_;
  std::vector<std::string> pods_;
  std::string ns_;
  bool serving_ = true;
  int64_t time_ = 1'800'000'000;
  std::unique_ptr<net::HttpServer> server_;
};

json Pod(const std::string& name, const std::string& ns, const std::string& test_label,
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
    std::ofstream(config_) << "apiVersion: gpuautoscaler.io/v1alpha1\nkind: ManagerConfig\n"
                              "profiles:\n  interval: 1s\n  checkpointInterval: 1s\n"
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
    ASSERT_TRUE(webhook_.Spawn({testing::BinaryPath("gpu-autoscaler-webhook"), "--bind-address",
                                "127.0.0.1", "--port", std::to_string(port), "--kubeconfig",
                                kubeconfig_, "--self-signed", "--self-signed-ip", "127.0.0.1"},
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
  void CreateProfile(const std::string& name, const std::string& target, const std::string& mode) {
    Create(kProfiles, ns_,
           {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
            {"kind", "ServiceProfile"},
            {"metadata", {{"name", name}, {"namespace", ns_}}},
            {"spec",
             {{"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", target}}},
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

const json kOriginalResources = {{"requests", {{"cpu", "1"}, {"memory", "1Gi"}}},
                                 {"limits", {{"cpu", "2"}, {"memory", "2Gi"}}}};

TEST_F(ServiceProfileTest, RecommendationReachesNewPodsAndSurvivesRestart) {
  CreateDeployment("web", 2);
  for (const char* name : {"web-a", "web-b"})
    Create(kube::resources::kPods, ns_, Pod(name, ns_, "none", kOriginalResources));
  CreateProfile("web", "web", "Initial");
  CreateProfile("ghost", "no-such-deployment", "Initial");
  StartManager();

  // Expected targets, by hand from the histogram rules: the end of the
  // bucket holding the sample (CPU p90, memory p100) × (1 + 15 % margin).
  const auto cpu = profiling::ExponentialBuckets::CpuCores();
  const auto memory = profiling::ExponentialBuckets::MemoryBytes();
  const std::string cpu_target =
      profiling::FormatMilliCpu(cpu.BucketStart(cpu.FindBucket(kCpuCores) + 1) * 1.15);
  const std::string memory_target =
      profiling::FormatBytes(memory.BucketStart(memory.FindBucket(kMemoryBytes) + 1) * 1.15);
  // 0.2 core lies in bucket 49, which ends at 0.001 × (1.05^50 − 1) / 0.05 =
  // 0.20934 core; × 1.15 = 0.2407 -> 241m. 300Mi lies in bucket 19, which
  // ends at 1e7 × (1.05^20 − 1) / 0.05 = 330.66 MB; × 1.15 = 380.26 MB.
  EXPECT_EQ(cpu_target, "241m");
  EXPECT_EQ(memory_target.substr(0, 5), "38025");

  json profile;
  ASSERT_TRUE(WaitFor([&] {
    profile = Get(kProfiles, ns_, "web");
    auto c = Condition(profile, "RecommendationProvided");
    return c && c->status == "True";
  })) << profile.dump(2)
      << manager_.Log();
  const json rec = profile["status"]["recommendations"][0];
  EXPECT_EQ(rec["containerName"], "server");
  EXPECT_EQ(rec["cpu"]["target"], cpu_target);
  EXPECT_EQ(rec["memory"]["target"], memory_target);
  EXPECT_EQ(profile["status"]["targetSelector"], "app=web");
  EXPECT_EQ(profile["status"]["observedGeneration"], profile["metadata"]["generation"]);

  json ghost;
  ASSERT_TRUE(WaitFor([&] {
    ghost = Get(kProfiles, ns_, "ghost");
    return Condition(ghost, "RecommendationProvided").has_value();
  })) << manager_.Log();
  EXPECT_EQ(Condition(ghost, "RecommendationProvided")->reason, "TargetNotFound");
  EXPECT_NE(Condition(ghost, "RecommendationProvided")->message.find("no-such-deployment"),
            std::string::npos);
  EXPECT_FALSE(ghost["status"].contains("recommendations"));

  StartWebhook();
  // A new pod of the Deployment (retried until the webhook's cache has the profile).
  json created;
  ASSERT_TRUE(WaitFor([&] {
    auto r = client_->Create({kube::resources::kPods, ns_, "", ""},
                             Pod("web-c", ns_, ns_, kOriginalResources));
    if (!r.ok()) return false;
    created = *r;
    if (created["metadata"]["annotations"].contains("gpuautoscaler.io/service-profile")) {
      return true;
    }
    (void)client_->Delete({kube::resources::kPods, ns_, "web-c", ""});
    return false;
  })) << webhook_.Log();
  const json resources = created["spec"]["containers"][0]["resources"];
  EXPECT_EQ(resources["requests"]["cpu"], cpu_target);
  EXPECT_EQ(resources["requests"]["memory"], memory_target);
  // Limits keep the 2:1 ratio the pod was created with.
  const int cpu_millis = std::stoi(cpu_target);
  EXPECT_EQ(resources["limits"]["cpu"], std::to_string(2 * cpu_millis) + "m");
  EXPECT_EQ(resources["limits"]["memory"], std::to_string(2 * std::stoll(memory_target)));
  EXPECT_EQ(created["metadata"]["annotations"]["gpuautoscaler.io/service-profile"], "web");
  EXPECT_EQ(json::parse(created["metadata"]["annotations"]["gpuautoscaler.io/original-resources"]
                            .get<std::string>()),
            json({{"server", kOriginalResources}}));

  // QoS: an invalid combination is rejected with its reason ...
  auto denied = client_->Create(
      {kube::resources::kPods, ns_, "", ""},
      Pod("bad-qos", ns_, ns_, kOriginalResources,
          {{"katalyst.kubewharf.io/qos_level", "dedicated_cores"},
           {"katalyst.kubewharf.io/cpu_enhancement", R"({"cpuset_pool":"batch"})"}}));
  ASSERT_FALSE(denied.ok());
  // Quoted in docs/profiling.md.
  EXPECT_EQ(denied.error().message(),
            "admission webhook \"pods.validate.gpuautoscaler.io\" denied the request: pod does "
            "not fit its QoS level (katalyst.kubewharf.io/qos_level=dedicated_cores): "
            "metadata.annotations[katalyst.kubewharf.io/cpu_enhancement].cpuset_pool: Forbidden: "
            "cpuset_pool is only allowed with katalyst.kubewharf.io/qos_level=shared_cores, not "
            "dedicated_cores")
      << denied.error().ToString();
  // ... and a dedicated_cores pod is made Guaranteed with whole CPUs.
  json dedicated = Create(
      kube::resources::kPods, ns_,
      Pod("dedicated", ns_, ns_,
          {{"requests", {{"cpu", "1500m"}, {"memory", "1Gi"}}}, {"limits", {{"memory", "2Gi"}}}},
          {{"katalyst.kubewharf.io/qos_level", "dedicated_cores"},
           {"katalyst.kubewharf.io/memory_enhancement", R"({"numa_binding":"true"})"},
           {"gpuautoscaler.io/service-profile", "none"}}));
  const json dres = dedicated["spec"]["containers"][0]["resources"];
  EXPECT_EQ(dres["requests"], json({{"cpu", "2"}, {"memory", "2Gi"}})) << dedicated.dump();
  EXPECT_EQ(dres["limits"], json({{"cpu", "2"}, {"memory", "2Gi"}}));

  // The histograms are checkpointed, and a restarted manager recommends from
  // them while Prometheus has nothing new.
  ASSERT_TRUE(WaitFor([&] {
    const json cm = Get(kube::resources::kConfigMaps, ns_, "serviceprofile-web-checkpoint");
    return cm.is_object() &&
           cm["data"].value("checkpoint.json", "").find("\"server\"") != std::string::npos;
  })) << manager_.Log();
  manager_.Kill(SIGKILL);
  prometheus_.SetServing(false);
  StartManager();
  ASSERT_TRUE(WaitFor([&] {
    return manager_.Log().find("restored profile checkpoint") != std::string::npos;
  })) << manager_.Log();
  profile = Get(kProfiles, ns_, "web");
  EXPECT_EQ(Condition(profile, "RecommendationProvided")->status, "True") << profile.dump(2);
  EXPECT_EQ(profile["status"]["recommendations"][0]["cpu"]["target"], cpu_target);
}

TEST_F(ServiceProfileTest, AutoModeEvictsOneDriftedPodWithinTolerance) {
  CreateDeployment("web", 3);
  // Requests far below anything the usage supports.
  const json tiny = {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}};
  for (const char* name : {"web-a", "web-b", "web-c"}) {
    Create(kube::resources::kPods, ns_, Pod(name, ns_, "none", tiny));
    SetRunning(name);
  }
  CreateProfile("web", "web", "Auto");
  StartManager();

  // 3 replicas, tolerance 0.5: int(1.5) = 1 may go; then 2 running is the floor.
  auto live = [&] {
    auto list = client_->List({kube::resources::kPods, ns_, "", ""});
    return list.ok() ? (*list)["items"].size() : size_t{0};
  };
  ASSERT_TRUE(WaitFor([&] { return live() == 2; })) << manager_.Log();
  json events;
  ASSERT_TRUE(WaitFor([&] {
    auto list = client_->List({kube::resources::kEvents, ns_, "", ""});
    if (!list.ok()) return false;
    for (const json& e : (*list)["items"]) {
      if (e.value("reason", "") == "EvictedByServiceProfile") {
        events = e;
        return true;
      }
    }
    return false;
  })) << manager_.Log();
  EXPECT_NE(events.value("message", "").find("cpu request 10m outside"), std::string::npos)
      << events.dump();
  EXPECT_EQ(live(), 2u);
}

}  // namespace
}  // namespace gpu_autoscaler
