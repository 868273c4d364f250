#include "apiserver/validation.h"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/defaults.h"
#include "apiserver/object_golden.h"
#include "apiserver/validation_internal.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;
using testing::LoadGolden;
using testing::RequestBody;
using testing::ResponseBody;

const ValidationTarget kPods{"", "v1", "pods", "Pod", true, ""};
const ValidationTarget kWidgets{
    "example.gpuautoscaler.io", "v1alpha1", "widgets", "Widget", true, ""};

// A pod as the server validates it: decoded, defaulted, namespace set.
json DefaultedPod(json pod) {
  ApplyDefaults("", "Pod", pod);
  pod["metadata"]["namespace"] = "gpu-golden";
  return pod;
}

json WidgetSchema() {
  return RequestBody(
      LoadGolden("50-create-crd"))["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
}

// Messages of the causes, in order.
std::vector<std::string> Causes(const kube::Error& e) {
  std::vector<std::string> out;
  for (const kube::StatusCause& c : e.details().causes) {
    out.push_back(c.reason + " " + c.field + ": " + c.message);
  }
  return out;
}

TEST(ValidationTest, GoldenPodWithoutContainers) {
  const json golden = LoadGolden("10-create-pod-invalid");
  auto result = ValidateCreate(kPods, DefaultedPod(RequestBody(golden)), nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().ToStatusJson(), ResponseBody(golden));
}

TEST(ValidationTest, GoldenPodsAreValid) {
  for (const char* name : {"08-create-pod", "11-create-pod-2", "14-create-pod-5",
                           "37-create-pod-finalizer", "61-create-gpu-pod-admitted-real"}) {
    auto result = ValidateCreate(kPods, DefaultedPod(RequestBody(LoadGolden(name))), nullptr);
    EXPECT_TRUE(result.ok()) << name << ": " << result.error().ToString();
  }
}

TEST(ValidationTest, GoldenCustomResourceSchemaViolations) {
  const json golden = LoadGolden("53-create-cr-invalid");
  json cr = RequestBody(golden);
  cr["metadata"]["namespace"] = "gpu-golden";
  const json schema = WidgetSchema();
  auto result = ValidateCreate(kWidgets, cr, &schema);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().ToStatusJson(), ResponseBody(golden));
}

TEST(ValidationTest, GoldenCustomResourceIsValidAndPruned) {
  json cr = RequestBody(LoadGolden("52-create-cr"));
  cr["metadata"]["namespace"] = "gpu-golden";
  cr["spec"]["unknown"] = "dropped";
  const json schema = WidgetSchema();
  PruneUnknownFields(schema, cr);
  EXPECT_FALSE(cr["spec"].contains("unknown"));
  EXPECT_EQ(cr["spec"], json::parse(R"({"mode":"mps","size":2})"));
  EXPECT_EQ(cr["metadata"]["name"], "w1");
  auto result = ValidateCreate(kWidgets, cr, &schema);
  EXPECT_TRUE(result.ok()) << result.error().ToString();
}

TEST(ValidationTest, GoldenUpdatesAreValid) {
  const json before = ResponseBody(LoadGolden("08-create-pod"));
  auto result = ValidateUpdate(kPods, before, RequestBody(LoadGolden("24-update-pod")), nullptr);
  EXPECT_TRUE(result.ok()) << result.error().ToString();

  const json schema = WidgetSchema();
  result = ValidateUpdate(kWidgets, ResponseBody(LoadGolden("55-get-cr")),
                          RequestBody(LoadGolden("56-update-cr-spec")), &schema);
  EXPECT_TRUE(result.ok()) << result.error().ToString();
}

