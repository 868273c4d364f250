// The informer store: keys, indexes, Replace diffs and concurrent readers.

#include "kube/store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kube/object_codec.h"
#include "kube/pod_view.h"

namespace gpu_autoscaler::kube {
namespace {

using PodPtr = std::shared_ptr<const PodView>;

PodPtr Pod(const std::string& ns, const std::string& name, const std::string& rv,
           const std::string& node = "", const std::map<std::string, std::string>& labels = {},
           const std::string& owner_uid = "") {
  std::string json = R"({"metadata":{"namespace":")" + ns + R"(","name":")" + name +
                     R"(","resourceVersion":")" + rv + R"(","labels":{)";
  bool first = true;
  for (const auto& [k, v] : labels) {
    json += (first ? "" : ",") + std::string("\"") + k + "\":\"" + v + "\"";
    first = false;
  }
  json += "}";
  if (!owner_uid.empty()) {
    json += R"(,"ownerReferences":[{"kind":"Job","name":"j","uid":")" + owner_uid + R"("}])";
  }
  json += R"(},"spec":{"nodeName":")" + node + R"("}})";
  auto pod = DecodePod(json);
  EXPECT_TRUE(pod.ok()) << pod.error().ToString();
  return std::make_shared<const PodView>(std::move(pod).value());
}

std::set<std::string> Names(const std::vector<PodPtr>& pods) {
  std::set<std::string> out;
  for (const auto& p : pods)
    out.insert(std::string(p->name()));
  return out;
}

TEST(StoreTest, KeysAreNamespaceSlashName) {
  EXPECT_EQ(ObjectKey("default", "web"), "default/web");
  EXPECT_EQ(ObjectKey("", "node-1"), "node-1");
  Store<PodView> store;
  store.Upsert(Pod("a", "x", "1"));
  store.Upsert(Pod("b", "x", "2"));
  EXPECT_EQ(store.size(), 2u);
  ASSERT_NE(store.Get("a/x"), nullptr);
  EXPECT_EQ(store.Get("a", "x")->resource_version(), "1");
  EXPECT_EQ(store.Get("b/x")->resource_version(), "2");
  EXPECT_EQ(store.Get("c/x"), nullptr);
}

TEST(StoreTest, UpsertReturnsPreviousAndDeleteReturnsLast) {
  Store<PodView> store;
  EXPECT_EQ(store.Upsert(Pod("a", "x", "1")), nullptr);
  PodPtr old = store.Upsert(Pod("a", "x", "2"));
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->resource_version(), "1");
  EXPECT_EQ(store.Get("a/x")->resource_version(), "2");
  PodPtr last = store.Delete("a/x");
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(last->resource_version(), "2");
  EXPECT_EQ(store.Delete("a/x"), nullptr);
  EXPECT_EQ(store.size(), 0u);
}

