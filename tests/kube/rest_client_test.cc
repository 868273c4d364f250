// RestClient against a FakeTransport: URLs, headers, verbs, list paging,
// retries and rate limits, metrics and watches. Evict is in
// rest_client_evict_test.cc.
#include "kube/rest_client.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <future>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rest_client_fixture.h"
#include "support/fake_transport.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::kube {
namespace {

using namespace rest_client_test;

const ObjectRef kWeb1{resources::kPods, "default", "web-1"};

TEST_F(RestClientTest, GetBuildsUrlAndHeaders) {
  fake_->Respond(200, R"({"kind":"Pod","metadata":{"name":"web-1"}})");
  auto pod = client_->Get(kWeb1);
  ASSERT_TRUE(pod.ok()) << pod.error().ToString();
  EXPECT_EQ((*pod)["metadata"]["name"], "web-1");
  HttpRequest req = fake_->last_request();
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.url, std::string(kServer) + "/api/v1/namespaces/default/pods/web-1");
  EXPECT_EQ(HeaderOf(req, "Authorization"), "Bearer secret-token");
  EXPECT_EQ(HeaderOf(req, "Accept"), "application/json");
  EXPECT_EQ(HeaderOf(req, "User-Agent"), "gpu-autoscaler/0.1");
  EXPECT_EQ(HeaderOf(req, "Content-Type"), "");
  EXPECT_EQ(req.timeout, 30'000ms);
}

TEST_F(RestClientTest, NotFoundMapsToError) {
  fake_->Respond(404, GoldenBody("07-get-pod-notfound.json"));
  auto pod = client_->Get({resources::kPods, "gpu-golden", "missing"});
  ASSERT_FALSE(pod.ok());
  EXPECT_TRUE(IsNotFound(pod.error()));
  EXPECT_EQ(pod.error().message(), "pods \"missing\" not found");
  EXPECT_EQ(fake_->request_count(), 1u);
}

TEST_F(RestClientTest, BasicAuthAndTokenSource) {
  ClientConfig basic = TestConfig();
  basic.bearer_token.clear();
  basic.username = "admin";
  basic.password = "pw";
  Reset(basic);
  fake_->Respond(200, "{}");
  ASSERT_TRUE(client_->Get(kWeb1).ok());
  EXPECT_EQ(HeaderOf(fake_->last_request(), "Authorization"), "Basic YWRtaW46cHc=");

  ClientConfig with_source = TestConfig();
  with_source.token_source = StaticTokenSource("rotated");
  Reset(with_source);
  fake_->Respond(200, "{}");
  ASSERT_TRUE(client_->Get(kWeb1).ok());
  EXPECT_EQ(HeaderOf(fake_->last_request(), "Authorization"), "Bearer rotated");
}

TEST_F(RestClientTest, TokenSourceFailureStopsTheRequest) {
  ClientConfig cfg = TestConfig();
  cfg.token_source = FileTokenSource("/nonexistent/token", clock_);
  Reset(cfg);
  auto pod = client_->Get(kWeb1);
  ASSERT_FALSE(pod.ok());
  EXPECT_EQ(pod.error().kind(), Error::Kind::kConfig);
  EXPECT_EQ(fake_->request_count(), 0u);
}

TEST_F(RestClientTest, ListPageQuery) {
  fake_->Respond(200, R"({"items":[]})");
  ListOptions opts{.label_selector = "app in (web),tier!=3",
                   .field_selector = "spec.nodeName=node-a",
                   .limit = 50,
                   .resource_version = "0",
                   .resource_version_match = "NotOlderThan",
                   .timeout_seconds = 10};
  auto page = client_->ListPage({resources::kPods, "gpu-golden"}, opts);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(*page, R"({"items":[]})");
  EXPECT_EQ(fake_->last_request().url,
            std::string(kServer) +
                "/api/v1/namespaces/gpu-golden/pods?labelSelector=app%20in%20%28web%29%2Ctier%21%"
                "3D3&fieldSelector=spec.nodeName%3Dnode-a&limit=50&resourceVersion=0&"
                "resourceVersionMatch=NotOlderThan&timeoutSeconds=10");
}

TEST_F(RestClientTest, ListFollowsContinueTokens) {
  fake_->Respond(200, GoldenBody("15-list-page-1.json"));
  fake_->Respond(200, GoldenBody("16-list-page-2.json"));
  fake_->Respond(200, R"({"kind":"PodList","metadata":{"resourceVersion":"419"},
                          "items":[{"metadata":{"name":"web-5"}}]})");
  json page1 = json::parse(GoldenBody("15-list-page-1.json"));
  json page2 = json::parse(GoldenBody("16-list-page-2.json"));
  auto list =
      client_->List({resources::kPods, "gpu-golden"}, {.limit = 2, .resource_version = "0"});
  ASSERT_TRUE(list.ok()) << list.error().ToString();
  ASSERT_EQ(fake_->request_count(), 3u);
  EXPECT_EQ((*list)["items"].size(), page1["items"].size() + page2["items"].size() + 1);
  EXPECT_FALSE((*list)["metadata"].contains("remainingItemCount"));
  EXPECT_EQ((*list)["metadata"]["resourceVersion"], page1["metadata"]["resourceVersion"]);
  EXPECT_FALSE((*list)["metadata"].contains("continue"));
  EXPECT_EQ((*list)["items"][0]["metadata"]["name"], page1["items"][0]["metadata"]["name"]);
  std::string second = fake_->requests()[1].url;
  EXPECT_NE(second.find("limit=2&continue=" +
                        UrlEncode(page1["metadata"]["continue"].get<std::string>())),
            std::string::npos)
      << second;
  EXPECT_EQ(second.find("resourceVersion="), std::string::npos) << second;
}

