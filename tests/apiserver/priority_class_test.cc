// scheduling.k8s.io/v1 (and v1beta1) PriorityClasses and the Priority admission plugin in
// the embedded server, over real loopback HTTP: the bootstrapped system
// classes, discovery, defaulting and validation, one globalDefault, and the
// plugin resolving a new pod's spec.priority and spec.preemptionPolicy.
#include <curl/curl.h>

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/api_server.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

constexpr char kClasses[] = "/apis/scheduling.k8s.io/v1/priorityclasses";
constexpr char kPods[] = "/api/v1/namespaces/default/pods";

struct Response {
  long status = 0;
  std::string body;
  json Json() const { return json::parse(body, nullptr, false); }
  std::string Message() const { return Json().value("message", ""); }
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Response Do(const std::string& base, const std::string& method, const std::string& path,
            const std::string& body = "", const std::string& type = "application/json") {
  Response r;
  CURL* curl = curl_easy_init();
  const std::string url = base + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30'000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_slist* headers = curl_slist_append(nullptr, ("Content-Type: " + type).c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (!body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (curl_easy_perform(curl) == CURLE_OK)
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return r;
}

json Class(const std::string& name, json fields) {
  json pc = {{"apiVersion", "scheduling.k8s.io/v1"},
             {"kind", "PriorityClass"},
             {"metadata", {{"name", name}}}};
  pc.update(fields);
  return pc;
}

json Pod(const std::string& name, json spec = json::object()) {
  spec["containers"] = json::array({{{"name", "c"}, {"image", "i:1"}}});
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", name}}}, {"spec", spec}};
}

class PriorityClassTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ApiServer::Start(ApiServerOptions{});
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(server).value();
    base_ = server_->url();
  }

  Response Post(const std::string& path, const json& body) {
    return Do(base_, "POST", path, body.dump());
  }
  Response CreateClass(const std::string& name, json fields) {
    return Post(kClasses, Class(name, std::move(fields)));
  }
  Response CreatePod(const std::string& name, json spec = json::object()) {
    return Post(kPods, Pod(name, std::move(spec)));
  }
  Response Merge(const std::string& path, const json& patch) {
    return Do(base_, "PATCH", path, patch.dump(), "application/merge-patch+json");
  }

  std::unique_ptr<ApiServer> server_;
  std::string base_;
};

// A 403 from admission, as kube-apiserver builds it.
void ExpectForbidden(const Response& r, const std::string& message, const std::string& name,
                     const std::string& kind, const std::string& group = "") {
  EXPECT_EQ(r.status, 403) << r.body;
  const json status = r.Json();
  EXPECT_EQ(status.value("kind", ""), "Status");
  EXPECT_EQ(status.value("reason", ""), "Forbidden");
  EXPECT_EQ(status.value("code", 0), 403);
  EXPECT_EQ(status.value("message", ""), message);
  const json details = status.value("details", json::object());
  EXPECT_EQ(details.value("name", ""), name);
  EXPECT_EQ(details.value("kind", ""), kind);
  EXPECT_EQ(details.value("group", ""), group);
}

TEST_F(PriorityClassTest, TheSystemClassesExistAtStartAndCannotBeDeleted) {
  Response list = Do(base_, "GET", kClasses);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.Json()["kind"], "PriorityClassList");
  ASSERT_EQ(list.Json()["items"].size(), 2u);

  Response node = Do(base_, "GET", std::string(kClasses) + "/system-node-critical");
  ASSERT_EQ(node.status, 200) << node.body;
  EXPECT_EQ(node.Json()["value"], 2000001000);
  EXPECT_EQ(node.Json()["preemptionPolicy"], "PreemptLowerPriority");
  EXPECT_EQ(node.Json()["description"],
            "Used for system critical pods that must not be moved from their current node.");
  EXPECT_FALSE(node.Json().contains("globalDefault"));
  EXPECT_EQ(node.Json()["metadata"]["generation"], 1);

  Response cluster = Do(base_, "GET", std::string(kClasses) + "/system-cluster-critical");
  ASSERT_EQ(cluster.status, 200) << cluster.body;
  EXPECT_EQ(cluster.Json()["value"], 2000000000);
  EXPECT_EQ(cluster.Json()["preemptionPolicy"], "PreemptLowerPriority");
  EXPECT_EQ(cluster.Json()["description"],
            "Used for system critical pods that must run in the cluster, but can be moved to "
            "another node if necessary.");

  ExpectForbidden(Do(base_, "DELETE", std::string(kClasses) + "/system-node-critical"),
                  "priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this "
                  "is a system priority class and cannot be deleted",
                  "system-node-critical", "priorityclasses", "scheduling.k8s.io");
  EXPECT_EQ(Do(base_, "GET", std::string(kClasses) + "/system-node-critical").status, 200);
}

