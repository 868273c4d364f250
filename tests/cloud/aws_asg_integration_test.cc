// The aws-asg provider, the AWS credential chain and the spot notice source
// against the loopback fakes (tests/support/fake_aws.h) over real sockets:
// HTTPS with a generated CA for Auto Scaling and STS, HTTP for IMDSv2. Every
// Auto Scaling request is SigV4-verified by the fake. All log output of each
// test is captured and checked for leaked secrets.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <optional>

#include "cloud/aws_asg.h"
#include "cloud/aws_credentials.h"
#include "cloud/aws_interruption.h"
#include "kube/transport.h"
#include "support/captured_logs.h"
#include "support/fake_aws.h"

namespace gpu_autoscaler::cloud {
namespace {

using testing::FakeAws;
using testing::FakeAwsFault;
using testing::FakeAwsGroup;
using testing::FakeAwsOptions;

constexpr char kSecret[] = "fake/secret+key";
constexpr char kStsSecret[] = "sts-issued-secret/AAAA";
constexpr char kStsToken[] = "sts-session-token-FwoGZXIvYXdzEBAaDEXAMPLE";
constexpr char kImdsSecret[] = "imds-issued-secret/BBBB";
constexpr char kImdsToken[] = "imds-session-token-IQoJb3JpZ2luEXAMPLE";
constexpr char kWebIdentityToken[] = "eyJhbGciOiJSUzI1NiJ9.fake-web-identity-token";

std::shared_ptr<kube::HttpTransport> Transport(const std::string& server,
                                               const std::string& ca_pem) {
  kube::ClientConfig cfg;
  cfg.server = server;
  cfg.ca_pem = ca_pem;
  auto t = kube::NewCurlTransport(cfg);
  EXPECT_TRUE(t.ok());
  return std::shared_ptr<kube::HttpTransport>(std::move(t).value());
}

class AwsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logs_.emplace();  // everything any logger writes during the test

    FakeAwsOptions o;
    o.secret_access_key = kSecret;
    o.web_identity_token = kWebIdentityToken;
    o.sts_credentials = {"ASIASTSFAKE", kStsSecret, kStsToken,
                         std::chrono::system_clock::now() + std::chrono::hours(1), ""};
    o.imds_credentials = {"ASIAIMDSFAKE", kImdsSecret, kImdsToken,
                          std::chrono::system_clock::now() + std::chrono::hours(6), ""};
    auto fake = FakeAws::Start(o);
    ASSERT_TRUE(fake.ok()) << fake.error().ToString();
    aws_ = std::move(fake).value();
    https_ = Transport(aws_->endpoint(), aws_->ca_pem());
    http_ = Transport(aws_->imds_endpoint(), "");
  }

  void TearDown() override {
    aws_.reset();
    const std::string logs = logs_->text();
    logs_.reset();
    for (const char* secret :
         {kSecret, kStsSecret, kStsToken, kImdsSecret, kImdsToken, kWebIdentityToken}) {
      EXPECT_EQ(logs.find(secret), std::string::npos) << "a secret leaked into the log:\n" << logs;
    }
  }

  AwsAsgOptions Options() {
    AwsAsgOptions o;
    o.region = "us-east-1";
    o.endpoint = aws_->endpoint();
    o.request_timeout = std::chrono::seconds(10);
    o.retry.max_attempts = 4;
    o.retry.base_delay = std::chrono::milliseconds(100);
    o.sleep = [this](std::chrono::milliseconds d) {
      std::lock_guard<std::mutex> lock(mu_);
      sleeps_.push_back(d);
    };
    o.jitter = [] { return 1.0; };
    return o;
  }

  std::shared_ptr<AwsCredentialsProvider> LongTermKeys(std::string secret = kSecret) {
    return StaticAwsCredentials({"AKIDFAKEEXAMPLE", secret, "", std::nullopt, "test"});
  }

  std::unique_ptr<AwsAsgProvider> Provider(std::shared_ptr<AwsCredentialsProvider> creds,
                                           AwsAsgOptions o) {
    auto p = NewAwsAsgProvider(o, https_, std::move(creds));
    EXPECT_TRUE(p.ok()) << p.error().ToString();
    return std::unique_ptr<AwsAsgProvider>(static_cast<AwsAsgProvider*>(p->release()));
  }

  int Count(const std::string& action) {
    auto a = aws_->actions();
    return int(std::count(a.begin(), a.end(), action));
  }

  std::vector<std::chrono::milliseconds> Sleeps() {
    std::lock_guard<std::mutex> lock(mu_);
    return sleeps_;
  }

