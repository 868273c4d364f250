// The gcp-mig provider, its token sources and the preemption source against
// loopback fakes over real sockets (HTTPS for the APIs, HTTP for metadata).
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "cloud/gcp_auth.h"
#include "cloud/gcp_interruption.h"
#include "cloud/gcp_mig.h"
#include "support/fake_gcp.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::cloud {
namespace {

using namespace std::chrono_literals;
using testing::FakeGcp;
using testing::FakeGcpMetadata;

constexpr const char* kProject = "ml-prod";
constexpr const char* kZone = "us-central1-a";

class GcpIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = FakeGcp::Start();
    ASSERT_NE(fake_, nullptr);
    auto transport = NewCloudTransport(fake_->endpoint(), fake_->ca_pem());
    ASSERT_TRUE(transport.ok()) << transport.error().ToString();
    transport_ = *transport;
    auto tokens = NewGcpServiceAccountTokenSource(fake_->key_file(), transport_, clock_);
    ASSERT_TRUE(tokens.ok()) << tokens.error().ToString();
    tokens_ = *tokens;
    options_.compute_endpoint = fake_->compute_endpoint();
    options_.project = kProject;
    options_.zone = kZone;
    options_.page_size = 2;
    options_.request_timeout = 500ms;
    Rebuild();
  }

  void Rebuild() {
    mig_ = std::make_unique<GcpMigProvider>(options_, transport_, tokens_, clock_,
                                            [this](Clock::Duration d) {
                                              sleeps_.push_back(d);
                                              clock_.Step(d);
                                            });
  }

  std::unique_ptr<FakeGcp> fake_;
  FakeClock clock_;
  std::vector<Clock::Duration> sleeps_;
  std::shared_ptr<kube::HttpTransport> transport_;
  std::shared_ptr<AccessTokenSource> tokens_;
  GcpMigOptions options_;
  std::unique_ptr<GcpMigProvider> mig_;
};

TEST_F(GcpIntegrationTest, DescribeReadsEveryPageWithProviderIdsAndSpotLifecycle) {
  fake_->AddMig(kProject, kZone, "gpu-a100", 3, /*spot=*/true);
  auto group = mig_->Describe("gpu-a100");
  ASSERT_TRUE(group.ok()) << group.error().ToString();
  EXPECT_EQ(group->desired, 3);
  ASSERT_EQ(group->instances.size(), 3u);  // two pages of two
  EXPECT_EQ(group->instances[0].id, "gpu-0001");
  EXPECT_EQ(group->instances[0].provider_id, "gce://ml-prod/us-central1-a/gpu-0001");
  EXPECT_EQ(group->instances[2].zone, kZone);
  EXPECT_EQ(group->instances[0].lifecycle, Lifecycle::kSpot);
  EXPECT_EQ(group->instances[0].state, "RUNNING");
  auto requests = fake_->requests();
  EXPECT_NE(std::find(requests.begin(), requests.end(),
                      "POST /compute/v1/projects/ml-prod/zones/us-central1-a/"
                      "instanceGroupManagers/gpu-a100/listManagedInstances?maxResults=2&"
                      "pageToken=2"),
            requests.end());
  // The full group name works as well, and an on-demand template says so.
  fake_->AddMig(kProject, kZone, "gpu-od", 1, /*spot=*/false);
  auto od = mig_->Describe("projects/ml-prod/zones/us-central1-a/instanceGroupManagers/gpu-od");
  ASSERT_TRUE(od.ok()) << od.error().ToString();
  EXPECT_EQ(od->instances.at(0).lifecycle, Lifecycle::kOnDemand);
}

TEST_F(GcpIntegrationTest, ResizeUpWaitsForTheOperation) {
  fake_->AddMig(kProject, kZone, "gpu-a100", 2, true);
  fake_->SetPendingPolls(2);
  ASSERT_TRUE(mig_->SetDesiredSize("gpu-a100", 5).ok());
  EXPECT_EQ(fake_->target_size("gpu-a100"), 5);
  EXPECT_EQ(fake_->operation_polls(), 2);
  // RUNNING in the resize answer, RUNNING on the first poll, DONE on the second.
  EXPECT_EQ(sleeps_, (std::vector<Clock::Duration>{2s}));
  auto requests = fake_->requests();
  bool resize_seen = false;
  for (const auto& r : requests) {
    resize_seen = resize_seen || (r.find("/resize?size=5&requestId=") != std::string::npos &&
                                  r.starts_with("POST "));
  }
  EXPECT_TRUE(resize_seen);
  EXPECT_EQ(ClassifyProviderError(mig_->SetDesiredSize("gpu-a100", 5000)),
            ProviderErrorKind::kInvalid);
}