TEST_F(PriorityClassTest, DiscoveryListsTheGroupAndTheResource) {
  Response groups = Do(base_, "GET", "/apis");
  ASSERT_EQ(groups.status, 200);
  json scheduling;
  const json all = groups.Json();
  for (const json& g : all["groups"]) {
    if (g["name"] == "scheduling.k8s.io") scheduling = g;
  }
  ASSERT_TRUE(scheduling.is_object()) << groups.body;
  EXPECT_EQ(scheduling["preferredVersion"]["groupVersion"], "scheduling.k8s.io/v1");

  Response resources = Do(base_, "GET", "/apis/scheduling.k8s.io/v1");
  ASSERT_EQ(resources.status, 200) << resources.body;
  const json list = resources.Json()["resources"];
  ASSERT_EQ(list.size(), 1u) << resources.body;  // no subresources
  EXPECT_EQ(list[0]["name"], "priorityclasses");
  EXPECT_EQ(list[0]["kind"], "PriorityClass");
  EXPECT_EQ(list[0]["namespaced"], false);
  EXPECT_EQ(list[0]["shortNames"], json::array({"pc"}));
  EXPECT_EQ(list[0]["verbs"].size(), 8u);
  EXPECT_TRUE(list[0].contains("storageVersionHash"));
}

// v1.20 still serves the deprecated v1beta1 over the same objects (removed
// in 1.22): a class written through either version is read through both,
// and the same rules apply.
TEST_F(PriorityClassTest, TheDeprecatedV1beta1SharesTheObjects) {
  constexpr char kBeta[] = "/apis/scheduling.k8s.io/v1beta1/priorityclasses";
  json beta = Class("legacy", {{"value", 500}});
  beta["apiVersion"] = "scheduling.k8s.io/v1beta1";
  Response created = Post(kBeta, beta);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.Json()["apiVersion"], "scheduling.k8s.io/v1beta1");
  EXPECT_EQ(created.Json()["preemptionPolicy"], "PreemptLowerPriority");
  Response as_v1 = Do(base_, "GET", std::string(kClasses) + "/legacy");
  ASSERT_EQ(as_v1.status, 200) << as_v1.body;
  EXPECT_EQ(as_v1.Json()["apiVersion"], "scheduling.k8s.io/v1");
  EXPECT_EQ(as_v1.Json()["value"], 500);
  Response listed = Do(base_, "GET", kBeta);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.Json()["apiVersion"], "scheduling.k8s.io/v1beta1");
  EXPECT_EQ(listed.Json()["items"].size(), 3u);  // the two system classes too
  // Validation and immutability are the resource's, not the version's.
  json reserved = Class("system-mine", {{"value", 1}});
  reserved["apiVersion"] = "scheduling.k8s.io/v1beta1";
  EXPECT_EQ(Post(kBeta, reserved).status, 422);
  EXPECT_EQ(Merge(std::string(kBeta) + "/legacy", {{"value", 501}}).status, 422);
  // A pod's class is found whichever version created it.
  Response pod = CreatePod("p", {{"priorityClassName", "legacy"}});
  ASSERT_EQ(pod.status, 201) << pod.body;
  EXPECT_EQ(pod.Json()["spec"]["priority"], 500);
  // v1 stays the preferred version.
  Response groups = Do(base_, "GET", "/apis/scheduling.k8s.io");
  ASSERT_EQ(groups.status, 200) << groups.body;
  EXPECT_EQ(groups.Json()["preferredVersion"]["version"], "v1");
  EXPECT_EQ(groups.Json()["versions"].size(), 2u);
}

