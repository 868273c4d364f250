// Tests of the embedded ApiServer (in-process, real loopback HTTP via libcurl):
// watch ordering under concurrent writers, consistent pagination, label
// selector watches, generation/status semantics, and fault injection.
#include "apiserver/api_server.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

struct Response {
  long status = 0;
  std::string body;
  std::string retry_after;
  bool ok() const { return status >= 200 && status < 300; }
  json Json() const { return json::parse(body, nullptr, false); }
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t Header(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  if (line.rfind("Retry-After: ", 0) == 0) {
    *static_cast<std::string*>(out) = line.substr(13, line.find('\r') - 13);
  }
  return size * n;
}

Response Do(const std::string& base, const std::string& method, const std::string& path,
            const std::string& body = "", const std::string& type = "application/json") {
  Response r;
  CURL* curl = curl_easy_init();
  std::string url = base + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60'000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, Header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.retry_after);
  curl_slist* headers = nullptr;
  std::string content_type = "Content-Type: " + type;
  headers = curl_slist_append(headers, content_type.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (!body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return r;
}

// A response body read as it streams, so a test can wait for what a watch
// has delivered before ending it.
struct StreamingBody {
  std::mutex mu;
  std::condition_variable grew;
  std::string text;

  // Waits until the body contains `needle`; false after `timeout`.
  bool WaitFor(std::string_view needle, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return grew.wait_for(lock, timeout, [&] { return text.find(needle) != std::string::npos; });
  }
};

size_t AppendStreaming(char* data, size_t size, size_t n, void* out) {
  auto* body = static_cast<StreamingBody*>(out);
  {
    std::lock_guard<std::mutex> lock(body->mu);
    body->text.append(data, size * n);
  }
  body->grew.notify_all();
  return size * n;
}

// GET `path` into `body` as it arrives (for watches).
void Stream(const std::string& base, const std::string& path, StreamingBody* body) {
  CURL* curl = curl_easy_init();
  const std::string url = base + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60'000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendStreaming);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_perform(curl);
  curl_easy_cleanup(curl);
}

std::vector<json> Events(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

std::string ConfigMap(const std::string& name, const std::string& labels = "{}") {
  return R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name + R"(","labels":)" +
         labels + R"(},"data":{"k":"v"}})";
}

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions opts;
    opts.enable_fault_injection = true;
    opts.watch_history = 1000;
    opts.bookmark_interval = std::chrono::milliseconds(100);
    auto server = ApiServer::Start(opts);
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(server).value();
    base_ = server_->url();
  }

  Response Create(const std::string& name, const std::string& labels = "{}") {
    return Do(base_, "POST", "/api/v1/namespaces/default/configmaps", ConfigMap(name, labels));
  }

  std::unique_ptr<ApiServer> server_;
  std::string base_;
};

TEST_F(ApiServerTest, WatchDeliversEveryEventInResourceVersionOrder) {
  std::string rv = Do(base_, "GET", "/api/v1/namespaces/default/configmaps")
                       .Json()["metadata"]["resourceVersion"];
  constexpr int kPerWriter = 60;
  std::thread writers[2];
  for (int w = 0; w < 2; ++w) {
    writers[w] = std::thread([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        std::string name = "cm-" + std::to_string(w) + "-" + std::to_string(i);
        EXPECT_EQ(Create(name).status, 201);
        if (i % 3 == 0) {
          EXPECT_EQ(Do(base_, "DELETE", "/api/v1/namespaces/default/configmaps/" + name).status,
                    200);
        }
      }
    });
  }
  for (auto& t : writers)
    t.join();
  // A watch from the earlier RV replays everything from the history, in order.
  Response watch = Do(base_, "GET",
                      "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1&"
                      "resourceVersion=" +
                          rv);
  ASSERT_EQ(watch.status, 200);
  uint64_t last = std::stoull(rv);
  int added = 0, deleted = 0;
  for (const json& e : Events(watch.body)) {
    uint64_t event_rv = std::stoull(e["object"]["metadata"]["resourceVersion"].get<std::string>());
    EXPECT_GT(event_rv, last);
    last = event_rv;
    added += e["type"] == "ADDED";
    deleted += e["type"] == "DELETED";
  }
  EXPECT_EQ(added, 2 * kPerWriter);
  EXPECT_EQ(deleted, 2 * (kPerWriter / 3));
}

