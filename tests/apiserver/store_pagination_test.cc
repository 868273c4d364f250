// Paginated lists on the store: metadata.remainingItemCount on every page, in
// the list's scope (cluster or one namespace, with neighbouring namespaces
// that share a key prefix), of the current state and of an older
// resourceVersion that later writes changed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/store.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

json Pod(const std::string& ns, const std::string& name, const std::string& phase = "Pending") {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"status", {{"phase", phase}}}};
}

struct Walk {
  std::vector<int64_t> remaining;  // per page
  std::vector<std::string> keys;   // every item, in order
  bool more_until_last = true;     // `more` on every page but the last
};

// Lists every page of `prefix` at `at` (0: now) with `limit`.
Walk ListPages(const Store& store, const std::string& prefix, int64_t limit, uint64_t at = 0) {
  Walk walk;
  ListRequest req{
      .storage_key = "/pods", .prefix = prefix, .at_resource_version = at, .limit = limit};
  for (int pages = 0; pages < 100; ++pages) {
    auto page = store.List(req);
    EXPECT_TRUE(page.ok());
    if (!page.ok()) break;
    walk.remaining.push_back(page->remaining);
    for (const auto& item : page->items)
      walk.keys.push_back(item->key);
    if (!page->more) break;
    if (page->remaining <= 0) walk.more_until_last = false;
    req.start_after = page->last_key;
    req.at_resource_version = page->resource_version;
  }
  return walk;
}

// Namespaces a-b (2 pods), a (7), a0 (1), b (10), c (4), created interleaved.
// Key order: a-b/x a-b/y a/p0..a/p6 a0/z b/p0..b/p9 c/p0..c/p3 (24 keys).
void Fill(Store& store) {
  for (int i = 0; i < 10; ++i) {
    std::string name = "p" + std::to_string(i);
    ASSERT_TRUE(store.Create("/pods", Pod("b", name), {}).ok());
    if (i < 7) {
      ASSERT_TRUE(store.Create("/pods", Pod("a", name), {}).ok());
    }
    if (i < 4) {
      ASSERT_TRUE(store.Create("/pods", Pod("c", name), {}).ok());
    }
    if (i < 2) {
      ASSERT_TRUE(store.Create("/pods", Pod("a-b", i == 0 ? "x" : "y"), {}).ok());
    }
  }
  ASSERT_TRUE(store.Create("/pods", Pod("a0", "z"), {}).ok());
  // Another resource does not count.
  ASSERT_TRUE(store.Create("/configmaps", Pod("b", "cm"), {}).ok());
}

TEST(StorePaginationTest, RemainingItemCountOnEveryPageOfTheCurrentState) {
  Store store(1000);
  Fill(store);
  Walk all = ListPages(store, "", 5);
  // 24 keys in pages of 5: 19, 14, 9, 4 left, then the last 4 (no more).
  EXPECT_EQ(all.remaining, (std::vector<int64_t>{19, 14, 9, 4, 0}));
  EXPECT_TRUE(all.more_until_last);
  ASSERT_EQ(all.keys.size(), 24u);
  EXPECT_EQ(all.keys[0], "a-b/x");
  EXPECT_EQ(all.keys[9], "a0/z");
  EXPECT_EQ(all.keys[23], "c/p3");

  // Namespace a: neither a-b/ (sorts before a/) nor a0/ (right after) counts.
  Walk a = ListPages(store, "a/", 3);
  EXPECT_EQ(a.remaining, (std::vector<int64_t>{4, 1, 0}));
  EXPECT_EQ(a.keys.size(), 7u);
  // A page that ends exactly at the end of the scope has no continuation.
  Walk a_whole = ListPages(store, "a/", 7);
  EXPECT_EQ(a_whole.remaining, (std::vector<int64_t>{0}));
  EXPECT_EQ(a_whole.keys.size(), 7u);

  Walk b = ListPages(store, "b/", 4);
  EXPECT_EQ(b.remaining, (std::vector<int64_t>{6, 2, 0}));
  EXPECT_EQ(b.keys.size(), 10u);
  Walk c = ListPages(store, "c/", 3);
  EXPECT_EQ(c.remaining, (std::vector<int64_t>{1, 0}));
  Walk none = ListPages(store, "d/", 3);
  EXPECT_EQ(none.remaining, (std::vector<int64_t>{0}));
  EXPECT_TRUE(none.keys.empty());

  // With a filter there is still a next page, but no count.
  ListRequest filtered{.storage_key = "/pods", .limit = 5, .filter = [](const StoredObject& o) {
                         return o.ns != "a";
                       }};
  auto page = store.List(filtered);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->more);
  EXPECT_EQ(page->remaining, 0);
  EXPECT_EQ(page->last_key, "b/p1");
}

