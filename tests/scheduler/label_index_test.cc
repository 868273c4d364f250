#include "scheduler/label_index.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "scheduler/scheduler_test_util.h"

namespace gpu_autoscaler::scheduler {
namespace {

using testutil::json;

std::shared_ptr<const kube::PodView> Labelled(const std::string& name, json labels) {
  return testutil::Pod({.name = name, .metadata_extra = {{"labels", labels}}});
}

std::set<LabelIndex::Id> Found(const LabelIndex& index, const std::string& key,
                               const std::string& value) {
  const LabelIndex::Ids* ids = index.Find(key, value);
  return ids == nullptr ? std::set<LabelIndex::Id>()
                        : std::set<LabelIndex::Id>(ids->begin(), ids->end());
}

TEST(LabelIndexTest, FilesPodsUnderIndexedKeysOnly) {
  LabelIndex index;
  int a = 0, b = 0, c = 0;  // the handles: any stable addresses
  auto web = Labelled("a", {{"app", "web"}, {"tier", "front"}});
  auto db = Labelled("b", {{"app", "db"}});
  auto bare = Labelled("c", json::object());
  index.Update(&a, web->labels());  // no key yet: nothing filed
  EXPECT_EQ(index.filed_pods(), 0u);
  index.AddKey("app");
  EXPECT_TRUE(index.Indexed("app"));
  EXPECT_FALSE(index.Indexed("tier"));
  for (auto [id, pod] : {std::pair{&a, web}, std::pair{&b, db}, std::pair{&c, bare}})
    index.Update(id, pod->labels());
  EXPECT_EQ(Found(index, "app", "web"), (std::set<LabelIndex::Id>{&a}));
  EXPECT_EQ(Found(index, "app", "db"), (std::set<LabelIndex::Id>{&b}));
  EXPECT_EQ(index.Find("tier", "front"), nullptr);
  EXPECT_EQ(index.filed_pods(), 2u);  // the pod without the key is not filed
}

TEST(LabelIndexTest, ARelabelledPodMovesAndARemovedOneLeaves) {
  LabelIndex index;
  index.AddKey("app");
  index.AddKey("team");
  int a = 0, b = 0;
  index.Update(&a, Labelled("a", {{"app", "web"}, {"team", "x"}})->labels());
  index.Update(&b, Labelled("b", {{"app", "web"}})->labels());
  EXPECT_EQ(Found(index, "app", "web"), (std::set<LabelIndex::Id>{&a, &b}));
  index.Update(&a, Labelled("a", {{"app", "api"}})->labels());
  EXPECT_EQ(Found(index, "app", "web"), (std::set<LabelIndex::Id>{&b}));
  EXPECT_EQ(Found(index, "app", "api"), (std::set<LabelIndex::Id>{&a}));
  EXPECT_EQ(index.Find("team", "x"), nullptr);  // an empty list is dropped
  index.Remove(&b);
  EXPECT_EQ(index.Find("app", "web"), nullptr);
  index.Remove(&b);  // twice is harmless
  index.Update(&a, Labelled("a", json::object())->labels());
  EXPECT_EQ(index.filed_pods(), 0u);
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