TEST_F(PriorityClassTest, CreateDefaultsUpdateAndDelete) {
  Response created =
      CreateClass("batch", {{"value", 1000}, {"globalDefault", false}, {"description", ""}});
  ASSERT_EQ(created.status, 201) << created.body;
  const json pc = created.Json();
  EXPECT_EQ(pc["value"], 1000);
  EXPECT_EQ(pc["preemptionPolicy"], "PreemptLowerPriority");
  // Omitted as Go renders them (omitempty).
  EXPECT_FALSE(pc.contains("globalDefault")) << created.body;
  EXPECT_FALSE(pc.contains("description")) << created.body;
  EXPECT_FALSE(pc["metadata"].contains("namespace"));
  EXPECT_EQ(pc["metadata"]["generation"], 1);

  // No value reads as 0, as the Go type has it.
  Response zero = CreateClass("zero", json::object());
  ASSERT_EQ(zero.status, 201) << zero.body;
  EXPECT_EQ(zero.Json()["value"], 0);

  Response patched = Merge(std::string(kClasses) + "/batch", {{"description", "batch jobs"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.Json()["description"], "batch jobs");
  EXPECT_EQ(patched.Json()["metadata"]["generation"], 1);

  EXPECT_EQ(Do(base_, "DELETE", std::string(kClasses) + "/batch").status, 200);
  EXPECT_EQ(Do(base_, "GET", std::string(kClasses) + "/batch").status, 404);
}

TEST_F(PriorityClassTest, ValidationFollowsTheSchedulingRules) {
  Response high = CreateClass("too-high", {{"value", 1000000001}});
  EXPECT_EQ(high.status, 422) << high.body;
  EXPECT_EQ(high.Message(),
            "PriorityClass.scheduling.k8s.io \"too-high\" is invalid: value: Forbidden: maximum "
            "allowed value of a user defined priority is 1000000000");
  EXPECT_EQ(CreateClass("at-max", {{"value", 1000000000}}).status, 201);
  EXPECT_EQ(CreateClass("negative", {{"value", -5}}).status, 201);

  Response overflow = CreateClass("overflow", {{"value", 3000000000LL}});
  EXPECT_EQ(overflow.status, 400) << overflow.body;
  EXPECT_NE(overflow.Message().find("cannot unmarshal number 3000000000 into Go struct field "
                                    "PriorityClass.value of type int32"),
            std::string::npos)
      << overflow.body;
  EXPECT_EQ(CreateClass("text", {{"value", "high"}}).status, 400);

  Response reserved = CreateClass("system-mine", {{"value", 10}});
  EXPECT_EQ(reserved.status, 422) << reserved.body;
  EXPECT_EQ(reserved.Message(),
            "PriorityClass.scheduling.k8s.io \"system-mine\" is invalid: metadata.name: "
            "Forbidden: priority class names with 'system-' prefix are reserved for system use "
            "only. error: system-mine is not a known system priority class");
  Response wrong_value = CreateClass("system-node-critical", {{"value", 5}});
  EXPECT_EQ(wrong_value.status, 422) << wrong_value.body;
  EXPECT_NE(wrong_value.Message().find(
                "error: value of system-node-critical PriorityClass must be 2000001000"),
            std::string::npos)
      << wrong_value.body;

  Response policy = CreateClass("odd", {{"value", 1}, {"preemptionPolicy", "Sometimes"}});
  EXPECT_EQ(policy.status, 422) << policy.body;
  EXPECT_EQ(policy.Message(),
            "PriorityClass.scheduling.k8s.io \"odd\" is invalid: preemptionPolicy: Unsupported "
            "value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\"");
  EXPECT_EQ(CreateClass("polite", {{"value", 1}, {"preemptionPolicy", "Never"}}).status, 201);
}

TEST_F(PriorityClassTest, ValueAndPreemptionPolicyAreImmutable) {
  ASSERT_EQ(CreateClass("batch", {{"value", 1000}}).status, 201);
  const std::string path = std::string(kClasses) + "/batch";
  Response value = Merge(path, {{"value", 2000}});
  EXPECT_EQ(value.status, 422) << value.body;
  EXPECT_EQ(value.Message(),
            "PriorityClass.scheduling.k8s.io \"batch\" is invalid: value: Forbidden: may not be "
            "changed in an update.");
  Response policy = Merge(path, {{"preemptionPolicy", "Never"}});
  EXPECT_EQ(policy.status, 422) << policy.body;
  EXPECT_EQ(policy.Message(),
            "PriorityClass.scheduling.k8s.io \"batch\" is invalid: preemptionPolicy: Invalid "
            "value: \"Never\": field is immutable");
  // A PUT without preemptionPolicy is defaulted to the same value: allowed.
  json got = Do(base_, "GET", path).Json();
  got.erase("preemptionPolicy");
  got["description"] = "d";
  EXPECT_EQ(Do(base_, "PUT", path, got.dump()).status, 200);
}

TEST_F(PriorityClassTest, OnlyOneClassMayBeTheGlobalDefault) {
  ASSERT_EQ(CreateClass("first", {{"value", 10}, {"globalDefault", true}}).status, 201);
  ExpectForbidden(CreateClass("second", {{"value", 20}, {"globalDefault", true}}),
                  "priorityclasses.scheduling.k8s.io \"second\" is forbidden: PriorityClass first "
                  "is already marked as default. Only one default can exist",
                  "second", "priorityclasses", "scheduling.k8s.io");
  // Dry runs are checked the same way.
  Response dry = Do(base_, "POST", std::string(kClasses) + "?dryRun=All",
                    Class("second", {{"value", 20}, {"globalDefault", true}}).dump());
  EXPECT_EQ(dry.status, 403) << dry.body;
  // Marking another one default later is refused too; the default itself may change.
  ASSERT_EQ(CreateClass("second", {{"value", 20}}).status, 201);
  EXPECT_EQ(Merge(std::string(kClasses) + "/second", {{"globalDefault", true}}).status, 403);
  EXPECT_EQ(Merge(std::string(kClasses) + "/first", {{"description", "default"}}).status, 200);
  // Once the default is no longer one, another may take over.
  EXPECT_EQ(Merge(std::string(kClasses) + "/first", {{"globalDefault", false}}).status, 200);
  EXPECT_EQ(Merge(std::string(kClasses) + "/second", {{"globalDefault", true}}).status, 200);
}

TEST_F(PriorityClassTest, PodPriorityComesFromItsClass) {
  ASSERT_EQ(CreateClass("batch-high", {{"value", 1000}, {"preemptionPolicy", "Never"}}).status,
            201);
  Response pod = CreatePod("p", {{"priorityClassName", "batch-high"}});
  ASSERT_EQ(pod.status, 201) << pod.body;
  EXPECT_EQ(pod.Json()["spec"]["priority"], 1000);
  EXPECT_EQ(pod.Json()["spec"]["preemptionPolicy"], "Never");

  // The values the class gives may be sent too.
  Response same = CreatePod(
      "same",
      {{"priorityClassName", "batch-high"}, {"priority", 1000}, {"preemptionPolicy", "Never"}});
  EXPECT_EQ(same.status, 201) << same.body;

  Response system = CreatePod("critical", {{"priorityClassName", "system-node-critical"}});
  ASSERT_EQ(system.status, 201) << system.body;
  EXPECT_EQ(system.Json()["spec"]["priority"], 2000001000);
  EXPECT_EQ(system.Json()["spec"]["preemptionPolicy"], "PreemptLowerPriority");

  // Without a class and without a default class: 0 and PreemptLowerPriority.
  Response plain = CreatePod("plain");
  ASSERT_EQ(plain.status, 201) << plain.body;
  EXPECT_EQ(plain.Json()["spec"]["priority"], 0);
  EXPECT_EQ(plain.Json()["spec"]["preemptionPolicy"], "PreemptLowerPriority");
  EXPECT_FALSE(plain.Json()["spec"].contains("priorityClassName"));

  // An update that leaves the priority out keeps it (the plugin on UPDATE).
  json updated = pod.Json();
  updated["spec"].erase("priority");
  updated["spec"].erase("preemptionPolicy");
  updated["metadata"]["labels"] = {{"a", "b"}};
  Response put = Do(base_, "PUT", std::string(kPods) + "/p", updated.dump());
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.Json()["spec"]["priority"], 1000);
  EXPECT_EQ(put.Json()["spec"]["preemptionPolicy"], "Never");
}

TEST_F(PriorityClassTest, PodsThatDisagreeWithTheirClassAreForbidden) {
  ASSERT_EQ(CreateClass("batch-high", {{"value", 1000}, {"preemptionPolicy", "Never"}}).status,
            201);
  ExpectForbidden(CreatePod("unknown", {{"priorityClassName", "nope"}}),
                  "pods \"unknown\" is forbidden: no PriorityClass with name nope was found",
                  "unknown", "pods");
  ExpectForbidden(CreatePod("p2", {{"priorityClassName", "batch-high"}, {"priority", 5}}),
                  "pods \"p2\" is forbidden: the integer value of priority (5) must not be "
                  "provided in pod spec; priority admission controller computed 1000 from the "
                  "given PriorityClass name",
                  "p2", "pods");
  ExpectForbidden(CreatePod("p3", {{"priorityClassName", "batch-high"},
                                   {"preemptionPolicy", "PreemptLowerPriority"}}),
                  "pods \"p3\" is forbidden: the string value of PreemptionPolicy "
                  "(PreemptLowerPriority) must not be provided in pod spec; priority admission "
                  "controller computed Never from the given PriorityClass name",
                  "p3", "pods");
  // No class: the computed priority is 0, and PreemptLowerPriority.
  ExpectForbidden(CreatePod("p4", {{"priority", 7}}),
                  "pods \"p4\" is forbidden: the integer value of priority (7) must not be "
                  "provided in pod spec; priority admission controller computed 0 from the given "
                  "PriorityClass name",
                  "p4", "pods");
  ExpectForbidden(CreatePod("p5", {{"preemptionPolicy", "Never"}}),
                  "pods \"p5\" is forbidden: the string value of PreemptionPolicy (Never) must "
                  "not be provided in pod spec; priority admission controller computed "
                  "PreemptLowerPriority from the given PriorityClass name",
                  "p5", "pods");
  // Admission runs before the name is generated: the message names the prefix.
  json generated = Pod("", {{"priorityClassName", "nope"}});
  generated["metadata"] = {{"generateName", "worker-"}};
  ExpectForbidden(Post(kPods, generated),
                  "pods \"worker-\" is forbidden: no PriorityClass with name nope was found",
                  "worker-", "pods");
  EXPECT_EQ(Do(base_, "GET", kPods).Json()["items"].size(), 0u);
}

TEST_F(PriorityClassTest, TheGlobalDefaultAppliesToPodsWithoutAClass) {
  ASSERT_EQ(CreateClass("standard",
                        {{"value", 50}, {"globalDefault", true}, {"preemptionPolicy", "Never"}})
                .status,
            201);
  Response pod = CreatePod("p");
  ASSERT_EQ(pod.status, 201) << pod.body;
  EXPECT_EQ(pod.Json()["spec"]["priorityClassName"], "standard");
  EXPECT_EQ(pod.Json()["spec"]["priority"], 50);
  EXPECT_EQ(pod.Json()["spec"]["preemptionPolicy"], "Never");
  // Set by admission: no manager owns them.
  const json owned = pod.Json()["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
  EXPECT_EQ(owned.count("f:priorityClassName"), 0u) << owned.dump();
  EXPECT_EQ(owned.count("f:priority"), 0u) << owned.dump();
  // A named class still wins over the default.
  Response named = CreatePod("named", {{"priorityClassName", "system-cluster-critical"}});
  ASSERT_EQ(named.status, 201) << named.body;
  EXPECT_EQ(named.Json()["spec"]["priority"], 2000000000);
  ExpectForbidden(CreatePod("explicit", {{"priority", 0}}),
                  "pods \"explicit\" is forbidden: the integer value of priority (0) must not be "
                  "provided in pod spec; priority admission controller computed 50 from the "
                  "given PriorityClass name",
                  "explicit", "pods");
}

TEST_F(PriorityClassTest, DryRunCreatesAreAdmittedTheSameWay) {
  const std::string dry = std::string(kPods) + "?dryRun=All";
  Response refused = Do(base_, "POST", dry, Pod("d", {{"priorityClassName", "nope"}}).dump());
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(refused.Message(),
            "pods \"d\" is forbidden: no PriorityClass with name nope was found");
  Response admitted =
      Do(base_, "POST", dry, Pod("d", {{"priorityClassName", "system-node-critical"}}).dump());
  ASSERT_EQ(admitted.status, 201) << admitted.body;
  EXPECT_EQ(admitted.Json()["spec"]["priority"], 2000001000);
  EXPECT_EQ(Do(base_, "GET", std::string(kPods) + "/d").status, 404);
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