TEST(StorePaginationTest, RemainingItemCountOfAnOlderResourceVersion) {
  Store store(1000);
  Fill(store);
  const uint64_t snapshot = store.current_resource_version();
  // After the snapshot: three deletes (one in the first page), an update and
  // three creates (b/new sorts before b/p0, b/zz after b/p9).
  ASSERT_TRUE(store.Delete("/pods", "a/p0", 0).ok());
  ASSERT_TRUE(store.Delete("/pods", "b/p3", 0).ok());
  ASSERT_TRUE(store.Delete("/pods", "c/p0", 0).ok());
  ASSERT_TRUE(store.Update("/pods", "c/p1", 0, Pod("c", "p1", "Running"), {}).ok());
  ASSERT_TRUE(store.Create("/pods", Pod("b", "new"), {}).ok());
  ASSERT_TRUE(store.Create("/pods", Pod("b", "zz"), {}).ok());
  ASSERT_TRUE(store.Create("/pods", Pod("d", "q"), {}).ok());
  ASSERT_LT(snapshot, store.current_resource_version());

  // The snapshot's pages count what existed then: the same as before the writes.
  Walk all_then = ListPages(store, "", 5, snapshot);
  EXPECT_EQ(all_then.remaining, (std::vector<int64_t>{19, 14, 9, 4, 0}));
  EXPECT_TRUE(all_then.more_until_last);
  ASSERT_EQ(all_then.keys.size(), 24u);
  Walk b_then = ListPages(store, "b/", 4, snapshot);
  EXPECT_EQ(b_then.remaining, (std::vector<int64_t>{6, 2, 0}));
  EXPECT_EQ(b_then.keys[3], "b/p3");
  Walk c_then = ListPages(store, "c/", 3, snapshot);
  EXPECT_EQ(c_then.remaining, (std::vector<int64_t>{1, 0}));

  // Now: 24 - 3 + 3 = 24 keys, a different order.
  Walk all_now = ListPages(store, "", 5);
  EXPECT_EQ(all_now.remaining, (std::vector<int64_t>{19, 14, 9, 4, 0}));
  ASSERT_EQ(all_now.keys.size(), 24u);
  EXPECT_EQ(all_now.keys[2], "a/p1");
  EXPECT_EQ(all_now.keys[23], "d/q");
  // b: new p0 p1 p2 p4..p9 zz = 11 keys.
  Walk b_now = ListPages(store, "b/", 4);
  EXPECT_EQ(b_now.remaining, (std::vector<int64_t>{7, 3, 0}));
  EXPECT_EQ(b_now.keys.front(), "b/new");
  EXPECT_EQ(b_now.keys.back(), "b/zz");
  Walk c_now = ListPages(store, "c/", 2);
  EXPECT_EQ(c_now.remaining, (std::vector<int64_t>{1, 0}));

  // A continuation at the snapshot that starts inside the changed keys.
  ListRequest mid{.storage_key = "/pods",
                  .prefix = "b/",
                  .start_after = "b/p2",
                  .at_resource_version = snapshot,
                  .limit = 3};
  auto page = store.List(mid);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 3u);
  EXPECT_EQ(page->items[0]->key, "b/p3");  // deleted since, present then
  EXPECT_EQ(page->last_key, "b/p5");
  EXPECT_EQ(page->remaining, 4);  // p6..p9; not zz
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
