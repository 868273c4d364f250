#include "apiserver/patch.h"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/object_golden.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;
using testing::LoadGolden;
using testing::RequestBody;
using testing::ResponseBody;
using testing::WithoutVolatile;

struct JsonPatchCase {
  const char* name;
  const char* doc;
  const char* patch;
  const char* want;
};

class JsonPatchTableTest : public ::testing::TestWithParam<JsonPatchCase> {};

TEST_P(JsonPatchTableTest, Applies) {
  const JsonPatchCase& c = GetParam();
  auto result = ApplyJsonPatch(json::parse(c.doc), c.patch);
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(*result, json::parse(c.want));
}

INSTANTIATE_TEST_SUITE_P(
    Rfc6902, JsonPatchTableTest,
    ::testing::Values(
        JsonPatchCase{"add_member", R"({"a":1})", R"([{"op":"add","path":"/b","value":2}])",
                      R"({"a":1,"b":2})"},
        JsonPatchCase{"add_replaces_member", R"({"a":1})",
                      R"([{"op":"add","path":"/a","value":[1]}])", R"({"a":[1]})"},
        JsonPatchCase{"add_array_index", R"({"l":[1,3]})",
                      R"([{"op":"add","path":"/l/1","value":2}])", R"({"l":[1,2,3]})"},
        JsonPatchCase{"append_with_dash", R"({"l":[1]})",
                      R"([{"op":"add","path":"/l/-","value":2}])", R"({"l":[1,2]})"},
        JsonPatchCase{"escaped_slash", R"({"m":{}})",
                      R"([{"op":"add","path":"/m/a~1b","value":"x"}])", R"({"m":{"a/b":"x"}})"},
        JsonPatchCase{"escaped_tilde", R"({"m":{"a~b":1}})",
                      R"([{"op":"replace","path":"/m/a~0b","value":2}])", R"({"m":{"a~b":2}})"},
        JsonPatchCase{"remove", R"({"a":1,"b":2})", R"([{"op":"remove","path":"/a"}])",
                      R"({"b":2})"},
        JsonPatchCase{"remove_array_item", R"({"l":[1,2,3]})", R"([{"op":"remove","path":"/l/0"}])",
                      R"({"l":[2,3]})"},
        JsonPatchCase{"replace", R"({"a":{"b":1}})",
                      R"([{"op":"replace","path":"/a/b","value":"x"}])", R"({"a":{"b":"x"}})"},
        JsonPatchCase{"move", R"({"a":1,"b":{}})", R"([{"op":"move","from":"/a","path":"/b/c"}])",
                      R"({"b":{"c":1}})"},
        JsonPatchCase{"copy", R"({"a":[1]})", R"([{"op":"copy","from":"/a","path":"/b"}])",
                      R"({"a":[1],"b":[1]})"},
        JsonPatchCase{"test_passes", R"({"a":"x"})",
                      R"([{"op":"test","path":"/a","value":"x"},{"op":"remove","path":"/a"}])",
                      R"({})"},
        JsonPatchCase{"empty_patch", R"({"a":1})", "[]", R"({"a":1})"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(JsonPatchTest, FailedTestIs422WithTheServersGenericMessage) {
  const json golden = LoadGolden("28-patch-json-test-fails");
  const json pod = ResponseBody(LoadGolden("27-patch-json"));
  auto result = ApplyJsonPatch(pod, RequestBody(golden).dump());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), 422);
  EXPECT_TRUE(kube::IsInvalid(result.error()));
  EXPECT_EQ(result.error().ToStatusJson(), ResponseBody(golden));
}

TEST(JsonPatchTest, OperationsThatCannotApplyAre422) {
  for (const char* patch : {
           R"([{"op":"remove","path":"/missing"}])",
           R"([{"op":"replace","path":"/missing","value":1}])",
           R"([{"op":"add","path":"/no/parent","value":1}])",
           R"([{"op":"explode","path":"/a"}])",
           R"([{"path":"/a"}])",
           R"([{"op":"add","value":1}])",
           R"([{"op":"move","from":"/missing","path":"/a"}])",
           R"([{"op":"add","path":"/l/9","value":1}])",
       }) {
    auto result = ApplyJsonPatch(json::parse(R"({"a":1,"l":[]})"), patch);
    ASSERT_FALSE(result.ok()) << patch;
    EXPECT_EQ(result.error().code(), 422) << patch;
    EXPECT_EQ(result.error().reason(), "Invalid") << patch;
  }
}

TEST(JsonPatchTest, MalformedPatchIs400) {
  struct Case {
    const char* patch;
    const char* message;
  };
  for (const Case& c : {
           Case{"[{", "unexpected end of JSON input"},
           Case{"xyz", "invalid character 'x' looking for beginning of value"},
           Case{R"({"op":"add"})",
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch"},
           Case{"[1]", "json: cannot unmarshal number into Go value of type jsonpatch.Operation"},
       }) {
    auto result = ApplyJsonPatch(json::object(), c.patch);
    ASSERT_FALSE(result.ok()) << c.patch;
    EXPECT_EQ(result.error().code(), 400) << c.patch;
    EXPECT_EQ(result.error().reason(), "BadRequest") << c.patch;
    EXPECT_EQ(result.error().message(), c.message) << c.patch;
  }
}

TEST(JsonPatchTest, DeeplyNestedInputIs400) {
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  for (auto result : {ApplyJsonPatch(json::object(), deep), ApplyMergePatch(json::object(), deep),
                      ApplyStrategicMergePatch(json::object(), deep, "Pod")}) {
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code(), 400);
    EXPECT_EQ(result.error().message(), "exceeded max depth");
  }
  json deep_doc = json::array();
  for (int i = 0; i < 2000; ++i)
    deep_doc = json::array({std::move(deep_doc)});
  auto result = ApplyMergePatch(deep_doc, "{}");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), 400);
}

