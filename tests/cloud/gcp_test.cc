// Unit tests of the gcp-mig parsers and error mapping with hand-written
// bodies shaped as the Compute v1 API documents them.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cloud/gcp_auth.h"
#include "cloud/gcp_interruption.h"
#include "cloud/gcp_mig.h"
#include "common/base64.h"
#include "support/fake_transport.h"

namespace gpu_autoscaler::cloud {
namespace {

TEST(GcpParseTest, OperationErrorsMapToKinds) {
  auto op = ParseGcpOperation(R"({
    "kind": "compute#operation", "name": "operation-1733353200-abc", "status": "DONE",
    "operationType": "compute.instanceGroupManagers.resize", "httpErrorStatusCode": 503,
    "error": {"errors": [{"code": "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                          "message": "The zone does not have enough resources"}]}})");
  ASSERT_TRUE(op.ok()) << op.error().ToString();
  EXPECT_EQ(op->name, "operation-1733353200-abc");
  EXPECT_EQ(op->http_error_status, 503);
  CloudError err = GcpOperationError(*op);
  EXPECT_EQ(err.kind, ProviderErrorKind::kInsufficientCapacity);
  EXPECT_EQ(err.code, "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS");

  auto quota = ParseGcpOperation(
      R"({"name":"op","status":"DONE","error":{"errors":[{"code":"QUOTA_EXCEEDED"}]}})");
  EXPECT_EQ(GcpOperationError(*quota).kind, ProviderErrorKind::kQuotaExceeded);
  // An unknown code falls back to httpErrorStatusCode, then to Unavailable.
  auto unknown = ParseGcpOperation(
      R"({"name":"op","status":"DONE","httpErrorStatusCode":403,
          "error":{"errors":[{"code":"SOMETHING_NEW"}]}})");
  EXPECT_EQ(GcpOperationError(*unknown).kind, ProviderErrorKind::kAuth);
  auto bare = ParseGcpOperation(R"({"name":"op","status":"DONE","error":{"errors":[{}]}})");
  EXPECT_EQ(GcpOperationError(*bare).kind, ProviderErrorKind::kUnavailable);
  auto running = ParseGcpOperation(R"({"name":"op","status":"RUNNING"})");
  EXPECT_EQ(GcpOperationError(*running).kind, ProviderErrorKind::kNone);
  EXPECT_FALSE(ParseGcpOperation(R"({"status":"DONE"})").ok());
  EXPECT_FALSE(ParseGcpOperation("[]").ok());
  EXPECT_FALSE(ParseGcpOperation("{").ok());
}

TEST(GcpParseTest, HttpErrorsByReason) {
  auto classify = [](int status, std::string body) {
    kube::HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    return ClassifyGcpHttpError(r);
  };
  CloudError rate = classify(403, R"({"error":{"code":403,"message":"Quota exceeded for quota
      metric 'Queries'","errors":[{"message":"m","domain":"usageLimits","reason":"rateLimitExceeded"}]}})");
  // (a raw newline makes that body invalid JSON: the status alone decides)
  EXPECT_EQ(rate.kind, ProviderErrorKind::kAuth);
  rate = classify(
      403,
      R"({"error":{"code":403,"message":"Quota exceeded","errors":[{"domain":"usageLimits","reason":"rateLimitExceeded"}]}})");
  EXPECT_EQ(rate.kind, ProviderErrorKind::kThrottled);
  EXPECT_EQ(rate.code, "rateLimitExceeded");
  EXPECT_EQ(rate.message, "Quota exceeded");
  EXPECT_EQ(classify(403, R"({"error":{"code":403,"errors":[{"reason":"forbidden"}]}})").kind,
            ProviderErrorKind::kAuth);
  EXPECT_EQ(classify(429, R"({"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}})").kind,
            ProviderErrorKind::kThrottled);
  EXPECT_EQ(classify(404, R"({"error":{"errors":[{"reason":"notFound"}]}})").kind,
            ProviderErrorKind::kNotFound);
  EXPECT_EQ(classify(403, R"({"error":{"errors":[{"reason":"quotaExceeded"}]}})").kind,
            ProviderErrorKind::kQuotaExceeded);
  EXPECT_EQ(classify(502, "<html>bad gateway</html>").kind, ProviderErrorKind::kUnavailable);
  EXPECT_EQ(classify(401, "").kind, ProviderErrorKind::kAuth);
}

TEST(GcpParseTest, MigAndManagedInstances) {
  auto mig = ParseGcpMig(R"({"name":"gpu-a100","targetSize":3,
      "instanceTemplate":"https://www.googleapis.com/compute/v1/projects/p/global/instanceTemplates/t",
      "currentActions":{"creating":1},"status":{"isStable":false}})");
  ASSERT_TRUE(mig.ok());
  EXPECT_EQ(mig->target_size, 3);
  EXPECT_FALSE(ParseGcpMig(R"({"name":"x","targetSize":-1})").ok());
  EXPECT_FALSE(ParseGcpMig(R"({"name":"x","targetSize":"3"})").ok());