TEST_F(RestClientTest, ListRestartsOnceWhenContinueExpires) {
  std::string page1 = R"({"kind":"PodList","metadata":{"resourceVersion":"5","continue":"c1"},
                          "items":[{"metadata":{"name":"a"}}]})";
  std::string last = R"({"kind":"PodList","metadata":{"resourceVersion":"5"},
                         "items":[{"metadata":{"name":"b"}}]})";
  fake_->Respond(200, page1);
  fake_->Respond(410, GoldenBody("63-list-expired-continue.json"));
  fake_->Respond(200, page1);
  fake_->Respond(200, last);
  auto list = client_->List({resources::kPods, "ns"}, {.limit = 1});
  ASSERT_TRUE(list.ok()) << list.error().ToString();
  ASSERT_EQ(fake_->request_count(), 4u);
  EXPECT_EQ(fake_->requests()[2].url.find("continue="), std::string::npos);
  ASSERT_EQ((*list)["items"].size(), 2u);  // not 3: the first attempt's items are dropped
  EXPECT_EQ((*list)["items"][1]["metadata"]["name"], "b");

  // A second expiry is returned to the caller.
  fake_->Respond(200, page1);
  fake_->Respond(410, GoldenBody("63-list-expired-continue.json"));
  fake_->Respond(200, page1);
  fake_->Respond(410, GoldenBody("63-list-expired-continue.json"));
  auto again = client_->List({resources::kPods, "ns"}, {.limit = 1});
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(IsResourceExpired(again.error()));
}

TEST_F(RestClientTest, ListOfGarbageIsADecodeError) {
  fake_->Respond(200, "<html>proxy error</html>");
  auto list = client_->List({resources::kPods, "ns"});
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().kind(), Error::Kind::kDecode);
}

TEST_F(RestClientTest, CreatePostsToCollectionWithWriteOptions) {
  fake_->Respond(201, R"({"metadata":{"name":"web-1","uid":"u"}})");
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "web-1"}}}};
  auto created = client_->Create(kWeb1, pod, {.dry_run = true, .field_manager = "gpu-autoscaler"});
  ASSERT_TRUE(created.ok());
  HttpRequest req = fake_->last_request();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, std::string(kServer) +
                         "/api/v1/namespaces/default/pods?dryRun=All&fieldManager=gpu-autoscaler");
  EXPECT_EQ(HeaderOf(req, "Content-Type"), "application/json");
  EXPECT_EQ(json::parse(req.body), pod);
}

TEST_F(RestClientTest, CreateOnSubresourcePostsToObject) {
  fake_->Respond(201, R"({"kind":"Status","status":"Success"})");
  json binding = {{"kind", "Binding"}, {"target", {{"kind", "Node"}, {"name", "n1"}}}};
  ASSERT_TRUE(client_->Create(kWeb1.WithSub("binding"), binding).ok());
  EXPECT_EQ(fake_->last_request().url,
            std::string(kServer) + "/api/v1/namespaces/default/pods/web-1/binding");
}