TEST_F(ApiServerTest, LiveWatchSeesConcurrentWritesOnceEachInOrder) {
  std::atomic<bool> done{false};
  StreamingBody watch;
  std::thread watcher([&] {
    Stream(base_, "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=60", &watch);
    done = true;
  });
  // Zero-padded names: key order (synthetic ADDED for what existed when the
  // watch began) equals creation order (live ADDED for the rest).
  for (int i = 0; i < 50; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "live-%02d", i);
    ASSERT_EQ(Create(name).status, 201);
  }
  // A watch delivers committed writes on its own thread, and ending it drops
  // what it has not sent yet, as a closed connection does: wait for the last
  // object first. Then end the stream through the drop-watches fault
  // (repeated, in case the watch was not established yet).
  EXPECT_TRUE(watch.WaitFor("\"live-49\"", std::chrono::seconds(30)));
  while (!done) {
    ASSERT_EQ(Do(base_, "POST", "/__faults/drop-watches", "{}").status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  watcher.join();
  auto events = Events(watch.text);
  std::vector<std::string> names;
  for (const auto& e : events) {
    if (e["type"] == "ADDED") names.push_back(e["object"]["metadata"]["name"]);
  }
  ASSERT_EQ(names.size(), 50u) << watch.text.substr(0, 500);
  for (size_t i = 0; i < names.size(); ++i) {
    char want[32];
    std::snprintf(want, sizeof(want), "live-%02d", static_cast<int>(i));
    EXPECT_EQ(names[i], want);
  }
}

TEST_F(ApiServerTest, PaginatedListIsAConsistentSnapshot) {
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(Create("p" + std::to_string(i)).status, 201);
  Response page1 = Do(base_, "GET", "/api/v1/namespaces/default/configmaps?limit=2");
  ASSERT_EQ(page1.status, 200);
  json first = page1.Json();
  EXPECT_EQ(first["items"].size(), 2u);
  EXPECT_EQ(first["metadata"]["remainingItemCount"], 3);
  std::string token = first["metadata"]["continue"];
  // Changes after the first page do not show up in later pages.
  ASSERT_EQ(Do(base_, "DELETE", "/api/v1/namespaces/default/configmaps/p3").status, 200);
  ASSERT_EQ(Create("p9").status, 201);
  Response page2 =
      Do(base_, "GET", "/api/v1/namespaces/default/configmaps?limit=10&continue=" + token);
  ASSERT_EQ(page2.status, 200) << page2.body;
  std::vector<std::string> names;
  json second = page2.Json();
  for (const auto& item : second["items"])
    names.push_back(item["metadata"]["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"p2", "p3", "p4"})) << page2.body;
  EXPECT_EQ(page2.Json()["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"]);
  // After compaction the token is expired.
  ASSERT_EQ(Do(base_, "POST", "/__faults/compact", "{}").status, 200);
  Response expired = Do(base_, "GET", "/api/v1/namespaces/default/configmaps?continue=" + token);
  EXPECT_EQ(expired.status, 410);
  EXPECT_EQ(expired.Json()["reason"], "Expired");
  EXPECT_EQ(Do(base_, "GET", "/api/v1/namespaces/default/configmaps?continue=%%%").status, 400);
}

TEST_F(ApiServerTest, LabelSelectorWatchTurnsMismatchesIntoDeletes) {
  ASSERT_EQ(Create("a", R"({"gpu":"yes"})").status, 201);
  std::string rv = Do(base_, "GET", "/api/v1/namespaces/default/configmaps")
                       .Json()["metadata"]["resourceVersion"];
  const std::string path = "/api/v1/namespaces/default/configmaps/a";
  ASSERT_EQ(Do(base_, "PATCH", path, R"({"metadata":{"labels":{"gpu":"no"}}})",
               "application/merge-patch+json")
                .status,
            200);
  ASSERT_EQ(Do(base_, "PATCH", path, R"({"metadata":{"labels":{"gpu":"yes"}}})",
               "application/merge-patch+json")
                .status,
            200);
  ASSERT_EQ(Create("never", R"({"gpu":"no"})").status, 201);
  Response watch = Do(base_, "GET",
                      "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1&"
                      "labelSelector=gpu%3Dyes&resourceVersion=" +
                          rv);
  auto events = Events(watch.body);
  ASSERT_EQ(events.size(), 2u) << watch.body;
  EXPECT_EQ(events[0]["type"], "DELETED");
  EXPECT_EQ(events[0]["object"]["metadata"]["labels"]["gpu"], "yes");  // as it was
  EXPECT_EQ(events[1]["type"], "ADDED");
  EXPECT_GT(std::stoull(events[0]["object"]["metadata"]["resourceVersion"].get<std::string>()),
            std::stoull(rv));
}

TEST_F(ApiServerTest, WatchSendsBookmarksAndExpiresCompactedVersions) {
  Response watch = Do(base_, "GET",
                      "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1&"
                      "allowWatchBookmarks=true");
  auto events = Events(watch.body);
  ASSERT_FALSE(events.empty());
  for (const auto& e : events) {
    EXPECT_EQ(e["type"], "BOOKMARK");
    EXPECT_TRUE(e["object"]["metadata"].contains("resourceVersion"));
    EXPECT_EQ(e["object"]["kind"], "Pod");
  }
  ASSERT_EQ(Create("x").status, 201);
  ASSERT_EQ(Do(base_, "POST", "/__faults/compact", "{}").status, 200);
  Response old =
      Do(base_, "GET", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1");
  ASSERT_EQ(old.status, 200);
  auto error = Events(old.body);
  ASSERT_EQ(error.size(), 1u);
  EXPECT_EQ(error[0]["type"], "ERROR");
  EXPECT_EQ(error[0]["object"]["code"], 410);
}

TEST_F(ApiServerTest, StatusSubresourceAndGenerationFollowKubernetes) {
  std::string deployment = R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
    "spec":{"replicas":1,"selector":{"matchLabels":{"app":"d"}},
            "template":{"metadata":{"labels":{"app":"d"}},
                        "spec":{"containers":[{"name":"c","image":"i"}]}}},
    "status":{"replicas":7}})";
  const std::string base = "/apis/apps/v1/namespaces/default/deployments";
  Response created = Do(base_, "POST", base, deployment);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.Json()["metadata"]["generation"], 1);
  EXPECT_FALSE(created.Json().contains("status") && created.Json()["status"].contains("replicas") &&
               created.Json()["status"]["replicas"] == 7);
  // Status through /status does not bump the generation; spec changes do.
  Response status = Do(base_, "PATCH", base + "/d/status", R"({"status":{"replicas":1}})",
                       "application/merge-patch+json");
  ASSERT_EQ(status.status, 200) << status.body;
  EXPECT_EQ(status.Json()["metadata"]["generation"], 1);
  EXPECT_EQ(status.Json()["status"]["replicas"], 1);
  Response scaled = Do(base_, "PATCH", base + "/d/scale", R"({"spec":{"replicas":3}})",
                       "application/merge-patch+json");
  ASSERT_EQ(scaled.status, 200) << scaled.body;
  EXPECT_EQ(scaled.Json()["spec"]["replicas"], 3);
  EXPECT_EQ(scaled.Json()["status"]["selector"], "app=d");
  Response got = Do(base_, "GET", base + "/d");
  EXPECT_EQ(got.Json()["metadata"]["generation"], 2);
  EXPECT_EQ(got.Json()["spec"]["replicas"], 3);
  EXPECT_EQ(Do(base_, "GET", base + "/none/scale").status, 404);
  // A no-op update keeps the resourceVersion.
  std::string rv = got.Json()["metadata"]["resourceVersion"];
  Response same = Do(base_, "PUT", base + "/d", got.body);
  EXPECT_EQ(same.Json()["metadata"]["resourceVersion"], rv);
}

// Fields that admission and the registry strategy default (priority,
// serviceAccountName, tolerations, status) belong to no manager, as in
// kube-apiserver: another manager applying spec.priority meets the Pod's
// immutability (422), not a conflict with the creator (409).
TEST_F(ApiServerTest, DefaultedFieldsBelongToNoManager) {
  const std::string pod = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
    "spec":{"containers":[{"name":"c","image":"i"}]}})";
  Response created = Do(base_, "POST", "/api/v1/namespaces/default/pods?fieldManager=creator", pod);
  ASSERT_EQ(created.status, 201) << created.body;
  const json pod_json = created.Json();
  ASSERT_EQ(pod_json["spec"]["priority"], 0);
  ASSERT_EQ(pod_json["spec"]["serviceAccountName"], "default");
  ASSERT_EQ(pod_json["metadata"]["managedFields"].size(), 1u);
  const json& owned = pod_json["metadata"]["managedFields"][0]["fieldsV1"];
  EXPECT_EQ(owned["f:spec"].count("f:priority"), 0u) << owned.dump();
  EXPECT_EQ(owned["f:spec"].count("f:serviceAccountName"), 0u) << owned.dump();
  EXPECT_EQ(owned["f:spec"].count("f:tolerations"), 0u) << owned.dump();
  EXPECT_EQ(owned.count("f:status"), 0u) << owned.dump();
  EXPECT_EQ(owned["f:spec"].count("f:dnsPolicy"), 1u) << "decode defaults are owned";

  Response applied = Do(base_, "PATCH", "/api/v1/namespaces/default/pods/p?fieldManager=other",
                        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  priority: 5\n",
                        "application/apply-patch+yaml");
  EXPECT_EQ(applied.status, 422) << applied.body;
}