  auto page = ParseGcpManagedInstances(R"({"managedInstances":[
      {"instance":"https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instances/gpu-x1",
       "id":"123","instanceStatus":"RUNNING","currentAction":"NONE"},
      {"instance":"https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instances/gpu-x2",
       "currentAction":"CREATING","lastAttempt":{"errors":{"errors":[
         {"code":"QUOTA_EXCEEDED","message":"Quota 'NVIDIA_A100_GPUS' exceeded."}]}}}],
      "nextPageToken":"tok"})");
  ASSERT_TRUE(page.ok()) << page.error().ToString();
  ASSERT_EQ(page->instances.size(), 2u);
  EXPECT_EQ(page->instances[0].name, "gpu-x1");
  EXPECT_EQ(page->instances[0].zone, "us-central1-a");
  EXPECT_EQ(page->instances[1].current_action, "CREATING");
  ASSERT_EQ(page->instances[1].last_attempt_errors.size(), 1u);
  EXPECT_EQ(page->instances[1].last_attempt_errors[0].kind, ProviderErrorKind::kQuotaExceeded);
  EXPECT_EQ(page->next_page_token, "tok");
  EXPECT_TRUE(ParseGcpManagedInstances("{}")->instances.empty());
  EXPECT_FALSE(ParseGcpManagedInstances(R"({"managedInstances":[{"id":"1"}]})").ok());
  EXPECT_FALSE(ParseGcpManagedInstances(R"({"managedInstances":{}})").ok());
}

class StaticToken final : public AccessTokenSource {
 public:
  Result<std::string> Token() override { return std::string("ya29.unit"); }
};

