// The AWS spot notice source's parsing and IMDSv2 token lifetime, with a
// scripted transport and a FakeClock.
#include "cloud/aws_interruption.h"

#include <gtest/gtest.h>

#include "support/fake_transport.h"

namespace gpu_autoscaler::cloud {
namespace {

using testing::FakeTransport;

TEST(AwsInterruptionTest, ParsesInstanceActions) {
  auto n = ParseSpotInstanceAction(R"({"action": "stop", "time": "2017-09-18T08:22:00Z"})");
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  EXPECT_EQ(n->kind, InterruptionNotice::Kind::kSpotInterruption);
  EXPECT_EQ(n->detail, "stop");
  EXPECT_EQ(n->not_after_unix, 1505722920);
  for (const char* bad :
       {"", "[]", R"({"time": "2017-09-18T08:22:00Z"})",
        R"({"action": "reboot", "time": "2017-09-18T08:22:00Z"})",
        R"({"action": "terminate", "time": "in two minutes"})", R"({"action": "terminate"})"}) {
    auto r = ParseSpotInstanceAction(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(ClassifyProviderError(r.error()), ProviderErrorKind::kUnavailable);
  }
}

TEST(AwsInterruptionTest, ParsesRebalanceRecommendations) {
  auto n = ParseRebalanceRecommendation(R"({"noticeTime": "2020-10-27T08:22:00Z"})");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->kind, InterruptionNotice::Kind::kRebalanceRecommendation);
  EXPECT_EQ(n->not_after_unix, 0);  // a recommendation carries no deadline
  EXPECT_FALSE(ParseRebalanceRecommendation("{}").ok());
}

TEST(AwsInterruptionTest, TokenIsReusedThenRefreshedBeforeItsTtl) {
  FakeClock clock;
  auto imds = std::make_shared<FakeTransport>();
  int tokens = 0;
  imds->SetHandler([&](const kube::HttpRequest& r) -> FakeTransport::Reply {
    if (r.method == "PUT") {
      ++tokens;
      return {.status = 200,
              .body = "T" + std::to_string(tokens),
              .headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "60"}}};
    }
    return {.status = 404};
  });
  AwsInterruptionSource source(imds, {.endpoint = "http://imds.test/",
                                      .token_ttl = std::chrono::seconds(300),
                                      .refresh_before = std::chrono::seconds(15),
                                      .clock = &clock});
  auto n = source.Poll();
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(n->has_value());
  EXPECT_EQ(tokens, 1);
  auto reqs = imds->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].url, "http://imds.test/latest/api/token");
  EXPECT_EQ(reqs[0].headers[0],
            (std::pair<std::string, std::string>{"X-aws-ec2-metadata-token-ttl-seconds", "300"}));
  EXPECT_EQ(reqs[1].url, "http://imds.test/latest/meta-data/spot/instance-action");
  EXPECT_EQ(reqs[2].url, "http://imds.test/latest/meta-data/events/recommendations/rebalance");
  // The server granted 60 s: at 44 s the token is reused, at 45 s renewed.
  clock.Step(std::chrono::seconds(44));
  ASSERT_TRUE(source.Poll().ok());
  EXPECT_EQ(tokens, 1);
  clock.Step(std::chrono::seconds(1));
  ASSERT_TRUE(source.Poll().ok());
  EXPECT_EQ(tokens, 2);
  EXPECT_EQ(imds->last_request().headers[0],
            (std::pair<std::string, std::string>{"X-aws-ec2-metadata-token", "T2"}));
}

TEST(AwsInterruptionTest, UnreachableMetadataIsUnavailableAndForbiddenIsAuth) {
  auto imds = std::make_shared<FakeTransport>();
  imds->Fail(kube::Error::Timeout("PUT http://169.254.169.254/latest/api/token: timed out"));
  AwsInterruptionSource source(imds);
  auto n = source.Poll();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(ClassifyProviderError(n.error()), ProviderErrorKind::kUnavailable);
  imds->Respond(403, "");
  n = source.Poll();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(ClassifyProviderError(n.error()), ProviderErrorKind::kAuth);
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