TEST_F(ApiServerTest, InjectsErrorsWithRetryAfterAndLatency) {
  ASSERT_EQ(Do(base_, "POST", "/__faults/error",
               R"({"verb":"list","resource":"configmaps","code":429,"count":2,
                   "retryAfterSeconds":3})")
                .status,
            200);
  const std::string list = "/api/v1/namespaces/default/configmaps";
  for (int i = 0; i < 2; ++i) {
    Response r = Do(base_, "GET", list);
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.retry_after, "3");
    EXPECT_EQ(r.Json()["reason"], "TooManyRequests");
  }
  EXPECT_EQ(Do(base_, "GET", list).status, 200);
  EXPECT_EQ(Do(base_, "GET", "/api/v1/namespaces/default/pods").status, 200);
  ASSERT_EQ(Do(base_, "POST", "/__faults/error", R"({"code":503,"count":-1})").status, 200);
  EXPECT_EQ(Do(base_, "GET", list).status, 503);
  EXPECT_EQ(Do(base_, "GET", list).status, 503);
  ASSERT_EQ(Do(base_, "POST", "/__faults/clear", "{}").status, 200);
  EXPECT_EQ(Do(base_, "GET", list).status, 200);
  EXPECT_EQ(Do(base_, "POST", "/__faults/unknown", "{}").status, 404);
}

