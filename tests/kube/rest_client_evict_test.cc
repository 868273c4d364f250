// RestClient::Evict: the Eviction it POSTs, the policy version it discovers
// once per client (as kubectl drain does), and which of its errors it retries.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube/rest_client.h"
#include "rest_client_fixture.h"

namespace gpu_autoscaler::kube {
namespace {

using namespace rest_client_test;

// /api/v1 as kube-apiserver v1.20.2 serves it: pods/eviction names policy/v1beta1.
std::string CoreDiscoveryV120() {
  return GoldenBody("02-discovery-core.json");
}

// The recorded /api/v1 with pods/eviction's group and version replaced
// (policy/v1 is what Kubernetes 1.22+ lists); an empty version drops both.
std::string CoreDiscoveryWithEviction(const std::string& version) {
  json list = json::parse(CoreDiscoveryV120());
  for (json& r : list["resources"]) {
    if (r["name"] != "pods/eviction") continue;
    if (version.empty()) {
      r.erase("group");
      r.erase("version");
    } else {
      r["version"] = version;
    }
  }
  return list.dump();
}

json EvictionBody(const HttpRequest& req) {
  return json::parse(req.body);
}

TEST_F(RestClientTest, EvictPostsEviction) {
  fake_->Respond(200, CoreDiscoveryV120());
  fake_->Respond(201, GoldenBody("45-evict-ok.json"));
  auto evicted = client_->Evict("gpu-golden", "web-4", {.grace_period_seconds = 5});
  ASSERT_TRUE(evicted.ok()) << evicted.error().ToString();
  ASSERT_EQ(fake_->request_count(), 2u);
  HttpRequest discovery = fake_->requests()[0];
  EXPECT_EQ(discovery.method, "GET");
  EXPECT_EQ(discovery.url, std::string(kServer) + "/api/v1");
  HttpRequest req = fake_->last_request();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, std::string(kServer) + "/api/v1/namespaces/gpu-golden/pods/web-4/eviction");
  json body = EvictionBody(req);
  EXPECT_EQ(body["apiVersion"], "policy/v1beta1");  // what the recorded v1.20 server takes
  EXPECT_EQ(body["kind"], "Eviction");
  EXPECT_EQ(body["metadata"]["name"], "web-4");
  EXPECT_EQ(body["metadata"]["namespace"], "gpu-golden");
  EXPECT_EQ(body["deleteOptions"]["gracePeriodSeconds"], 5);
}

TEST_F(RestClientTest, EvictSendsPolicyV1WhenPodsEvictionNamesIt) {
  fake_->Respond(200, CoreDiscoveryWithEviction("v1"));
  fake_->Respond(201, GoldenBody("45-evict-ok.json"));
  auto evicted = client_->Evict("gpu-golden", "web-4");
  ASSERT_TRUE(evicted.ok()) << evicted.error().ToString();
  EXPECT_EQ(EvictionBody(fake_->last_request())["apiVersion"], "policy/v1");
}

TEST_F(RestClientTest, EvictSendsPolicyV1beta1WhenPodsEvictionNamesNoVersion) {
  fake_->Respond(200, CoreDiscoveryWithEviction(""));
  fake_->Respond(201, GoldenBody("45-evict-ok.json"));
  auto evicted = client_->Evict("gpu-golden", "web-4");
  ASSERT_TRUE(evicted.ok()) << evicted.error().ToString();
  EXPECT_EQ(EvictionBody(fake_->last_request())["apiVersion"], "policy/v1beta1");
}

// The version is discovered once per client, also when the first Evicts race.
TEST_F(RestClientTest, EvictDiscoversTheVersionOnceAcrossManyEvicts) {
  std::atomic<int> discoveries{0};
  std::atomic<int> evictions{0};
  const std::string discovery = CoreDiscoveryWithEviction("v1");
  const std::string evicted = GoldenBody("45-evict-ok.json");
  fake_->SetHandler([&](const HttpRequest& req) {
    if (req.method == "GET" && req.url == std::string(kServer) + "/api/v1") {
      ++discoveries;
      return FakeTransport::Reply{.body = discovery};
    }
    if (EvictionBody(req)["apiVersion"] == "policy/v1") ++evictions;
    return FakeTransport::Reply{.status = 201, .body = evicted};
  });
  std::vector<std::future<bool>> evicting;
  for (int t = 0; t < 8; ++t) {
    evicting.push_back(std::async(std::launch::async, [&, t] {
      bool ok = true;
      for (int i = 0; i < 5; ++i) {
        ok = client_->Evict("ns", "p-" + std::to_string(t) + "-" + std::to_string(i)).ok() && ok;
      }
      return ok;
    }));
  }
  for (auto& f : evicting)
    EXPECT_TRUE(f.get());
  EXPECT_EQ(discoveries.load(), 1);
  EXPECT_EQ(evictions.load(), 40);
  EXPECT_EQ(fake_->request_count(), 41u);
}

// As kubectl drain: a discovery that fails is the Evict's error, nothing is
// POSTed, and nothing is cached.
TEST_F(RestClientTest, EvictReturnsADiscoveryFailureAndDiscoversAgainNextTime) {
  fake_->Respond(403, R"({"kind":"Status","apiVersion":"v1","status":"Failure",)"
                      R"("reason":"Forbidden","code":403})");
  auto failed = client_->Evict("ns", "p");
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(IsForbidden(failed.error())) << failed.error().ToString();
  EXPECT_EQ(fake_->request_count(), 1u);

  fake_->Respond(200, CoreDiscoveryV120());
  fake_->Respond(201, GoldenBody("45-evict-ok.json"));
  auto evicted = client_->Evict("ns", "p");
  ASSERT_TRUE(evicted.ok()) << evicted.error().ToString();
  ASSERT_EQ(fake_->request_count(), 3u);
  EXPECT_EQ(fake_->requests()[1].url, std::string(kServer) + "/api/v1");
  EXPECT_EQ(EvictionBody(fake_->last_request())["apiVersion"], "policy/v1beta1");
}

// A server that stops taking the kept version (kube-apiserver < 1.22 answers a
// policy/v1 Eviction with this 400) makes the next Evict discover again.
TEST_F(RestClientTest, EvictRediscoversAfterTheVersionIsRejected) {
  fake_->Respond(200, CoreDiscoveryWithEviction("v1"));
  fake_->Respond(400,
                 R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
                 R"("message":"Eviction in version \"v1\" cannot be handled as a Eviction: )"
                 R"(no kind \"Eviction\" is registered for version \"policy/v1\" in scheme )"
                 R"(\"pkg/api/legacyscheme/scheme.go:30\"","reason":"BadRequest","code":400})");
  auto rejected = client_->Evict("ns", "p");
  ASSERT_FALSE(rejected.ok());
  EXPECT_TRUE(IsBadRequest(rejected.error()));
  EXPECT_EQ(fake_->request_count(), 2u);

