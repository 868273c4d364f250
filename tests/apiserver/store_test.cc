// Unit tests of the API server's storage: resourceVersions, optimistic
// concurrency, pagination, snapshots at older resourceVersions, the bounded
// event log behind watches, and selectable-field extraction.
#include "apiserver/store.h"

#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const std::vector<std::string> kPodFields = {"spec.nodeName", "status.phase"};

json Pod(const std::string& ns, const std::string& name, const std::string& node = "",
         json labels = json::object()) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
              {"spec", {{"containers", json::array()}}},
              {"status", {{"phase", "Pending"}}}};
  if (!node.empty()) pod["spec"]["nodeName"] = node;
  return pod;
}

std::vector<std::string> Names(const ListResult& r) {
  std::vector<std::string> out;
  for (const auto& o : r.items)
    out.push_back(o->name);
  return out;
}

TEST(StoreTest, AssignsIncreasingResourceVersionsAndStripsTypeMeta) {
  Store store(100);
  auto a = store.Create("/pods", Pod("ns", "a"), kPodFields);
  auto b = store.Create("/pods", Pod("ns", "b", "node-1", {{"app", "web"}}), kPodFields);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->object->resource_version, 1u);
  EXPECT_EQ(b->object->resource_version, 2u);
  EXPECT_EQ(store.current_resource_version(), 2u);
  EXPECT_EQ(b->object->key, "ns/b");
  EXPECT_EQ(b->object->labels.at("app"), "web");
  EXPECT_EQ(b->object->fields, (std::vector<std::string>{"node-1", "Pending"}));
  json stored = b->object->Parse();
  EXPECT_FALSE(stored.contains("kind"));
  EXPECT_FALSE(stored.contains("apiVersion"));
  EXPECT_EQ(stored["metadata"]["resourceVersion"], "2");
  EXPECT_EQ(json::parse(WithTypeMeta(b->object->json, "v1", "Pod"))["kind"], "Pod");
}

TEST(StoreTest, CreateTwiceIsAlreadyExists) {
  Store store(100);
  ASSERT_TRUE(store.Create("/pods", Pod("ns", "a"), kPodFields).ok());
  auto again = store.Create("/pods", Pod("ns", "a"), kPodFields);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), 409);
  EXPECT_EQ(store.current_resource_version(), 1u);
}

TEST(StoreTest, UpdateAndDeleteCheckTheExpectedResourceVersion) {
  Store store(100);
  ASSERT_TRUE(store.Create("/pods", Pod("ns", "a"), kPodFields).ok());
  auto stale = store.Update("/pods", "ns/a", 7, Pod("ns", "a", "n"), kPodFields);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code(), 409);
  auto updated = store.Update("/pods", "ns/a", 1, Pod("ns", "a", "n"), kPodFields);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->prev->resource_version, 1u);
  EXPECT_EQ(store.Get("/pods", "ns/a")->fields[0], "n");
  EXPECT_EQ(store.Delete("/pods", "ns/a", 1).error().code(), 409);
  auto deleted = store.Delete("/pods", "ns/a", 2);
  ASSERT_TRUE(deleted.ok());
  // The DELETED state carries the delete's resourceVersion.
  EXPECT_EQ(deleted->object->resource_version, 3u);
  EXPECT_EQ(deleted->object->Parse()["metadata"]["resourceVersion"], "3");
  EXPECT_EQ(store.Get("/pods", "ns/a"), nullptr);
  EXPECT_EQ(store.Delete("/pods", "ns/a", 0).error().code(), 404);
  EXPECT_EQ(store.Update("/pods", "ns/a", 0, Pod("ns", "a"), kPodFields).error().code(), 404);
}

TEST(StoreTest, ListsInKeyOrderWithPrefixPaginationAndFilter) {
  Store store(100);
  for (const char* ns : {"b", "a-b", "a"}) {
    for (const char* name : {"y", "x"})
      ASSERT_TRUE(store.Create("/pods", Pod(ns, name), {}).ok());
  }
  ListRequest all{.storage_key = "/pods"};
  auto everything = store.List(all);
  ASSERT_TRUE(everything.ok());
  // etcd key order: "a-b/" sorts before "a/" ('-' < '/').
  std::vector<std::string> keys;
  for (const auto& o : everything->items)
    keys.push_back(o->key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a-b/x", "a-b/y", "a/x", "a/y", "b/x", "b/y"}));

  ListRequest ns_a{.storage_key = "/pods", .prefix = "a/"};
  EXPECT_EQ(Names(*store.List(ns_a)), (std::vector<std::string>{"x", "y"}));

  ListRequest page{.storage_key = "/pods", .limit = 4};
  auto first = store.List(page);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->items.size(), 4u);
  EXPECT_TRUE(first->more);
  EXPECT_EQ(first->remaining, 2);
  EXPECT_EQ(first->last_key, "a/y");
  page.start_after = first->last_key;
  auto second = store.List(page);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(Names(*second), (std::vector<std::string>{"x", "y"}));
  EXPECT_FALSE(second->more);

  ListRequest filtered{.storage_key = "/pods",
                       .filter = [](const StoredObject& o) { return o.name == "y"; }};
  EXPECT_EQ(store.List(filtered)->items.size(), 3u);
}

