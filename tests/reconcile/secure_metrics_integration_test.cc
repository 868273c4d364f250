// The manager's secure /metrics as a real process against the repository's
// API server: HTTPS with a mounted or a generated certificate, every scrape
// authenticated by a TokenReview and authorised by a SubjectAccessReview over
// the RBAC objects, the probes open on their own port, and plain HTTP refused
// off loopback.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "kube/resource.h"
#include "kube/rest_client.h"
#include "kube/transport.h"
#include "net/self_signed_cert.h"
#include "support/api_server_fixture.h"
#include "support/child_process.h"
#include "support/secure_metrics.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::reconcile {
namespace {

using nlohmann::json;
using testing::WaitFor;

class SecureMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gpa-secure-metrics");
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
    // What a chart grants Prometheus: get on the non-resource URL /metrics.
    ASSERT_TRUE(testing::GrantMetricsReader(*client_).ok());
  }

  void TearDown() override {
    manager_.Kill(SIGKILL);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void SpawnManager(std::vector<std::string> extra) {
    std::vector<std::string> args = {testing::BinaryPath("gpu-autoscaler-manager"),
                                     "--kubeconfig=" + kubeconfig_,
                                     "--controllers=node-gpu-inventory",
                                     "--metrics-bind-address=127.0.0.1:0",
                                     "--health-probe-bind-address=127.0.0.1:0",
                                     "--cost-db=" + dir_ + "/cost.db"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(manager_.Spawn(args, dir_ + "/manager.log"));
    ASSERT_TRUE(WaitFor([&] {
      metrics_port_ = manager_.PortFromLog("metrics_port");
      health_port_ = manager_.PortFromLog("health_port");
      return metrics_port_ > 0 && health_port_ > 0;
    })) << manager_.Log();
  }

  // GET https://127.0.0.1:<metrics>/<path>, trusting `ca_pem` (none: no verification).
  kube::HttpResponse Scrape(const std::string& ca_pem, const std::string& token,
                            const std::string& path = "/metrics") {
    return testing::ScrapeMetrics("https", metrics_port_, ca_pem, token, path);
  }

  std::unique_ptr<testing::TestApiServer> server_;
  std::unique_ptr<kube::RestClient> client_;
  std::string dir_, kubeconfig_;
  testing::ChildProcess manager_;
  int metrics_port_ = -1, health_port_ = -1;
};

TEST_F(SecureMetricsTest, OnlyAnAuthorisedServiceAccountScrapesOverVerifiedTls) {
  net::SelfSignedRequest request;
  request.dns_names = {"localhost"};
  request.ip_addresses = {"127.0.0.1"};
  auto certs = net::GenerateSelfSignedCertificates(request);
  ASSERT_TRUE(certs.ok());
  std::filesystem::create_directories(dir_ + "/certs");
  std::ofstream(dir_ + "/certs/tls.crt") << certs->serving_cert_pem;
  std::ofstream(dir_ + "/certs/tls.key") << certs->serving_key_pem;
  SpawnManager({"--metrics-cert-dir=" + dir_ + "/certs"});
  if (HasFatalFailure()) return;

  kube::HttpResponse allowed;
  ASSERT_TRUE(WaitFor([&] {
    allowed = Scrape(certs->ca_cert_pem, "prometheus-token");
    return allowed.status == 200;
  })) << allowed.status
      << " " << allowed.body << manager_.Log();
  EXPECT_NE(allowed.body.find("# TYPE"), std::string::npos);

  kube::HttpResponse anonymous = Scrape(certs->ca_cert_pem, "");
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  EXPECT_EQ(anonymous.body.find("# TYPE"), std::string::npos);
  EXPECT_EQ(Scrape(certs->ca_cert_pem, "forged-token").status, 401);
  kube::HttpResponse bob = Scrape(certs->ca_cert_pem, "bob-token");
  EXPECT_EQ(bob.status, 403);
  EXPECT_NE(bob.body.find("user \"bob\" cannot get path \"/metrics\""), std::string::npos)
      << bob.body;
  // Only /metrics is served there; the probes answer on their own port, open.
  EXPECT_EQ(Scrape(certs->ca_cert_pem, "prometheus-token", "/healthz").status, 404);
  ASSERT_TRUE(WaitFor([&] {
    kube::ClientConfig cfg;
    cfg.server = "http://127.0.0.1:" + std::to_string(health_port_);
    auto transport = kube::NewCurlTransport(cfg);
    if (!transport.ok()) return false;
    auto reply = (*transport)
                     ->Do({"GET",
                           "http://127.0.0.1:" + std::to_string(health_port_) + "/healthz",
                           {},
                           "",
                           std::chrono::seconds(5)});
    return reply.ok() && reply->status == 200;
  }));
  // No token in the manager's log.
  const std::string log = manager_.Log();
  EXPECT_EQ(log.find("prometheus-token"), std::string::npos);
  EXPECT_EQ(log.find("bob-token"), std::string::npos);
  EXPECT_NE(log.find("scheme=https"), std::string::npos) << log;
}

TEST_F(SecureMetricsTest, GeneratesACertificateWhenNoneIsMounted) {
  SpawnManager({});
  if (HasFatalFailure()) return;
  kube::HttpResponse anonymous;
  ASSERT_TRUE(WaitFor([&] {
    anonymous = Scrape("", "");
    return anonymous.status == 401;
  })) << manager_.Log();
  EXPECT_EQ(Scrape("", "prometheus-token").status, 200);
}

TEST_F(SecureMetricsTest, PlainHttpMetricsOnlyOnLoopback) {
  testing::ChildProcess bad;
  ASSERT_TRUE(
      bad.Spawn({testing::BinaryPath("gpu-autoscaler-manager"), "--kubeconfig=" + kubeconfig_,
                 "--metrics-secure=false", "--metrics-bind-address=0.0.0.0:0"},
                dir_ + "/bad.log"));
  std::optional<int> status;
  ASSERT_TRUE(WaitFor([&] { return (status = bad.TryWait()).has_value(); })) << bad.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << bad.Log();
  EXPECT_NE(bad.Log().find("only on a loopback address"), std::string::npos) << bad.Log();
}

}  // namespace
}  // namespace gpu_autoscaler::reconcile
