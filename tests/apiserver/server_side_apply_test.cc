#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/defaults.h"
#include "apiserver/object_golden.h"
#include "apiserver/patch.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;
using testing::LoadGolden;
using testing::RequestBody;
using testing::ResponseBody;
using testing::WithoutVolatile;

const ApplyContext kCtx{"2026-11-22T08:17:35Z", "v1", ""};
const ApplyContext kLater{"2026-11-22T09:00:00Z", "v1", ""};

const json& ManagedFields(const json& obj) {
  return obj.at("metadata").at("managedFields");
}

json Entry(const json& obj, const std::string& manager) {
  for (const json& e : ManagedFields(obj)) {
    if (e.at("manager") == manager) return e;
  }
  return nullptr;
}

// The configmap golden 30 creates.
json AppliedConfigMap() {
  const json golden = LoadGolden("30-patch-apply");
  auto result = ApplyServerSide(nullptr, RequestBody(golden).get<std::string>(), "gpu-autoscaler",
                                false, kCtx);
  EXPECT_TRUE(result.ok()) << result.error().ToString();
  json out = result.ok() ? *result : json::object();
  out["metadata"]["namespace"] = "gpu-golden";  // the server fills these in on create
  out["metadata"]["uid"] = "59f00995-1019-4d56-8d07-14f631df62c3";
  out["metadata"]["resourceVersion"] = "424";
  out["metadata"]["creationTimestamp"] = kCtx.time;
  return out;
}

TEST(ServerSideApplyTest, GoldenCreateFromYaml) {
  const json golden = LoadGolden("30-patch-apply");
  const json created = AppliedConfigMap();
  EXPECT_EQ(WithoutVolatile(created, golden), WithoutVolatile(ResponseBody(golden), golden));
  EXPECT_EQ(ManagedFields(created), ManagedFields(ResponseBody(golden)));
}

TEST(ServerSideApplyTest, GoldenConflictWithAnotherManager) {
  const json golden = LoadGolden("31-patch-apply-conflict");
  const json live = AppliedConfigMap();
  auto result =
      ApplyServerSide(&live, RequestBody(golden).get<std::string>(), "other", false, kLater);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(kube::IsConflict(result.error()));
  EXPECT_EQ(result.error().ToStatusJson(), ResponseBody(golden));
}

TEST(ServerSideApplyTest, ForceTakesOwnership) {
  const json live = AppliedConfigMap();
  auto result =
      ApplyServerSide(&live, RequestBody(LoadGolden("31-patch-apply-conflict")).get<std::string>(),
                      "other", true, kLater);
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(result->at("data"), json::parse(R"({"a":"2"})"));
  ASSERT_EQ(ManagedFields(*result).size(), 1u);
  const json other = Entry(*result, "other");
  EXPECT_EQ(other.at("operation"), "Apply");
  EXPECT_EQ(other.at("fieldsV1"), json::parse(R"({"f:data":{"f:a":{}}})"));
  EXPECT_EQ(other.at("time"), kLater.time);
}

TEST(ServerSideApplyTest, SameValueIsSharedWithoutConflict) {
  const json live = AppliedConfigMap();
  auto result = ApplyServerSide(&live,
                                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n"
                                "data:\n  a: '1'\n  b: x\n",
                                "other", false, kLater);
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(ManagedFields(*result).size(), 2u);
  EXPECT_EQ(Entry(*result, "gpu-autoscaler").at("fieldsV1"),
            json::parse(R"({"f:data":{"f:a":{}}})"));
  EXPECT_EQ(Entry(*result, "other").at("fieldsV1"),
            json::parse(R"({"f:data":{"f:a":{},"f:b":{}}})"));
}

TEST(ServerSideApplyTest, FieldsNoLongerAppliedAreRemoved) {
  json live = AppliedConfigMap();
  auto step = ApplyServerSide(&live, R"({"apiVersion":"v1","kind":"ConfigMap",
      "metadata":{"name":"applied"},"data":{"a":"1","b":"2"}})",
                              "gpu-autoscaler", false, kLater);
  ASSERT_TRUE(step.ok()) << step.error().ToString();
  EXPECT_EQ(step->at("data"), json::parse(R"({"a":"1","b":"2"})"));
  auto result = ApplyServerSide(&*step, R"({"apiVersion":"v1","kind":"ConfigMap",
      "metadata":{"name":"applied"},"data":{"b":"2"}})",
                                "gpu-autoscaler", false, kLater);
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(result->at("data"), json::parse(R"({"b":"2"})"));
}