// resize takes no precondition: ResizeFrom reads targetSize (one GET) just
// before and refuses a size someone else set since the caller's read.
TEST_F(GcpIntegrationTest, AResizeFromAStaleSizeLeavesTheOtherWritersSize) {
  fake_->AddMig(kProject, kZone, "gpu-a100", 2, true);
  ASSERT_TRUE(mig_->ResizeFrom("gpu-a100", 2, 3).ok());
  EXPECT_EQ(fake_->target_size("gpu-a100"), 3);
  const size_t before = fake_->requests().size();
  Status stale = mig_->ResizeFrom("gpu-a100", 2, 4);
  EXPECT_EQ(ClassifyProviderError(stale), ProviderErrorKind::kConflict) << stale.ToString();
  EXPECT_NE(stale.message().find("desired size is 3, not the 2 read before"), std::string::npos)
      << stale.message();
  EXPECT_EQ(fake_->target_size("gpu-a100"), 3);
  // One GET, and no resize.
  const std::vector<std::string> requests = fake_->requests();
  ASSERT_EQ(requests.size(), before + 1);
  EXPECT_TRUE(requests.back().starts_with("GET ")) << requests.back();
}

TEST_F(GcpIntegrationTest, DeleteInstancesWithAndWithoutDecrement) {
  fake_->AddMig(kProject, kZone, "gpu-a100", 3, true);
  ASSERT_TRUE(mig_->TerminateInstances("gpu-a100", {"gpu-0001"}, /*decrement_desired=*/true).ok());
  EXPECT_EQ(fake_->target_size("gpu-a100"), 2);
  EXPECT_EQ(fake_->instance_names("gpu-a100"), (std::vector<std::string>{"gpu-0002", "gpu-0003"}));

  Status s = mig_->TerminateInstances("gpu-a100", {"gpu-0002"}, /*decrement_desired=*/false);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(fake_->target_size("gpu-a100"), 2);  // resized back: the MIG replaces it
  auto names = fake_->instance_names("gpu-a100");
  EXPECT_EQ(std::count(names.begin(), names.end(), "gpu-0002"), 0);
  EXPECT_EQ(names.size(), 2u);

  EXPECT_EQ(ClassifyProviderError(mig_->TerminateInstances("gpu-a100", {"gpu-9999"}, true)),
            ProviderErrorKind::kInvalid);
}

TEST_F(GcpIntegrationTest, ThrottlingIsRetriedWithBackoffThenSurfaced) {
  fake_->AddMig(kProject, kZone, "gpu-a100", 1, true);
  fake_->ThrottleNext(2);
  auto group = mig_->Describe("gpu-a100");
  ASSERT_TRUE(group.ok()) << group.error().ToString();
  EXPECT_EQ(sleeps_, (std::vector<Clock::Duration>{1s, 2s}));

  sleeps_.clear();
  fake_->ThrottleNext(100);
  auto throttled = mig_->Describe("gpu-a100");
  ASSERT_FALSE(throttled.ok());
  EXPECT_EQ(ClassifyProviderError(throttled.error()), ProviderErrorKind::kThrottled);
  EXPECT_NE(throttled.error().message().find("rateLimitExceeded"), std::string::npos);
  EXPECT_EQ(sleeps_.size(), 3u);  // four attempts
}