TEST_F(ApiServerTest, RestartKeepsObjectsAndForgetsHistory) {
  ASSERT_EQ(Create("kept").status, 201);
  int restarts = Do(base_, "GET", "/__faults/status").Json()["restarts"];
  ASSERT_EQ(Do(base_, "POST", "/__faults/restart", R"({"downtimeMs":50})").status, 200);
  // Poll until the new incarnation serves (generous deadline for loaded machines).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto current_restarts = [&] {
    json status = Do(base_, "GET", "/__faults/status").Json();  // fails while down
    return status.is_object() ? status.value("restarts", -1) : -1;
  };
  while (current_restarts() != restarts + 1) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Do(base_, "GET", "/api/v1/namespaces/default/configmaps/kept").status, 200);
  Response old =
      Do(base_, "GET", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1");
  ASSERT_EQ(Events(old.body).size(), 1u);
  EXPECT_EQ(Events(old.body)[0]["type"], "ERROR");
}

TEST_F(ApiServerTest, NamespacesMustExistAndSelectorsAreValidated) {
  Response missing = Do(base_, "POST", "/api/v1/namespaces/nope/configmaps", ConfigMap("x"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Json()["details"]["kind"], "namespaces");
  EXPECT_EQ(Do(base_, "GET", "/api/v1/namespaces/default/pods?fieldSelector=spec.nope%3Dx").status,
            400);
  EXPECT_EQ(Do(base_, "GET", "/api/v1/namespaces/default/pods?labelSelector=a%20in%20b").status,
            400);
  EXPECT_EQ(Do(base_, "GET", "/api/v1/namespaces/default/widgets").status, 404);
  EXPECT_EQ(Do(base_, "GET", "/apis/apps/v1").status, 200);
}

// Emulated 1.21 and 1.22: policy/v1 PodDisruptionBudgets from 1.21 (preferred
// in discovery), policy/v1 Evictions from 1.22 (pods/eviction names it); 1.20
// serves neither, and /version says which.
TEST(ApiServerVersionTest, PolicyVersionsFollowTheEmulatedMinor) {
  const std::string pdb =
      R"({"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web"},)"
      R"("spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"web"}}}})";
  const std::string pod =
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"victim"},)"
      R"("spec":{"containers":[{"name":"main","image":"registry.example/app"}]}})";
  const std::string v1_eviction =
      R"({"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"victim"}})";
  for (int minor : {20, 21, 22}) {
    SCOPED_TRACE("1." + std::to_string(minor));
    ApiServerOptions opts;
    opts.emulated_minor = minor;
    auto server = ApiServer::Start(opts);
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    const std::string base = (*server)->url();
    EXPECT_EQ(Do(base, "GET", "/version").Json()["minor"], std::to_string(minor));
    Response group = Do(base, "GET", "/apis/policy");
    ASSERT_EQ(group.status, 200);
    EXPECT_EQ(group.Json()["preferredVersion"]["version"], minor >= 21 ? "v1" : "v1beta1");
    Response created =
        Do(base, "POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", pdb);
    EXPECT_EQ(created.status, minor >= 21 ? 201 : 404) << created.body;
    // The v1beta1 endpoint serves the same objects at every version.
    EXPECT_EQ(
        Do(base, "GET", "/apis/policy/v1beta1/namespaces/default/poddisruptionbudgets").status,
        200);
    json core = Do(base, "GET", "/api/v1").Json();
    std::string eviction_version;
    for (const json& r : core["resources"])
      if (r["name"] == "pods/eviction") eviction_version = r.value("version", "");
    EXPECT_EQ(eviction_version, minor >= 22 ? "v1" : "v1beta1");
    ASSERT_EQ(Do(base, "POST", "/api/v1/namespaces/default/pods", pod).status, 201);
    Response evicted =
        Do(base, "POST", "/api/v1/namespaces/default/pods/victim/eviction", v1_eviction);
    EXPECT_EQ(evicted.status, minor >= 22 ? 201 : 400) << evicted.body;
  }
  ApiServerOptions too_new;
  too_new.emulated_minor = 23;
  EXPECT_FALSE(ApiServer::Start(too_new).ok());
}