TEST(ServerSideApplyTest, FieldsOwnedByOthersSurviveRemoval) {
  json live = AppliedConfigMap();
  auto shared = ApplyServerSide(&live, "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: '1'\n",
                                "other", false, kLater);
  ASSERT_TRUE(shared.ok()) << shared.error().ToString();
  auto result = ApplyServerSide(&*shared, "apiVersion: v1\nkind: ConfigMap\ndata:\n  c: '3'\n",
                                "gpu-autoscaler", false, kLater);
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(result->at("data"), json::parse(R"({"a":"1","c":"3"})"));
}

TEST(ServerSideApplyTest, ConflictWithAnUpdateManagerNamesVersionAndTime) {
  // A configmap created by a plain POST (operation Update, manager "unknown").
  json live = json::parse(R"({"apiVersion":"v1","kind":"ConfigMap",
      "metadata":{"name":"cm","namespace":"ns"},"data":{"a":"1","b":"1"}})");
  UpdateManagedFields(nullptr, live, "", kCtx);
  auto result = ApplyServerSide(&live, R"({"apiVersion":"v1","kind":"ConfigMap",
      "metadata":{"name":"cm"},"data":{"a":"2","b":"2"}})",
                                "kubectl", false, kLater);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), 409);
  EXPECT_EQ(result.error().message(),
            "Apply failed with 2 conflicts: conflicts with \"unknown\" using v1 at "
            "2026-11-22T08:17:35Z:\n- .data.a\n- .data.b");
  ASSERT_EQ(result.error().details().causes.size(), 2u);
  EXPECT_EQ(result.error().details().causes[0].reason, "FieldManagerConflict");
  EXPECT_EQ(result.error().details().causes[0].message,
            "conflict with \"unknown\" using v1 at 2026-11-22T08:17:35Z");
  EXPECT_EQ(result.error().details().causes[1].field, ".data.b");
}

TEST(ServerSideApplyTest, AssociativeListsMergeByKeyWithKeyedPaths) {
  json live = ResponseBody(LoadGolden("08-create-pod"));
  auto result = ApplyServerSide(&live, R"(
apiVersion: v1
kind: Pod
metadata:
  name: web-1
spec:
  containers:
  - name: main
    image: registry.example/app:2.0
)",
                                "deployer", false, kLater);
  ASSERT_FALSE(result.ok());
  ASSERT_EQ(result.error().details().causes.size(), 1u);
  EXPECT_EQ(result.error().details().causes[0].field, ".spec.containers[name=\"main\"].image");

  result = ApplyServerSide(&live, R"(
apiVersion: v1
kind: Pod
metadata:
  name: web-1
spec:
  containers:
  - name: main
    image: registry.example/app:2.0
)",
                           "deployer", true, kLater);
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  const json& containers = result->at("spec").at("containers");
  ASSERT_EQ(containers.size(), 1u);
  EXPECT_EQ(containers[0].at("image"), "registry.example/app:2.0");
  EXPECT_EQ(containers[0].at("imagePullPolicy"), "IfNotPresent");  // kept from live
  EXPECT_EQ(Entry(*result, "deployer").at("fieldsV1"),
            json::parse(R"({"f:spec":{"f:containers":{"k:{\"name\":\"main\"}":{
                ".":{},"f:image":{},"f:name":{}}}}})"));
  const json unknown = Entry(*result, "unknown").at("fieldsV1");
  EXPECT_FALSE(unknown["f:spec"]["f:containers"]["k:{\"name\":\"main\"}"].contains("f:image"));
}

TEST(ServerSideApplyTest, ObjectWithoutManagedFieldsIsOwnedBeforeFirstApply) {
  const json live = json::parse(R"({"apiVersion":"v1","kind":"ConfigMap",
      "metadata":{"name":"cm"},"data":{"a":"1"}})");
  auto result = ApplyServerSide(&live, R"({"apiVersion":"v1","kind":"ConfigMap","data":{"a":"2"}})",
                                "kubectl", false, kLater);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message().find("before-first-apply"), std::string::npos);
}