TEST_F(GcpIntegrationTest, StockoutAndQuotaErrorsHaveTheirKinds) {
  fake_->AddMig(kProject, kZone, "gpu-a100", 2, true);
  fake_->SetCapacity(2);
  Status s = mig_->SetDesiredSize("gpu-a100", 4);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kInsufficientCapacity) << s.ToString();
  EXPECT_NE(s.message().find("ZONE_RESOURCE_POOL_EXHAUSTED"), std::string::npos);
  // The two the MIG could not create are no instances (no VM stands behind them).
  auto group = mig_->Describe("gpu-a100");
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(group->desired, 4);
  ASSERT_EQ(group->instances.size(), 2u);
  EXPECT_EQ(group->instances[1].state, "RUNNING");

  fake_->FailNextOperation("QUOTA_EXCEEDED");
  Status quota = mig_->SetDesiredSize("gpu-a100", 1);
  EXPECT_EQ(ClassifyProviderError(quota), ProviderErrorKind::kQuotaExceeded) << quota.ToString();

  EXPECT_EQ(ClassifyProviderError(mig_->Describe("no-such-mig").error()),
            ProviderErrorKind::kNotFound);
}

// A stockout the MIG finds after the resize is accepted: the instances stay
// CREATING with lastAttempt.errors. LaunchFailure names it; shrinking back
// deletes exactly those instances, by name, and the group is healthy again.
TEST_F(GcpIntegrationTest, ALateStockoutIsALaunchFailureAndShrinkingDeletesTheFailedInstances) {
  fake_->AddMig(kProject, kZone, "gpu-a100", 1, true);
  EXPECT_TRUE(mig_->LaunchFailure("gpu-a100").ok());
  fake_->SetCapacity(1);
  (void)mig_->SetDesiredSize("gpu-a100", 3);  // also reported here, when already seen
  Status failed = mig_->LaunchFailure("gpu-a100");
  EXPECT_EQ(ClassifyProviderError(failed), ProviderErrorKind::kInsufficientCapacity)
      << failed.ToString();
  EXPECT_NE(failed.message().find("ZONE_RESOURCE_POOL_EXHAUSTED"), std::string::npos)
      << failed.message();
  EXPECT_NE(failed.message().find("does not have enough resources available"), std::string::npos);
  const std::vector<std::string> names = fake_->instance_names("gpu-a100");
  ASSERT_EQ(names.size(), 3u);
  EXPECT_NE(failed.message().find("creating " + names[1] + " failed"), std::string::npos)
      << failed.message();

  ASSERT_TRUE(mig_->SetDesiredSize("gpu-a100", 1).ok());
  std::string deleted;
  for (const std::string& r : fake_->requests())
    if (r.find("/deleteInstances") != std::string::npos) deleted = r;
  EXPECT_NE(deleted, "");
  EXPECT_EQ(fake_->instance_names("gpu-a100"), std::vector<std::string>{names[0]});
  EXPECT_EQ(fake_->target_size("gpu-a100"), 1);
  EXPECT_TRUE(mig_->LaunchFailure("gpu-a100").ok());

  // A quota is a launch failure of its own kind.
  fake_->SetCapacity(1, "QUOTA_EXCEEDED");
  (void)mig_->SetDesiredSize("gpu-a100", 2);
  Status quota = mig_->LaunchFailure("gpu-a100");
  EXPECT_EQ(ClassifyProviderError(quota), ProviderErrorKind::kQuotaExceeded) << quota.ToString();
  EXPECT_NE(quota.message().find("Quota 'NVIDIA_A100_GPUS' exceeded"), std::string::npos)
      << quota.message();
}

TEST_F(GcpIntegrationTest, HungServerIsUnavailableAfterTheRequestTimeout) {
  fake_->AddMig(kProject, kZone, "gpu-a100", 1, true);
  fake_->SetHung(true);
  auto group = mig_->Describe("gpu-a100");
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(ClassifyProviderError(group.error()), ProviderErrorKind::kUnavailable)
      << group.error().ToString();
  fake_->SetHung(false);
}

TEST_F(GcpIntegrationTest, ServiceAccountTokenIsCachedUntilNearExpiry) {
  fake_->AddMig(kProject, kZone, "gpu-a100", 1, true);
  ASSERT_TRUE(mig_->Describe("gpu-a100").ok());
  ASSERT_TRUE(mig_->Describe("gpu-a100").ok());
  EXPECT_EQ(fake_->token_grants(), 1);
  clock_.Step(3599s - 5min - 1s);
  ASSERT_TRUE(mig_->Describe("gpu-a100").ok());
  EXPECT_EQ(fake_->token_grants(), 1);
  clock_.Step(2s);
  ASSERT_TRUE(mig_->Describe("gpu-a100").ok());
  EXPECT_EQ(fake_->token_grants(), 2);
}