TEST(ValidationTest, ContainerErrors) {
  json pod = DefaultedPod(json::parse(R"({"apiVersion":"v1","kind":"Pod",
      "metadata":{"name":"p"},"spec":{"containers":[
        {"name":"Main_1","image":""},
        {"name":"b","image":"x","imagePullPolicy":"Sometimes",
         "ports":[{"containerPort":70000}],
         "resources":{"limits":{"cpu":"1"},"requests":{"cpu":"2"}}},
        {"name":"b","image":"y","volumeMounts":[{"name":"missing","mountPath":"/data"}]}]}})"));
  auto result = ValidateCreate(kPods, pod, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), 422);
  const std::vector<std::string> want = {
      "FieldValueInvalid spec.containers[0].name: Invalid value: \"Main_1\": a lowercase RFC "
      "1123 label must consist of lower case alphanumeric characters or '-', and must start and "
      "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
      "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
      "FieldValueRequired spec.containers[0].image: Required value",
      "FieldValueNotSupported spec.containers[1].imagePullPolicy: Unsupported value: "
      "\"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
      "FieldValueInvalid spec.containers[1].ports[0].containerPort: Invalid value: 70000: must "
      "be between 1 and 65535, inclusive",
      "FieldValueInvalid spec.containers[1].resources.requests: Invalid value: \"2\": must "
      "be less than or equal to cpu limit",
      "FieldValueNotFound spec.containers[2].volumeMounts[0].name: Not found: \"missing\"",
      "FieldValueDuplicate spec.containers[2].name: Duplicate value: \"b\"",
  };
  EXPECT_EQ(Causes(result.error()), want);
  EXPECT_EQ(result.error().message().rfind("Pod \"p\" is invalid: [spec.containers[0].name: ", 0),
            0u);
}

TEST(ValidationTest, ExtendedResourcesMustMatchLimits) {
  json pod = DefaultedPod(json::parse(R"({"metadata":{"name":"p"},"spec":{"containers":[
      {"name":"c","image":"x","resources":{"limits":{"nvidia.com/gpu":"2"},
       "requests":{"nvidia.com/gpu":"1"}}}]}})"));
  auto result = ValidateCreate(kPods, pod, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().details().causes.at(0).message,
            "Invalid value: \"1\": must be equal to nvidia.com/gpu limit");
}

TEST(ValidationTest, MetadataErrors) {
  struct Case {
    const char* metadata;
    const char* cause;
  };
  for (const Case& c : {
           Case{R"({"namespace":"ns"})",
                "FieldValueRequired metadata.name: Required value: name or generateName is "
                "required"},
           Case{R"({"name":"Bad.Name","namespace":"ns"})",
                "FieldValueInvalid metadata.name: Invalid value: \"Bad.Name\": a lowercase RFC "
                "1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character (e.g. 'example.com', "
                "regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"},
           Case{R"({"name":"ok"})", "FieldValueRequired metadata.namespace: Required value"},
           Case{R"({"name":"ok","namespace":"ns","labels":{"app":"bad value"}})",
                "FieldValueInvalid metadata.labels: Invalid value: \"bad value\": a valid label "
                "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                "'my_value',  or '12345', regex used for validation is "
                "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"},
           Case{R"({"name":"ok","namespace":"ns","annotations":{"-x":"v"}})",
                "FieldValueInvalid metadata.annotations: Invalid value: \"-x\": name part must "
                "consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
                "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"},
       }) {
    json pod = DefaultedPod(json::parse(R"({"spec":{"containers":[{"name":"c","image":"x"}]}})"));
    pod["metadata"] = json::parse(c.metadata);
    auto result = ValidateCreate(kPods, pod, nullptr);
    ASSERT_FALSE(result.ok()) << c.metadata;
    EXPECT_EQ(Causes(result.error()), std::vector<std::string>{c.cause}) << c.metadata;
  }
}

TEST(ValidationTest, GenerateNameStandsInForName) {
  json pod = DefaultedPod(json::parse(R"({"metadata":{"generateName":"web-"},
      "spec":{"containers":[{"name":"c","image":"x"}]}})"));
  EXPECT_TRUE(ValidateCreate(kPods, pod, nullptr).ok());
}

TEST(ValidationTest, ResourceVersionOnCreateIsRejected) {
  json pod = DefaultedPod(RequestBody(LoadGolden("08-create-pod")));
  pod["metadata"]["resourceVersion"] = "12";
  auto result = ValidateCreate(kPods, pod, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), 500);
  EXPECT_NE(result.error().message().find("resourceVersion should not be set"), std::string::npos);
}