TEST_F(RestClientTest, CreateExistingIsAlreadyExistsAndNotRetried) {
  fake_->Respond(409, GoldenBody("09-create-pod-exists.json"));
  auto created = client_->Create(kWeb1, json::object());
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(IsAlreadyExists(created.error()));
  EXPECT_EQ(fake_->request_count(), 1u);
}

TEST_F(RestClientTest, InvalidUtf8InObjectDoesNotThrow) {
  fake_->Respond(201, "{}");
  json pod = {{"metadata", {{"name", "bad\xff\xfe"}}}};
  auto created = client_->Create(kWeb1, pod);
  EXPECT_TRUE(created.ok());
  EXPECT_EQ(fake_->request_count(), 1u);
}

TEST_F(RestClientTest, ReplaceTakesNameFromObjectAndReportsConflict) {
  fake_->Respond(409, GoldenBody("25-update-pod-conflict.json"));
  json pod = {{"metadata", {{"name", "web-1"}, {"resourceVersion", "1"}}}};
  auto replaced = client_->Replace({resources::kPods, "default"}, pod);
  ASSERT_FALSE(replaced.ok());
  EXPECT_TRUE(IsConflict(replaced.error()));
  EXPECT_EQ(fake_->request_count(), 1u);
  HttpRequest req = fake_->last_request();
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.url, std::string(kServer) + "/api/v1/namespaces/default/pods/web-1");

  auto nameless = client_->Replace({resources::kPods, "default"}, json::object());
  ASSERT_FALSE(nameless.ok());
  EXPECT_EQ(nameless.error().kind(), Error::Kind::kConfig);
}

TEST_F(RestClientTest, PatchContentTypesAndApplyQuery) {
  for (auto [type, content_type] : std::vector<std::pair<PatchType, std::string>>{
           {PatchType::kJson, "application/json-patch+json"},
           {PatchType::kMerge, "application/merge-patch+json"},
           {PatchType::kStrategicMerge, "application/strategic-merge-patch+json"},
           {PatchType::kApply, "application/apply-patch+yaml"}}) {
    fake_->Respond(200, "{}");
    ASSERT_TRUE(client_->Patch(kWeb1, type, "{}", {.field_manager = "gpa", .force = true}).ok());
    HttpRequest req = fake_->last_request();
    EXPECT_EQ(req.method, "PATCH");
    EXPECT_EQ(HeaderOf(req, "Content-Type"), content_type);
    std::string query = req.url.substr(req.url.find('?'));
    // force is only meaningful (and only accepted) for server-side apply.
    EXPECT_EQ(query,
              type == PatchType::kApply ? "?fieldManager=gpa&force=true" : "?fieldManager=gpa");
  }
  fake_->Respond(200, "{}");
  ASSERT_TRUE(client_->Patch(kWeb1.WithSub("status"), PatchType::kMerge, R"({"status":{}})").ok());
  EXPECT_EQ(fake_->last_request().url,
            std::string(kServer) + "/api/v1/namespaces/default/pods/web-1/status");
  EXPECT_EQ(fake_->last_request().body, R"({"status":{}})");
}

TEST_F(RestClientTest, DeleteSendsOptionsInBodyAndQuery) {
  fake_->Respond(200, R"({"kind":"Status","status":"Success"})");
  DeleteOptions d{.grace_period_seconds = 0,
                  .propagation_policy = "Foreground",
                  .precondition_uid = "uid-1",
                  .precondition_resource_version = "42"};
  auto deleted = client_->Delete(kWeb1, d);
  ASSERT_TRUE(deleted.ok());
  HttpRequest req = fake_->last_request();
  EXPECT_EQ(req.method, "DELETE");
  EXPECT_EQ(req.url,
            std::string(kServer) + "/api/v1/namespaces/default/pods/web-1?gracePeriodSeconds=0");
  json body = json::parse(req.body);
  EXPECT_EQ(body["kind"], "DeleteOptions");
  EXPECT_EQ(body["apiVersion"], "meta.k8s.io/v1");
  EXPECT_EQ(body["gracePeriodSeconds"], 0);
  EXPECT_EQ(body["propagationPolicy"], "Foreground");
  EXPECT_EQ(body["preconditions"]["uid"], "uid-1");
  EXPECT_EQ(body["preconditions"]["resourceVersion"], "42");
  EXPECT_FALSE(body.contains("dryRun"));

  fake_->Respond(200, "{}");
  ASSERT_TRUE(client_->Delete(kWeb1).ok());
  EXPECT_EQ(fake_->last_request().body, "");
  EXPECT_EQ(fake_->last_request().url,
            std::string(kServer) + "/api/v1/namespaces/default/pods/web-1");
}

