// TLS between RestClient and the embedded API server serving HTTPS with a
// freshly generated CA: verification with the CA, failure without it, and
// insecure-skip-tls-verify.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "support/api_server_fixture.h"

namespace gpu_autoscaler::kube {
namespace {

using testing::TestApiServer;
using namespace std::chrono_literals;

class TlsIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::TestApiServerOptions opts;
    opts.tls = true;
    server_ = TestApiServer::Start(opts).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << "api server did not start";
    // A real cluster works too when its kubeconfig carries the CA (the serving
    // certificate of kube-apiserver names kubernetes.default.svc as well).
    const ClientConfig cfg = server_->config();
    if (cfg.server.rfind("https://", 0) != 0 || cfg.ca_pem.empty()) {
      GTEST_SKIP() << "needs an HTTPS API server and its CA in the kubeconfig";
    }
  }

  static Result<HttpResponse> Version(const ClientConfig& cfg) {
    auto client = RestClient::Create(cfg, {.max_retries = 0});
    if (!client.ok()) return client.error();
    return (*client)->Request("GET", "/version");
  }

  static TestApiServer* server_;
};

TestApiServer* TlsIntegrationTest::server_ = nullptr;

TEST_F(TlsIntegrationTest, VerifiesWithTheClusterCa) {
  ClientConfig cfg = server_->config();
  ASSERT_EQ(cfg.server.rfind("https://", 0), 0u) << cfg.server;
  ASSERT_FALSE(cfg.ca_pem.empty());
  auto version = Version(cfg);
  ASSERT_TRUE(version.ok()) << version.error().ToString();
  EXPECT_EQ(version->status, 200);
  EXPECT_TRUE(nlohmann::json::parse(version->body).contains("gitVersion"));

  // Verbs work over TLS too, reusing the pooled connection.
  auto client = RestClient::Create(cfg);
  ASSERT_TRUE(client.ok());
  for (int i = 0; i < 3; ++i) {
    auto list = (*client)->List({resources::kNamespaces, ""});
    ASSERT_TRUE(list.ok()) << list.error().ToString();
  }
}

TEST_F(TlsIntegrationTest, FailsWithoutTheCa) {
  ClientConfig cfg = server_->config();
  cfg.ca_pem.clear();  // the system trust store does not know the test CA
  auto version = Version(cfg);
  ASSERT_FALSE(version.ok());
  EXPECT_TRUE(IsTransport(version.error())) << version.error().ToString();
}

TEST_F(TlsIntegrationTest, InsecureSkipVerify) {
  ClientConfig cfg = server_->config();
  cfg.ca_pem.clear();
  cfg.insecure_skip_tls_verify = true;
  auto version = Version(cfg);
  ASSERT_TRUE(version.ok()) << version.error().ToString();
  EXPECT_EQ(version->status, 200);
}

TEST_F(TlsIntegrationTest, GarbageCaIsAConfigError) {
  ClientConfig cfg = server_->config();
  cfg.ca_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  auto client = RestClient::Create(cfg);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().kind(), Error::Kind::kConfig);
}

// tls-server-name: connect to 127.0.0.1 but verify the certificate against
// another name (the serving cert carries DNS:kubernetes.default.svc).
TEST_F(TlsIntegrationTest, TlsServerNameOverridesTheVerifiedName) {
  ClientConfig cfg = server_->config();
  cfg.tls_server_name = "kubernetes.default.svc";
  auto version = Version(cfg);
  ASSERT_TRUE(version.ok()) << version.error().ToString();
  EXPECT_EQ(version->status, 200);

  cfg.tls_server_name = "not-in-the-certificate.example";
  auto wrong = Version(cfg);
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(IsTransport(wrong.error())) << wrong.error().ToString();
}

TEST_F(TlsIntegrationTest, PlainHttpToTlsPortFails) {
  ClientConfig cfg = server_->config();
  cfg.server.replace(0, 5, "http");
  auto version = Version(cfg);
  EXPECT_FALSE(version.ok() && version->status == 200);
}

}  // namespace
}  // namespace gpu_autoscaler::kube
