// The store's time to live (kube-apiserver's --event-ttl) driven by a fake
// clock: expiry from the last write, renewal by updates, DELETED events for
// watchers, other resources untouched, memory released, and no TTL at all.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/store.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

json Object(const std::string& ns, const std::string& name, const std::string& reason = "") {
  json obj = {{"apiVersion", "v1"}, {"metadata", {{"name", name}, {"namespace", ns}}}};
  if (!reason.empty()) obj["reason"] = reason;
  return obj;
}

std::vector<std::string> Names(const Store& store, const std::string& storage_key) {
  std::vector<std::string> out;
  auto list = store.List({.storage_key = storage_key});
  EXPECT_TRUE(list.ok());
  for (const auto& o : list->items)
    out.push_back(o->name);
  return out;
}

TEST(StoreTtlTest, ObjectsExpireAfterTheirLastWrite) {
  Store store(1000);
  FakeClock clock;
  const auto t0 = clock.Now();
  store.SetTimeToLive("/events", 1h, clock);
  ASSERT_TRUE(store.Create("/events", Object("ns", "e1", "Scheduled"), {}).ok());  // rv 1
  ASSERT_TRUE(store.Create("/pods", Object("ns", "p"), {}).ok());                  // rv 2
  clock.Step(10min);
  ASSERT_TRUE(store.Create("/events", Object("ns", "e2", "Pulled"), {}).ok());  // rv 3
  EXPECT_EQ(store.NextExpiry(), t0 + 1h);

  // An update 50 minutes in renews e1 until 1h50m.
  clock.Step(40min);
  ASSERT_TRUE(store.Update("/events", "ns/e1", 0, Object("ns", "e1", "Scheduled"), {}).ok());  // 4
  EXPECT_EQ(store.NextExpiry(), t0 + 70min);
  EXPECT_EQ(store.ExpireDue(), 0u);

  // At 1h10m e2 is due; e1 and the pod stay.
  clock.Step(20min);
  const uint64_t before = store.current_resource_version();
  EXPECT_EQ(store.ExpireDue(), 1u);
  EXPECT_EQ(store.current_resource_version(), before + 1);
  EXPECT_EQ(store.Get("/events", "ns/e2"), nullptr);
  EXPECT_EQ(Names(store, "/events"), (std::vector<std::string>{"e1"}));
  EXPECT_EQ(Names(store, "/pods"), (std::vector<std::string>{"p"}));
  EXPECT_EQ(store.object_count(), 2u);
  EXPECT_EQ(store.NextExpiry(), t0 + 110min);

  // A watcher from before the expiry sees it as a delete at a new RV.
  std::vector<StoreEvent> events;
  ASSERT_TRUE(store.WaitForEvents(before, 10, clock.Now(), clock, nullptr, &events));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::kDeleted);
  EXPECT_EQ(events[0].storage_key, "/events");
  EXPECT_EQ(events[0].resource_version, before + 1);
  EXPECT_EQ(events[0].object->key, "ns/e2");
  EXPECT_EQ(events[0].object->Parse()["metadata"]["resourceVersion"], std::to_string(before + 1));
  EXPECT_EQ(events[0].prev->resource_version, 3u);

  // At 1h50m the next write (any resource) expires e1 first.
  clock.Step(40min);
  ASSERT_TRUE(store.Create("/pods", Object("ns", "q"), {}).ok());
  EXPECT_EQ(store.Get("/events", "ns/e1"), nullptr);
  EXPECT_TRUE(Names(store, "/events").empty());
  EXPECT_EQ(Names(store, "/pods"), (std::vector<std::string>{"p", "q"}));
  EXPECT_FALSE(store.NextExpiry().has_value());
  events.clear();
  ASSERT_TRUE(store.WaitForEvents(before + 1, 10, clock.Now(), clock, nullptr, &events));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, EventType::kDeleted);
  EXPECT_EQ(events[0].object->key, "ns/e1");
  EXPECT_EQ(events[1].type, EventType::kAdded);
  EXPECT_EQ(events[1].object->key, "ns/q");

  // The name is free again.
  ASSERT_TRUE(store.Create("/events", Object("ns", "e1", "Scheduled"), {}).ok());
}

TEST(StoreTtlTest, DeletedAndExpiredObjectsLeaveNothingBehind) {
  Store store(/*max_history=*/2);
  FakeClock clock;
  store.SetTimeToLive("/events", 1min, clock);
  std::weak_ptr<const StoredObject> expired;
  {
    auto created = store.Create("/events", Object("ns", "old"), {});
    ASSERT_TRUE(created.ok());
    expired = created->object;
  }
  ASSERT_TRUE(store.Create("/events", Object("ns", "gone"), {}).ok());
  ASSERT_TRUE(store.Delete("/events", "ns/gone", 0).ok());
  EXPECT_EQ(store.NextExpiry(), clock.Now() + 1min);  // only "old" is queued
  clock.Step(1min);
  EXPECT_EQ(store.ExpireDue(), 1u);
  EXPECT_FALSE(store.NextExpiry().has_value());
  EXPECT_EQ(store.object_count(), 0u);
  // Once the bounded history moves past its events the object is freed.
  EXPECT_FALSE(expired.expired());
  ASSERT_TRUE(store.Create("/pods", Object("ns", "a"), {}).ok());
  ASSERT_TRUE(store.Create("/pods", Object("ns", "b"), {}).ok());
  EXPECT_TRUE(expired.expired());
}

TEST(StoreTtlTest, ZeroTimeToLiveKeepsObjectsForever) {
  Store store(100);
  FakeClock clock;
  store.SetTimeToLive("/events", 1h, clock);
  store.SetTimeToLive("/events", 0s, clock);
  ASSERT_TRUE(store.Create("/events", Object("ns", "e"), {}).ok());
  EXPECT_FALSE(store.NextExpiry().has_value());
  clock.Step(24h * 365);
  EXPECT_EQ(store.ExpireDue(), 0u);
  ASSERT_TRUE(store.Create("/pods", Object("ns", "p"), {}).ok());
  EXPECT_NE(store.Get("/events", "ns/e"), nullptr);
  // A store that was never given a time to live keeps everything too.
  Store plain(100);
  ASSERT_TRUE(plain.Create("/events", Object("ns", "e"), {}).ok());
  EXPECT_EQ(plain.ExpireDue(), 0u);
  EXPECT_FALSE(plain.NextExpiry().has_value());
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
