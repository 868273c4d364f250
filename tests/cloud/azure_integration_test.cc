// The azure-vmss provider, its token sources and the Scheduled Events source
// against loopback fakes over real sockets (HTTPS for ARM and AAD, HTTP for
// IMDS).
#include <ctime>
#include <fstream>

#include <gtest/gtest.h>

#include "cloud/azure_auth.h"
#include "cloud/azure_interruption.h"
#include "cloud/azure_vmss.h"
#include "support/fake_azure.h"

namespace gpu_autoscaler::cloud {
namespace {

using namespace std::chrono_literals;
using testing::FakeAzure;
using testing::FakeAzureImds;

std::string HttpDate(Clock::WallTime t) {
  time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

AzureClientCredentials SecretCredentials(const FakeAzure& fake) {
  AzureClientCredentials c;
  c.tenant_id = FakeAzure::kTenant;
  c.client_id = FakeAzure::kClientId;
  c.client_secret = FakeAzure::kClientSecret;
  c.login_endpoint = fake.endpoint();
  return c;
}

class AzureIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = FakeAzure::Start();
    ASSERT_NE(fake_, nullptr);
    auto transport = NewCloudTransport(fake_->endpoint(), fake_->ca_pem());
    ASSERT_TRUE(transport.ok()) << transport.error().ToString();
    transport_ = *transport;
    auto tokens =
        NewAzureClientCredentialsTokenSource(SecretCredentials(*fake_), transport_, clock_);
    ASSERT_TRUE(tokens.ok()) << tokens.error().ToString();
    tokens_ = *tokens;
    options_.arm_endpoint = fake_->endpoint();
    options_.subscription_id = FakeAzure::kSubscription;
    options_.resource_group = FakeAzure::kResourceGroup;
    options_.poll_interval = 3s;
    options_.request_timeout = 500ms;
    vmss_ = std::make_unique<AzureVmssProvider>(options_, transport_, tokens_, clock_,
                                                [this](Clock::Duration d) {
                                                  sleeps_.push_back(d);
                                                  clock_.Step(d);
                                                });
  }

  std::unique_ptr<FakeAzure> fake_;
  FakeClock clock_;
  std::vector<Clock::Duration> sleeps_;
  std::shared_ptr<kube::HttpTransport> transport_;
  std::shared_ptr<AccessTokenSource> tokens_;
  AzureVmssOptions options_;
  std::unique_ptr<AzureVmssProvider> vmss_;
};

TEST_F(AzureIntegrationTest, DescribeFollowsNextLinkWithProviderIdsAndSpotLifecycle) {
  fake_->AddVmss("gpu-nc", 3, /*spot=*/true);
  auto group = vmss_->Describe("gpu-nc");
  ASSERT_TRUE(group.ok()) << group.error().ToString();
  EXPECT_EQ(group->desired, 3);
  ASSERT_EQ(group->instances.size(), 3u);
  EXPECT_EQ(group->instances[0].id, "0");
  EXPECT_EQ(group->instances[2].id, "2");
  EXPECT_EQ(group->instances[0].provider_id,
            "azure:///subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/gpu-rg/"
            "providers/Microsoft.Compute/virtualMachineScaleSets/gpu-nc/virtualMachines/0");
  EXPECT_EQ(group->instances[0].zone, "eastus-1");
  EXPECT_EQ(group->instances[0].lifecycle, Lifecycle::kSpot);
  EXPECT_EQ(group->instances[0].state, "Succeeded");
  auto id = vmss_->InstanceIdFromProviderId(group->instances[2].provider_id);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "2");

  fake_->AddVmss("gpu-od", 1, /*spot=*/false);
  auto od = vmss_->Describe(
      "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/gpu-rg/providers/"
      "Microsoft.Compute/virtualMachineScaleSets/gpu-od");
  ASSERT_TRUE(od.ok()) << od.error().ToString();
  EXPECT_EQ(od->instances.at(0).lifecycle, Lifecycle::kOnDemand);
  EXPECT_EQ(ClassifyProviderError(vmss_->Describe("missing").error()),
            ProviderErrorKind::kNotFound);
}