TEST(StoreTest, ListsTheStateAtAnOlderResourceVersion) {
  Store store(100);
  ASSERT_TRUE(store.Create("/pods", Pod("ns", "a"), kPodFields).ok());                   // 1
  ASSERT_TRUE(store.Create("/pods", Pod("ns", "b"), kPodFields).ok());                   // 2
  ASSERT_TRUE(store.Create("/cms", Pod("ns", "other"), {}).ok());                        // 3
  ASSERT_TRUE(store.Update("/pods", "ns/a", 0, Pod("ns", "a", "n1"), kPodFields).ok());  // 4
  ASSERT_TRUE(store.Delete("/pods", "ns/b", 0).ok());                                    // 5
  ASSERT_TRUE(store.Create("/pods", Pod("ns", "c"), kPodFields).ok());                   // 6

  ListRequest at3{.storage_key = "/pods", .at_resource_version = 3};
  auto old = store.List(at3);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->resource_version, 3u);
  EXPECT_EQ(Names(*old), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(old->items[0]->fields[0], "");  // before the update

  auto now = store.List({.storage_key = "/pods"});
  EXPECT_EQ(Names(*now), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(now->items[0]->fields[0], "n1");

  // A page of the snapshot resumes from the key after the first page.
  ListRequest page{.storage_key = "/pods", .start_after = "ns/a", .at_resource_version = 3};
  EXPECT_EQ(Names(*store.List(page)), (std::vector<std::string>{"b"}));

  ListRequest future{.storage_key = "/pods", .at_resource_version = 99};
  EXPECT_EQ(store.List(future).error().code(), 504);
  store.Compact();
  auto expired = store.List(at3);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code(), 410);
  EXPECT_EQ(expired.error().reason(), "Expired");
  EXPECT_TRUE(store.List({.storage_key = "/pods", .at_resource_version = 6}).ok());
}

TEST(StoreTest, WaitForEventsReturnsEventsInOrderAndExpiresOldCursors) {
  Store store(3);
  FakeClock clock;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store.Create("/pods", Pod("ns", "p" + std::to_string(i)), {}).ok());
  }
  std::vector<StoreEvent> events;
  auto far = clock.Now() + 1h;
  // Only RVs 3..5 are retained: a cursor at 1 is too old, 2 is fine.
  EXPECT_FALSE(store.WaitForEvents(1, 10, far, clock, nullptr, &events));
  ASSERT_TRUE(store.WaitForEvents(2, 10, far, clock, nullptr, &events));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].resource_version, 3u);
  EXPECT_EQ(events[2].resource_version, 5u);
  EXPECT_EQ(events[2].type, EventType::kAdded);
  EXPECT_EQ(events[2].object->name, "p4");
  EXPECT_EQ(store.compacted_resource_version(), 2u);

  // Nothing new: returns at the deadline with no events.
  events.clear();
  ASSERT_TRUE(store.WaitForEvents(5, 10, clock.Now(), clock, nullptr, &events));
  EXPECT_TRUE(events.empty());

  // A waiter wakes up for a write from another thread.
  std::thread writer([&] {
    while (clock.waiters() == 0)
      std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(store.Update("/pods", "ns/p4", 0, Pod("ns", "p4", "n"), {}).ok());
  });
  ASSERT_TRUE(store.WaitForEvents(5, 10, far, clock, nullptr, &events));
  writer.join();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::kModified);
  EXPECT_EQ(events[0].prev->resource_version, 5u);

  store.Compact();
  events.clear();
  EXPECT_FALSE(store.WaitForEvents(5, 10, far, clock, nullptr, &events));
  EXPECT_TRUE(store.WaitForEvents(6, 10, clock.Now(), clock, nullptr, &events));
}

TEST(StoreTest, KeysWithPrefixSpansResources) {
  Store store(10);
  ASSERT_TRUE(store.Create("/pods", Pod("ns", "a"), {}).ok());
  ASSERT_TRUE(store.Create("/configmaps", Pod("ns", "b"), {}).ok());
  ASSERT_TRUE(store.Create("/pods", Pod("ns2", "c"), {}).ok());
  auto keys = store.KeysWithPrefix("ns/");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(store.object_count(), 3u);
}

TEST(StoreTest, FieldValueReadsDottedPaths) {
  json event = {{"source", {{"component", "kubelet"}}},
                {"spec", {{"unschedulable", true}, {"replicas", 3}}},
                {"reason", "Started"}};
  EXPECT_EQ(FieldValue(event, "source"), "kubelet");
  EXPECT_EQ(FieldValue(event, "spec.unschedulable"), "true");
  EXPECT_EQ(FieldValue(event, "spec.replicas"), "3");
  EXPECT_EQ(FieldValue(event, "reason"), "Started");
  EXPECT_EQ(FieldValue(event, "spec.missing"), "");
  EXPECT_EQ(FieldValue(event, "reason.deeper"), "");
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