// The server claims v1.20.2, and v1.20 takes Eviction in policy/v1beta1 only
// (policy/v1 from 1.22): a policy/v1 body fails to decode, with the 400 that
// kube-apiserver v1.20 returns, before the pod is even looked up.
TEST_F(ApiServerTest, EvictionTakesPolicyV1beta1OnlyAsV120Does) {
  const std::string pod =
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"victim"},)"
      R"("spec":{"containers":[{"name":"main","image":"registry.example/app"}]}})";
  ASSERT_EQ(Do(base_, "POST", "/api/v1/namespaces/default/pods", pod).status, 201);
  auto eviction = [](const std::string& api_version, const std::string& name) {
    json body = {{"kind", "Eviction"}, {"metadata", {{"name", name}, {"namespace", "default"}}}};
    if (!api_version.empty()) body["apiVersion"] = api_version;
    return body.dump();
  };
  const std::string evict = "/api/v1/namespaces/default/pods/victim/eviction";

  Response v1 = Do(base_, "POST", evict, eviction("policy/v1", "victim"));
  ASSERT_EQ(v1.status, 400) << v1.body;
  EXPECT_EQ(v1.Json(), json::parse(R"({"kind":"Status","apiVersion":"v1","metadata":{},)"
                                   R"("status":"Failure","message":"Eviction in version \"v1\" )"
                                   R"(cannot be handled as a Eviction: no kind \"Eviction\" is )"
                                   R"(registered for version \"policy/v1\" in scheme )"
                                   R"(\"pkg/api/legacyscheme/scheme.go:30\"",)"
                                   R"("reason":"BadRequest","code":400})"));
  EXPECT_EQ(Do(base_, "GET", "/api/v1/namespaces/default/pods/victim").status, 200);
  // Decoding comes first: a missing pod gives the same 400, not 404.
  Response missing = Do(base_, "POST", "/api/v1/namespaces/default/pods/none/eviction",
                        eviction("policy/v1", "none"));
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.Json()["message"], v1.Json()["message"]);
  Response core = Do(base_, "POST", evict, eviction("v1", "victim"));
  EXPECT_EQ(core.status, 400);
  EXPECT_NE(core.Json()["message"].get<std::string>().find(
                R"(no kind "Eviction" is registered for version "v1" in scheme)"),
            std::string::npos)
      << core.body;

  Response beta = Do(base_, "POST", evict, eviction("policy/v1beta1", "victim"));
  EXPECT_EQ(beta.status, 201) << beta.body;
  EXPECT_EQ(Do(base_, "GET", "/api/v1/namespaces/default/pods/victim").status, 404);
  // Without apiVersion, the endpoint's version (policy/v1beta1) applies.
  ASSERT_EQ(Do(base_, "POST", "/api/v1/namespaces/default/pods", pod).status, 201);
  EXPECT_EQ(Do(base_, "POST", evict, eviction("", "victim")).status, 201);
}