TEST(ServerSideApplyTest, BadRequests) {
  const json live = AppliedConfigMap();
  struct Case {
    std::string body;
    std::string manager;
    int code;
  };
  for (const Case& c : {
           Case{"data: [unclosed", "m", 400},
           Case{"- just\n- a list\n", "m", 400},
           Case{"apiVersion: v2\nkind: ConfigMap\n", "m", 400},
           Case{"kind: ConfigMap\n", "m", 400},
           Case{"apiVersion: v1\nkind: Secret\n", "m", 400},
           Case{"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  managedFields: []\n", "m", 400},
           Case{"apiVersion: v1\nkind: ConfigMap\n", "", 422},
           Case{"apiVersion: v1\nkind: ConfigMap\n", std::string(129, 'm'), 422},
       }) {
    auto result = ApplyServerSide(&live, c.body, c.manager, false, kLater);
    ASSERT_FALSE(result.ok()) << c.body;
    EXPECT_EQ(result.error().code(), c.code) << c.body;
  }
  auto result = ApplyServerSide(&live, "apiVersion: v2\nkind: ConfigMap\n", "m", false, kLater);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(
      result.error().message(),
      "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1");
}

TEST(ServerSideApplyTest, YamlScalarsResolveLikeGoYaml) {
  auto result = ApplyServerSide(nullptr, R"(apiVersion: v1
kind: Widget
spec:
  int: 42
  octal: 0755
  float: 1.5
  yes: yes
  off: off
  null: ~
  quoted: "42"
  str: hello
)",
                                "m", false, kCtx);
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  EXPECT_EQ(result->at("spec"), json::parse(R"({"int":42,"octal":493,"float":1.5,"yes":true,
      "off":false,"null":null,"quoted":"42","str":"hello"})"));
}

// --- managedFields for ordinary writes (operation Update) ------------------

// Runs a golden create through the real server's order: decode defaults, then
// field tracking, then admission and strategy.
json CreateLikeTheServer(const std::string& golden_name, const std::string& group,
                         const std::string& api_version) {
  const json golden = LoadGolden(golden_name);
  json obj = RequestBody(golden);
  const std::string kind = obj.at("kind");
  ApplyDecodeDefaults(group, kind, obj);
  UpdateManagedFields(nullptr, obj, "", {kCtx.time, api_version, ""});
  ApplyAdmissionDefaults(group, kind, obj);
  PrepareForCreate(group, kind, obj);
  return obj;
}

struct CreateCase {
  const char* golden;
  const char* group;
  const char* api_version;
};

class UpdateManagedFieldsCreateTest : public ::testing::TestWithParam<CreateCase> {};

TEST_P(UpdateManagedFieldsCreateTest, MatchesTheRecordedEntry) {
  const CreateCase& c = GetParam();
  const json created = CreateLikeTheServer(c.golden, c.group, c.api_version);
  const json golden = LoadGolden(c.golden);
  const json& want = ManagedFields(ResponseBody(golden));
  ASSERT_EQ(ManagedFields(created).size(), 1u);
  const json& got = ManagedFields(created)[0];
  EXPECT_EQ(got.at("fieldsV1"), want[0].at("fieldsV1"));
  EXPECT_EQ(got.at("manager"), "unknown");
  EXPECT_EQ(got.at("operation"), "Update");
  EXPECT_EQ(got.at("apiVersion"), want[0].at("apiVersion"));
  EXPECT_EQ(got.at("fieldsType"), "FieldsV1");
  EXPECT_EQ(got.at("time"), kCtx.time);
}

INSTANTIATE_TEST_SUITE_P(
    Goldens, UpdateManagedFieldsCreateTest,
    ::testing::Values(
        CreateCase{"05-create-namespace", "", "v1"}, CreateCase{"08-create-pod", "", "v1"},
        CreateCase{"14-create-pod-5", "", "v1"}, CreateCase{"37-create-pod-finalizer", "", "v1"},
        CreateCase{"43-create-pdb", "policy", "policy/v1beta1"},
        CreateCase{"46-create-lease", "coordination.k8s.io", "coordination.k8s.io/v1"},
        CreateCase{"49-create-event", "", "v1"},
        CreateCase{"50-create-crd", "apiextensions.k8s.io", "apiextensions.k8s.io/v1"},
        CreateCase{"52-create-cr", "example.gpuautoscaler.io", "example.gpuautoscaler.io/v1alpha1"},
        CreateCase{"61-create-gpu-pod-admitted-real", "", "v1"}),
    [](const auto& info) {
      std::string name = info.param.golden;
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name;
    });

