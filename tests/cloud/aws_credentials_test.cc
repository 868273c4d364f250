// The AWS credential chain with an injected environment, a scripted STS and
// IMDS transport, and a FakeClock for expiry and refresh.
#include "cloud/aws_credentials.h"

#include <gtest/gtest.h>

#include <map>

#include "kube/meta_time.h"
#include "support/fake_transport.h"

namespace gpu_autoscaler::cloud {
namespace {

using testing::FakeTransport;

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

std::string StsAnswer(const std::string& key, const std::string& expiration) {
  return "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
         "<AssumeRoleWithWebIdentityResult><Credentials>"
         "<SessionToken>tok-" +
         key + "</SessionToken><SecretAccessKey>sec-" + key + "</SecretAccessKey><Expiration>" +
         expiration + "</Expiration><AccessKeyId>" + key +
         "</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult>"
         "</AssumeRoleWithWebIdentityResponse>";
}

TEST(AwsCredentialsTest, EnvironmentComesFirst) {
  AwsCredentialChainOptions o;
  o.env = Env({{"AWS_ACCESS_KEY_ID", "AKIDENV"},
               {"AWS_SECRET_ACCESS_KEY", "env-secret"},
               {"AWS_SESSION_TOKEN", "env-token"},
               {"AWS_SHARED_CREDENTIALS_FILE", "/creds"}},
              {{"/creds", "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = x\n"}});
  auto c = NewAwsCredentialChain(std::move(o))->Get();
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->access_key_id, "AKIDENV");
  EXPECT_EQ(c->session_token, "env-token");
  EXPECT_EQ(c->source, "environment");
  EXPECT_FALSE(c->expiration.has_value());
}

TEST(AwsCredentialsTest, HalfAnEnvironmentPairIsAnError) {
  AwsCredentialChainOptions o;
  o.env = Env({{"AWS_ACCESS_KEY_ID", "AKIDENV"}});
  auto c = NewAwsCredentialChain(std::move(o))->Get();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(ClassifyProviderError(c.error()), ProviderErrorKind::kAuth);
  EXPECT_NE(c.error().message().find("AWS_SECRET_ACCESS_KEY unset"), std::string::npos);
}

TEST(AwsCredentialsTest, SharedFileWithProfileFromHome) {
  AwsCredentialChainOptions o;
  o.env = Env({{"HOME", "/home/u"}, {"AWS_PROFILE", "gpu"}},
              {{"/home/u/.aws/credentials",
                "# comment\n[default]\naws_access_key_id=AKIDDEF\naws_secret_access_key=d\n\n"
                "[gpu]\r\naws_access_key_id = AKIDGPU \r\naws_secret_access_key = g/s+k\r\n"
                "aws_session_token = gt\r\n"}});
  auto c = NewAwsCredentialChain(std::move(o))->Get();
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->access_key_id, "AKIDGPU");
  EXPECT_EQ(c->secret_access_key, "g/s+k");
  EXPECT_EQ(c->session_token, "gt");
  EXPECT_EQ(c->source, "shared credentials file /home/u/.aws/credentials [gpu]");
}

TEST(AwsCredentialsTest, SharedFileParsing) {
  auto none =
      ParseSharedCredentialsFile("[a]\naws_access_key_id=x\naws_secret_access_key=y\n", "b");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto partial = ParseSharedCredentialsFile("[b]\naws_access_key_id=x\n", "b");
  ASSERT_FALSE(partial.ok());
  EXPECT_NE(partial.error().message().find("lacks"), std::string::npos);
  EXPECT_FALSE(ParseSharedCredentialsFile("[b\n", "b").ok());
}

TEST(AwsCredentialsTest, WebIdentityIsCachedAndRefreshedBeforeExpiry) {
  FakeClock clock;  // wall time 2027-01-15T08:00:00Z
  auto sts = std::make_shared<FakeTransport>();
  std::string now = kube::FormatTime(clock.WallNow());
  std::string in_an_hour = kube::FormatTime(clock.WallNow() + std::chrono::hours(1));
  sts->Respond(200, StsAnswer("ASIA1", in_an_hour));
  AwsCredentialChainOptions o;
  o.env =
      Env({{"AWS_WEB_IDENTITY_TOKEN_FILE", "/token"}, {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}},
          {{"/token", "jwt-1\n"}});
  o.region = "eu-west-1";
  o.sts_transport = sts;
  o.clock = &clock;
  auto chain = NewAwsCredentialChain(std::move(o));
  auto c = chain->Get();
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->access_key_id, "ASIA1");
  EXPECT_EQ(c->session_token, "tok-ASIA1");
  ASSERT_TRUE(c->expiration.has_value());
  auto req = sts->last_request();
  EXPECT_EQ(req.url, "https://sts.eu-west-1.amazonaws.com/");
  EXPECT_NE(req.body.find("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn="
                          "arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=gpu-autoscaler-"),
            std::string::npos)
      << req.body;
  EXPECT_NE(req.body.find("&WebIdentityToken=jwt-1"), std::string::npos) << req.body;
  bool signed_request = false;
  for (const auto& [n, v] : req.headers)
    signed_request |= n == "Authorization";
  EXPECT_FALSE(signed_request);  // AssumeRoleWithWebIdentity is unsigned

  // 54 minutes later: still more than 5 minutes left, the cache answers.
  clock.Step(std::chrono::minutes(54));
  ASSERT_TRUE(chain->Get().ok());
  EXPECT_EQ(sts->request_count(), 1u);
  // 56 minutes: within the refresh margin, STS is asked again.
  clock.Step(std::chrono::minutes(2));
  sts->Respond(200, StsAnswer("ASIA2", kube::FormatTime(clock.WallNow() + std::chrono::hours(1))));
  c = chain->Get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "ASIA2");
  EXPECT_EQ(sts->request_count(), 2u);

  // 57 minutes into the new ones STS refuses; the still-valid cached ones serve.
  clock.Step(std::chrono::minutes(57));
  sts->Respond(400,
               "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>no</Message>"
               "</Error></ErrorResponse>");
  c = chain->Get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "ASIA2");
  // Once they have expired the error surfaces.
  clock.Step(std::chrono::minutes(4));
  sts->Respond(400,
               "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>no</Message>"
               "</Error></ErrorResponse>");
  c = chain->Get();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(ClassifyProviderError(c.error()), ProviderErrorKind::kAuth);
  (void)now;
}