TEST_F(RestClientTest, DeletePreconditionConflict) {
  fake_->Respond(409, GoldenBody("42-delete-precondition.json"));
  auto deleted = client_->Delete(kWeb1, {.precondition_uid = "0"});
  ASSERT_FALSE(deleted.ok());
  EXPECT_TRUE(IsConflict(deleted.error()));
}

TEST_F(RestClientTest, DeleteCollectionQuery) {
  fake_->Respond(200, R"({"kind":"PodList","items":[]})");
  auto deleted =
      client_->DeleteCollection({resources::kPods, "gpu-golden-watch"},
                                {.label_selector = "app=train"}, {.grace_period_seconds = 0});
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(fake_->last_request().url,
            std::string(kServer) +
                "/api/v1/namespaces/gpu-golden-watch/pods?labelSelector=app%3Dtrain&"
                "gracePeriodSeconds=0");
  EXPECT_EQ(fake_->last_request().method, "DELETE");
}

TEST_F(RestClientTest, ScaleSubresource) {
  ObjectRef deploy{resources::kDeployments, "ns", "web"};
  fake_->Respond(200, R"({"kind":"Scale","spec":{"replicas":2}})");
  auto scale = client_->GetScale(deploy);
  ASSERT_TRUE(scale.ok());
  EXPECT_EQ((*scale)["spec"]["replicas"], 2);
  EXPECT_EQ(fake_->last_request().url,
            std::string(kServer) + "/apis/apps/v1/namespaces/ns/deployments/web/scale");

  fake_->Respond(200, R"({"kind":"Scale","spec":{"replicas":5}})");
  ASSERT_TRUE(client_->UpdateScale(deploy, 5).ok());
  HttpRequest req = fake_->last_request();
  EXPECT_EQ(req.method, "PUT");
  json body = json::parse(req.body);
  EXPECT_EQ(body["kind"], "Scale");
  EXPECT_EQ(body["spec"]["replicas"], 5);
  EXPECT_EQ(body["metadata"]["name"], "web");

  fake_->Respond(404, GoldenBody("70-get-scale-notfound.json"));
  auto missing = client_->GetScale({resources::kDeployments, "ns", "none"});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(IsNotFound(missing.error()));
  EXPECT_EQ(missing.error().details().kind, "deployments/scale");
}

TEST_F(RestClientTest, TooManyRequestsHonoursRetryAfterHeaderOnAnyVerb) {
  fake_->Respond(429, R"({"kind":"Status","reason":"TooManyRequests","code":429})",
                 {{"Retry-After", "3"}});
  fake_->Respond(201, "{}");
  auto created = client_->Create(kWeb1, json::object());
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  EXPECT_EQ(fake_->request_count(), 2u);
  EXPECT_EQ(clock_.waits(), std::vector<Clock::Duration>{3s});
}

TEST_F(RestClientTest, TooManyRequestsHonoursRetryAfterSecondsInDetails) {
  fake_->Respond(
      429,
      R"({"kind":"Status","reason":"TooManyRequests","code":429,"details":{"retryAfterSeconds":2}})");
  fake_->Respond(200, "{}");
  auto patched = client_->Patch(kWeb1, PatchType::kMerge, "{}");
  ASSERT_TRUE(patched.ok());
  EXPECT_EQ(clock_.waits(), std::vector<Clock::Duration>{2s});
}

TEST_F(RestClientTest, ServerErrorOnGetIsRetriedWithBackoff) {
  prometheus::Registry registry;
  Reset(TestConfig(), {.metrics = &registry});
  fake_->Respond(503, "");
  fake_->Respond(500, R"({"kind":"Status","reason":"InternalError","code":500})");
  fake_->Respond(200, R"({"metadata":{"name":"web-1"}})");
  auto pod = client_->Get(kWeb1);
  ASSERT_TRUE(pod.ok()) << pod.error().ToString();
  EXPECT_EQ(fake_->request_count(), 3u);
  // Equal-jitter exponential backoff: [50ms, 100ms], then [100ms, 200ms].
  auto waits = clock_.waits();
  ASSERT_EQ(waits.size(), 2u);
  EXPECT_GE(waits[0], 50ms);
  EXPECT_LE(waits[0], 100ms);
  EXPECT_GE(waits[1], 100ms);
  EXPECT_LE(waits[1], 200ms);

  double retries = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != "rest_client_retries_total") continue;
    for (const auto& m : family.metric)
      retries += m.counter.value;
  }
  EXPECT_EQ(retries, 2);
}