  // An environment with only these variables and files.
  AwsEnvironment Env(std::map<std::string, std::string> vars,
                     std::map<std::string, std::string> files = {}) {
    AwsEnvironment env;
    env.get_env = [vars](const std::string& n) -> std::optional<std::string> {
      auto it = vars.find(n);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
    env.read_file = [files](const std::string& p) -> Result<std::string> {
      auto it = files.find(p);
      if (it == files.end()) return NotFoundError(p + ": no such file");
      return it->second;
    };
    return env;
  }

  std::optional<testing::CapturedLogs> logs_;
  std::unique_ptr<FakeAws> aws_;
  std::shared_ptr<kube::HttpTransport> https_, http_;
  std::mutex mu_;
  std::vector<std::chrono::milliseconds> sleeps_;
};

TEST_F(AwsIntegrationTest, DescribeScaleUpAndTerminateWithAndWithoutDecrement) {
  aws_->AddGroup(
      {.name = "gpu-a", .min = 0, .max = 4, .desired = 1, .instances = {{}}, .all_spot = true});
  auto p = Provider(LongTermKeys(), Options());
  EXPECT_EQ(p->Name(), "aws-asg");

  auto g = p->Describe("gpu-a");
  ASSERT_TRUE(g.ok()) << g.error().ToString();
  EXPECT_EQ(g->desired, 1);
  EXPECT_EQ(g->max, 4);
  ASSERT_EQ(g->instances.size(), 1u);
  const Instance& first = g->instances[0];
  EXPECT_EQ(first.zone, "us-east-1a");
  EXPECT_EQ(first.state, "InService");
  EXPECT_EQ(first.lifecycle, Lifecycle::kSpot);
  EXPECT_EQ(first.provider_id, "aws:///us-east-1a/" + first.id);
  auto id = p->InstanceIdFromProviderId(first.provider_id);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, first.id);

  ASSERT_TRUE(p->SetDesiredSize("gpu-a", 3).ok());
  EXPECT_EQ(aws_->LastParams("SetDesiredCapacity"),
            (std::vector<std::pair<std::string, std::string>>{{"Action", "SetDesiredCapacity"},
                                                              {"Version", "2011-01-01"},
                                                              {"AutoScalingGroupName", "gpu-a"},
                                                              {"DesiredCapacity", "3"},
                                                              {"HonorCooldown", "false"}}));
  g = p->Describe("gpu-a");
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->instances.size(), 3u);
  EXPECT_EQ(g->desired, 3);

  // With decrement: the group shrinks.
  std::string gone = g->instances[1].id;
  ASSERT_TRUE(p->TerminateInstances("gpu-a", {gone}, /*decrement_desired=*/true).ok());
  EXPECT_EQ(aws_->Group("gpu-a")->desired, 2);
  EXPECT_EQ(aws_->Group("gpu-a")->instances.size(), 2u);
  // Without: the group launches a replacement.
  std::string replaced = aws_->Group("gpu-a")->instances[0].id;
  ASSERT_TRUE(p->TerminateInstances("gpu-a", {replaced}, /*decrement_desired=*/false).ok());
  auto after = aws_->Group("gpu-a");
  EXPECT_EQ(after->desired, 2);
  ASSERT_EQ(after->instances.size(), 2u);
  for (const auto& in : after->instances) {
    EXPECT_NE(in.id, replaced);
    EXPECT_NE(in.id, gone);
  }
  auto params = aws_->LastParams("TerminateInstanceInAutoScalingGroup");
  EXPECT_EQ(params.back(),
            (std::pair<std::string, std::string>{"ShouldDecrementDesiredCapacity", "false"}));
  EXPECT_TRUE(aws_->errors().empty());
}

// SetDesiredCapacity takes no precondition: ResizeFrom reads the group just
// before and refuses a size someone else set since the caller's read.
TEST_F(AwsIntegrationTest, AResizeFromAStaleSizeLeavesTheOtherWritersSize) {
  aws_->AddGroup({.name = "gpu-a", .min = 0, .max = 8, .desired = 2, .instances = {{}, {}}});
  auto p = Provider(LongTermKeys(), Options());
  ASSERT_TRUE(p->ResizeFrom("gpu-a", 2, 3).ok());
  EXPECT_EQ(aws_->Group("gpu-a")->desired, 3);
  Status stale = p->ResizeFrom("gpu-a", 2, 4);
  EXPECT_EQ(ClassifyProviderError(stale), ProviderErrorKind::kConflict) << stale.ToString();
  EXPECT_NE(stale.message().find("aws-asg gpu-a: desired size is 3, not the 2 read before"),
            std::string::npos)
      << stale.message();
  EXPECT_EQ(aws_->Group("gpu-a")->desired, 3);
}

