// RestClient end to end against the embedded API server (a real process
// speaking HTTP on 127.0.0.1), or a real cluster when
// GPU_AUTOSCALER_TEST_KUBECONFIG is set.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include "kube/discovery.h"
#include "kube/rest_client.h"
#include "support/api_server_fixture.h"

namespace gpu_autoscaler::kube {
namespace {

using nlohmann::json;
using testing::TestApiServer;
using namespace std::chrono_literals;

json ConfigMap(const std::string& ns, const std::string& name, json labels = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
          {"data", {{"k", "v"}}}};
}

json Pod(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", "web"}}}}},
          {"spec",
           {{"containers",
             {{{"name", "main"},
               {"image", "registry.example/app:1.0"},
               {"resources", {{"requests", {{"cpu", "100m"}}}}}}}}}}};
}

class RestClientIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = TestApiServer::Start().release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr) << "api server did not start";
    auto client = RestClient::Create(server_->config(), {.metrics = &registry_});
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    client_ = std::move(client).value();
    ns_ = server_->CreateTestNamespace("client");
  }
  void TearDown() override {
    if (server_ != nullptr && server_->supports_faults()) {
      EXPECT_TRUE(server_->ClearFaults().ok());
    }
  }

  double MetricSum(const std::string& name) {
    double total = 0;
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric)
        total += m.counter.value;
    }
    return total;
  }

  static TestApiServer* server_;
  prometheus::Registry registry_;
  std::unique_ptr<RestClient> client_;
  std::string ns_;
};

TestApiServer* RestClientIntegrationTest::server_ = nullptr;

TEST_F(RestClientIntegrationTest, PodLifecycle) {
  ObjectRef ref{resources::kPods, ns_, "web-1"};
  auto created = client_->Create(ref, Pod(ns_, "web-1"));
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  EXPECT_FALSE((*created)["metadata"]["uid"].get<std::string>().empty());

  auto again = client_->Create(ref, Pod(ns_, "web-1"));
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(IsAlreadyExists(again.error())) << again.error().ToString();

  auto got = client_->Get(ref);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ((*got)["metadata"]["name"], "web-1");

  json updated = *got;
  updated["metadata"]["labels"]["tier"] = "1";
  auto replaced = client_->Replace(ref, updated);
  ASSERT_TRUE(replaced.ok()) << replaced.error().ToString();
  EXPECT_EQ((*replaced)["metadata"]["labels"]["tier"], "1");
  // The first read's resourceVersion is stale now.
  auto stale = client_->Replace(ref, updated);
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(IsConflict(stale.error())) << stale.error().ToString();

  auto merged = client_->Patch(ref, PatchType::kMerge, R"({"metadata":{"labels":{"m":"1"}}})");
  ASSERT_TRUE(merged.ok()) << merged.error().ToString();
  EXPECT_EQ((*merged)["metadata"]["labels"]["m"], "1");
  auto json_patched = client_->Patch(
      ref, PatchType::kJson, R"([{"op":"replace","path":"/metadata/labels/m","value":"2"}])");
  ASSERT_TRUE(json_patched.ok()) << json_patched.error().ToString();
  EXPECT_EQ((*json_patched)["metadata"]["labels"]["m"], "2");
  auto strategic =
      client_->Patch(ref, PatchType::kStrategicMerge, R"({"metadata":{"labels":{"s":"1"}}})");
  ASSERT_TRUE(strategic.ok()) << strategic.error().ToString();
  EXPECT_EQ((*strategic)["metadata"]["labels"]["s"], "1");
  auto failed_test = client_->Patch(
      ref, PatchType::kJson, R"([{"op":"test","path":"/metadata/labels/m","value":"nope"}])");
  ASSERT_FALSE(failed_test.ok());
  EXPECT_TRUE(IsInvalid(failed_test.error())) << failed_test.error().ToString();

  auto deleted = client_->Delete(ref, {.grace_period_seconds = 0});
  ASSERT_TRUE(deleted.ok()) << deleted.error().ToString();
  auto gone = client_->Get(ref);
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(IsNotFound(gone.error())) << gone.error().ToString();
  auto delete_again = client_->Delete(ref);
  ASSERT_FALSE(delete_again.ok());
  EXPECT_TRUE(IsNotFound(delete_again.error()));
}

TEST_F(RestClientIntegrationTest, ServerSideApplyAndDryRun) {
  ObjectRef ref{resources::kConfigMaps, ns_, "applied"};
  std::string manifest = ConfigMap(ns_, "applied").dump();
  auto applied =
      client_->Patch(ref, PatchType::kApply, manifest, {.field_manager = "gpu-autoscaler"});
  ASSERT_TRUE(applied.ok()) << applied.error().ToString();
  EXPECT_EQ((*applied)["data"]["k"], "v");

  auto dry = client_->Create({resources::kConfigMaps, ns_, "dry"}, ConfigMap(ns_, "dry"),
                             {.dry_run = true});
  ASSERT_TRUE(dry.ok()) << dry.error().ToString();
  auto not_there = client_->Get({resources::kConfigMaps, ns_, "dry"});
  ASSERT_FALSE(not_there.ok());
  EXPECT_TRUE(IsNotFound(not_there.error()));
}