// LaunchFailure on a scripted listManagedInstances: only an instance left
// CREATING with lastAttempt errors counts; a capacity or quota code is chosen
// over an unknown one; an unknown code alone is Unavailable.
TEST(GcpLaunchFailureTest, ReadsInstancesLeftCreatingWithErrors) {
  auto transport = std::make_shared<testing::FakeTransport>();
  FakeClock clock;
  GcpMigProvider mig({.compute_endpoint = "https://compute.test/compute/v1",
                      .project = "p",
                      .zone = "us-central1-a"},
                     transport, std::make_shared<StaticToken>(), clock);
  const std::string base = "https://compute.test/compute/v1/projects/p/zones/us-central1-a";
  auto list = [&](const std::string& instances) {
    transport->Respond(200, R"({"managedInstances": [)" + instances + "]}");
  };
  auto instance = [&](const std::string& name, const std::string& action,
                      const std::string& codes) {
    std::string errors;
    for (size_t at = 0; at < codes.size();) {
      size_t end = codes.find(',', at);
      if (end == std::string::npos) end = codes.size();
      errors += std::string(errors.empty() ? "" : ",") + R"({"code": ")" +
                codes.substr(at, end - at) + R"(", "message": "m"})";
      at = end + 1;
    }
    return R"({"instance": ")" + base + "/instances/" + name + R"(", "currentAction": ")" + action +
           "\"" +
           (errors.empty() ? "" : R"(, "lastAttempt": {"errors": {"errors": [)" + errors + "]}}") +
           "}";
  };

  list(instance("a", "NONE", "") + "," + instance("b", "CREATING", "") + "," +
       instance("c", "DELETING", "ZONE_RESOURCE_POOL_EXHAUSTED"));
  EXPECT_TRUE(mig.LaunchFailure("gpu").ok());
  ASSERT_EQ(transport->requests().size(), 1u);
  EXPECT_EQ(transport->requests()[0].method, "POST");
  EXPECT_EQ(transport->requests()[0].url.rfind(
                base + "/instanceGroupManagers/gpu/listManagedInstances?maxResults=500", 0),
            0u)
      << transport->requests()[0].url;

  list(instance("a", "NONE", "") + "," +
       instance("d", "CREATING_WITHOUT_RETRIES", "CONDITION_NOT_MET,QUOTA_EXCEEDED"));
  Status quota = mig.LaunchFailure("gpu");
  EXPECT_EQ(ClassifyProviderError(quota), ProviderErrorKind::kQuotaExceeded) << quota.ToString();
  EXPECT_NE(quota.message().find(
                "gcp-mig projects/p/zones/us-central1-a/instanceGroupManagers/gpu: creating d "
                "failed: QUOTA_EXCEEDED: m"),
            std::string::npos)
      << quota.message();

  list(instance("e", "CREATING", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"));
  EXPECT_EQ(ClassifyProviderError(mig.LaunchFailure("gpu")),
            ProviderErrorKind::kInsufficientCapacity);

  list(instance("f", "CREATING", "SOMETHING_NEW"));
  EXPECT_EQ(ClassifyProviderError(mig.LaunchFailure("gpu")), ProviderErrorKind::kUnavailable);
}

TEST(GcpParseTest, TemplateLifecycle) {
  EXPECT_EQ(GcpTemplateLifecycle(R"({"properties":{"scheduling":{"provisioningModel":"SPOT"}}})"),
            Lifecycle::kSpot);
  EXPECT_EQ(GcpTemplateLifecycle(R"({"properties":{"scheduling":{"preemptible":true}}})"),
            Lifecycle::kSpot);
  EXPECT_EQ(
      GcpTemplateLifecycle(R"({"properties":{"scheduling":{"provisioningModel":"STANDARD"}}})"),
      Lifecycle::kOnDemand);
  EXPECT_EQ(GcpTemplateLifecycle(R"({"properties":{}})"), Lifecycle::kOnDemand);
  EXPECT_EQ(GcpTemplateLifecycle(R"({})"), Lifecycle::kUnknown);
  EXPECT_EQ(GcpTemplateLifecycle("nope"), Lifecycle::kUnknown);
}

TEST(GcpNamesTest, GroupNamesAndProviderIds) {
  GcpMigOptions o;
  o.project = "ml-prod";
  o.zone = "us-central1-a";
  auto short_name = ParseGcpMigName("gpu-a100", o);
  ASSERT_TRUE(short_name.ok());
  EXPECT_EQ(short_name->Path(),
            "projects/ml-prod/zones/us-central1-a/instanceGroupManagers/gpu-a100");
  auto full = ParseGcpMigName("projects/other/zones/europe-west4-b/instanceGroupManagers/g", o);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->project, "other");
  EXPECT_EQ(full->zone, "europe-west4-b");
  EXPECT_FALSE(ParseGcpMigName("projects/p/regions/r/instanceGroupManagers/g", o).ok());
  EXPECT_FALSE(ParseGcpMigName("gpu/../x", o).ok());
  EXPECT_FALSE(ParseGcpMigName("g", GcpMigOptions{}).ok());  // no project or zone

  GcpMigProvider mig(o, nullptr, nullptr, RealClock::Instance());
  EXPECT_EQ(mig.Name(), "gcp-mig");
  EXPECT_EQ(GcpProviderId("ml-prod", "us-central1-a", "gpu-x1"),
            "gce://ml-prod/us-central1-a/gpu-x1");
  EXPECT_EQ(*mig.InstanceIdFromProviderId("gce://ml-prod/us-central1-a/gpu-x1"), "gpu-x1");
  for (const char* bad : {"aws:///us-east-1a/i-0abc", "gce://ml-prod/gpu-x1", "gce:///z/n",
                          "gce://p/z/", "gce://p/z/n/extra"}) {
    auto r = mig.InstanceIdFromProviderId(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(ClassifyProviderError(r.error()), ProviderErrorKind::kInvalid);
    }
  }
}

