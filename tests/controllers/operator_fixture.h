// File: tests/controllers/operator_fixture.h
//
// The fixture of the operator's end-to-end tests (operator_*_integration_test.cc):
// the embedded API server, gpu-autoscaler-webhook and gpu-autoscaler-manager as
// separate processes, a loopback Receiver standing in for Slack, PagerDuty and
// webhook endpoints, and a real SMTP server. Header-only; each test file
// includes it once.
//
// Thread-safety: Receiver is safe to read while its server thread records
// requests; the fixture itself is used from the test's thread.
#pragma once

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "cost/store_factory.h"
#include "kube/conditions.h"
#include "kube/rest_client.h"
#include "net/http_server.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/loopback_port.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::operator_testing {

using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;

const kube::GroupVersionResource kBudgets{"gpuautoscaler.io", "v1alpha1", "budgets", true};
const kube::GroupVersionResource kClusterBudgets{"gpuautoscaler.io", "v1alpha1", "clusterbudgets",
                                                 false};
const kube::GroupVersionResource kPolicies{"gpuautoscaler.io", "v1alpha1", "gpusharingpolicies",
                                           false};

// Records every request; /flaky answers 500 to its first two.
class Receiver {
 public:
  struct Request {
    std::string path, body, idempotency_key, signature;
  };
  Receiver() {
    auto server =
        net::HttpServer::Start({}, [this](const net::ServerRequest& r, net::ResponseWriter& w) {
          std::lock_guard<std::mutex> lock(mu_);
          if (r.path == "/flaky" && flaky_failures_ < 2) {
            ++flaky_failures_;
            w.Respond(500, "text/plain", "try later");
            return;
          }
          requests_.push_back({r.path, r.body, std::string(r.Header("Idempotency-Key")),
                               std::string(r.Header("X-GPU-Autoscaler-Signature"))});
          w.Respond(200, "text/plain", "ok");
        });
    EXPECT_TRUE(server.ok());
    server_ = std::move(*server);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  std::vector<Request> On(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Request> out;
    for (const auto& r : requests_)
      if (r.path == path) out.push_back(r);
    return out;
  }
  int flaky_failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return flaky_failures_;
  }

 private:
  std::mutex mu_;
  std::vector<Request> requests_;
  int flaky_failures_ = 0;
  std::unique_ptr<net::HttpServer> server_;
};

class OperatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("operator");
    dir_ = testing::MakeTempDir("gpa-operator");
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    config_ = dir_ + "/config.yaml";
    // A real SMTP server (Debian's python3-aiosmtpd) writing each message to a Maildir.
    smtp_port_ = testing::FreeLoopbackPort().value();
    maildir_ = dir_ + "/maildir";
    if (std::filesystem::exists("/usr/bin/python3")) {
      smtp_.Spawn(
          {"/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l",
           "127.0.0.1:" + std::to_string(smtp_port_), "-c", "aiosmtpd.handlers.Mailbox", maildir_},
          dir_ + "/smtp.log");
    }
    std::ofstream(config_) << "apiVersion: gpuautoscaler.io/v1alpha1\nkind: ManagerConfig\n"
                              "budgets:\n  evaluationPeriod: 1s\nsharingPolicies:\n  resync: 2s\n";
  }
  void TearDown() override {
    manager_.Kill(SIGKILL);
    webhook_.Kill(SIGTERM);
    smtp_.Kill(SIGTERM);
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  void StartManager() {
    ASSERT_TRUE(manager_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig_,
         "--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false",
         "--health-probe-bind-address=127.0.0.1:0", "--leader-elect",
         "--leader-election-namespace=" + ns_, "--leader-election-id=operator-test",
         "--config=" + config_, "--cost-db=" + dir_ + "/cost.db"},
        dir_ + "/manager.log"));
    ASSERT_TRUE(WaitFor([&] { return manager_.PortFromLog("metrics_port") > 0; }))
        << manager_.Log();
  }

  // The admission webhook, registered as a cluster has it: a
  // ValidatingWebhookConfiguration whose caBundle the webhook patches itself.
  void StartWebhook() {
    const int port = testing::FreeLoopbackPort().value();
    Create({"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", false}, "",
           {{"apiVersion", "admissionregistration.k8s.io/v1"},
            {"kind", "ValidatingWebhookConfiguration"},
            {"metadata", {{"name", "gpu-autoscaler-webhook"}}},
            {"webhooks",
             {{{"name", "pods.validate.gpuautoscaler.io"},
               {"admissionReviewVersions", {"v1"}},
               {"sideEffects", "None"},
               {"failurePolicy", "Fail"},
               {"clientConfig",
                {{"url", "https://127.0.0.1:" + std::to_string(port) + "/validate-pods"}}},
               // Only this test's pods: never anything else on a shared server.
               {"objectSelector", {{"matchLabels", {{"operator-test", ns_}}}}},
               {"rules",
                {{{"operations", {"CREATE"}},
                  {"apiGroups", {""}},
                  {"apiVersions", {"v1"}},
                  {"resources", {"pods"}}}}}}}}});
    ASSERT_TRUE(webhook_.Spawn(
        {testing::BinaryPath("gpu-autoscaler-webhook"), "--bind-address", "127.0.0.1", "--port",
         std::to_string(port), "--kubeconfig", kubeconfig_, "--self-signed", "--self-signed-ip",
         "127.0.0.1", "--metrics-bind-address", "0"},
        dir_ + "/webhook.log"));
    ASSERT_TRUE(WaitFor([&] {
      const json config =
          Get({"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", false}, "",
              "gpu-autoscaler-webhook");
      return config.is_object() &&
             !config["webhooks"][0]["clientConfig"].value("caBundle", "").empty();
    })) << webhook_.Log();
  }

  // A Ready p4d node with 8 GPUs.
  void AddGpuNode(const std::string& name) {
    json node = Create(kube::resources::kNodes, "",
                       {{"apiVersion", "v1"},
                        {"kind", "Node"},
                        {"metadata",
                         {{"name", name},
                          {"labels",
                           {{"node.kubernetes.io/instance-type", "p4d.24xlarge"},
                            {"nvidia.com/gpu.product", "A100-SXM4-40GB"}}}}}});
    SetStatus(kube::resources::kNodes, "", node,
              {{"allocatable", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}},
               {"capacity", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}},
               {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}});
  }
  // A pod running on `node` with one GPU, 4 CPUs and 16Gi.
  void AddRunningGpuPod(const std::string& ns, const std::string& name, const std::string& node,
                        const json& labels, const json& annotations = json::object()) {
    json pod =
        Create(kube::resources::kPods, ns,
               {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"labels", labels}, {"annotations", annotations}}},
                {"spec",
                 {{"nodeName", node},
                  {"containers",
                   {{{"name", "main"},
                     {"image", "cuda"},
                     {"resources",
                      {{"requests", {{"cpu", "4"}, {"memory", "16Gi"}, {"nvidia.com/gpu", "1"}}},
                       {"limits", {{"nvidia.com/gpu", "1"}}}}}}}}}}});
    SetStatus(kube::resources::kPods, ns, pod, {{"phase", "Running"}});
  }
  // A new pod the test's webhook configuration sends to the webhook.
  json NewPod(const std::string& name, const json& annotations, bool gpu) {
    json requests = gpu ? json{{"nvidia.com/gpu", "1"}} : json{{"cpu", "1"}};
    return json{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", name}, {"labels", {{"operator-test", ns_}}}, {"annotations", annotations}}},
        {"spec",
         {{"containers",
           {{{"name", "main"}, {"image", "cuda"}, {"resources", {{"limits", requests}}}}}}}}};
  }
  // The webhook's denial of a new GPU pod in `ns`, once it denies (403); "" if it never does.
  std::string WaitForDenial(const std::string& ns, const std::string& name) {
    std::string denial;
    const bool denied = WaitFor([&] {
      auto created =
          client_->Create({kube::resources::kPods, ns, "", ""}, NewPod(name, json::object(), true));
      if (created.ok()) {
        (void)client_->Delete({kube::resources::kPods, ns, name, ""});
        return false;
      }
      denial = created.error().ToString();
      return created.error().code() == 403;
    });
    return denied ? denial : "";
  }

  json Create(const kube::GroupVersionResource& gvr, const std::string& ns, const json& obj) {
    auto created = client_->Create({gvr, ns, "", ""}, obj);
    EXPECT_TRUE(created.ok()) << created.error().ToString();
    return created.ok() ? *created : json();
  }
  void SetStatus(const kube::GroupVersionResource& gvr, const std::string& ns, json obj,
                 const json& status) {
    obj["status"] = status;
    auto r = client_->Replace(
        kube::ObjectRef{gvr, ns, obj["metadata"]["name"].get<std::string>(), ""}.WithSub("status"),
        obj);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }
  json Get(const kube::GroupVersionResource& gvr, const std::string& ns, const std::string& name) {
    auto got = client_->Get({gvr, ns, name, ""});
    return got.ok() ? *got : json();
  }
  std::string Condition(const json& obj, const std::string& type) {
    if (!obj.is_object()) return "";
    auto c =
        kube::FindCondition(obj.value("status", json::object()).value("conditions", json()), type);
    return c ? c->status + ": " + c->message : "";
  }

  // Stored seconds of a pod: count, first and last.
  struct Seconds {
    int64_t count = 0, first = 0, last = 0;
  };
  // Everything a namespace's pods cost, as stored.
  double StoredCost(const std::string& ns) {
    auto store = cost::OpenCostStore(dir_ + "/cost.db");
    if (!store.ok()) return -1;
    cost::CostQuery q{.window = {0, 4'000'000'000},
                      .resolution = cost::Resolution::kSecond,
                      .group_by = {cost::Dimension::kNamespace},
                      .filters = {{cost::Dimension::kNamespace, ns}},
                      .bucket = cost::Resolution::kSecond};
    auto report = (*store)->Query(q);
    if (!report.ok()) return -1;
    double sum = 0;
    for (const auto& row : report->rows)
      if (!row.idle) sum += row.totals.total_cost();
    return sum;
  }
  Seconds StoredSeconds(const std::string& pod) {
    auto store = cost::OpenCostStore(dir_ + "/cost.db");
    if (!store.ok()) return {};
    cost::CostQuery q{.window = {0, 4'000'000'000},
                      .resolution = cost::Resolution::kSecond,
                      .group_by = {cost::Dimension::kPod},
                      .filters = {{cost::Dimension::kPod, ns_ + "/" + pod}},
                      .bucket = cost::Resolution::kSecond};
    auto report = (*store)->Query(q);
    if (!report.ok()) return {};
    Seconds s;
    for (const auto& row : report->rows) {
      if (row.idle) continue;
      s.count += row.totals.samples;
      if (s.first == 0 || row.bucket < s.first) s.first = row.bucket;
      s.last = std::max(s.last, row.bucket);
    }
    return s;
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string ns_, dir_, kubeconfig_, config_;
  // Messages the SMTP server stored, oldest first.
  std::vector<std::string> Mails() {
    std::vector<std::pair<std::filesystem::file_time_type, std::string>> files;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(maildir_ + "/new", ec))
      files.emplace_back(e.last_write_time(), testing::ReadFileOrDie(e.path().string()));
    std::sort(files.begin(), files.end());
    std::vector<std::string> out;
    for (auto& f : files)
      out.push_back(std::move(f.second));
    return out;
  }
  bool SmtpUp() {
    return smtp_.running() && testing::WaitFor([&] {
             return smtp_.Log().find("rror") == std::string::npos &&
                    std::filesystem::exists(maildir_ + "/new");
           });
  }

  ChildProcess manager_;
  ChildProcess webhook_;
  ChildProcess smtp_;
  int smtp_port_ = 0;
  std::string maildir_;
  Receiver receiver_;
};

}  // namespace gpu_autoscaler::operator_testing
