#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/object_golden.h"
#include "apiserver/patch.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;
using testing::LoadGolden;
using testing::RequestBody;
using testing::ResponseBody;
using testing::WithoutVolatile;

json Smp(const char* doc, const char* patch, const char* kind = "Pod") {
  auto result = ApplyStrategicMergePatch(json::parse(doc), patch, kind);
  EXPECT_TRUE(result.ok()) << result.error().ToString();
  return result.ok() ? *result : json();
}

constexpr const char* kPod = R"({
  "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x", "y"]},
  "spec": {
    "containers": [
      {"name": "main", "image": "app:1", "ports": [{"containerPort": 80, "protocol": "TCP"}],
       "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
      {"name": "side", "image": "side:1"}
    ],
    "volumes": [{"name": "v1", "emptyDir": {}}],
    "tolerations": [{"key": "k", "operator": "Exists"}]
  }
})";

TEST(StrategicMergeTest, GoldenLabelPatch) {
  const json golden = LoadGolden("29-patch-strategic");
  const json before = ResponseBody(LoadGolden("27-patch-json"));
  auto result = ApplyStrategicMergePatch(before, RequestBody(golden).dump(), "Pod");
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(WithoutVolatile(*result, golden), WithoutVolatile(ResponseBody(golden), golden));
}

TEST(StrategicMergeTest, ContainersMergeByName) {
  const json out = Smp(kPod, R"({"spec":{"containers":[{"name":"side","image":"side:2"}]}})");
  const json& containers = out["spec"]["containers"];
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["name"], "main");
  EXPECT_EQ(containers[0]["image"], "app:1");
  EXPECT_EQ(containers[1]["image"], "side:2");
}

TEST(StrategicMergeTest, NewListItemIsAppended) {
  const json out = Smp(kPod, R"({"spec":{"containers":[{"name":"third","image":"t:1"}]}})");
  const json& containers = out["spec"]["containers"];
  ASSERT_EQ(containers.size(), 3u);
  EXPECT_EQ(containers[2]["name"], "third");
}

TEST(StrategicMergeTest, NestedListsMergeByTheirOwnKeys) {
  const json out = Smp(kPod, R"({"spec":{"containers":[{"name":"main",
      "env":[{"name":"B","value":"changed"},{"name":"C","value":"3"}],
      "ports":[{"containerPort":80,"name":"http"},{"containerPort":443}]}]}})");
  const json& main = out["spec"]["containers"][0];
  EXPECT_EQ(main["env"], json::parse(R"([{"name":"A","value":"1"},
      {"name":"B","value":"changed"},{"name":"C","value":"3"}])"));
  EXPECT_EQ(main["ports"], json::parse(R"([{"containerPort":80,"protocol":"TCP","name":"http"},
      {"containerPort":443}])"));
}

TEST(StrategicMergeTest, DeleteDirectiveRemovesListItem) {
  const json out = Smp(kPod, R"({"spec":{"containers":[{"name":"side","$patch":"delete"}]}})");
  ASSERT_EQ(out["spec"]["containers"].size(), 1u);
  EXPECT_EQ(out["spec"]["containers"][0]["name"], "main");
}

TEST(StrategicMergeTest, ReplaceDirectiveReplacesList) {
  const json out =
      Smp(kPod, R"({"spec":{"volumes":[{"name":"v2","emptyDir":{}},{"$patch":"replace"}]}})");
  EXPECT_EQ(out["spec"]["volumes"], json::parse(R"([{"name":"v2","emptyDir":{}}])"));
}

TEST(StrategicMergeTest, ReplaceAndDeleteDirectivesOnMaps) {
  json out = Smp(kPod, R"({"metadata":{"labels":{"b":"2","$patch":"replace"}}})");
  EXPECT_EQ(out["metadata"]["labels"], json::parse(R"({"b":"2"})"));
  out = Smp(kPod, R"({"metadata":{"labels":{"$patch":"delete"}}})");
  EXPECT_EQ(out["metadata"]["labels"], json::object());
}

TEST(StrategicMergeTest, NullDeletesAKey) {
  const json out = Smp(kPod, R"({"metadata":{"labels":{"a":null,"b":"2"}}})");
  EXPECT_EQ(out["metadata"]["labels"], json::parse(R"({"b":"2"})"));
}