TEST(ValidationTest, ClusterScopedObjectsHaveNoNamespace) {
  const ValidationTarget namespaces{"", "v1", "namespaces", "Namespace", false, ""};
  json ns = json::parse(R"({"metadata":{"name":"Bad","namespace":"x"}})");
  auto result = ValidateCreate(namespaces, ns, nullptr);
  ASSERT_FALSE(result.ok());
  ASSERT_EQ(result.error().details().causes.size(), 2u);
  EXPECT_EQ(result.error().details().causes[0].field, "metadata.name");
  EXPECT_EQ(result.error().details().causes[1].message, "Forbidden: not allowed on this type");
}

TEST(ValidationTest, PodSpecIsMostlyImmutable) {
  const json before = ResponseBody(LoadGolden("08-create-pod"));
  json image_change = before;
  image_change["spec"]["containers"][0]["image"] = "registry.example/app:2.0";
  EXPECT_TRUE(ValidateUpdate(kPods, before, image_change, nullptr).ok());

  json added_toleration = before;
  added_toleration["spec"]["tolerations"].push_back({{"key", "gpu"}, {"operator", "Exists"}});
  EXPECT_TRUE(ValidateUpdate(kPods, before, added_toleration, nullptr).ok());

  json restart = before;
  restart["spec"]["restartPolicy"] = "Never";
  auto result = ValidateUpdate(kPods, before, restart, nullptr);
  ASSERT_FALSE(result.ok());
  ASSERT_EQ(result.error().details().causes.size(), 1u);
  const kube::StatusCause& cause = result.error().details().causes[0];
  EXPECT_EQ(cause.reason, "FieldValueForbidden");
  EXPECT_EQ(cause.field, "spec");
  EXPECT_EQ(cause.message.rfind("Forbidden: pod updates may not change fields other than "
                                "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                                "`spec.activeDeadlineSeconds` or `spec.tolerations` (only "
                                "additions to existing tolerations)",
                                0),
            0u);
  EXPECT_NE(cause.message.find("restartPolicy: \"Always\" -> \"Never\""), std::string::npos);
}

TEST(ValidationTest, NameIsImmutable) {
  const json before = ResponseBody(LoadGolden("08-create-pod"));
  json renamed = before;
  renamed["metadata"]["name"] = "web-9";
  auto result = ValidateUpdate(kPods, before, renamed, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(Causes(result.error()), std::vector<std::string>{"FieldValueInvalid metadata.name: "
                                                             "Invalid value: \"web-9\": field is "
                                                             "immutable"});
}

TEST(ValidationTest, SchemaChecks) {
  const json schema = json::parse(R"({"type":"object","properties":{
    "spec":{"type":"object","required":["name"],"properties":{
      "name":{"type":"string","minLength":3,"maxLength":5,"pattern":"^[a-z]+$"},
      "count":{"type":"integer","minimum":1,"exclusiveMaximum":true,"maximum":5},
      "ratio":{"type":"number","multipleOf":0.5},
      "score":{"type":"number","minimum":1.5,"exclusiveMaximum":true,"maximum":2.5},
      "limit":{"type":"number","maximum":1000000},
      "huge":{"type":"number","maximum":1e30},
      "small":{"type":"integer","format":"int32","maximum":3e9},
      "tags":{"type":"array","maxItems":2,"uniqueItems":true,"items":{"type":"string"}},
      "opt":{"type":"string","nullable":true},
      "port":{"x-kubernetes-int-or-string":true},
      "labels":{"type":"object","additionalProperties":{"type":"string"}}}}}})");
  struct Case {
    const char* spec;
    std::vector<std::string> causes;
  };
  for (const Case& c : {
           Case{R"({"name":"abc","count":2,"ratio":1.5,"tags":["a"],"opt":null,"port":"http",
                  "labels":{"a":"b"}})",
                {}},
           Case{R"({})", {"FieldValueRequired spec.name: Required value"}},
           Case{R"({"name":7})",
                {"FieldValueInvalid spec.name: Invalid value: 7: spec.name in body must be of "
                 "type string: \"integer\""}},
           Case{R"({"name":"ab"})",
                {"FieldValueInvalid spec.name: Invalid value: \"ab\": spec.name in body should "
                 "be at least 3 chars long"}},
           Case{R"({"name":"ABCD"})",
                {"FieldValueInvalid spec.name: Invalid value: \"ABCD\": spec.name in body should "
                 "match '^[a-z]+$'"}},
           Case{R"({"name":"abc","count":5})",
                {"FieldValueInvalid spec.count: Invalid value: 5: spec.count in body should be "
                 "less than 5"}},
           Case{R"({"name":"abc","count":0})",
                {"FieldValueInvalid spec.count: Invalid value: 0: spec.count in body should be "
                 "greater than or equal to 1"}},
           Case{R"({"name":"abc","count":1.5})",
                {"FieldValueInvalid spec.count: Invalid value: 1.5: spec.count in body must be "
                 "of type integer: \"number\""}},
           // Beyond int64 and beyond 2^53 kube-apiserver holds float64s, which
           // "integer" refuses and multipleOf cannot divide exactly.
           Case{R"({"name":"abc","count":18446744073709551615})",
                {"FieldValueInvalid spec.count: Invalid value: 1.8446744073709552e+19: "
                 "spec.count in body must be of type integer: \"number\""}},
           Case{R"({"name":"abc","count":4.0})", {}},
           Case{R"({"name":"abc","count":1e300})",
                {"FieldValueInvalid spec.count: Invalid value: 1e+300: spec.count in body must "
                 "be of type integer: \"number\""}},
           Case{R"({"name":"abc","ratio":1e20})",
                {"FieldValueInvalid spec.ratio: Invalid value: 1e+20: spec.ratio in body should "
                 "be a multiple of 0.5"}},
           Case{R"({"name":"abc","ratio":0.7})",
                {"FieldValueInvalid spec.ratio: Invalid value: 0.7: spec.ratio in body should be "
                 "a multiple of 0.5"}},
           // An int64 value meets a bound as int64(bound), truncated: 1 passes
           // minimum 1.5 and 2 fails the exclusive maximum 2.5, as in
           // kube-apiserver; a float is compared as a float, and the bound
           // printed as Go prints a float64.
           Case{R"({"name":"abc","score":1})", {}},
           Case{R"({"name":"abc","score":2})",
                {"FieldValueInvalid spec.score: Invalid value: 2: spec.score in body should be "
                 "less than 2"}},
           Case{R"({"name":"abc","score":2.0})", {}},
           Case{R"({"name":"abc","score":1.2})",
                {"FieldValueInvalid spec.score: Invalid value: 1.2: spec.score in body should be "
                 "greater than or equal to 1.5"}},
           Case{R"({"name":"abc","limit":2000000})",
                {"FieldValueInvalid spec.limit: Invalid value: 2000000: spec.limit in body should "
                 "be less than or equal to 1000000"}},
           Case{R"({"name":"abc","limit":2000000.5})",
                {"FieldValueInvalid spec.limit: Invalid value: 2.0000005e+06: spec.limit in body "
                 "should be less than or equal to 1e+06"}},
           // int64(1e30) is the minimum int64 on amd64, so every integer fails.
           Case{R"({"name":"abc","huge":5})",
                {"FieldValueInvalid spec.huge: Invalid value: 5: spec.huge in body should be "
                 "less than or equal to -9223372036854775808"}},
           Case{R"({"name":"abc","huge":5.5})", {}},
           // The schema's type and format play no part: int64(3e9).
           Case{R"({"name":"abc","small":4000000000})",
                {"FieldValueInvalid spec.small: Invalid value: 4000000000: spec.small in body "
                 "should be less than or equal to 3000000000"}},
           // multipleOf 0.5 is int64 0 for an integer value: refused as kube-openapi
           // does since 2023 (v1.20 panics on the division).
           Case{R"({"name":"abc","ratio":3})",
                {"FieldValueInvalid spec.ratio: Invalid value: 0: factor MultipleOf declared for "
                 "spec.ratio must be positive: 0"}},
           Case{R"({"name":"abc","tags":["a","a","b"]})",
                {"FieldValueInvalid spec.tags: Invalid value: [\"a\",\"a\",\"b\"]: spec.tags in "
                 "body should have at most 2 items",
                 "FieldValueInvalid spec.tags: Invalid value: [\"a\",\"a\",\"b\"]: spec.tags in "
                 "body shouldn't contain duplicates"}},
           Case{R"({"name":"abc","tags":[1]})",
                {"FieldValueInvalid spec.tags[0]: Invalid value: 1: spec.tags[0] in body must be "
                 "of type string: \"integer\""}},
           Case{R"({"name":"abc","port":1.5})",
                {"FieldValueInvalid spec.port: Invalid value: 1.5: spec.port in body must be of "
                 "type integer,string: \"number\""}},
           Case{R"({"name":"abc","labels":{"a":1}})",
                {"FieldValueInvalid spec.labels.a: Invalid value: 1: spec.labels.a in body must "
                 "be of type string: \"integer\""}},
           Case{R"({"name":null})",
                {"FieldValueInvalid spec.name: Invalid value: <nil>: spec.name in body must be "
                 "of type string: \"null\""}},
       }) {
    json cr = {{"apiVersion", "example.gpuautoscaler.io/v1alpha1"},
               {"kind", "Widget"},
               {"metadata", {{"name", "w"}, {"namespace", "ns"}}},
               {"spec", json::parse(c.spec)}};
    auto result = ValidateCreate(kWidgets, cr, &schema);
    if (c.causes.empty()) {
      EXPECT_TRUE(result.ok()) << c.spec << ": " << result.error().ToString();
      continue;
    }
    ASSERT_FALSE(result.ok()) << c.spec;
    EXPECT_EQ(Causes(result.error()), c.causes) << c.spec;
  }
}

