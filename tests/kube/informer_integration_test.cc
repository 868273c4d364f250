// Informers against the test API server over real HTTP: sync, paging, live
// events, watch renewal, recovery from dropped watches and 410 relists, and a
// generic informer for an arbitrary resource.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "kube/object_codec.h"
#include "kube/rest_client.h"
#include "kube/shared_informer.h"
#include "support/api_server_fixture.h"

namespace gpu_autoscaler::kube {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::TestApiServer;

template <typename Pred>
bool Eventually(Pred pred, std::chrono::seconds limit = 30s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

json PodJson(const std::string& name, const std::string& node, int gpus) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"labels", {{"app", "trainer"}}}}},
              {"spec",
               {{"containers",
                 {{{"name", "main"},
                   {"image", "trainer:1"},
                   {"resources",
                    {{"requests", {{"cpu", "500m"}, {"nvidia.com/gpu", std::to_string(gpus)}}},
                     {"limits", {{"nvidia.com/gpu", std::to_string(gpus)}}}}}}}}}}};
  if (!node.empty()) pod["spec"]["nodeName"] = node;
  return pod;
}

class InformerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    client_ = std::move(client).value();
    ns_ = server_->CreateTestNamespace("informer");
  }

  void CreatePod(const std::string& name, const std::string& node = "", int gpus = 1) {
    auto r = client_->Create({resources::kPods, ns_, ""}, PodJson(name, node, gpus));
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }
  void DeletePod(const std::string& name) {
    DeleteOptions now;
    now.grace_period_seconds = 0;
    auto r = client_->Delete({resources::kPods, ns_, name}, now);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }

  InformerOptions Options() {
    InformerOptions opts;
    opts.ns = ns_;
    opts.backoff.initial = 20ms;
    opts.backoff.max = 500ms;
    return opts;
  }

  std::unique_ptr<TestApiServer> server_;
  std::unique_ptr<RestClient> client_;
  std::string ns_;
};

TEST_F(InformerIntegrationTest, PodViewInformerSyncsPagesAndFollowsChanges) {
  for (int i = 0; i < 23; ++i)
    CreatePod("p" + std::to_string(i), i % 2 ? "node-a" : "node-b", 1 + i % 4);

  InformerOptions opts = Options();
  opts.page_size = 5;  // five pages
  auto informer = std::make_shared<SharedInformer<PodView>>(
      NewRestListerWatcher(client_.get(), {resources::kPods, ns_, ""}), PodViewCodec(), opts,
      "pods");
  ASSERT_TRUE(informer->store().AddIndex(kNodeNameIndex, PodNodeNameIndexFunc()).ok());
  std::mutex mu;
  std::set<std::string> added, deleted;
  informer->AddEventHandler({.on_add =
                                 [&](const auto& p) {
                                   std::lock_guard l(mu);
                                   added.emplace(p->name());
                                 },
                             .on_delete =
                                 [&](const auto& p, bool) {
                                   std::lock_guard l(mu);
                                   deleted.emplace(p->name());
                                 }});
  informer->Start();
  ASSERT_TRUE(informer->WaitForSync({}, 60s));
  EXPECT_EQ(informer->store().size(), 23u);
  EXPECT_EQ(informer->stats().reflector.list_pages, 5);
  EXPECT_EQ(informer->store().ByIndex(kNodeNameIndex, "node-a").size(), 11u);
  auto p3 = informer->store().Get(ns_, "p3");
  ASSERT_NE(p3, nullptr);
  EXPECT_EQ(p3->Request("nvidia.com/gpu"), 4);
  EXPECT_EQ(p3->Request("cpu"), 500);
  EXPECT_EQ(p3->label("app"), "trainer");

  CreatePod("late", "node-c", 2);
  auto patched = client_->Patch({resources::kPods, ns_, "p0"}, PatchType::kMerge,
                                R"({"metadata":{"labels":{"phase":"two"}}})");
  ASSERT_TRUE(patched.ok()) << patched.error().ToString();
  DeletePod("p1");

  ASSERT_TRUE(Eventually([&] {
    auto p0 = informer->store().Get(ns_, "p0");
    return informer->store().Get(ns_, "late") != nullptr &&
           informer->store().Get(ns_, "p1") == nullptr && p0 && p0->label("phase") == "two";
  }));
  EXPECT_EQ(informer->store().ByIndex(kNodeNameIndex, "node-c").size(), 1u);
  std::lock_guard l(mu);
  EXPECT_EQ(added.size(), 24u);
  EXPECT_EQ(deleted, (std::set<std::string>{"p1"}));
}