TEST(AwsCredentialsTest, UnreadableTokenFileIsAnErrorNotAFallThrough) {
  AwsCredentialChainOptions o;
  o.env = Env({{"AWS_WEB_IDENTITY_TOKEN_FILE", "/missing"}, {"AWS_ROLE_ARN", "arn:r"}});
  o.sts_transport = std::make_shared<FakeTransport>();
  auto c = NewAwsCredentialChain(std::move(o))->Get();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(ClassifyProviderError(c.error()), ProviderErrorKind::kAuth);
  EXPECT_NE(c.error().message().find("web identity token file /missing"), std::string::npos);
}

TEST(AwsCredentialsTest, ImdsV2TokenThenRoleThenCredentials) {
  FakeClock clock;
  auto imds = std::make_shared<FakeTransport>();
  imds->SetHandler([&](const kube::HttpRequest& r) -> FakeTransport::Reply {
    if (r.method == "PUT" && r.url == "http://169.254.169.254/latest/api/token") {
      for (const auto& [n, v] : r.headers)
        if (n == "X-aws-ec2-metadata-token-ttl-seconds" && v == "21600")
          return {.status = 200, .body = "T1"};
      return {.status = 400};
    }
    std::string token;
    for (const auto& [n, v] : r.headers)
      if (n == "X-aws-ec2-metadata-token") token = v;
    if (token != "T1") return {.status = 401};
    if (r.url == "http://169.254.169.254/latest/meta-data/iam/security-credentials/")
      return {.status = 200, .body = "node-role"};
    if (r.url == "http://169.254.169.254/latest/meta-data/iam/security-credentials/node-role")
      return {.status = 200,
              .body = R"({"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAI",)"
                      R"("SecretAccessKey":"s","Token":"t","Expiration":"2027-01-15T14:00:00Z"})"};
    return {.status = 404};
  });
  AwsCredentialChainOptions o;
  o.env = Env({});
  o.imds_transport = imds;
  o.clock = &clock;
  auto c = NewAwsCredentialChain(std::move(o))->Get();
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->access_key_id, "ASIAI");
  EXPECT_EQ(c->source, "instance metadata (role node-role)");
  EXPECT_EQ(imds->request_count(), 3u);
}

TEST(AwsCredentialsTest, ImdsDocumentParsing) {
  EXPECT_FALSE(ParseImdsCredentials("not json").ok());
  auto failed = ParseImdsCredentials(R"({"Code":"AssumeRoleUnauthorizedAccess"})");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(ClassifyProviderError(failed.error()), ProviderErrorKind::kAuth);
  EXPECT_FALSE(ParseImdsCredentials(R"({"Code":"Success","AccessKeyId":"A"})").ok());
  EXPECT_FALSE(
      ParseImdsCredentials(R"({"AccessKeyId":"A","SecretAccessKey":"B","Expiration":"tomorrow"})")
          .ok());
}

TEST(AwsCredentialsTest, StsResponseParsing) {
  auto c = ParseAssumeRoleWithWebIdentityResponse(StsAnswer("ASIAX", "2027-01-15T09:00:00Z"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->secret_access_key, "sec-ASIAX");
  EXPECT_FALSE(ParseAssumeRoleWithWebIdentityResponse("<A/>").ok());
  EXPECT_FALSE(ParseAssumeRoleWithWebIdentityResponse(StsAnswer("ASIAX", "soon")).ok());
}

TEST(AwsCredentialsTest, NothingConfiguredNamesEverySource) {
  AwsCredentialChainOptions o;
  o.env = Env({});
  auto c = NewAwsCredentialChain(std::move(o))->Get();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(ClassifyProviderError(c.error()), ProviderErrorKind::kAuth);
  EXPECT_EQ(c.error().message(),
            "[cloud:Auth] no AWS credentials found (tried environment: AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY unset; shared credentials file: neither "
            "AWS_SHARED_CREDENTIALS_FILE nor HOME set; web identity: "
            "AWS_WEB_IDENTITY_TOKEN_FILE or AWS_ROLE_ARN unset; instance metadata: not "
            "configured)");
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