// Replays an update/patch golden: `before` is the stored object.
void ExpectUpdateMatches(const json& before, json after, const std::string& golden_name,
                         const std::string& api_version = "v1") {
  UpdateManagedFields(&before, after, "", {kCtx.time, api_version, ""});
  const json golden = LoadGolden(golden_name);
  const json& want = ManagedFields(ResponseBody(golden));
  ASSERT_EQ(ManagedFields(after).size(), want.size());
  EXPECT_EQ(ManagedFields(after)[0].at("fieldsV1"), want[0].at("fieldsV1"));
}

TEST(UpdateManagedFieldsTest, GoldenPutAddsTheNewLabel) {
  const json before = ResponseBody(LoadGolden("08-create-pod"));
  ExpectUpdateMatches(before, RequestBody(LoadGolden("24-update-pod")), "24-update-pod");
}

TEST(UpdateManagedFieldsTest, GoldenPatchesTrackPatchedFields) {
  const json after_put = ResponseBody(LoadGolden("24-update-pod"));
  json merged = *ApplyMergePatch(after_put, RequestBody(LoadGolden("26-patch-merge")).dump());
  ExpectUpdateMatches(after_put, merged, "26-patch-merge");

  const json after_merge = ResponseBody(LoadGolden("26-patch-merge"));
  json patched = *ApplyJsonPatch(after_merge, RequestBody(LoadGolden("27-patch-json")).dump());
  ExpectUpdateMatches(after_merge, patched, "27-patch-json");
}

TEST(UpdateManagedFieldsTest, GoldenRemovedFinalizersLeaveTheSet) {
  const json before = ResponseBody(LoadGolden("39-get-terminating"));
  json after = *ApplyJsonPatch(before, RequestBody(LoadGolden("40-remove-finalizer")).dump());
  ExpectUpdateMatches(before, after, "40-remove-finalizer");
}

TEST(UpdateManagedFieldsTest, GoldenCustomResourceStatusUpdate) {
  const json before = ResponseBody(LoadGolden("52-create-cr"));
  ExpectUpdateMatches(before, RequestBody(LoadGolden("54-update-cr-status")), "54-update-cr-status",
                      "example.gpuautoscaler.io/v1alpha1");
}

TEST(UpdateManagedFieldsTest, NoChangeKeepsTheEntryAndItsTime) {
  const json before = ResponseBody(LoadGolden("08-create-pod"));
  json after = before;
  UpdateManagedFields(&before, after, "", kLater);
  EXPECT_EQ(ManagedFields(after), ManagedFields(before));
}

TEST(UpdateManagedFieldsTest, SecondManagerTakesChangedFields) {
  const json before = ResponseBody(LoadGolden("08-create-pod"));
  json after = before;
  after["metadata"]["managedFields"] = json::array();  // a client that drops them
  after["spec"]["containers"][0]["image"] = "registry.example/app:2.0";
  UpdateManagedFields(&before, after, "kubectl", kLater);
  ASSERT_EQ(ManagedFields(after).size(), 2u);
  EXPECT_EQ(Entry(after, "kubectl").at("fieldsV1"),
            json::parse(R"({"f:spec":{"f:containers":{"k:{\"name\":\"main\"}":{"f:image":{}}}}})"));
  EXPECT_EQ(Entry(after, "kubectl").at("time"), kLater.time);
  EXPECT_FALSE(Entry(after, "unknown")
                   .at("fieldsV1")["f:spec"]["f:containers"]["k:{\"name\":\"main\"}"]
                   .contains("f:image"));
}

TEST(UpdateManagedFieldsTest, ExplicitResetClearsEntries) {
  const json before = ResponseBody(LoadGolden("08-create-pod"));
  json after = before;
  after["metadata"]["managedFields"] = json::parse("[{}]");
  UpdateManagedFields(&before, after, "", kLater);
  EXPECT_FALSE(after["metadata"].contains("managedFields"));
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