TEST_F(RestClientIntegrationTest, ListFollowsPages) {
  for (int i = 0; i < 7; ++i) {
    std::string name = "cm-" + std::to_string(i);
    ASSERT_TRUE(client_
                    ->Create({resources::kConfigMaps, ns_, name},
                             ConfigMap(ns_, name, {{"idx", std::to_string(i % 2)}}))
                    .ok());
  }
  ObjectRef cms{resources::kConfigMaps, ns_};
  auto page = client_->ListPage(cms, {.limit = 3});
  ASSERT_TRUE(page.ok()) << page.error().ToString();
  json first = json::parse(*page);
  EXPECT_EQ(first["items"].size(), 3u);
  EXPECT_FALSE(first["metadata"]["continue"].get<std::string>().empty());

  auto all = client_->List(cms, {.limit = 3});
  ASSERT_TRUE(all.ok()) << all.error().ToString();
  std::set<std::string> names;
  for (const json& item : (*all)["items"])
    names.insert(item["metadata"]["name"]);
  EXPECT_GE(names.size(), 7u);  // plus the namespace's own default objects, if any
  for (int i = 0; i < 7; ++i)
    EXPECT_TRUE(names.count("cm-" + std::to_string(i))) << i;
  EXPECT_FALSE((*all)["metadata"]["resourceVersion"].get<std::string>().empty());

  auto odd = client_->List(cms, {.label_selector = "idx in (1)"});
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ((*odd)["items"].size(), 3u);

  auto bad = client_->List(cms, {.label_selector = "idx in 1"});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(IsBadRequest(bad.error()));
  EXPECT_EQ(bad.error().message(), "unable to parse requirement: found '1' expected: '('");

  auto deleted = client_->DeleteCollection(cms, {.label_selector = "idx=0"});
  ASSERT_TRUE(deleted.ok()) << deleted.error().ToString();
  auto left = client_->List(cms, {.label_selector = "idx"});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ((*left)["items"].size(), 3u);
}

TEST_F(RestClientIntegrationTest, WatchSeesAddModifyDelete) {
  ObjectRef cms{resources::kConfigMaps, ns_};
  auto list = client_->List(cms);
  ASSERT_TRUE(list.ok());
  std::string rv = (*list)["metadata"]["resourceVersion"];

  std::promise<void> started;
  std::vector<std::pair<WatchEventType, std::string>> seen;
  auto watcher = std::async(std::launch::async, [&] {
    bool signalled = false;
    return client_->Watch(cms, {.resource_version = rv, .timeout_seconds = 60},
                          [&](WatchEvent&& ev) {
                            if (!signalled) {
                              signalled = true;
                              started.set_value();
                            }
                            json obj = json::parse(ev.object_json);
                            seen.emplace_back(ev.type, obj["metadata"]["name"].get<std::string>());
                            return ev.type != WatchEventType::kDeleted;
                          });
  });
  ObjectRef ref{resources::kConfigMaps, ns_, "watched"};
  ASSERT_TRUE(client_->Create(ref, ConfigMap(ns_, "watched")).ok());
  ASSERT_EQ(started.get_future().wait_for(30s), std::future_status::ready);
  ASSERT_TRUE(client_->Patch(ref, PatchType::kMerge, R"({"data":{"k":"v2"}})").ok());
  ASSERT_TRUE(client_->Delete(ref).ok());
  ASSERT_EQ(watcher.wait_for(30s), std::future_status::ready);
  auto result = watcher.get();
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], std::make_pair(WatchEventType::kAdded, std::string("watched")));
  EXPECT_EQ(seen[1].first, WatchEventType::kModified);
  EXPECT_EQ(seen[2].first, WatchEventType::kDeleted);
}

TEST_F(RestClientIntegrationTest, WatchCancelsOnStopToken) {
  std::stop_source stop;
  std::promise<void> first_chunk;
  std::atomic<int> chunks{0};
  auto watcher = std::async(std::launch::async, [&] {
    return client_->WatchRaw(
        {resources::kConfigMaps, ns_}, {.timeout_seconds = 300},
        [&](std::string_view) {
          if (++chunks == 1) first_chunk.set_value();
          return true;
        },
        stop.get_token());
  });
  // The watch without a resourceVersion replays existing objects, so one
  // created up front guarantees a first chunk: the stream is then open and
  // idle when it is cancelled.
  ASSERT_TRUE(client_->Create({resources::kConfigMaps, ns_, "x"}, ConfigMap(ns_, "x")).ok());
  ASSERT_EQ(first_chunk.get_future().wait_for(30s), std::future_status::ready);
  stop.request_stop();
  ASSERT_EQ(watcher.wait_for(30s), std::future_status::ready) << "cancellation was not prompt";
  auto result = watcher.get();
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(IsCancelled(result.error())) << result.error().ToString();
}