TEST_F(AzureIntegrationTest, ScaleUpFollowsAzureAsyncOperationWithRetryAfter) {
  fake_->AddVmss("gpu-nc", 2, true);
  fake_->SetPendingPolls(2);
  Status s = vmss_->SetDesiredSize("gpu-nc", 5);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(fake_->capacity("gpu-nc"), 5);
  EXPECT_EQ(fake_->async_polls(), 2);
  // No Retry-After on the PATCH: the interval; then the poll's Retry-After: 1.
  EXPECT_EQ(sleeps_, (std::vector<Clock::Duration>{3s, 1s}));
  auto requests = fake_->requests();
  EXPECT_NE(std::find(requests.begin(), requests.end(),
                      "PATCH /subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/"
                      "gpu-rg/providers/Microsoft.Compute/virtualMachineScaleSets/"
                      "gpu-nc?api-version=2024-07-01"),
            requests.end());
}

// A resize from the capacity the caller read: refused when the scale set
// was resized since, before the read or between the read and the PATCH
// (the ETag of the read goes in If-Match; ARM answers 412).
TEST_F(AzureIntegrationTest, AResizeFromAStaleCapacityLeavesTheOtherWritersCapacity) {
  fake_->AddVmss("gpu-nc", 2, true);
  Status grown = vmss_->ResizeFrom("gpu-nc", 2, 3);
  ASSERT_TRUE(grown.ok()) << grown.ToString();
  EXPECT_EQ(fake_->capacity("gpu-nc"), 3);

  Status stale = vmss_->ResizeFrom("gpu-nc", 2, 4);
  EXPECT_EQ(ClassifyProviderError(stale), ProviderErrorKind::kConflict);
  EXPECT_NE(stale.message().find("capacity is 3, not the 2 read before"), std::string::npos)
      << stale.message();
  EXPECT_EQ(fake_->capacity("gpu-nc"), 3);

  fake_->ResizeBeforeNextPatch("gpu-nc", 6);
  Status raced = vmss_->ResizeFrom("gpu-nc", 3, 4);
  EXPECT_EQ(ClassifyProviderError(raced), ProviderErrorKind::kConflict) << raced.ToString();
  EXPECT_NE(raced.message().find("HTTP 412 PreconditionFailed"), std::string::npos)
      << raced.message();
  EXPECT_EQ(fake_->capacity("gpu-nc"), 6);  // theirs, not 4

  // SetDesiredSize sends no precondition.
  fake_->ResizeBeforeNextPatch("gpu-nc", 7);
  ASSERT_TRUE(vmss_->SetDesiredSize("gpu-nc", 5).ok());
  EXPECT_EQ(fake_->capacity("gpu-nc"), 5);
}

