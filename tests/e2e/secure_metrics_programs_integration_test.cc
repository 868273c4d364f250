// The scheduler's, the node agent's and the admission webhook's /metrics as
// real processes, served as the manager serves its own
// (tests/reconcile/secure_metrics_integration_test.cc): HTTPS by default, each
// scrape authenticated by a TokenReview and authorised by a
// SubjectAccessReview on the embedded API server; --metrics-secure=false
// serves plain HTTP on loopback and is refused off it. The webhook's metrics
// have their own port; its admission port still answers reviews.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "kube/rest_client.h"
#include "kube/transport.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/secure_metrics.h"
#include "support/test_paths.h"

namespace gpu_autoscaler {
namespace {

using testing::WaitFor;

class SecureProgramMetricsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gpa-program-metrics");
    ASSERT_FALSE(dir_.empty());
    testing::WriteMetricsTokenFile(dir_ + "/tokens.csv");
    server_ = testing::TestApiServer::Start(
        {.extra_args = {"--token-auth-file=" + dir_ + "/tokens.csv"}});
    ASSERT_TRUE(server_) << "api server did not start";
    if (!server_->supports_faults()) GTEST_SKIP() << "needs the embedded API server's tokens";
    auto client = kube::RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
    kubeconfig_ = testing::WriteKubeconfig(server_->config(), dir_);
    ASSERT_TRUE(testing::GrantMetricsReader(*client_).ok());
    const std::string scenario = dir_ + "/scenario.json";
    std::ofstream(scenario) << R"({"gpus": [{"name": "NVIDIA A10G", "memoryMiB": 23028}]})";
    setenv("GPA_FAKE_NVML_SCENARIO", scenario.c_str(), 1);
  }