TEST_F(RestClientTest, ServerErrorOnWriteIsNotRetried) {
  fake_->Respond(500, R"({"kind":"Status","reason":"InternalError","code":500})");
  auto created = client_->Create(kWeb1, json::object());
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(IsServerError(created.error()));
  EXPECT_EQ(fake_->request_count(), 1u);

  fake_->Respond(503, "");
  EXPECT_FALSE(client_->Delete(kWeb1).ok());
  EXPECT_EQ(fake_->request_count(), 2u);
}

TEST_F(RestClientTest, ServerErrorWithRetryAfterIsRetriedForWrites) {
  fake_->Respond(503, "", {{"Retry-After", "1"}});
  fake_->Respond(201, "{}");
  auto created = client_->Create(kWeb1, json::object());
  EXPECT_TRUE(created.ok());
  EXPECT_EQ(fake_->request_count(), 2u);
}

TEST_F(RestClientTest, TransportErrorsRetriedForReadsOnly) {
  fake_->Fail(Error::Transport("connection refused"));
  fake_->Respond(200, "{}");
  auto pod = client_->Get(kWeb1);
  EXPECT_TRUE(pod.ok());
  EXPECT_EQ(fake_->request_count(), 2u);

  fake_->Fail(Error::Transport("connection reset"));
  auto created = client_->Create(kWeb1, json::object());
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(IsTransport(created.error()));
  EXPECT_EQ(fake_->request_count(), 3u);

  fake_->Fail(Error::Timeout("30s elapsed"));
  auto timed_out = client_->Get(kWeb1);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_TRUE(IsTimeout(timed_out.error()));
  EXPECT_EQ(fake_->request_count(), 4u);
}

TEST_F(RestClientTest, RetriesStopAtMaxRetries) {
  Reset(TestConfig(), {.max_retries = 3});
  fake_->SetHandler([](const HttpRequest&) { return FakeTransport::Reply{.status = 503}; });
  auto pod = client_->Get(kWeb1);
  ASSERT_FALSE(pod.ok());
  EXPECT_EQ(pod.error().code(), 503);
  EXPECT_EQ(fake_->request_count(), 4u);
}

TEST_F(RestClientTest, BackoffIsCapped) {
  Reset(TestConfig(), {.max_retries = 8, .retry_base = 100ms, .retry_cap = 400ms});
  fake_->SetHandler([](const HttpRequest&) { return FakeTransport::Reply{.status = 500}; });
  auto pod = client_->Get(kWeb1);
  ASSERT_FALSE(pod.ok());
  EXPECT_EQ(fake_->request_count(), 9u);
  auto waits = clock_.waits();
  ASSERT_EQ(waits.size(), 8u);
  for (size_t i = 2; i < waits.size(); ++i) {
    EXPECT_GE(waits[i], 200ms) << i;  // half of the cap, at least
    EXPECT_LE(waits[i], 400ms) << i;
  }
}

TEST_F(RestClientTest, RateLimiterSpacesRequests) {
  ClientConfig cfg = TestConfig();
  cfg.qps = 1;
  cfg.burst = 1;
  Reset(cfg);
  fake_->SetHandler([](const HttpRequest&) { return FakeTransport::Reply{.body = "{}"}; });
  Clock::TimePoint start = clock_.Now();
  ASSERT_TRUE(client_->Get(kWeb1).ok());  // the burst token
  EXPECT_EQ(clock_.Now(), start);
  ASSERT_TRUE(client_->Get(kWeb1).ok());
  ASSERT_TRUE(client_->Get(kWeb1).ok());
  EXPECT_EQ(clock_.waits(), (std::vector<Clock::Duration>{1s, 1s}));
  EXPECT_EQ(clock_.Now() - start, 2s);
  EXPECT_EQ(fake_->request_count(), 3u);
}