TEST_F(AwsIntegrationTest, MissingGroupsInstancesAndOutOfRangeSizesAreClassified) {
  aws_->AddGroup({.name = "gpu-a", .min = 1, .max = 2, .desired = 1, .instances = {{}}});
  auto p = Provider(LongTermKeys(), Options());
  EXPECT_EQ(ClassifyProviderError(p->Describe("nope").error()), ProviderErrorKind::kNotFound);
  Status s = p->SetDesiredSize("nope", 1);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kNotFound) << s.ToString();
  s = p->SetDesiredSize("gpu-a", 5);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kInvalid) << s.ToString();
  EXPECT_NE(s.message().find("above max value 2"), std::string::npos) << s.message();
  s = p->TerminateInstances("gpu-a", {"i-0123456789abcdef0"}, true);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kNotFound) << s.ToString();
  // Decrementing below the minimum is the service's ValidationError.
  std::string only = aws_->Group("gpu-a")->instances[0].id;
  s = p->TerminateInstances("gpu-a", {only}, true);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kInvalid) << s.ToString();
}

TEST_F(AwsIntegrationTest, DescribeFollowsNextToken) {
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    names.push_back("pool-" + std::to_string(i));
    aws_->AddGroup({.name = names.back(), .max = 3});
  }
  AwsAsgOptions o = Options();
  o.page_size = 2;
  auto p = Provider(LongTermKeys(), o);
  auto groups = p->DescribeGroups(names);
  ASSERT_TRUE(groups.ok()) << groups.error().ToString();
  ASSERT_EQ(groups->size(), 5u);
  EXPECT_EQ((*groups)[4].name, "pool-4");
  EXPECT_EQ(Count("DescribeAutoScalingGroups"), 3);
}

TEST_F(AwsIntegrationTest, ThrottlingAndContentionAreRetriedWithBackoffThenSucceed) {
  aws_->AddGroup({.name = "gpu-a", .max = 4});
  aws_->InjectFault("SetDesiredCapacity", FakeAwsFault::kThrottling, 2);
  aws_->InjectFault("SetDesiredCapacity", FakeAwsFault::kResourceContention, 1);
  auto p = Provider(LongTermKeys(), Options());
  Status s = p->SetDesiredSize("gpu-a", 2);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(aws_->Group("gpu-a")->desired, 2);
  EXPECT_EQ(Count("SetDesiredCapacity"), 4);
  // Jitter pinned at 1.0: the full capped exponential delays.
  EXPECT_EQ(Sleeps(), (std::vector<std::chrono::milliseconds>{std::chrono::milliseconds(100),
                                                              std::chrono::milliseconds(200),
                                                              std::chrono::milliseconds(400)}));
}

TEST_F(AwsIntegrationTest, PersistentThrottlingSurfacesAsThrottledAfterTheAttempts) {
  aws_->AddGroup({.name = "gpu-a", .max = 4});
  aws_->InjectFault("*", FakeAwsFault::kThrottling, 100);
  auto p = Provider(LongTermKeys(), Options());
  auto g = p->Describe("gpu-a");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(ClassifyProviderError(g.error()), ProviderErrorKind::kThrottled);
  EXPECT_NE(g.error().message().find("after 4 attempts"), std::string::npos) << g.error().message();
  EXPECT_EQ(Count("DescribeAutoScalingGroups"), 4);
  EXPECT_EQ(Sleeps().size(), 3u);
}

TEST_F(AwsIntegrationTest, CapacityAndQuotaErrorsAreClassifiedAndNotRetried) {
  aws_->AddGroup({.name = "gpu-a", .max = 4});
  auto p = Provider(LongTermKeys(), Options());
  aws_->InjectFault("SetDesiredCapacity", FakeAwsFault::kInsufficientCapacity);
  Status s = p->SetDesiredSize("gpu-a", 1);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kInsufficientCapacity) << s.ToString();
  aws_->InjectFault("SetDesiredCapacity", FakeAwsFault::kLimitExceeded);
  s = p->SetDesiredSize("gpu-a", 1);
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kQuotaExceeded) << s.ToString();
  EXPECT_EQ(Count("SetDesiredCapacity"), 2);
  EXPECT_TRUE(Sleeps().empty());
}