TEST(ValidationTest, PruningHonoursPreserveUnknownFields) {
  const json schema = json::parse(R"({"type":"object","properties":{
    "spec":{"type":"object","properties":{
      "known":{"type":"string"},
      "free":{"type":"object","x-kubernetes-preserve-unknown-fields":true},
      "list":{"type":"array","items":{"type":"object","properties":{"a":{"type":"string"}}}},
      "map":{"type":"object","additionalProperties":{"type":"object",
             "properties":{"x":{"type":"string"}}}}}}}})");
  json cr = json::parse(R"({"apiVersion":"g/v1","kind":"W","metadata":{"name":"w"},
      "spec":{"known":"k","dropped":1,"free":{"anything":{"goes":true}},
      "list":[{"a":"1","b":"2"}],"map":{"m1":{"x":"1","y":"2"}}},"status":{"x":1}})");
  PruneUnknownFields(schema, cr);
  EXPECT_EQ(cr, json::parse(R"({"apiVersion":"g/v1","kind":"W","metadata":{"name":"w"},
      "spec":{"known":"k","free":{"anything":{"goes":true}},
      "list":[{"a":"1"}],"map":{"m1":{"x":"1"}}}})"));
}

TEST(ValidationTest, OtherBuiltInKinds) {
  const ValidationTarget pdbs{"policy", "v1beta1", "poddisruptionbudgets", "PodDisruptionBudget",
                              true,     ""};
  json pdb = json::parse(R"({"metadata":{"name":"p","namespace":"n"},
      "spec":{"minAvailable":1,"maxUnavailable":"10%"}})");
  auto result = ValidateCreate(pdbs, pdb, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().details().causes.at(0).field, "spec");

  const ValidationTarget configmaps{"", "v1", "configmaps", "ConfigMap", true, ""};
  json cm = json::parse(R"({"metadata":{"name":"c","namespace":"n"},"data":{"bad key":"v"}})");
  result = ValidateCreate(configmaps, cm, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().details().causes.at(0).field, "data[bad key]");
  // data is map[string]string: an object value is refused, as kube-apiserver does.
  cm = json::parse(R"({"metadata":{"name":"c","namespace":"n"},"data":{"k":{"nested":1}}})");
  result = ValidateCreate(configmaps, cm, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().details().causes.at(0).field, "data[k]");

  const ValidationTarget secrets{"", "v1", "secrets", "Secret", true, ""};
  json secret =
      json::parse(R"({"metadata":{"name":"s","namespace":"n"},"data":{"url":"aHR0cDovL3g="}})");
  EXPECT_TRUE(ValidateCreate(secrets, secret, nullptr).ok());
  secret["data"]["url"] = "not base64!";
  result = ValidateCreate(secrets, secret, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().details().causes.at(0).field, "data[url]");
  EXPECT_EQ(result.error().message().find("not base64"), std::string::npos)
      << "secret contents must not appear in errors";
  secret["data"] = {{"url", {{"a", 1}}}};
  EXPECT_FALSE(ValidateCreate(secrets, secret, nullptr).ok());

  const ValidationTarget crds{"apiextensions.k8s.io",     "v1",  "customresourcedefinitions",
                              "CustomResourceDefinition", false, ""};
  json crd = RequestBody(LoadGolden("50-create-crd"));
  EXPECT_TRUE(ValidateCreate(crds, crd, nullptr).ok());
  crd["metadata"]["name"] = "widgets.other.io";
  result = ValidateCreate(crds, crd, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message(),
            "CustomResourceDefinition.apiextensions.k8s.io \"widgets.other.io\" is invalid: "
            "metadata.name: Invalid value: \"widgets.other.io\": must be "
            "spec.names.plural+\".\"+spec.group");
}