TEST_F(RestClientTest, MetricsCountRequestsByVerbResourceAndCode) {
  prometheus::Registry registry;
  Reset(TestConfig(), {.metrics = &registry});
  fake_->Respond(200, "{}");
  fake_->Respond(404, GoldenBody("07-get-pod-notfound.json"));
  fake_->Respond(201, "{}");
  ASSERT_TRUE(client_->Get(kWeb1).ok());
  ASSERT_FALSE(client_->Get(kWeb1).ok());
  ASSERT_TRUE(client_->Create({resources::kLeases, "ns", "l"}, json::object()).ok());

  std::map<std::string, double> counts;
  uint64_t histogram_samples = 0;
  for (const auto& family : registry.Collect()) {
    for (const auto& m : family.metric) {
      std::string key;
      for (const auto& l : m.label)
        key += l.name + "=" + l.value + ",";
      if (family.name == "rest_client_requests_total") counts[key] = m.counter.value;
      if (family.name == "rest_client_request_duration_seconds") {
        histogram_samples += m.histogram.sample_count;
      }
    }
  }
  EXPECT_EQ(counts["code=200,resource=pods,verb=get,"], 1);
  EXPECT_EQ(counts["code=404,resource=pods,verb=get,"], 1);
  EXPECT_EQ(counts["code=201,resource=leases,verb=create,"], 1);
  EXPECT_EQ(histogram_samples, 3u);
}

TEST_F(RestClientTest, GarbageBodiesNeverThrow) {
  fake_->Respond(200, "{not json");
  auto pod = client_->Get(kWeb1);
  ASSERT_FALSE(pod.ok());
  EXPECT_EQ(pod.error().kind(), Error::Kind::kDecode);

  fake_->Respond(400, "\xff\xfe garbage \x00 bytes");
  auto bad = client_->Create(kWeb1, json::object());
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(IsBadRequest(bad.error()));

  fake_->Respond(409, R"({"kind":"Status","details":"not an object","code":"x"})");
  auto odd = client_->Create(kWeb1, json::object());
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().code(), 409);

  fake_->RespondStream(200, {"this is not a watch stream"});
  auto watch = client_->Watch({resources::kPods, "ns"}, {}, [](WatchEvent&&) { return true; });
  ASSERT_FALSE(watch.ok());
  EXPECT_EQ(watch.error().kind(), Error::Kind::kDecode);
}

TEST_F(RestClientTest, RawRequest) {
  fake_->Respond(200, R"({"gitVersion":"v1.20.2"})");
  auto resp = client_->Request("GET", "/version");
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->body, R"({"gitVersion":"v1.20.2"})");
  EXPECT_EQ(fake_->last_request().url, std::string(kServer) + "/version");

  fake_->Respond(401, GoldenBody("06-unauthorized.json"));
  auto denied = client_->Request("POST", "/api/v1/namespaces", "{}", "application/json");
  ASSERT_FALSE(denied.ok());
  EXPECT_TRUE(IsUnauthorized(denied.error()));
  EXPECT_EQ(HeaderOf(fake_->last_request(), "Content-Type"), "application/json");
}

std::vector<std::string> Split(const std::string& s, size_t piece) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size(); i += piece)
    out.push_back(s.substr(i, piece));
  return out;
}

TEST_F(RestClientTest, WatchDecodesEventsAcrossChunks) {
  json golden = json::parse(
      testing::ReadFileOrDie(testing::SourcePath("tests/golden/kube/34-watch-events.json")));
  std::string stream;
  for (const json& ev : golden["response"]["events"])
    stream += ev.dump() + "\n";
  fake_->RespondStream(200, Split(stream, 13));
  std::vector<WatchEvent> events;
  auto result = client_->Watch(
      {resources::kPods, "gpu-golden"},
      {.resource_version = "424", .allow_watch_bookmarks = true, .timeout_seconds = 4},
      [&](WatchEvent&& ev) {
        events.push_back(std::move(ev));
        return true;
      });
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(fake_->last_request().url,
            std::string(kServer) +
                golden["request"]["path"].get<std::string>());  // the recorded query, exactly
  EXPECT_EQ(fake_->last_request().timeout, 0ms);
  ASSERT_EQ(events.size(), golden["response"]["events"].size());
  EXPECT_EQ(events[0].type, WatchEventType::kAdded);
  EXPECT_EQ(json::parse(events[0].object_json), golden["response"]["events"][0]["object"]);
  EXPECT_EQ(events.back().type, WatchEventType::kBookmark);
}