TEST_F(GcpIntegrationTest, AKeyTheTokenEndpointDoesNotKnowIsAnAuthError) {
  // Same account, another private key: the signature does not verify.
  auto key = ParseGcpServiceAccountKey(testing::ReadFileOrDie(fake_->key_file()));
  ASSERT_TRUE(key.ok());
  EVP_PKEY* other = EVP_RSA_gen(2048);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, other, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  key->private_key_pem.assign(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(other);
  auto tokens = NewGcpServiceAccountTokenSource(*key, transport_, clock_);
  auto token = tokens->Token();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(ClassifyProviderError(token.error()), ProviderErrorKind::kAuth);
  EXPECT_NE(token.error().message().find("invalid_grant"), std::string::npos);
  // The provider surfaces it as the same kind.
  fake_->AddMig(kProject, kZone, "gpu-a100", 1, true);
  GcpMigProvider mig(options_, transport_, tokens, clock_);
  EXPECT_EQ(ClassifyProviderError(mig.Describe("gpu-a100").error()), ProviderErrorKind::kAuth);
}

TEST(GcpMetadataIntegrationTest, MetadataServerTokenIsCached) {
  auto metadata = FakeGcpMetadata::Start();
  ASSERT_NE(metadata, nullptr);
  auto transport = NewCloudTransport(metadata->endpoint());
  ASSERT_TRUE(transport.ok());
  FakeClock clock;
  auto tokens = NewGcpMetadataTokenSource(metadata->endpoint(), *transport, clock);
  auto token = tokens->Token();
  ASSERT_TRUE(token.ok()) << token.error().ToString();
  EXPECT_EQ(*token, "ya29.metadata-token-1");
  EXPECT_EQ(*tokens->Token(), "ya29.metadata-token-1");
  EXPECT_EQ(metadata->token_requests(), 1);
}

TEST(GcpMetadataIntegrationTest, PreemptedBecomesANotice) {
  auto metadata = FakeGcpMetadata::Start();
  ASSERT_NE(metadata, nullptr);
  auto transport = NewCloudTransport(metadata->endpoint());
  ASSERT_TRUE(transport.ok());
  FakeClock clock;
  GcpPreemptionSource source({.metadata_endpoint = metadata->endpoint()}, *transport, clock);
  auto none = source.Poll();
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  EXPECT_FALSE(none->has_value());
  metadata->SetPreempted(true);
  auto notice = source.Poll();
  ASSERT_TRUE(notice.ok());
  ASSERT_TRUE(notice->has_value());
  EXPECT_EQ((*notice)->kind, InterruptionNotice::Kind::kPreempted);
  int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock.WallNow().time_since_epoch()).count();
  EXPECT_EQ((*notice)->not_after_unix, now + 30);
}

TEST(GcpMetadataIntegrationTest, WaitForChangeReturnsWhenPreempted) {
  auto metadata = FakeGcpMetadata::Start();
  ASSERT_NE(metadata, nullptr);
  auto transport = NewCloudTransport(metadata->endpoint());
  ASSERT_TRUE(transport.ok());
  FakeClock clock;
  GcpPreemptionSource source(
      {.metadata_endpoint = metadata->endpoint(), .wait_for_change = true, .wait_timeout_sec = 60},
      *transport, clock);
  auto first = source.Poll();  // no etag yet: answers at once
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_FALSE(first->has_value());
  auto waiting = std::async(std::launch::async, [&] { return source.Poll(); });
  metadata->SetPreempted(true);
  auto notice = waiting.get();
  ASSERT_TRUE(notice.ok()) << notice.error().ToString();
  ASSERT_TRUE(notice->has_value());
  EXPECT_EQ((*notice)->kind, InterruptionNotice::Kind::kPreempted);
}

TEST(GcpMetadataIntegrationTest, RequestsWithoutTheFlavorHeaderAreRefused) {
  auto metadata = FakeGcpMetadata::Start();
  ASSERT_NE(metadata, nullptr);
  auto transport = NewCloudTransport(metadata->endpoint());
  ASSERT_TRUE(transport.ok());
  kube::HttpRequest req{.method = "GET",
                        .url = metadata->endpoint() + "/computeMetadata/v1/instance/preempted"};
  auto resp = (*transport)->Do(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 403);
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