TEST(StoreTest, IndexesFollowUpdatesAndDeletes) {
  Store<PodView> store;
  ASSERT_TRUE(store.AddIndex(kNamespaceIndex, NamespaceIndexFunc<PodView>()).ok());
  ASSERT_TRUE(store.AddIndex(kNodeNameIndex, PodNodeNameIndexFunc()).ok());
  ASSERT_TRUE(store.AddIndex(kLabelIndex, LabelIndexFunc<PodView>()).ok());
  ASSERT_TRUE(store.AddIndex(kOwnerUidIndex, OwnerUidIndexFunc<PodView>()).ok());
  EXPECT_FALSE(store.AddIndex(kLabelIndex, LabelIndexFunc<PodView>()).ok());

  store.Upsert(Pod("ml", "a", "1", "node-1", {{"app", "train"}, {"gpu", "yes"}}, "job-1"));
  store.Upsert(Pod("ml", "b", "1", "node-2", {{"app", "train"}}, "job-1"));
  store.Upsert(Pod("web", "c", "1", "", {{"app", "web"}}));

  EXPECT_EQ(Names(store.ByIndex(kNamespaceIndex, "ml")), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(Names(store.ByIndex(kNodeNameIndex, "node-1")), (std::set<std::string>{"a"}));
  EXPECT_TRUE(store.ByIndex(kNodeNameIndex, "").empty());  // unbound pods are not indexed
  EXPECT_EQ(Names(store.ByIndex(kLabelIndex, "app=train")), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(Names(store.ByIndex(kOwnerUidIndex, "job-1")), (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(store.ByIndex("no-such-index", "x").empty());
  EXPECT_TRUE(store.HasIndex(kLabelIndex));

  // Rescheduling moves the pod between index values; old values disappear.
  store.Upsert(Pod("ml", "a", "2", "node-2", {{"app", "serve"}}, "job-1"));
  EXPECT_TRUE(store.ByIndex(kNodeNameIndex, "node-1").empty());
  EXPECT_EQ(Names(store.ByIndex(kNodeNameIndex, "node-2")), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(Names(store.ByIndex(kLabelIndex, "app=train")), (std::set<std::string>{"b"}));
  EXPECT_TRUE(store.ByIndex(kLabelIndex, "gpu=yes").empty());
  auto nodes = store.IndexValues(kNodeNameIndex);
  EXPECT_EQ(std::set<std::string>(nodes.begin(), nodes.end()), (std::set<std::string>{"node-2"}));

  store.Delete("ml/b");
  EXPECT_EQ(Names(store.ByIndex(kOwnerUidIndex, "job-1")), (std::set<std::string>{"a"}));
  EXPECT_EQ(Names(store.ByIndex(kNamespaceIndex, "ml")), (std::set<std::string>{"a"}));
}

TEST(StoreTest, IndexAddedLaterCoversExistingObjects) {
  Store<PodView> store;
  store.Upsert(Pod("ml", "a", "1", "node-1"));
  ASSERT_TRUE(store.AddIndex(kNodeNameIndex, PodNodeNameIndexFunc()).ok());
  EXPECT_EQ(Names(store.ByIndex(kNodeNameIndex, "node-1")), (std::set<std::string>{"a"}));
}

TEST(StoreTest, ReplaceReportsAddsUpdatesAndMissedDeletes) {
  Store<PodView> store;
  ASSERT_TRUE(store.AddIndex(kNodeNameIndex, PodNodeNameIndexFunc()).ok());
  store.Upsert(Pod("ns", "keep", "1", "n1"));
  store.Upsert(Pod("ns", "change", "1", "n1"));
  store.Upsert(Pod("ns", "gone", "1", "n1"));
  PodPtr kept_instance = store.Get("ns/keep");

  auto diff = store.Replace(
      {Pod("ns", "keep", "1", "n1"), Pod("ns", "change", "5", "n2"), Pod("ns", "new", "6", "n2")},
      "6");
  EXPECT_EQ(Names(diff.added), (std::set<std::string>{"new"}));
  ASSERT_EQ(diff.updated.size(), 1u);
  EXPECT_EQ(diff.updated[0].first->resource_version(), "1");
  EXPECT_EQ(diff.updated[0].second->resource_version(), "5");
  EXPECT_EQ(Names(diff.deleted), (std::set<std::string>{"gone"}));
  EXPECT_EQ(diff.deleted[0]->resource_version(), "1");  // the last known state
  EXPECT_EQ(diff.unchanged, 1u);

  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.resource_version(), "6");
  EXPECT_EQ(store.Get("ns/gone"), nullptr);
  EXPECT_EQ(store.Get("ns/keep"), kept_instance);  // unchanged objects keep their instance
  EXPECT_EQ(Names(store.ByIndex(kNodeNameIndex, "n2")), (std::set<std::string>{"change", "new"}));
  EXPECT_EQ(Names(store.ByIndex(kNodeNameIndex, "n1")), (std::set<std::string>{"keep"}));

  auto empty = store.Replace({}, "9");
  EXPECT_EQ(empty.deleted.size(), 3u);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_TRUE(store.IndexValues(kNodeNameIndex).empty());
}

// Readers running during writes always see a state that existed: here the
// writer keeps "ns/a" and "ns/b" on the same node at the same version, so a
// snapshot must never show them apart.
TEST(StoreTest, ReadersSeeConsistentSnapshots) {
  Store<PodView> store;
  ASSERT_TRUE(store.AddIndex(kNodeNameIndex, PodNodeNameIndexFunc()).ok());
  store.Replace({Pod("ns", "a", "0", "node-0"), Pod("ns", "b", "0", "node-0")}, "0");
  std::vector<PodPtr> versions_a, versions_b;
  for (int i = 1; i <= 200; ++i) {
    std::string node = "node-" + std::to_string(i % 7);
    versions_a.push_back(Pod("ns", "a", std::to_string(i), node));
    versions_b.push_back(Pod("ns", "b", std::to_string(i), node));
  }
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        auto all = store.List();
        if (all.size() != 2 || all[0]->resource_version() != all[1]->resource_version()) ++bad;
        auto on_node = store.ByIndex(kNodeNameIndex, all[0]->node_name());
        if (on_node.size() != 2 && on_node.size() != 0) ++bad;
      }
    });
  }
  for (size_t i = 0; i < versions_a.size(); ++i) {
    store.Replace({versions_a[i], versions_b[i]}, std::to_string(i + 1));
  }
  done = true;
  for (auto& t : readers)
    t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(store.Get("ns/a")->resource_version(), "200");
}

}  // namespace
}  // namespace gpu_autoscaler::kube