// Node, Lease and Event follow kube-apiserver v1.20's rules and messages.
TEST(ValidationTest, NodeLeaseAndEventParity) {
  const ValidationTarget nodes{"", "v1", "nodes", "Node", false, ""};
  json node = json::parse(R"({"metadata":{"name":"gpu-1"},
      "spec":{"providerID":"aws:///us-east-1a/i-1","taints":[
        {"key":"gpu-autoscaler.io/interruption","effect":"NoSchedule"},
        {"key":"gpu-autoscaler.io/interruption","effect":"NoSchedule"},
        {"key":"bad key","effect":"Sometimes"},
        {"key":"k","value":"v","effect":""}]},
      "status":{"capacity":{"nvidia.com/gpu":"8","cpu":"-1"}}})");
  auto result = ValidateCreate(nodes, node, nullptr);
  ASSERT_FALSE(result.ok());
  std::vector<std::string> fields;
  for (const auto& cause : result.error().details().causes)
    fields.push_back(cause.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"spec.taints[1]", "spec.taints[2].key",
                                              "spec.taints[2].effect", "spec.taints[3].effect",
                                              "status.capacity[cpu]"}));
  EXPECT_NE(result.error().message().find("taints must be unique by key and effect pair"),
            std::string::npos);
  EXPECT_NE(result.error().message().find(
                "spec.taints[2].effect: Unsupported value: \"Sometimes\": supported values: "
                "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""),
            std::string::npos)
      << result.error().message();

  json good = json::parse(R"({"metadata":{"name":"gpu-1"},
      "spec":{"providerID":"aws:///us-east-1a/i-1"}})");
  EXPECT_TRUE(ValidateCreate(nodes, good, nullptr).ok());
  json moved = good;
  moved["spec"]["providerID"] = "aws:///us-east-1a/i-2";
  result = ValidateUpdate(nodes, good, moved, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().details().causes.at(0).field, "spec.providerID");
  EXPECT_EQ(result.error().details().causes.at(0).reason, "FieldValueForbidden");
  json unset = good;
  unset["spec"].erase("providerID");
  EXPECT_TRUE(ValidateUpdate(nodes, unset, good, nullptr).ok()) << "from \"\" to valid";

  const ValidationTarget leases{"coordination.k8s.io", "v1", "leases", "Lease", true, ""};
  json lease = json::parse(R"({"metadata":{"name":"l","namespace":"n"},
      "spec":{"leaseDurationSeconds":15,"leaseTransitions":-1}})");
  result = ValidateCreate(leases, lease, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message(),
            "Lease.coordination.k8s.io \"l\" is invalid: spec.leaseTransitions: Invalid value: "
            "-1: must be greater than or equal to 0");

  const ValidationTarget events{"", "v1", "events", "Event", true, ""};
  json event = json::parse(R"({"metadata":{"name":"e.1","namespace":"team-a"},
      "involvedObject":{"kind":"Pod","namespace":"team-b","name":"p"},
      "reason":"Scheduled","message":"m","type":"Normal"})");
  result = ValidateCreate(events, event, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().details().causes.at(0).field, "involvedObject.namespace");
  EXPECT_EQ(result.error().details().causes.at(0).message,
            "Invalid value: \"team-b\": does not match event.namespace");
  event["involvedObject"]["namespace"] = "team-a";
  EXPECT_TRUE(ValidateCreate(events, event, nullptr).ok());
  // A cluster-scoped object's Events live in "default".
  json node_event = json::parse(R"({"metadata":{"name":"e.2","namespace":"default"},
      "involvedObject":{"kind":"Node","name":"gpu-1"},"reason":"Drained"})");
  EXPECT_TRUE(ValidateCreate(events, node_event, nullptr).ok());
  node_event["metadata"]["namespace"] = "gpu-autoscaler-system";
  EXPECT_FALSE(ValidateCreate(events, node_event, nullptr).ok());
  // A new-style Event (eventTime set) needs its reporting fields.
  json new_style = json::parse(R"({"metadata":{"name":"e.3","namespace":"team-a"},
      "involvedObject":{"kind":"Pod","namespace":"team-a","name":"p"},
      "eventTime":"2026-12-05T00:00:00.000000Z","reason":"Scheduled"})");
  result = ValidateCreate(events, new_style, nullptr);
  ASSERT_FALSE(result.ok());
  fields.clear();
  for (const auto& cause : result.error().details().causes)
    fields.push_back(cause.field);
  EXPECT_EQ(fields,
            (std::vector<std::string>{"reportingController", "reportingInstance", "action"}));
}