TEST_F(AzureIntegrationTest, DeleteInstancesWithAndWithoutDecrementFollowsLocation) {
  fake_->AddVmss("gpu-nc", 3, true);
  Status s = vmss_->TerminateInstances("gpu-nc", {"0"}, /*decrement_desired=*/true);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(fake_->capacity("gpu-nc"), 2);
  EXPECT_EQ(fake_->instance_ids("gpu-nc"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(fake_->location_polls(), 1);

  s = vmss_->TerminateInstances("gpu-nc", {"1"}, /*decrement_desired=*/false);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(fake_->capacity("gpu-nc"), 2);  // set back: the scale set replaces it
  EXPECT_EQ(fake_->instance_ids("gpu-nc"), (std::vector<std::string>{"2", "3"}));

  // The capacity is raised from what it is after the delete, and only if no
  // one has changed it since that read.
  fake_->ResizeBeforeNextPatch("gpu-nc", 5);
  s = vmss_->TerminateInstances("gpu-nc", {"2"}, /*decrement_desired=*/false);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kConflict) << s.ToString();
  EXPECT_EQ(fake_->capacity("gpu-nc"), 5);  // theirs, not 1 + 1

  EXPECT_EQ(ClassifyProviderError(vmss_->TerminateInstances("gpu-nc", {"vm-1"}, true)),
            ProviderErrorKind::kInvalid);
  EXPECT_EQ(ClassifyProviderError(vmss_->TerminateInstances("gpu-nc", {"42"}, true)),
            ProviderErrorKind::kInvalid);
}

TEST_F(AzureIntegrationTest, ThrottlingHonoursRetryAfterInSecondsAndAsADate) {
  fake_->AddVmss("gpu-nc", 1, true);
  fake_->ThrottleNext(2, "2");
  ASSERT_TRUE(vmss_->Describe("gpu-nc").ok());
  EXPECT_EQ(sleeps_, (std::vector<Clock::Duration>{2s, 2s}));

  sleeps_.clear();
  fake_->ThrottleNext(1, HttpDate(clock_.WallNow() + 7s));
  ASSERT_TRUE(vmss_->Describe("gpu-nc").ok());
  EXPECT_EQ(sleeps_, (std::vector<Clock::Duration>{7s}));

  sleeps_.clear();
  fake_->ThrottleNext(1, "120");  // longer than the policy waits: surfaced at once
  auto throttled = vmss_->Describe("gpu-nc");
  ASSERT_FALSE(throttled.ok());
  EXPECT_EQ(ClassifyProviderError(throttled.error()), ProviderErrorKind::kThrottled);
  EXPECT_NE(throttled.error().message().find("TooManyRequests"), std::string::npos);
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(AzureIntegrationTest, AllocationAndQuotaFailuresHaveTheirKinds) {
  fake_->AddVmss("gpu-nc", 2, true);
  fake_->SetAllocationLimit(3);
  Status capacity = vmss_->SetDesiredSize("gpu-nc", 4);
  EXPECT_EQ(ClassifyProviderError(capacity), ProviderErrorKind::kInsufficientCapacity)
      << capacity.ToString();
  EXPECT_NE(capacity.message().find("ZonalAllocationFailed"), std::string::npos);
  EXPECT_EQ(fake_->capacity("gpu-nc"), 2);

  fake_->SetQuotaLimit(2);
  Status quota = vmss_->SetDesiredSize("gpu-nc", 3);
  EXPECT_EQ(ClassifyProviderError(quota), ProviderErrorKind::kQuotaExceeded) << quota.ToString();
}

TEST_F(AzureIntegrationTest, HungServerIsUnavailableAfterTheRequestTimeout) {
  fake_->AddVmss("gpu-nc", 1, true);
  fake_->SetHung(true);
  auto group = vmss_->Describe("gpu-nc");
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(ClassifyProviderError(group.error()), ProviderErrorKind::kUnavailable);
  fake_->SetHung(false);
}

TEST_F(AzureIntegrationTest, PollingUrlOutsideArmIsRefused) {
  fake_->AddVmss("gpu-nc", 1, true);
  fake_->SetForeignAsyncUrl(true);
  Status s = vmss_->SetDesiredSize("gpu-nc", 2);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kInvalid) << s.ToString();
  for (const auto& r : fake_->requests())
    EXPECT_EQ(r.find("attacker"), std::string::npos);
}

TEST_F(AzureIntegrationTest, ClientSecretTokenIsCachedAndAWrongSecretIsAuth) {
  fake_->AddVmss("gpu-nc", 1, true);
  ASSERT_TRUE(vmss_->Describe("gpu-nc").ok());
  ASSERT_TRUE(vmss_->Describe("gpu-nc").ok());
  EXPECT_EQ(fake_->token_grants(), 1);
  clock_.Step(3599s);
  ASSERT_TRUE(vmss_->Describe("gpu-nc").ok());
  EXPECT_EQ(fake_->token_grants(), 2);

  AzureClientCredentials wrong = SecretCredentials(*fake_);
  wrong.client_secret = "not-the-secret";
  auto tokens = NewAzureClientCredentialsTokenSource(wrong, transport_, clock_);
  ASSERT_TRUE(tokens.ok());
  auto token = (*tokens)->Token();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(ClassifyProviderError(token.error()), ProviderErrorKind::kAuth);
  EXPECT_NE(token.error().message().find("invalid_client"), std::string::npos);
}

TEST_F(AzureIntegrationTest, WorkloadIdentityFederatedTokenFile) {
  std::string path = ::testing::TempDir() + "/azure-federated-token";
  std::ofstream(path) << FakeAzure::kFederatedToken << "\n";
  std::map<std::string, std::string> env = {{"AZURE_TENANT_ID", FakeAzure::kTenant},
                                            {"AZURE_CLIENT_ID", FakeAzure::kClientId},
                                            {"AZURE_FEDERATED_TOKEN_FILE", path},
                                            {"AZURE_AUTHORITY_HOST", fake_->endpoint() + "/"}};
  auto creds = AzureCredentialsFromEnv([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  ASSERT_TRUE(creds.ok()) << creds.error().ToString();
  EXPECT_EQ(creds->login_endpoint, fake_->endpoint());
  auto tokens = NewAzureClientCredentialsTokenSource(*creds, transport_, clock_);
  ASSERT_TRUE(tokens.ok());
  auto token = (*tokens)->Token();
  ASSERT_TRUE(token.ok()) << token.error().ToString();
  EXPECT_EQ(*token, "eyJ0eXAiOiJKV1Qi.fake-arm-token-1");
  std::remove(path.c_str());
}

TEST(AzureImdsIntegrationTest, ManagedIdentityTokenWithAUserAssignedClientId) {
  auto imds = FakeAzureImds::Start();
  ASSERT_NE(imds, nullptr);
  auto transport = NewCloudTransport(imds->endpoint());
  ASSERT_TRUE(transport.ok());
  FakeClock clock;
  auto tokens = NewAzureManagedIdentityTokenSource(
      {.imds_endpoint = imds->endpoint(), .client_id = "11111111-2222-3333-4444-555555555555"},
      *transport, clock);
  auto token = tokens->Token();
  ASSERT_TRUE(token.ok()) << token.error().ToString();
  EXPECT_EQ(*token, "eyJ0eXAiOiJKV1Qi.imds-token-1");
  EXPECT_NE(imds->last_token_query().find("client_id=11111111-2222-3333-4444-555555555555"),
            std::string::npos);
  clock.Step(86399s - 5min - 1s);
  EXPECT_EQ(*tokens->Token(), "eyJ0eXAiOiJKV1Qi.imds-token-1");
  clock.Step(2s);
  EXPECT_EQ(*tokens->Token(), "eyJ0eXAiOiJKV1Qi.imds-token-2");
}

TEST(AzureImdsIntegrationTest, PreemptScheduledEventForThisVmIsANotice) {
  auto imds = FakeAzureImds::Start();
  ASSERT_NE(imds, nullptr);
  auto transport = NewCloudTransport(imds->endpoint());
  ASSERT_TRUE(transport.ok());
  FakeClock clock;
  AzureScheduledEventsSource source({.imds_endpoint = imds->endpoint(), .vm_name = "gpu-nc_3"},
                                    *transport, clock);
  auto none = source.Poll();
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  EXPECT_FALSE(none->has_value());

  imds->AddEvent("A1", "Freeze", {"gpu-nc_3"}, "Mon, 19 Sep 2016 18:29:47 GMT");
  imds->AddEvent("B2", "Preempt", {"gpu-nc_4"}, "Mon, 19 Sep 2016 18:29:47 GMT");
  EXPECT_FALSE(source.Poll()->has_value());  // not ours, and not a preemption

  imds->AddEvent("C3", "Preempt", {"gpu-nc_3"}, "Mon, 19 Sep 2016 18:29:47 GMT");
  auto notice = source.Poll();
  ASSERT_TRUE(notice.ok());
  ASSERT_TRUE(notice->has_value());
  EXPECT_EQ((*notice)->kind, InterruptionNotice::Kind::kScheduledPreempt);
  EXPECT_EQ((*notice)->not_after_unix, 1474309787);
  EXPECT_EQ((*notice)->detail, "C3");
  EXPECT_TRUE(imds->acknowledged().empty());  // not acknowledged by default

  AzureScheduledEventsSource acking(
      {.imds_endpoint = imds->endpoint(), .vm_name = "gpu-nc_3", .acknowledge = true}, *transport,
      clock);
  ASSERT_TRUE(acking.Poll()->has_value());
  ASSERT_TRUE(acking.Poll()->has_value());
  EXPECT_EQ(imds->acknowledged(), (std::vector<std::string>{"C3"}));  // once
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