// What a client reads to choose the Eviction version (kubectl drain reads
// /api/v1's pods/eviction) says policy/v1beta1, as v1.20.2 says it.
TEST_F(ApiServerTest, DiscoveryNamesPolicyV1beta1ForEviction) {
  Response version = Do(base_, "GET", "/version");
  ASSERT_EQ(version.status, 200);
  EXPECT_EQ(version.Json()["gitVersion"], "v1.20.2");
  EXPECT_EQ(version.Json()["minor"], "20");

  Response core = Do(base_, "GET", "/api/v1");
  ASSERT_EQ(core.status, 200);
  const json core_list = core.Json();
  json eviction;
  for (const json& r : core_list["resources"]) {
    if (r["name"] == "pods/eviction") eviction = r;
  }
  EXPECT_EQ(eviction, json::parse(R"({"name":"pods/eviction","singularName":"","namespaced":true,)"
                                  R"("group":"policy","version":"v1beta1","kind":"Eviction",)"
                                  R"("verbs":["create"]})"));

  Response policy = Do(base_, "GET", "/apis/policy");
  ASSERT_EQ(policy.status, 200);
  const json group = policy.Json();
  json versions = json::array();
  for (const json& v : group["versions"])
    versions.push_back(v["groupVersion"]);
  EXPECT_NE(std::find(versions.begin(), versions.end(), "policy/v1beta1"), versions.end())
      << policy.body;
  // No policy group version lists an Eviction resource of its own: the
  // subresource above is the only place the version is named.
  for (const json& gv : versions) {
    Response list = Do(base_, "GET", "/apis/" + gv.get<std::string>());
    ASSERT_EQ(list.status, 200);
    const json resources = list.Json();
    for (const json& r : resources["resources"])
      EXPECT_NE(r["kind"], "Eviction") << gv;
  }
}

