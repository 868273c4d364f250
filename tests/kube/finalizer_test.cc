#include "kube/finalizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::kube {
namespace {

using json = nlohmann::json;
constexpr const char* kFinalizer = "gpu-autoscaler.io/cleanup";

json Obj(json finalizers, bool deleting) {
  json meta = {{"name", "p1"}, {"namespace", "ns"}, {"resourceVersion", "42"}};
  if (!finalizers.is_null()) meta["finalizers"] = finalizers;
  if (deleting) meta["deletionTimestamp"] = "2027-01-15T08:00:00Z";
  return {{"metadata", meta}};
}

TEST(FinalizerTest, DecidesTheFourCases) {
  struct Row {
    json obj;
    FinalizerAction want;
  };
  const std::vector<Row> rows = {
      {Obj(nullptr, false), FinalizerAction::kAddFinalizer},
      {Obj(json::array({"other"}), false), FinalizerAction::kAddFinalizer},
      {Obj(json::array({"other", kFinalizer}), false), FinalizerAction::kApply},
      {Obj(json::array({kFinalizer}), true), FinalizerAction::kCleanup},
      {Obj(nullptr, true), FinalizerAction::kNothing},
      {Obj(json::array({"other"}), true), FinalizerAction::kNothing},
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(DecideFinalizerAction(rows[i].obj, kFinalizer), rows[i].want) << "row " << i;
  }
}

TEST(FinalizerTest, AddPatchIsGuardedByResourceVersion) {
  auto patch = AddFinalizerPatch(Obj(nullptr, false), kFinalizer);
  ASSERT_TRUE(patch.ok());
  EXPECT_EQ(json::parse(*patch), json::parse(R"([
      {"op":"test","path":"/metadata/resourceVersion","value":"42"},
      {"op":"add","path":"/metadata/finalizers","value":["gpu-autoscaler.io/cleanup"]}])"));
  patch = AddFinalizerPatch(Obj(json::array({"other"}), false), kFinalizer);
  ASSERT_TRUE(patch.ok());
  EXPECT_EQ(json::parse(*patch), json::parse(R"([
      {"op":"test","path":"/metadata/resourceVersion","value":"42"},
      {"op":"add","path":"/metadata/finalizers/-","value":"gpu-autoscaler.io/cleanup"}])"));
  EXPECT_FALSE(AddFinalizerPatch(json{{"metadata", {{"name", "x"}}}}, kFinalizer).ok());
}

TEST(FinalizerTest, RemovePatchTestsTheIndex) {
  auto patch = RemoveFinalizerPatch(Obj(json::array({"a", kFinalizer, "b"}), true), kFinalizer);
  ASSERT_TRUE(patch.ok());
  EXPECT_EQ(json::parse(*patch), json::parse(R"([
      {"op":"test","path":"/metadata/finalizers/1","value":"gpu-autoscaler.io/cleanup"},
      {"op":"remove","path":"/metadata/finalizers/1"}])"));
  auto missing = RemoveFinalizerPatch(Obj(json::array({"a"}), true), kFinalizer);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace gpu_autoscaler::kube