TEST_F(RestClientIntegrationTest, EvictionAndScale) {
  ObjectRef pod{resources::kPods, ns_, "victim"};
  ASSERT_TRUE(client_->Create(pod, Pod(ns_, "victim")).ok());
  auto evicted = client_->Evict(ns_, "victim", {.grace_period_seconds = 0});
  ASSERT_TRUE(evicted.ok()) << evicted.error().ToString();

  auto missing = client_->GetScale({resources::kDeployments, ns_, "none"});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(IsNotFound(missing.error())) << missing.error().ToString();

  json deploy = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "web"}, {"namespace", ns_}}},
      {"spec",
       {{"replicas", 1},
        {"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", "web"}}}}},
          {"spec", {{"containers", {{{"name", "main"}, {"image", "registry.example/app"}}}}}}}}}}};
  ObjectRef deploy_ref{resources::kDeployments, ns_, "web"};
  ASSERT_TRUE(client_->Create(deploy_ref, deploy).ok());
  auto scaled = client_->UpdateScale(deploy_ref, 4);
  ASSERT_TRUE(scaled.ok()) << scaled.error().ToString();
  auto scale = client_->GetScale(deploy_ref);
  ASSERT_TRUE(scale.ok());
  EXPECT_EQ((*scale)["spec"]["replicas"], 4);
  auto after = client_->Get(deploy_ref);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)["spec"]["replicas"], 4);
}

TEST_F(RestClientIntegrationTest, RetriesInjectedServerErrors) {
  if (!server_->supports_faults()) GTEST_SKIP() << "needs fault injection";
  ObjectRef ref{resources::kConfigMaps, ns_, "retried"};
  ASSERT_TRUE(client_->Create(ref, ConfigMap(ns_, "retried")).ok());

  ASSERT_TRUE(
      server_->InjectError({.verb = "get", .resource = "configmaps", .code = 503, .count = 2})
          .ok());
  auto got = client_->Get(ref);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(MetricSum("rest_client_retries_total"), 2);

  // A failed write is not retried: the caller sees the 500.
  ASSERT_TRUE(
      server_->InjectError({.verb = "create", .resource = "configmaps", .code = 500, .count = 1})
          .ok());
  auto created = client_->Create({resources::kConfigMaps, ns_, "w"}, ConfigMap(ns_, "w"));
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code(), 500);
  EXPECT_TRUE(client_->Create({resources::kConfigMaps, ns_, "w"}, ConfigMap(ns_, "w")).ok());

  // 429 with Retry-After is retried for any verb.
  ASSERT_TRUE(server_
                  ->InjectError({.verb = "create",
                                 .resource = "configmaps",
                                 .code = 429,
                                 .count = 1,
                                 .retry_after_seconds = 1})
                  .ok());
  auto throttled = client_->Create({resources::kConfigMaps, ns_, "t"}, ConfigMap(ns_, "t"));
  EXPECT_TRUE(throttled.ok()) << throttled.error().ToString();
  EXPECT_EQ(MetricSum("rest_client_retries_total"), 3);
}

TEST_F(RestClientIntegrationTest, SurvivesServerRestart) {
  if (!server_->supports_faults()) GTEST_SKIP() << "needs fault injection";
  ObjectRef ref{resources::kConfigMaps, ns_, "durable"};
  ASSERT_TRUE(client_->Create(ref, ConfigMap(ns_, "durable")).ok());
  ASSERT_TRUE(client_->Get(ref).ok());  // leaves a pooled keep-alive connection
  ASSERT_TRUE(server_->Restart(200ms).ok());
  // The pooled connection is dead; a read reconnects (and retries if needed).
  auto got = client_->Get(ref);
  EXPECT_TRUE(got.ok()) << got.error().ToString();
}

TEST_F(RestClientIntegrationTest, DiscoveryResolvesServedResources) {
  Discovery discovery(*client_);
  auto pods = discovery.Resolve("po");
  ASSERT_TRUE(pods.ok()) << pods.error().ToString();
  EXPECT_EQ(*pods, resources::kPods);
  auto leases = discovery.Resolve("leases");
  ASSERT_TRUE(leases.ok()) << leases.error().ToString();
  EXPECT_EQ(*leases, resources::kLeases);
  auto deploy = discovery.ResolveKind({"apps", "", "Deployment"});
  ASSERT_TRUE(deploy.ok()) << deploy.error().ToString();
  EXPECT_EQ(*deploy, resources::kDeployments);
  auto none = discovery.Resolve("frobnicators");
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(IsNotFound(none.error()));
}

TEST(RestClientUnreachableTest, ConnectionRefusedIsATransportError) {
  // A port that nothing listens on: bind, read the port, close.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);

  ClientConfig cfg;
  cfg.server = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  cfg.timeout = 10s;
  auto client = RestClient::Create(cfg, {.max_retries = 0});
  ASSERT_TRUE(client.ok());
  auto got = (*client)->Get({resources::kPods, "default", "x"});
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(IsTransport(got.error())) << got.error().ToString();
  EXPECT_NE(got.error().message().find("127.0.0.1"), std::string::npos);
}

}  // namespace
}  // namespace gpu_autoscaler::kube