// kube-apiserver answers an oversized request with a Status, which clients
// parse like any other error.
TEST_F(ApiServerTest, OversizedBodyIsA413Status) {
  const std::string big =
      "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
      "\"big\"},\"data\":{\"x\":\"" +
      std::string(4 * 1024 * 1024, 'x') + "\"}}";
  Response r = Do(base_, "POST", "/api/v1/namespaces/default/configmaps", big);
  ASSERT_EQ(r.status, 413);
  const auto status = r.Json();
  EXPECT_EQ(status["kind"], "Status");
  EXPECT_EQ(status["reason"], "RequestEntityTooLarge");
  EXPECT_EQ(status["code"], 413);
  EXPECT_EQ(status["message"], "Request entity too large: limit is 3145728");
}

// Fields whose JSON type the kind's Go type cannot hold never reach
// validation: kube-apiserver cannot decode the body (400), or the result of a
// patch (422 on "patch"). Nothing is stored in either case.
TEST_F(ApiServerTest, BuiltinFieldsOfTheWrongTypeAreRefusedAsTheDecoderDoes) {
  const std::string leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
  Response fractional =
      Do(base_, "POST", leases,
         R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l"},)"
         R"("spec":{"holderIdentity":"a","leaseDurationSeconds":1.5}})");
  ASSERT_EQ(fractional.status, 400) << fractional.body;
  EXPECT_EQ(fractional.Json()["reason"], "BadRequest");
  EXPECT_EQ(fractional.Json()["message"],
            "Lease in version \"v1\" cannot be handled as a Lease: json: cannot unmarshal number "
            "1.5 into Go struct field LeaseSpec.spec.leaseDurationSeconds of type int32");
  Response too_big =
      Do(base_, "POST", leases,
         R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l"},)"
         R"("spec":{"leaseDurationSeconds":4294967311}})");
  EXPECT_EQ(too_big.status, 400) << too_big.body;
  EXPECT_EQ(Do(base_, "GET", leases + "/l").status, 404);

  Response nested = Do(base_, "POST", "/api/v1/namespaces/default/configmaps",
                       R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},)"
                       R"("data":{"k":{"nested":1}}})");
  ASSERT_EQ(nested.status, 400) << nested.body;
  EXPECT_EQ(nested.Json()["message"],
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot "
            "unmarshal object into Go struct field ConfigMap.data of type string");
  Response label = Do(base_, "POST", "/api/v1/namespaces/default/configmaps",
                      R"({"apiVersion":"v1","kind":"ConfigMap",)"
                      R"("metadata":{"name":"c","labels":{"team":7}}})");
  EXPECT_EQ(label.status, 400) << label.body;

  ASSERT_EQ(Create("ok").status, 201);
  Response patched = Do(base_, "PATCH", "/api/v1/namespaces/default/configmaps/ok",
                        R"({"immutable":"yes"})", "application/merge-patch+json");
  ASSERT_EQ(patched.status, 422) << patched.body;
  EXPECT_EQ(patched.Json()["reason"], "Invalid");
  EXPECT_EQ(patched.Json()["details"]["causes"][0]["field"], "patch");
  EXPECT_NE(patched.Json()["message"].get<std::string>().find(
                "json: cannot unmarshal string into Go struct field ConfigMap.immutable of "
                "type bool"),
            std::string::npos)
      << patched.body;
  EXPECT_FALSE(
      Do(base_, "GET", "/api/v1/namespaces/default/configmaps/ok").Json().contains("immutable"));
  // The same field with its own type is fine.
  EXPECT_EQ(Do(base_, "PATCH", "/api/v1/namespaces/default/configmaps/ok", R"({"immutable":false})",
               "application/merge-patch+json")
                .status,
            200);
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