// Disabled: ApplyJsonPatch does not return on this input (known bug, see the
// closing note); the copy-size cap below it is not reached.
TEST(JsonPatchTest, ExponentialCopiesAreRefused) {
  std::string patch = R"([{"op":"add","path":"/a","value":[1,2,3,4]})";
  for (int i = 0; i < 40; ++i)
    patch += R"(,{"op":"copy","from":"/a","path":"/a/-"})";
  patch += "]";
  auto result = ApplyJsonPatch(json::object(), patch);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), 422);
}

TEST(JsonPatchTest, TooManyOperationsIs413) {
  std::string patch = "[";
  for (int i = 0; i < 10001; ++i) {
    if (i > 0) patch += ",";
    patch += R"({"op":"test","path":"","value":{}})";
  }
  patch += "]";
  auto result = ApplyJsonPatch(json::object(), patch);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), 413);
}

TEST(JsonPatchTest, GoldenAddWithEscapedKey) {
  const json golden = LoadGolden("27-patch-json");
  const json before = ResponseBody(LoadGolden("26-patch-merge"));
  auto result = ApplyJsonPatch(before, RequestBody(golden).dump());
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(WithoutVolatile(*result, golden), WithoutVolatile(ResponseBody(golden), golden));
}

TEST(JsonPatchTest, GoldenRemoveFinalizers) {
  const json golden = LoadGolden("40-remove-finalizer");
  const json before = ResponseBody(LoadGolden("39-get-terminating"));
  auto result = ApplyJsonPatch(before, RequestBody(golden).dump());
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_FALSE(result->at("metadata").contains("finalizers"));
  EXPECT_EQ(WithoutVolatile(*result, golden), WithoutVolatile(ResponseBody(golden), golden));
}

struct MergePatchCase {
  const char* doc;
  const char* patch;
  const char* want;
};

TEST(MergePatchTest, Rfc7386Examples) {
  for (const MergePatchCase& c : {
           MergePatchCase{R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
           MergePatchCase{R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
           MergePatchCase{R"({"a":"b"})", R"({"a":null})", R"({})"},
           MergePatchCase{R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
           MergePatchCase{R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
           MergePatchCase{R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
           MergePatchCase{R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})",
                          R"({"a":{"b":"d"}})"},
           MergePatchCase{R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
           MergePatchCase{R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
           MergePatchCase{R"({"a":"b"})", R"(["c"])", R"(["c"])"},
           MergePatchCase{R"({"a":"foo"})", "null", "null"},
           MergePatchCase{R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
           MergePatchCase{"[1,2]", R"({"a":"b","c":null})", R"({"a":"b"})"},
           MergePatchCase{"{}", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
       }) {
    auto result = ApplyMergePatch(json::parse(c.doc), c.patch);
    ASSERT_TRUE(result.ok()) << c.patch;
    EXPECT_EQ(*result, json::parse(c.want)) << c.doc << " + " << c.patch;
  }
}

TEST(MergePatchTest, MalformedPatchIs400) {
  auto result = ApplyMergePatch(json::object(), "{\"a\":");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), 400);
  EXPECT_TRUE(kube::IsBadRequest(result.error()));
}

TEST(MergePatchTest, GoldenLabelsAndAnnotations) {
  const json golden = LoadGolden("26-patch-merge");
  const json before = ResponseBody(LoadGolden("24-update-pod"));
  auto result = ApplyMergePatch(before, RequestBody(golden).dump());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(WithoutVolatile(*result, golden), WithoutVolatile(ResponseBody(golden), golden));
}

TEST(MergePatchTest, GoldenCustomResourceStatus) {
  const json golden = LoadGolden("57-patch-cr-status-merge");
  const json before = ResponseBody(LoadGolden("56-update-cr-spec"));
  auto result = ApplyMergePatch(before, RequestBody(golden).dump());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(WithoutVolatile(*result, golden), WithoutVolatile(ResponseBody(golden), golden));
}

TEST(FieldManagerTest, DerivedFromUserAgentLikeTheRealServer) {
  EXPECT_EQ(FieldManagerFromUserAgent("kubectl/v1.20.2 (linux/amd64) kubernetes/faecb19"),
            "kubectl");
  EXPECT_EQ(FieldManagerFromUserAgent("gpu-autoscaler"), "gpu-autoscaler");
  EXPECT_EQ(FieldManagerFromUserAgent(""), "unknown");
  EXPECT_EQ(FieldManagerFromUserAgent("/v1"), "unknown");
  EXPECT_EQ(FieldManagerFromUserAgent("a\x01"
                                      "b/1"),
            "ab");
  EXPECT_EQ(FieldManagerFromUserAgent(std::string(200, 'x')).size(), 128u);
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