TEST(StrategicMergeTest, NullsInNewValuesAreDropped) {
  const json out = Smp(kPod, R"({"metadata":{"annotations":{"x":"1","y":null}}})");
  EXPECT_EQ(out["metadata"]["annotations"], json::parse(R"({"x":"1"})"));
}

TEST(StrategicMergeTest, TolerationsAreReplaced) {
  const json out = Smp(kPod, R"({"spec":{"tolerations":[{"key":"other","operator":"Exists"}]}})");
  EXPECT_EQ(out["spec"]["tolerations"], json::parse(R"([{"key":"other","operator":"Exists"}])"));
}

TEST(StrategicMergeTest, FinalizersMergeAsASet) {
  const json out = Smp(kPod, R"({"metadata":{"finalizers":["y","z"]}})");
  EXPECT_EQ(out["metadata"]["finalizers"], json::parse(R"(["x","y","z"])"));
}

TEST(StrategicMergeTest, DeleteFromPrimitiveList) {
  const json out = Smp(kPod, R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["x"]}})");
  EXPECT_EQ(out["metadata"]["finalizers"], json::parse(R"(["y"])"));
}

TEST(StrategicMergeTest, SetElementOrderReordersTheList) {
  const json out = Smp(kPod, R"({"spec":{
      "$setElementOrder/containers":[{"name":"side"},{"name":"main"}],
      "containers":[{"name":"main","image":"app:2"}]}})");
  const json& containers = out["spec"]["containers"];
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["name"], "side");
  EXPECT_EQ(containers[1]["name"], "main");
  EXPECT_EQ(containers[1]["image"], "app:2");
}

TEST(StrategicMergeTest, RetainKeysClearsOtherKeys) {
  const json out =
      Smp(R"({"spec":{"strategy":{"type":"RollingUpdate",
      "rollingUpdate":{"maxSurge":1}}}})",
          R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})", "Deployment");
  EXPECT_EQ(out["spec"]["strategy"], json::parse(R"({"type":"Recreate"})"));
}

TEST(StrategicMergeTest, RetainKeysMustCoverThePatch) {
  auto result = ApplyStrategicMergePatch(json::parse(R"({"spec":{}})"),
                                         R"({"spec":{"$retainKeys":["a"],"b":1}})", "Pod");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), 422);
}

TEST(StrategicMergeTest, UnknownKindListsAreReplacedLikeMergePatch) {
  const json out = Smp(R"({"spec":{"items":[{"name":"a"},{"name":"b"}]}})",
                       R"({"spec":{"items":[{"name":"c"}]}})", "Widget");
  EXPECT_EQ(out["spec"]["items"], json::parse(R"([{"name":"c"}])"));
}

TEST(StrategicMergeTest, WorkloadTemplatesMergeContainersByName) {
  const json out = Smp(
      R"({"spec":{"template":{"spec":{"containers":[
      {"name":"a","image":"1"},{"name":"b","image":"1"}]}}}})",
      R"({"spec":{"template":{"spec":{"containers":[{"name":"b","image":"2"}]}}}})", "Deployment");
  EXPECT_EQ(out["spec"]["template"]["spec"]["containers"],
            json::parse(R"([{"name":"a","image":"1"},{"name":"b","image":"2"}])"));
}

TEST(StrategicMergeTest, BadInputIsAClearError) {
  struct Case {
    const char* patch;
    int code;
  };
  for (const Case& c : {
           Case{"{", 400},
           Case{"[1]", 400},
           Case{R"({"spec":{"containers":[{"image":"no-name"}]}})", 400},
           Case{R"({"spec":{"containers":[{"$patch":"delete"}]}})", 400},
           Case{R"({"spec":{"containers":[{"name":"main","$patch":"bogus"}]}})", 400},
           Case{R"({"metadata":{"$patch":"bogus"}})", 400},
           Case{R"({"metadata":{"$deleteFromPrimitiveList/finalizers":"x"}})", 400},
           Case{R"({"spec":{"$setElementOrder/containers":{}}})", 400},
       }) {
    auto result = ApplyStrategicMergePatch(json::parse(kPod), c.patch, "Pod");
    ASSERT_FALSE(result.ok()) << c.patch;
    EXPECT_EQ(result.error().code(), c.code) << c.patch;
    EXPECT_FALSE(result.error().message().empty());
  }
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