TEST_F(RestClientTest, WatchOfOneObjectUsesFieldSelector) {
  fake_->RespondStream(200, {});
  ASSERT_TRUE(client_->Watch(kWeb1, {}, [](WatchEvent&&) { return true; }).ok());
  EXPECT_EQ(fake_->last_request().url,
            std::string(kServer) +
                "/api/v1/namespaces/default/pods?watch=1&fieldSelector=metadata.name%3Dweb-1");
}

TEST_F(RestClientTest, WatchErrorEventIsDeliveredAndConsumerCanStop) {
  std::string stream =
      R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})"
      "\n"
      R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"
      "\n"
      R"({"type":"ADDED","object":{"metadata":{"name":"never"}}})";
  fake_->RespondStream(200, {stream}, /*hold_open=*/true);
  std::vector<WatchEventType> types;
  auto result = client_->Watch({resources::kPods, "ns"}, {}, [&](WatchEvent&& ev) {
    types.push_back(ev.type);
    return ev.type != WatchEventType::kError;
  });
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(types, (std::vector<WatchEventType>{WatchEventType::kAdded, WatchEventType::kError}));
}

TEST_F(RestClientTest, WatchStartFailures) {
  fake_->RespondStream(410, {GoldenBody("62-list-expired-resourceversion.json")});
  auto gone = client_->Watch({resources::kPods, "ns"}, {.resource_version = "1"},
                             [](WatchEvent&&) { return true; });
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(IsGone(gone.error()));
  EXPECT_EQ(fake_->request_count(), 1u);

  fake_->RespondStream(503, {});
  fake_->RespondStream(200, {R"({"type":"ADDED","object":{}})"});
  int events = 0;
  auto retried = client_->Watch({resources::kPods, "ns"}, {}, [&](WatchEvent&&) {
    ++events;
    return true;
  });
  EXPECT_TRUE(retried.ok());
  EXPECT_EQ(events, 1);
  EXPECT_EQ(fake_->request_count(), 3u);
}

TEST_F(RestClientTest, WatchEndingMidEventIsAnError) {
  fake_->RespondStream(200, {R"({"type":"ADDED","object":{"metadata")"});
  auto result = client_->Watch({resources::kPods, "ns"}, {}, [](WatchEvent&&) { return true; });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind(), Error::Kind::kDecode);
}

TEST_F(RestClientTest, WatchRawStopsOnStopToken) {
  fake_->RespondStream(200, {"{\"type\":\"ADDED\",\"object\":{}}\n"}, /*hold_open=*/true);
  std::stop_source stop;
  std::atomic<int> chunks{0};
  std::promise<void> first_chunk;
  auto future = std::async(std::launch::async, [&] {
    return client_->WatchRaw(
        {resources::kPods, "ns"}, {},
        [&](std::string_view) {
          if (++chunks == 1) first_chunk.set_value();
          return true;
        },
        stop.get_token());
  });
  ASSERT_EQ(first_chunk.get_future().wait_for(30s), std::future_status::ready);
  stop.request_stop();
  auto result = future.get();
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(IsCancelled(result.error()));
  EXPECT_EQ(chunks.load(), 1);
}

TEST(RestClientTypesTest, QueryAndBodyHelpers) {
  std::string q;
  ListOptions{}.AppendQuery(&q, false);
  EXPECT_EQ(q, "");
  q.clear();
  ListOptions{.label_selector = "a=b", .limit = 5, .continue_token = "c"}.AppendQuery(&q, true);
  EXPECT_EQ(q, "?watch=1&labelSelector=a%3Db");  // limit/continue do not apply to watches
  EXPECT_EQ(DeleteOptions{}.ToJson(), "");
  EXPECT_EQ(json::parse(DeleteOptions{.dry_run = true}.ToJson())["dryRun"], json({"All"}));
  EXPECT_EQ(WatchEventTypeName(WatchEventType::kBookmark), "BOOKMARK");
  EXPECT_EQ(PatchContentType(PatchType::kMerge), "application/merge-patch+json");
  HttpResponse resp{.status = 200, .headers = {{"retry-after", "5"}}};
  EXPECT_EQ(resp.Header("Retry-After"), "5");
  EXPECT_EQ(resp.Header("Missing"), "");
}

}  // namespace
}  // namespace gpu_autoscaler::kube