  void TearDown() override {
    program_.Kill(SIGKILL);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // The program under test with its metrics flags last.
  std::vector<std::string> Args(const std::vector<std::string>& metrics_flags) {
    std::vector<std::string> args;
    if (GetParam() == "scheduler") {
      args = {testing::BinaryPath("gpu-autoscaler-scheduler"), "--kubeconfig=" + kubeconfig_};
    } else if (GetParam() == "webhook") {
      // Its probes stay on the admission port (no --health-probe-bind-address).
      args = {testing::BinaryPath("gpu-autoscaler-webhook"),
              "--kubeconfig=" + kubeconfig_,
              "--bind-address=127.0.0.1",
              "--port=0",
              "--self-signed",
              "--self-signed-ip=127.0.0.1"};
      args.insert(args.end(), metrics_flags.begin(), metrics_flags.end());
      return args;
    } else {
      args = {testing::BinaryPath("gpu-autoscaler-node-agent"),
              "--node-name=gpu-node-1",
              "--kubeconfig=" + kubeconfig_,
              "--nvml-library=" + testing::BinaryPath("libgpa-fake-nvml.so"),
              "--cgroup-version=none",
              "--sysfs-root=" + dir_ + "/sys"};
    }
    args.push_back("--health-probe-bind-address=127.0.0.1:0");
    args.insert(args.end(), metrics_flags.begin(), metrics_flags.end());
    return args;
  }

  void Spawn(const std::vector<std::string>& metrics_flags) {
    ASSERT_TRUE(program_.Spawn(Args(metrics_flags), dir_ + "/program.log"));
    ASSERT_TRUE(WaitFor([&] { return (metrics_port_ = program_.PortFromLog("metrics_port")) > 0; }))
        << program_.Log();
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string dir_, kubeconfig_;
  testing::ChildProcess program_;
  int metrics_port_ = -1;
};

TEST_P(SecureProgramMetricsTest, SecureByDefaultOnlyAnAuthorisedTokenScrapes) {
  Spawn({"--metrics-bind-address=127.0.0.1:0"});
  if (HasFatalFailure()) return;
  kube::HttpResponse allowed;
  ASSERT_TRUE(WaitFor([&] {
    allowed = testing::ScrapeMetrics("https", metrics_port_, "", testing::kPrometheusToken);
    return allowed.status == 200;
  })) << allowed.status
      << " " << allowed.body << program_.Log();
  EXPECT_NE(allowed.body.find("# TYPE"), std::string::npos);
  if (GetParam() == "webhook") {
    EXPECT_NE(allowed.body.find("# TYPE gpu_autoscaler_webhook_reviews_total"), std::string::npos)
        << allowed.body;
    EXPECT_NE(allowed.body.find("# TYPE gpu_autoscaler_webhook_budgets"), std::string::npos);
  }

  kube::HttpResponse anonymous = testing::ScrapeMetrics("https", metrics_port_, "", "");
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  EXPECT_EQ(anonymous.body.find("# TYPE"), std::string::npos);
  EXPECT_EQ(testing::ScrapeMetrics("https", metrics_port_, "", "forged-token").status, 401);
  kube::HttpResponse bob =
      testing::ScrapeMetrics("https", metrics_port_, "", testing::kUnprivilegedToken);
  EXPECT_EQ(bob.status, 403) << bob.body;
  const std::string log = program_.Log();
  EXPECT_EQ(log.find(testing::kPrometheusToken), std::string::npos);
  EXPECT_NE(log.find("scheme=https"), std::string::npos) << log;
}

// The webhook's admission port: reviews from the API server as before (they
// carry no scrape token), /metrics no longer there.
class WebhookAdmissionPortTest : public SecureProgramMetricsTest {};

TEST_P(WebhookAdmissionPortTest, StillReviewsAndServesNoMetrics) {
  Spawn({"--metrics-bind-address=127.0.0.1:0"});
  if (HasFatalFailure()) return;
  int admission_port = -1;
  ASSERT_TRUE(WaitFor([&] {
    return (admission_port = program_.PortFromLog("admission_port")) > 0;
  })) << program_.Log();
  kube::ClientConfig cfg;
  cfg.server = "https://127.0.0.1:" + std::to_string(admission_port);
  cfg.insecure_skip_tls_verify = true;
  auto transport = kube::NewCurlTransport(cfg);
  ASSERT_TRUE(transport.ok()) << transport.error().ToString();
  const std::string review = R"({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
      "request": {"uid": "review-1", "operation": "CREATE",
                  "kind": {"group": "", "version": "v1", "kind": "Pod"},
                  "resource": {"group": "", "version": "v1", "resource": "pods"},
                  "namespace": "team-a", "name": "plain",
                  "object": {"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"name": "plain", "namespace": "team-a"},
                             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})";
  auto reply = (*transport)
                   ->Do({"POST",
                         cfg.server + "/mutate-pods?timeout=5s",
                         {{"Content-Type", "application/json"}},
                         review,
                         std::chrono::seconds(10)});
  ASSERT_TRUE(reply.ok()) << reply.error().ToString();
  EXPECT_EQ(reply->status, 200) << reply->body;
  EXPECT_NE(reply->body.find(R"("uid":"review-1")"), std::string::npos) << reply->body;
  EXPECT_NE(reply->body.find(R"("allowed":true)"), std::string::npos) << reply->body;
  kube::HttpResponse metrics =
      testing::ScrapeMetrics("https", admission_port, "", testing::kPrometheusToken);
  EXPECT_EQ(metrics.status, 404) << metrics.body;
  EXPECT_EQ(metrics.body.find("# TYPE"), std::string::npos);
}

TEST_P(SecureProgramMetricsTest, PlainHttpServesOnLoopbackWithoutAToken) {
  Spawn({"--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false"});
  if (HasFatalFailure()) return;
  kube::HttpResponse plain;
  ASSERT_TRUE(WaitFor([&] {
    plain = testing::ScrapeMetrics("http", metrics_port_, "", "");
    return plain.status == 200;
  })) << plain.status
      << program_.Log();
  EXPECT_NE(plain.body.find("# TYPE"), std::string::npos);
}

TEST_P(SecureProgramMetricsTest, PlainHttpOffLoopbackIsRefused) {
  testing::ChildProcess bad;
  ASSERT_TRUE(bad.Spawn(Args({"--metrics-bind-address=0.0.0.0:0", "--metrics-secure=false"}),
                        dir_ + "/bad.log"));
  std::optional<int> status;
  ASSERT_TRUE(WaitFor([&] { return (status = bad.TryWait()).has_value(); })) << bad.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << bad.Log();
  EXPECT_NE(bad.Log().find("only on a loopback address"), std::string::npos) << bad.Log();
}

INSTANTIATE_TEST_SUITE_P(Programs, SecureProgramMetricsTest,
                         ::testing::Values("scheduler", "node-agent", "webhook"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           if (info.param == "scheduler") return std::string("Scheduler");
                           if (info.param == "webhook") return std::string("Webhook");
                           return std::string("NodeAgent");
                         });
INSTANTIATE_TEST_SUITE_P(Programs, WebhookAdmissionPortTest, ::testing::Values("webhook"),
                         [](const auto&) { return std::string("Webhook"); });

}  // namespace
}  // namespace gpu_autoscaler