TEST_F(AwsIntegrationTest, AsynchronousCapacityShortageShowsInTheScalingActivities) {
  aws_->AddGroup({.name = "gpu-a", .max = 4, .capacity = 1});
  auto p = Provider(LongTermKeys(), Options());
  EXPECT_TRUE(p->LaunchFailure("gpu-a").ok());      // nothing launched yet
  ASSERT_TRUE(p->SetDesiredSize("gpu-a", 3).ok());  // accepted: scaling is asynchronous
  auto g = p->Describe("gpu-a");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->desired, 3);
  EXPECT_EQ(g->instances.size(), 1u);
  Status s = p->LaunchFailure("gpu-a");
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kInsufficientCapacity) << s.ToString();
  EXPECT_NE(s.message().find("do not have sufficient p4d.24xlarge capacity"), std::string::npos);
}

TEST_F(AwsIntegrationTest, HungServerIsUnavailableAfterTheRequestTimeout) {
  aws_->AddGroup({.name = "gpu-a", .max = 4});
  aws_->InjectFault("*", FakeAwsFault::kHang, 2);
  AwsAsgOptions o = Options();
  o.request_timeout = std::chrono::milliseconds(300);
  o.retry.max_attempts = 2;
  auto p = Provider(LongTermKeys(), o);
  auto g = p->Describe("gpu-a");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(ClassifyProviderError(g.error()), ProviderErrorKind::kUnavailable);
  EXPECT_NE(g.error().message().find("no answer within 300ms"), std::string::npos)
      << g.error().message();
  aws_->ReleaseHung();
}

TEST_F(AwsIntegrationTest, ServerErrorsWithoutXmlAreUnavailableAndRetried) {
  aws_->AddGroup({.name = "gpu-a", .max = 4});
  aws_->InjectFault("DescribeAutoScalingGroups", FakeAwsFault::kInternalError, 1);
  auto p = Provider(LongTermKeys(), Options());
  EXPECT_TRUE(p->Describe("gpu-a").ok());
  EXPECT_EQ(Count("DescribeAutoScalingGroups"), 2);
}

TEST_F(AwsIntegrationTest, TheFakeRejectsBadSignaturesAndUnknownKeys) {
  aws_->AddGroup({.name = "gpu-a", .max = 4});
  auto wrong = Provider(LongTermKeys("not-the-secret"), Options());
  auto g = wrong->Describe("gpu-a");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(ClassifyProviderError(g.error()), ProviderErrorKind::kAuth);
  EXPECT_NE(g.error().message().find("SignatureDoesNotMatch"), std::string::npos);
  auto unknown =
      Provider(StaticAwsCredentials({"AKIDUNKNOWN", kSecret, "", std::nullopt, "t"}), Options());
  g = unknown->Describe("gpu-a");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(ClassifyProviderError(g.error()), ProviderErrorKind::kAuth);
  EXPECT_EQ(aws_->errors(),
            (std::vector<std::string>{"SignatureDoesNotMatch", "InvalidClientTokenId"}));
  EXPECT_TRUE(Sleeps().empty());  // auth failures are not retried
}