TEST_F(InformerIntegrationTest, RenewsWatchesTheServerCloses) {
  CreatePod("a");
  InformerOptions opts = Options();
  opts.watch_timeout = 1s;  // the server ends each watch after 1-2 s
  SharedInformer<PodView> informer(NewRestListerWatcher(client_.get(), {resources::kPods, ns_, ""}),
                                   PodViewCodec(), opts, "pods");
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync({}, 60s));
  ASSERT_TRUE(Eventually([&] { return informer.stats().reflector.watches >= 3; }));
  CreatePod("b");
  ASSERT_TRUE(Eventually([&] { return informer.store().size() == 2; }));
  auto stats = informer.stats();
  EXPECT_EQ(stats.reflector.lists_committed, 1);  // renewals resume; they do not relist
  EXPECT_EQ(stats.reflector.backoffs, 0);
}

TEST_F(InformerIntegrationTest, RecoversFromDroppedWatchesAnd410WithTombstones) {
  if (!server_->supports_faults()) GTEST_SKIP() << "needs fault injection";
  for (const char* name : {"keep", "change", "gone"})
    CreatePod(name);
  SharedInformer<PodView> informer(NewRestListerWatcher(client_.get(), {resources::kPods, ns_, ""}),
                                   PodViewCodec(), Options(), "pods");
  std::mutex mu;
  std::vector<std::string> tombstones;
  informer.AddEventHandler({.on_delete = [&](const auto& p, bool final_state_unknown) {
    std::lock_guard l(mu);
    if (final_state_unknown) tombstones.emplace_back(p->name());
  }});
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync({}, 60s));

  // A dropped watch resumes from the last resourceVersion: no relist.
  ASSERT_TRUE(server_->DropWatches().ok());
  CreatePod("after-drop");
  ASSERT_TRUE(Eventually([&] { return informer.store().Get(ns_, "after-drop") != nullptr; }));
  EXPECT_EQ(informer.stats().reflector.lists_committed, 1);

  // Keep watches from reopening while objects change and history is compacted.
  ASSERT_TRUE(
      server_->InjectError({.verb = "watch", .resource = "pods", .code = 500, .count = -1}).ok());
  ASSERT_TRUE(server_->DropWatches().ok());
  ASSERT_TRUE(Eventually([&] { return informer.stats().reflector.backoffs >= 1; }));
  DeletePod("gone");
  auto patched = client_->Patch({resources::kPods, ns_, "change"}, PatchType::kMerge,
                                R"({"metadata":{"labels":{"v":"2"}}})");
  ASSERT_TRUE(patched.ok());
  ASSERT_TRUE(server_->Compact().ok());
  ASSERT_TRUE(server_->ClearFaults().ok());

  ASSERT_TRUE(Eventually([&] { return informer.store().Get(ns_, "gone") == nullptr; }));
  ASSERT_TRUE(Eventually([&] {
    auto c = informer.store().Get(ns_, "change");
    return c && c->label("v") == "2";
  }));
  EXPECT_GE(informer.stats().reflector.relists, 1);
  std::lock_guard l(mu);
  EXPECT_EQ(tombstones, (std::vector<std::string>{"gone"}));
}

TEST_F(InformerIntegrationTest, GenericInformerCachesAnyResource) {
  InformerFactory factory(client_.get(), Options());
  auto config_maps = factory.Informer(resources::kConfigMaps, GenericObjectCodec());
  ASSERT_NE(config_maps, nullptr);
  auto cm =
      client_->Create({resources::kConfigMaps, ns_, ""},
                      json{{"apiVersion", "v1"},
                           {"kind", "ConfigMap"},
                           {"metadata", {{"name", "settings"}, {"labels", {{"tier", "gold"}}}}},
                           {"data", {{"gpu.threshold", "0.8"}}}});
  ASSERT_TRUE(cm.ok()) << cm.error().ToString();
  factory.Start();
  ASSERT_TRUE(factory.WaitForSync({}, 60s));
  auto cached = config_maps->store().Get(ns_, "settings");
  ASSERT_NE(cached, nullptr);
  EXPECT_EQ(cached->label("tier"), "gold");
  auto tree = cached->Parse();
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ((*tree)["data"]["gpu.threshold"], "0.8");
  EXPECT_EQ(factory.Informer(resources::kConfigMaps, GenericObjectCodec()), config_maps);
}

}  // namespace
}  // namespace gpu_autoscaler::kube
