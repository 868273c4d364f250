// Unit tests of the shared cloud HTTP plumbing with hand-computed values and
// a scripted transport.
#include "cloud/cloud_http.h"
#include "common/base64.h"

#include <gtest/gtest.h>

#include "support/fake_transport.h"

namespace gpu_autoscaler::cloud {
namespace {

using namespace std::chrono_literals;
using testing::FakeTransport;

TEST(CloudHttpEncodingTest, Base64UrlAndForms) {
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");  // standard base64: "+/8="
  EXPECT_EQ(Base64UrlDecode("-_8"), std::optional<std::string>("\xfb\xff"));
  EXPECT_EQ(Base64UrlEncode(R"({"alg":"RS256","kid":"0123abcd","typ":"JWT"})"),
            "eyJhbGciOiJSUzI1NiIsImtpZCI6IjAxMjNhYmNkIiwidHlwIjoiSldUIn0");
  EXPECT_FALSE(Base64UrlDecode("+/8=").has_value());
  EXPECT_FALSE(Base64UrlDecode("a").has_value());
  EXPECT_EQ(FormEncode({{"grant_type", "client_credentials"}, {"scope", "a b/.default&x"}}),
            "grant_type=client_credentials&scope=a%20b%2F.default%26x");
}

TEST(CloudHttpRetryAfterTest, SecondsAndDates) {
  Clock::WallTime now(std::chrono::seconds(1474309780));
  EXPECT_EQ(ParseRetryAfter("120", now), std::optional<Clock::Duration>(120s));
  EXPECT_EQ(ParseRetryAfter("0", now), std::optional<Clock::Duration>(0s));
  EXPECT_FALSE(ParseRetryAfter("-1", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("soon", now).has_value());
  // 1474309787 = Mon, 19 Sep 2016 18:29:47 GMT.
  EXPECT_EQ(ParseRetryAfter("Mon, 19 Sep 2016 18:29:47 GMT", now),
            std::optional<Clock::Duration>(7s));
  EXPECT_EQ(ParseRetryAfter("Mon, 19 Sep 2016 18:29:00 GMT", now),
            std::optional<Clock::Duration>(0s));
  auto date = ParseHttpDate("Mon, 19 Sep 2016 18:29:47 GMT");
  ASSERT_TRUE(date.has_value());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(date->time_since_epoch()).count(),
            1474309787);
  EXPECT_FALSE(ParseHttpDate("Mon, 19 Foo 2016 18:29:47 GMT").has_value());
  EXPECT_FALSE(ParseHttpDate("Mon, 19 Sep 2016 25:29:47 GMT").has_value());
  EXPECT_FALSE(ParseHttpDate("2016-09-19T18:29:47Z").has_value());
  // Found by fuzzing: a far-future date overflowed the nanosecond clock.
  EXPECT_FALSE(ParseHttpDate("Mon, 19 Sep 4032 18:29:47 GMT").has_value());
  EXPECT_FALSE(ParseRetryAfter("Mon, 19 Sep 4032 18:29:47 GMT", now).has_value());
}

TEST(CloudHttpTest, KindsForStatuses) {
  EXPECT_EQ(KindForHttpStatus(401), ProviderErrorKind::kAuth);
  EXPECT_EQ(KindForHttpStatus(403), ProviderErrorKind::kAuth);
  EXPECT_EQ(KindForHttpStatus(404), ProviderErrorKind::kNotFound);
  EXPECT_EQ(KindForHttpStatus(400), ProviderErrorKind::kInvalid);
  EXPECT_EQ(KindForHttpStatus(429), ProviderErrorKind::kThrottled);
  EXPECT_EQ(KindForHttpStatus(503), ProviderErrorKind::kUnavailable);
  EXPECT_EQ(KindForHttpStatus(409), ProviderErrorKind::kUnavailable);
}

class CloudHttpDoTest : public ::testing::Test {
 protected:
  CloudHttp Make(HttpErrorClassifier classify = [](const kube::HttpResponse&) {
    return CloudError{};
  }) {
    return CloudHttp(
        transport_, clock_,
        [this](Clock::Duration d) {
          sleeps_.push_back(d);
          clock_.Step(d);
        },
        RetryPolicy{}, std::move(classify));
  }
  std::shared_ptr<FakeTransport> transport_ = std::make_shared<FakeTransport>();
  FakeClock clock_;
  std::vector<Clock::Duration> sleeps_;
};

TEST_F(CloudHttpDoTest, ThrottledAndServerErrorsAreRetriedWithBackoff) {
  transport_->Respond(429, "");
  transport_->Respond(503, "");
  transport_->Respond(200, "ok");
  CloudHttp http = Make();
  auto resp = http.Do({.method = "GET", .url = "https://x/y"}, "get y");
  ASSERT_TRUE(resp.ok()) << resp.error().ToString();
  EXPECT_EQ(resp->body, "ok");
  EXPECT_EQ(sleeps_, (std::vector<Clock::Duration>{1s, 2s}));
  EXPECT_EQ(transport_->last_request().timeout, 30s);
}

TEST_F(CloudHttpDoTest, RetryAfterWinsAndTooLongIsSurfaced) {
  transport_->Respond(429, "", {{"Retry-After", "4"}});
  transport_->Respond(200, "ok");
  CloudHttp http = Make();
  ASSERT_TRUE(http.Do({.method = "GET", .url = "https://x/y"}, "get y").ok());
  EXPECT_EQ(sleeps_, (std::vector<Clock::Duration>{4s}));
  transport_->Respond(429, "", {{"Retry-After", "31"}});
  auto resp = http.Do({.method = "GET", .url = "https://x/y"}, "get y");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(ClassifyProviderError(resp.error()), ProviderErrorKind::kThrottled);
  EXPECT_EQ(sleeps_.size(), 1u);
}

TEST_F(CloudHttpDoTest, GivesUpAfterMaxAttemptsAndNeverRetriesTransportErrors) {
  for (int i = 0; i < 4; ++i)
    transport_->Respond(500, "");
  CloudHttp http = Make();
  auto resp = http.Do({.method = "POST", .url = "https://x/y"}, "post y");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(ClassifyProviderError(resp.error()), ProviderErrorKind::kUnavailable);
  EXPECT_NE(resp.error().message().find("after 4 attempts"), std::string::npos);
  EXPECT_EQ(transport_->request_count(), 4u);

  transport_->Fail(kube::Error::Timeout("POST https://x/y: timed out"));
  auto timeout = http.Do({.method = "POST", .url = "https://x/y"}, "post y");
  ASSERT_FALSE(timeout.ok());
  EXPECT_EQ(ClassifyProviderError(timeout.error()), ProviderErrorKind::kUnavailable);
  EXPECT_EQ(transport_->request_count(), 5u);
}

TEST_F(CloudHttpDoTest, ClassifierDecidesTheKind) {
  transport_->Respond(403, "quota");
  CloudHttp http = Make([](const kube::HttpResponse&) {
    return CloudError{ProviderErrorKind::kQuotaExceeded, "QUOTA_EXCEEDED", "too many GPUs"};
  });
  auto resp = http.Do({.method = "GET", .url = "https://x/y"}, "get y");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(ClassifyProviderError(resp.error()), ProviderErrorKind::kQuotaExceeded);
  EXPECT_NE(resp.error().message().find("get y: HTTP 403 QUOTA_EXCEEDED: too many GPUs"),
            std::string::npos);
}

TEST_F(CloudHttpDoTest, PollingStopsAtTheLimit) {
  CloudHttp http = Make();
  int calls = 0;
  Status s = http.PollUntilDone(
      [&]() -> Result<std::optional<Clock::Duration>> {
        ++calls;
        return std::optional<Clock::Duration>(Clock::Duration(0));
      },
      10s, 25s, "op");
  EXPECT_EQ(ClassifyProviderError(s), ProviderErrorKind::kUnavailable);
  EXPECT_EQ(calls, 4);  // at 0, 10, 20, 25 s
  EXPECT_EQ(sleeps_, (std::vector<Clock::Duration>{10s, 10s, 5s}));
}

TEST(TokenTest, ParsesNumbersAndStrings) {
  auto grant = ParseTokenResponse(R"({"access_token":"abc","expires_in":"86399"})");
  ASSERT_TRUE(grant.ok());
  EXPECT_EQ(grant->access_token, "abc");
  EXPECT_EQ(grant->expires_in, 86399s);
  EXPECT_EQ(ParseTokenResponse(R"({"access_token":"abc"})")->expires_in, 3600s);
  EXPECT_FALSE(ParseTokenResponse(R"({"expires_in":3599})").ok());
  EXPECT_FALSE(ParseTokenResponse(R"({"access_token":"a","expires_in":"soon"})").ok());
  EXPECT_FALSE(ParseTokenResponse(R"({"access_token":"a","expires_in":-5})").ok());
  EXPECT_FALSE(ParseTokenResponse("<html>").ok());
}

TEST(TokenTest, CacheRefreshesAtTheMargin) {
  FakeClock clock;
  CachedAccessToken cache(clock);
  int fetches = 0;
  auto fetch = [&]() -> Result<TokenGrant> {
    ++fetches;
    return TokenGrant{"t" + std::to_string(fetches), 600s};
  };
  EXPECT_EQ(*cache.Get(fetch), "t1");
  clock.Step(299s);  // margin: min(5 min, 600 s / 2) = 300 s
  EXPECT_EQ(*cache.Get(fetch), "t1");
  clock.Step(1s);
  EXPECT_EQ(*cache.Get(fetch), "t2");
  auto failing = [&]() -> Result<TokenGrant> {
    return ProviderError(ProviderErrorKind::kAuth, "nope");
  };
  clock.Step(600s);
  EXPECT_FALSE(cache.Get(failing).ok());
}

TEST(TokenTest, FetchTokenKeepsOnlyTheOAuthErrorCode) {
  FakeTransport transport;
  transport.Respond(400,
                    R"({"error":"invalid_grant","error_description":"assertion=eyJsecret..."})");
  auto grant = FetchToken(transport, {.method = "POST", .url = "https://t/token"}, "token");
  ASSERT_FALSE(grant.ok());
  EXPECT_EQ(ClassifyProviderError(grant.error()), ProviderErrorKind::kAuth);
  EXPECT_NE(grant.error().message().find("invalid_grant"), std::string::npos);
  EXPECT_EQ(grant.error().message().find("eyJsecret"), std::string::npos);
  transport.Respond(503, "busy");
  EXPECT_EQ(ClassifyProviderError(
                FetchToken(transport, {.method = "POST", .url = "https://t/token"}, "t").error()),
            ProviderErrorKind::kUnavailable);
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