TEST_F(AwsIntegrationTest, WebIdentityCredentialsComeFromStsAreCachedAndRenewedOnExpiry) {
  aws_->AddGroup({.name = "gpu-a", .max = 4});
  AwsCredentialChainOptions c;
  c.env = Env({{"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks/token"},
               {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/gpu-autoscaler"},
               {"AWS_ROLE_SESSION_NAME", "gpu-autoscaler-test"}},
              {{"/var/run/secrets/eks/token", std::string(kWebIdentityToken) + "\n"}});
  c.region = "us-east-1";
  c.sts_endpoint = aws_->endpoint();
  c.sts_transport = https_;
  auto chain = NewAwsCredentialChain(std::move(c));
  auto p = Provider(chain, Options());
  auto first = p->Describe("gpu-a");
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  ASSERT_TRUE(p->Describe("gpu-a").ok());
  EXPECT_EQ(Count("AssumeRoleWithWebIdentity"), 1);
  // The capture works (TearDown checks it for secrets).
  EXPECT_NE(logs_->text().find("aws credentials: using web identity"), std::string::npos);
  auto sts = aws_->LastParams("AssumeRoleWithWebIdentity");
  EXPECT_EQ(sts[2], (std::pair<std::string, std::string>{
                        "RoleArn", "arn:aws:iam::123456789012:role/gpu-autoscaler"}));
  EXPECT_EQ(sts[3],
            (std::pair<std::string, std::string>{"RoleSessionName", "gpu-autoscaler-test"}));
  // The service now says the session expired: the provider drops the cached
  // credentials, assumes the role again and retries once.
  aws_->ExpireCredentials("ASIASTSFAKE");
  auto g = p->Describe("gpu-a");
  ASSERT_TRUE(g.ok()) << g.error().ToString();
  EXPECT_EQ(Count("AssumeRoleWithWebIdentity"), 2);
  EXPECT_EQ(aws_->errors(), std::vector<std::string>{"ExpiredToken"});
}

TEST_F(AwsIntegrationTest, AnUnacceptedWebIdentityTokenIsAnAuthError) {
  AwsCredentialChainOptions c;
  c.env = Env({{"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"}, {"AWS_ROLE_ARN", "arn:aws:iam::1:role/x"}},
              {{"/t", "some-other-token"}});
  c.sts_endpoint = aws_->endpoint();
  c.sts_transport = https_;
  auto creds = NewAwsCredentialChain(std::move(c))->Get();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(ClassifyProviderError(creds.error()), ProviderErrorKind::kAuth);
  EXPECT_NE(creds.error().message().find("AccessDenied"), std::string::npos)
      << creds.error().message();
}

TEST_F(AwsIntegrationTest, InstanceMetadataCredentialsSignRequests) {
  aws_->AddGroup({.name = "gpu-a", .max = 4});
  AwsCredentialChainOptions c;
  c.env = Env({{"HOME", "/home/nobody"}});
  c.imds_transport = http_;
  c.imds.endpoint = aws_->imds_endpoint();
  auto chain = NewAwsCredentialChain(std::move(c));
  auto creds = chain->Get();
  ASSERT_TRUE(creds.ok()) << creds.error().ToString();
  EXPECT_EQ(creds->access_key_id, "ASIAIMDSFAKE");
  EXPECT_EQ(creds->source, "instance metadata (role gpu-node-role)");
  auto p = Provider(chain, Options());
  ASSERT_TRUE(p->Describe("gpu-a").ok());
  EXPECT_EQ(aws_->imds_tokens_issued(), 1);
}

TEST_F(AwsIntegrationTest, NoCredentialsAnywhereNamesEverySourceTried) {
  AwsCredentialChainOptions c;
  c.env = Env({{"HOME", "/home/nobody"}});
  c.imds_transport = http_;
  c.imds.endpoint = "http://127.0.0.1:1";  // nothing listens there
  c.imds.timeout = std::chrono::milliseconds(500);
  auto creds = NewAwsCredentialChain(std::move(c))->Get();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(ClassifyProviderError(creds.error()), ProviderErrorKind::kAuth);
  const std::string& m = creds.error().message();
  EXPECT_NE(m.find("AWS_ACCESS_KEY_ID"), std::string::npos) << m;
  EXPECT_NE(m.find("/home/nobody/.aws/credentials not found"), std::string::npos) << m;
  EXPECT_NE(m.find("AWS_WEB_IDENTITY_TOKEN_FILE"), std::string::npos) << m;
  EXPECT_NE(m.find("instance metadata"), std::string::npos) << m;
}

TEST_F(AwsIntegrationTest, SpotNoticesComeFromInstanceMetadata) {
  AwsInterruptionSource source(http_, {.endpoint = aws_->imds_endpoint()});
  auto n = source.Poll();
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  EXPECT_FALSE(n->has_value());

  aws_->SetRebalanceRecommendation(R"({"noticeTime": "2026-12-05T10:00:00Z"})");
  n = source.Poll();
  ASSERT_TRUE(n.ok() && n->has_value());
  EXPECT_EQ((*n)->kind, InterruptionNotice::Kind::kRebalanceRecommendation);

  aws_->SetSpotInstanceAction(R"({"action": "terminate", "time": "2026-12-05T10:02:00Z"})");
  n = source.Poll();
  ASSERT_TRUE(n.ok() && n->has_value());
  EXPECT_EQ((*n)->kind, InterruptionNotice::Kind::kSpotInterruption);
  EXPECT_EQ((*n)->detail, "terminate");
  EXPECT_EQ((*n)->not_after_unix, 1796464920);  // 2026-12-05T10:02:00Z
  EXPECT_EQ(aws_->imds_tokens_issued(), 1);     // one token for all polls

  // A revoked token (401) is replaced once, transparently.
  aws_->RevokeImdsTokens();
  n = source.Poll();
  ASSERT_TRUE(n.ok() && n->has_value()) << (n.ok() ? "" : n.error().ToString());
  EXPECT_EQ(aws_->imds_tokens_issued(), 2);

  aws_->SetSpotInstanceAction("{\"action\": \"terminate\"");
  n = source.Poll();
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message().find("/latest/meta-data/spot/instance-action"), std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
