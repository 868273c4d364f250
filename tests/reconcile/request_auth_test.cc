#include "reconcile/request_auth.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "support/fake_transport.h"

namespace gpu_autoscaler::reconcile {
namespace {

using nlohmann::json;
using testing::FakeTransport;

// A fake API server: "good" is alice (group prometheus, allowed on /metrics),
// "nobody" is bob (authenticated, allowed nothing); every other token is
// unauthenticated. Counts the reviews it answers.
struct ReviewServer {
  int token_reviews = 0;
  int access_reviews = 0;
  json last_access_review;
  FakeTransport::Reply Answer(const kube::HttpRequest& r) {
    json body = json::parse(r.body);
    if (r.url.ends_with("/apis/authentication.k8s.io/v1/tokenreviews")) {
      ++token_reviews;
      const std::string token = body["spec"]["token"];
      json status = {{"authenticated", false}};
      if (token == "good") {
        status = {{"authenticated", true},
                  {"user",
                   {{"username", "system:serviceaccount:monitoring:prometheus"},
                    {"uid", "u-1"},
                    {"groups", {"system:serviceaccounts", "prometheus"}},
                    {"extra", {{"scopes", {"a"}}}}}}};
      } else if (token == "nobody") {
        status = {{"authenticated", true}, {"user", {{"username", "bob"}}}};
      }
      return {201, json{{"kind", "TokenReview"}, {"status", status}}.dump()};
    }
    if (r.url.ends_with("/apis/authorization.k8s.io/v1/subjectaccessreviews")) {
      ++access_reviews;
      last_access_review = body;
      const bool allowed = body["spec"]["user"] == "system:serviceaccount:monitoring:prometheus" &&
                           body["spec"]["nonResourceAttributes"]["path"] == "/metrics" &&
                           body["spec"]["nonResourceAttributes"]["verb"] == "get";
      json status = {{"allowed", allowed}};
      if (!allowed) status["reason"] = "no RBAC policy matched";
      return {201, json{{"kind", "SubjectAccessReview"}, {"status", status}}.dump()};
    }
    return {404, "{}"};
  }
};

class RequestAuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto transport = std::make_unique<FakeTransport>();
    fake_ = transport.get();
    fake_->SetHandler([this](const kube::HttpRequest& r) { return server_.Answer(r); });
    kube::ClientConfig cfg;
    cfg.server = "https://api.test";
    client_ = kube::RestClient::WithTransport(cfg, std::move(transport),
                                              {.clock = &clock_, .max_retries = 0});
    auth_ =
        std::make_unique<RequestAuthorizer>(*client_, RequestAuthorizerOptions{.clock = &clock_});
  }

  FakeClock clock_;
  ReviewServer server_;
  FakeTransport* fake_ = nullptr;
  std::unique_ptr<kube::RestClient> client_;
  std::unique_ptr<RequestAuthorizer> auth_;
};

TEST_F(RequestAuthorizerTest, AllowsAnAuthorisedServiceAccountAndPassesItsIdentityOn) {
  AuthDecision d = auth_->Check("Bearer good", "GET", "/metrics");
  EXPECT_EQ(d.http_status, 200) << d.reason;
  EXPECT_EQ(d.user, "system:serviceaccount:monitoring:prometheus");
  const json& spec = server_.last_access_review["spec"];
  EXPECT_EQ(server_.last_access_review["apiVersion"], "authorization.k8s.io/v1");
  EXPECT_EQ(spec["uid"], "u-1");
  EXPECT_EQ(spec["groups"], json({"system:serviceaccounts", "prometheus"}));
  EXPECT_EQ(spec["extra"], json({{"scopes", {"a"}}}));
  EXPECT_FALSE(spec.contains("resourceAttributes"));
}

TEST_F(RequestAuthorizerTest, RefusesMissingMalformedUnknownAndUnauthorisedCallers) {
  EXPECT_EQ(auth_->Check("", "GET", "/metrics").http_status, 401);
  EXPECT_EQ(auth_->Check("Basic dXNlcjpwYXNz", "GET", "/metrics").http_status, 401);
  EXPECT_EQ(auth_->Check("Bearer ", "GET", "/metrics").http_status, 401);
  EXPECT_EQ(auth_->Check("Bearer a b", "GET", "/metrics").http_status, 401);
  EXPECT_EQ(server_.token_reviews, 0);  // none of those reached the API server
  EXPECT_EQ(auth_->Check("Bearer stolen", "GET", "/metrics").http_status, 401);
  AuthDecision bob = auth_->Check("Bearer nobody", "GET", "/metrics");
  EXPECT_EQ(bob.http_status, 403);
  EXPECT_EQ(bob.reason,
            "Forbidden: user \"bob\" cannot get path \"/metrics\": no RBAC policy matched");
  // The verb follows the method: alice may get, not create.
  EXPECT_EQ(auth_->Check("Bearer good", "POST", "/metrics").http_status, 403);
  EXPECT_EQ(server_.last_access_review["spec"]["nonResourceAttributes"]["verb"], "create");
}