  fake_->Respond(200, CoreDiscoveryV120());
  fake_->Respond(201, GoldenBody("45-evict-ok.json"));
  auto evicted = client_->Evict("ns", "p");
  ASSERT_TRUE(evicted.ok()) << evicted.error().ToString();
  ASSERT_EQ(fake_->request_count(), 4u);
  EXPECT_EQ(fake_->requests()[2].url, std::string(kServer) + "/api/v1");
  EXPECT_EQ(EvictionBody(fake_->last_request())["apiVersion"], "policy/v1beta1");
}

TEST_F(RestClientTest, EvictBlockedByDisruptionBudgetIsNotRetried) {
  fake_->Respond(200, CoreDiscoveryV120());
  fake_->Respond(429, GoldenBody("65-evict-blocked-by-pdb.json"), {{"Retry-After", "10"}});
  auto evicted = client_->Evict("gpu-evict", "web-1");
  ASSERT_FALSE(evicted.ok());
  EXPECT_TRUE(IsTooManyRequests(evicted.error()));
  ASSERT_EQ(evicted.error().details().causes.size(), 1u);
  EXPECT_EQ(evicted.error().details().causes[0].reason, "DisruptionBudget");
  EXPECT_EQ(fake_->request_count(), 2u);  // discovery, then one eviction
}

TEST_F(RestClientTest, EvictThrottledByServerIsRetried) {
  fake_->Respond(200, CoreDiscoveryV120());
  fake_->Respond(429, R"({"kind":"Status","reason":"TooManyRequests","code":429})",
                 {{"Retry-After", "1"}});
  fake_->Respond(201, GoldenBody("45-evict-ok.json"));
  auto evicted = client_->Evict("ns", "p");
  ASSERT_TRUE(evicted.ok()) << evicted.error().ToString();
  EXPECT_EQ(fake_->request_count(), 3u);  // discovery, then the eviction twice
}

}  // namespace
}  // namespace gpu_autoscaler::kube