std::string NewRsaKeyPem() {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

TEST(GcpAuthTest, ServiceAccountKeyFile) {
  std::string pem = NewRsaKeyPem();
  nlohmann::json key = {{"type", "service_account"},
                        {"project_id", "p"},
                        {"private_key_id", "kid1"},
                        {"private_key", pem},
                        {"client_email", "sa@p.iam.gserviceaccount.com"}};
  auto parsed = ParseGcpServiceAccountKey(key.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->token_uri, "https://oauth2.googleapis.com/token");  // the default
  key["type"] = "authorized_user";
  EXPECT_FALSE(ParseGcpServiceAccountKey(key.dump()).ok());
  key["type"] = "service_account";
  key["private_key"] = "not a key";
  auto bad = ParseGcpServiceAccountKey(key.dump());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message().find("not a key"), std::string::npos);
  EXPECT_FALSE(ParseGcpServiceAccountKey("{").ok());

  // The assertion: header and claims as documented, iat/exp from the clock.
  auto jwt = MakeGcpJwtAssertion(*parsed, kGcpComputeScope,
                                 Clock::WallTime(std::chrono::seconds(1'800'000'000)));
  ASSERT_TRUE(jwt.ok()) << jwt.error().ToString();
  size_t dot1 = jwt->find('.');
  size_t dot2 = jwt->find('.', dot1 + 1);
  ASSERT_NE(dot2, std::string::npos);
  auto header = nlohmann::json::parse(*Base64UrlDecode(jwt->substr(0, dot1)));
  auto claims = nlohmann::json::parse(*Base64UrlDecode(jwt->substr(dot1 + 1, dot2 - dot1 - 1)));
  EXPECT_EQ(header, nlohmann::json::parse(R"({"alg":"RS256","typ":"JWT","kid":"kid1"})"));
  EXPECT_EQ(claims["iss"], "sa@p.iam.gserviceaccount.com");
  EXPECT_EQ(claims["aud"], "https://oauth2.googleapis.com/token");
  EXPECT_EQ(claims["scope"], "https://www.googleapis.com/auth/compute");
  EXPECT_EQ(claims["iat"], 1'800'000'000);
  EXPECT_EQ(claims["exp"], 1'800'003'600);
  EXPECT_EQ(Base64UrlDecode(jwt->substr(dot2 + 1))->size(), 256u);  // RSA-2048 signature

  EXPECT_FALSE(SignJwtRs256("{}", "{}", "-----BEGIN PRIVATE KEY-----\nAAAA\n").ok());
}

TEST(GcpPreemptedTest, Values) {
  EXPECT_EQ(ParseGcpPreempted("TRUE"), std::optional<bool>(true));
  EXPECT_EQ(ParseGcpPreempted("FALSE\n"), std::optional<bool>(false));
  EXPECT_FALSE(ParseGcpPreempted("true").has_value());
  EXPECT_FALSE(ParseGcpPreempted("").has_value());
}

}  // namespace
}  // namespace gpu_autoscaler::cloud