TEST_F(RequestAuthorizerTest, CachesWithKubernetesDelegatedAuthTtls) {
  ASSERT_EQ(auth_->Check("Bearer good", "GET", "/metrics").http_status, 200);
  ASSERT_EQ(auth_->Check("Bearer nobody", "GET", "/metrics").http_status, 403);
  ASSERT_EQ(auth_->Check("Bearer stolen", "GET", "/metrics").http_status, 401);
  EXPECT_EQ(server_.token_reviews, 3);
  EXPECT_EQ(server_.access_reviews, 2);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(auth_->Check("Bearer good", "GET", "/metrics").http_status, 200);
    EXPECT_EQ(auth_->Check("Bearer nobody", "GET", "/metrics").http_status, 403);
    EXPECT_EQ(auth_->Check("Bearer stolen", "GET", "/metrics").http_status, 401);
  }
  EXPECT_EQ(server_.token_reviews, 3);
  EXPECT_EQ(server_.access_reviews, 2);
  // Past the 30 s deny TTL only the denial is asked again.
  clock_.Step(std::chrono::seconds(31));
  EXPECT_EQ(auth_->Check("Bearer nobody", "GET", "/metrics").http_status, 403);
  EXPECT_EQ(auth_->Check("Bearer good", "GET", "/metrics").http_status, 200);
  EXPECT_EQ(server_.access_reviews, 3);
  EXPECT_EQ(server_.token_reviews, 3);
  // Past the 2 min authentication TTL the tokens are reviewed again; the
  // 5 min allow still holds.
  clock_.Step(std::chrono::seconds(100));
  EXPECT_EQ(auth_->Check("Bearer good", "GET", "/metrics").http_status, 200);
  EXPECT_EQ(server_.token_reviews, 4);
  EXPECT_EQ(server_.access_reviews, 3);
}

TEST_F(RequestAuthorizerTest, ReviewFailuresRefuseAndAreNotCached) {
  fake_->Fail(kube::Error::Transport("connection refused"));
  EXPECT_EQ(auth_->Check("Bearer good", "GET", "/metrics").http_status, 401);
  fake_->Respond(201, "not json");  // a garbled TokenReview refuses too
  EXPECT_EQ(auth_->Check("Bearer good", "GET", "/metrics").http_status, 401);
  fake_->Respond(201, R"({"status": {"authenticated": "yes", "user": "alice"}})");
  EXPECT_EQ(auth_->Check("Bearer good", "GET", "/metrics").http_status, 401);
  // Authenticated, then the SubjectAccessReview fails: 500, and next time both are asked
  // again only for what was not cached.
  const int reviews_before = server_.token_reviews;
  ASSERT_EQ(auth_->Check("Bearer good", "GET", "/healthz").http_status, 403);
  EXPECT_EQ(server_.token_reviews, reviews_before + 1);
  fake_->Enqueue({.error = kube::Error::Transport("connection reset")});
  EXPECT_EQ(auth_->Check("Bearer good", "GET", "/metrics").http_status, 500);
  EXPECT_EQ(auth_->Check("Bearer good", "GET", "/metrics").http_status, 200);
  EXPECT_EQ(server_.token_reviews, reviews_before + 1);
}

TEST(VerbForMethodTest, FollowsTheApiServersRequestInfo) {
  EXPECT_EQ(VerbForMethod("GET"), "get");
  EXPECT_EQ(VerbForMethod("HEAD"), "get");
  EXPECT_EQ(VerbForMethod("POST"), "create");
  EXPECT_EQ(VerbForMethod("PUT"), "update");
  EXPECT_EQ(VerbForMethod("PATCH"), "patch");
  EXPECT_EQ(VerbForMethod("DELETE"), "delete");
  EXPECT_EQ(VerbForMethod("TRACE"), "");
}

// The two steps alone, as the custom-metrics API uses them: a resource request's
// attributes reach the SubjectAccessReview, and the decision is cached by them.
TEST_F(RequestAuthorizerTest, AuthorizesResourceAttributesAndCachesTheDecision) {
  const RequestUser bob{.name = "bob", .groups = {"g"}};
  const AccessAttributes read{.verb = "get",
                              .group = "custom.metrics.k8s.io",
                              .version = "v1beta2",
                              .resource = "pods",
                              .subresource = "gpu_utilization",
                              .name = "web-0",
                              .ns = "ns1"};
  const AuthDecision d = auth_->Authorize(bob, read);
  EXPECT_EQ(d.http_status, 403);
  EXPECT_EQ(d.reason,
            "User \"bob\" cannot get resource \"pods/gpu_utilization\" in API group "
            "\"custom.metrics.k8s.io\" in the namespace \"ns1\": no RBAC policy matched");
  EXPECT_EQ(server_.last_access_review["spec"]["resourceAttributes"],
            json({{"verb", "get"},
                  {"group", "custom.metrics.k8s.io"},
                  {"version", "v1beta2"},
                  {"resource", "pods"},
                  {"subresource", "gpu_utilization"},
                  {"name", "web-0"},
                  {"namespace", "ns1"}}));
  EXPECT_EQ(server_.last_access_review["spec"]["groups"], json({"g"}));
  EXPECT_EQ(auth_->Authorize(bob, read).http_status, 403);
  EXPECT_EQ(server_.access_reviews, 1);
  // Another pod is another question.
  AccessAttributes other = read;
  other.name = "web-1";
  EXPECT_EQ(auth_->Authorize(bob, other).http_status, 403);
  EXPECT_EQ(server_.access_reviews, 2);
  // The denial expires after 30 s.
  clock_.Step(std::chrono::seconds(31));
  EXPECT_EQ(auth_->Authorize(bob, read).http_status, 403);
  EXPECT_EQ(server_.access_reviews, 3);
}

}  // namespace
}  // namespace gpu_autoscaler::reconcile