TEST(ValidationTest, NameHelpers) {
  EXPECT_EQ(ValidateDns1123Label("ok-1"), "");
  EXPECT_NE(ValidateDns1123Label("a.b"), "");
  EXPECT_EQ(ValidateDns1123Label(std::string(64, 'a')), "must be no more than 63 characters");
  EXPECT_EQ(ValidateDns1123Subdomain("a.b-c.d"), "");
  EXPECT_NE(ValidateDns1123Subdomain("a..b"), "");
  EXPECT_NE(ValidateDns1123Subdomain("-a"), "");
}

// Go's %v of a float64, which field errors print bad numbers with: shortest
// digits, %e form from exponent 6 on. Values beyond int64 once crashed here
// (an out-of-range conversion, found by job_object_fuzz).
TEST(ValidationTest, FloatValuesPrintAsGoPrintsThem) {
  using validation_internal::GoValue;
  const std::pair<const char*, const char*> cases[] = {
      {"50.0", "50"},
      {"1.5", "1.5"},
      {"-0.7", "-0.7"},
      {"0.0001", "0.0001"},
      {"0.00001", "1e-05"},
      {"999999.5", "999999.5"},
      {"1000000.0", "1e+06"},
      {"1234567.0", "1.234567e+06"},
      {"666666666666666666667", "6.666666666666666e+20"},
      {"1152921504606846976.0", "1.152921504606847e+18"},
      {"1e300", "1e+300"},
      {"-0.0", "-0"},
  };
  for (const auto& [text, want] : cases) {
    const nlohmann::json v = nlohmann::json::parse(text);
    ASSERT_TRUE(v.is_number_float()) << text;
    EXPECT_EQ(GoValue(v), want) << text;
  }
  EXPECT_EQ(GoValue(nlohmann::json(7)), "7");
  EXPECT_EQ(GoValue(nlohmann::json("x")), "\"x\"");
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
