// Runs the GCP and Azure flows (successes and failures) against the loopback
// fakes with every log record captured at trace level, and checks that no
// access token, client secret, federated token, JWT assertion or private-key
// material reaches the logs or the returned error messages.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "cloud/azure_auth.h"
#include "cloud/azure_interruption.h"
#include "cloud/azure_vmss.h"
#include "cloud/gcp_auth.h"
#include "cloud/gcp_mig.h"
#include "support/captured_logs.h"
#include "support/fake_azure.h"
#include "support/fake_gcp.h"

namespace gpu_autoscaler::cloud {
namespace {

using namespace std::chrono_literals;
using testing::FakeAzure;
using testing::FakeAzureImds;
using testing::FakeGcp;
using testing::FakeGcpMetadata;

using testing::CapturedLogs;

TEST(CloudSecretsIntegrationTest, NoCredentialMaterialInLogsOrErrors) {
  CapturedLogs logs;
  std::vector<std::string> errors;
  auto record = [&](const Status& s) {
    if (!s.ok()) errors.push_back(s.message());
  };
  FakeClock clock;
  auto no_sleep = [&](Clock::Duration d) { clock.Step(d); };

  // GCP: service-account key flow, a throttled call, a failed operation, a
  // bad key, the metadata server.
  auto gcp = FakeGcp::Start();
  ASSERT_NE(gcp, nullptr);
  auto gcp_transport = NewCloudTransport(gcp->endpoint(), gcp->ca_pem());
  ASSERT_TRUE(gcp_transport.ok());
  auto gcp_tokens = NewGcpServiceAccountTokenSource(gcp->key_file(), *gcp_transport, clock);
  ASSERT_TRUE(gcp_tokens.ok());
  GcpMigOptions gopts;
  gopts.compute_endpoint = gcp->compute_endpoint();
  gopts.project = "ml-prod";
  gopts.zone = "us-central1-a";
  GcpMigProvider mig(gopts, *gcp_transport, *gcp_tokens, clock, no_sleep);
  gcp->AddMig("ml-prod", "us-central1-a", "gpu", 2, true);
  ASSERT_TRUE(mig.Describe("gpu").ok());
  gcp->ThrottleNext(10);
  record(mig.SetDesiredSize("gpu", 3));
  gcp->ThrottleNext(0);
  gcp->FailNextOperation("QUOTA_EXCEEDED");
  record(mig.SetDesiredSize("gpu", 3));
  auto key = ParseGcpServiceAccountKey(R"({"type":"service_account","client_email":"a@b",
      "private_key":"-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7\n-----END PRIVATE KEY-----\n",
      "token_uri":")" + gcp->endpoint() +
                                       R"(/token"})");
  ASSERT_TRUE(key.ok());
  auto broken = NewGcpServiceAccountTokenSource(*key, *gcp_transport, clock)->Token();
  ASSERT_FALSE(broken.ok());
  record(broken.error());
  auto metadata = FakeGcpMetadata::Start();
  ASSERT_NE(metadata, nullptr);
  auto md_transport = NewCloudTransport(metadata->endpoint());
  ASSERT_TRUE(md_transport.ok());
  ASSERT_TRUE(NewGcpMetadataTokenSource(metadata->endpoint(), *md_transport, clock)->Token().ok());

  // Azure: client secret, a wrong secret, workload identity, throttling, a
  // failed allocation, managed identity, scheduled events with acknowledgement.
  auto azure = FakeAzure::Start();
  ASSERT_NE(azure, nullptr);
  auto az_transport = NewCloudTransport(azure->endpoint(), azure->ca_pem());
  ASSERT_TRUE(az_transport.ok());
  AzureClientCredentials creds;
  creds.tenant_id = FakeAzure::kTenant;
  creds.client_id = FakeAzure::kClientId;
  creds.client_secret = FakeAzure::kClientSecret;
  creds.login_endpoint = azure->endpoint();
  auto az_tokens = NewAzureClientCredentialsTokenSource(creds, *az_transport, clock);
  ASSERT_TRUE(az_tokens.ok());
  AzureVmssOptions aopts;
  aopts.arm_endpoint = azure->endpoint();
  aopts.subscription_id = FakeAzure::kSubscription;
  aopts.resource_group = FakeAzure::kResourceGroup;
  AzureVmssProvider vmss(aopts, *az_transport, *az_tokens, clock, no_sleep);
  azure->AddVmss("gpu", 1, true);
  ASSERT_TRUE(vmss.Describe("gpu").ok());
  azure->ThrottleNext(10, "1");
  record(vmss.Describe("gpu").error());
  azure->ThrottleNext(0);
  azure->SetAllocationLimit(1);
  record(vmss.SetDesiredSize("gpu", 2));
  creds.client_secret = std::string(FakeAzure::kClientSecret) + "-wrong";
  auto wrong = (*NewAzureClientCredentialsTokenSource(creds, *az_transport, clock))->Token();
  ASSERT_FALSE(wrong.ok());
  record(wrong.error());
  std::string token_file = ::testing::TempDir() + "/secrets-test-federated-token";
  std::ofstream(token_file) << FakeAzure::kFederatedToken;
  creds.client_secret.clear();
  creds.federated_token_file = token_file;
  ASSERT_TRUE((*NewAzureClientCredentialsTokenSource(creds, *az_transport, clock))->Token().ok());
  std::remove(token_file.c_str());
  auto imds = FakeAzureImds::Start();
  ASSERT_NE(imds, nullptr);
  auto imds_transport = NewCloudTransport(imds->endpoint());
  ASSERT_TRUE(imds_transport.ok());
  ASSERT_TRUE(NewAzureManagedIdentityTokenSource({.imds_endpoint = imds->endpoint()},
                                                 *imds_transport, clock)
                  ->Token()
                  .ok());
  imds->AddEvent("E1", "Preempt", {"gpu_0"}, "Mon, 19 Sep 2016 18:29:47 GMT");
  AzureScheduledEventsSource events({.imds_endpoint = imds->endpoint(), .acknowledge = true},
                                    *imds_transport, clock);
  ASSERT_TRUE(events.Poll().ok());

  std::string text = logs.text();
  // The capture works: the providers' debug lines are there.
  EXPECT_NE(text.find("gcp-mig: GET"), std::string::npos) << text;
  EXPECT_NE(text.find("azure-vmss: PATCH"), std::string::npos) << text;
  ASSERT_GE(errors.size(), 5u);

  std::vector<std::string> secrets = {FakeAzure::kClientSecret, FakeAzure::kFederatedToken,
                                      "PRIVATE KEY", "MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7",
                                      // the JWT header {"alg":"RS256","kid": base64url-encoded
                                      "eyJhbGciOiJSUzI1NiIsImtpZCI6", "Bearer "};
  // A slice of the real key's base64 body.
  const std::string& pem = gcp->private_key_pem();
  secrets.push_back(pem.substr(pem.size() / 2, 40));
  for (const auto& t : gcp->issued_tokens())
    secrets.push_back(t);
  for (const auto& t : azure->issued_tokens())
    secrets.push_back(t);
  secrets.push_back(metadata->last_token());
  secrets.push_back(imds->last_token());
  ASSERT_GE(gcp->issued_tokens().size(), 1u);
  ASSERT_GE(azure->issued_tokens().size(), 2u);
  for (const std::string& secret : secrets) {
    ASSERT_FALSE(secret.empty());
    EXPECT_EQ(text.find(secret), std::string::npos) << "log leaks " << secret;
    for (const std::string& e : errors) {
      EXPECT_EQ(e.find(secret), std::string::npos) << "error leaks " << secret << ": " << e;
    }
  }
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
