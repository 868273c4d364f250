// Unit tests of the embedded API server's admission webhook calls: rule and
// selector matching, configuration defaults, the AdmissionReview request
// (checked against one recorded from a real kube-apiserver), response
// decoding, failurePolicy, sideEffects/dry-run, Service resolution and
// JSONPatch application, with a scripted poster instead of the network.
#include "apiserver/admission_webhooks.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apiserver/store.h"
#include "common/base64.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

constexpr char kMutatingKey[] = "admissionregistration.k8s.io/mutatingwebhookconfigurations";
constexpr char kValidatingKey[] = "admissionregistration.k8s.io/validatingwebhookconfigurations";

AdmissionAttributes PodAttrs(const std::string& op, const json* obj, const json* old = nullptr,
                             const std::string& sub = "") {
  AdmissionAttributes a;
  a.operation = op;
  a.version = "v1";
  a.resource = "pods";
  a.kind = "Pod";
  a.subresource = sub;
  a.ns = "team-a";
  a.name = "web";
  a.object = obj;
  a.old_object = old;
  return a;
}

json PodObject(json labels = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", "web"}, {"namespace", "team-a"}, {"labels", labels}}},
          {"spec", {{"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
}

json Hook(const std::string& name, json extra = json::object()) {
  json h = {{"name", name},
            {"admissionReviewVersions", {"v1"}},
            {"sideEffects", "None"},
            {"clientConfig", {{"url", "https://127.0.0.1:9443/" + name}}},
            {"rules",
             {{{"operations", {"CREATE", "UPDATE"}},
               {"apiGroups", {""}},
               {"apiVersions", {"v1"}},
               {"resources", {"pods"}}}}}};
  for (auto it = extra.begin(); it != extra.end(); ++it)
    h[it.key()] = it.value();
  return h;
}

json Config(const std::string& name, std::vector<json> hooks) {
  return {{"metadata", {{"name", name}}}, {"webhooks", hooks}};
}

std::string Allow(const json& review, json extra = json::object()) {
  json response = {{"uid", review["request"]["uid"]}, {"allowed", true}};
  for (auto it = extra.begin(); it != extra.end(); ++it)
    response[it.key()] = it.value();
  return json{
      {"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"response", response}}
      .dump();
}

std::string PatchResponse(const json& review, const std::string& patch) {
  return Allow(review, {{"patchType", "JSONPatch"}, {"patch", Base64Encode(patch)}});
}

// A scripted webhook endpoint: records every call and answers with `answer`.
struct FakeWebhooks {
  std::vector<WebhookCall> calls;
  std::function<Result<std::string>(const WebhookCall&, const json& review)> answer =
      [](const WebhookCall&, const json& review) -> Result<std::string> { return Allow(review); };
  WebhookPoster Poster() {
    return [this](const WebhookCall& call) {
      calls.push_back(call);
      return answer(call, json::parse(call.body));
    };
  }
  std::vector<std::string> Paths() const {
    std::vector<std::string> out;
    for (const auto& c : calls)
      out.push_back(c.url.substr(c.url.find('/', 8)));
    return out;
  }
};

TEST(AdmissionConfigTest, DefaultsAndClientConfig) {
  json config = Config(
      "c",
      {Hook("a"), Hook("b", {{"failurePolicy", "Ignore"},
                             {"timeoutSeconds", 99},
                             {"matchPolicy", "Exact"},
                             {"clientConfig",
                              {{"service", {{"namespace", "ns"}, {"name", "svc"}, {"path", "/m"}}},
                               {"caBundle", Base64Encode("PEM")}}}})});
  auto hooks = ParseWebhookConfiguration(config, true);
  ASSERT_EQ(hooks.size(), 2u);
  EXPECT_EQ(hooks[0].configuration, "c");
  EXPECT_FALSE(hooks[0].fail_open) << "failurePolicy defaults to Fail";
  EXPECT_EQ(hooks[0].timeout_seconds, 10);
  EXPECT_TRUE(hooks[0].match_equivalent);
  EXPECT_EQ(hooks[0].url, "https://127.0.0.1:9443/a");
  EXPECT_TRUE(hooks[1].fail_open);
  EXPECT_EQ(hooks[1].timeout_seconds, 30) << "at most 30 seconds";
  EXPECT_FALSE(hooks[1].match_equivalent);
  ASSERT_TRUE(hooks[1].service.has_value());
  EXPECT_EQ(hooks[1].service->port, 443);
  EXPECT_EQ(hooks[1].service->path, "/m");
  EXPECT_EQ(hooks[1].ca_pem, "PEM");

  std::vector<std::string> skipped;
  auto bad = ParseWebhookConfiguration(
      Config("c", {Hook("x", {{"clientConfig", json::object()}}),
                   Hook("y", {{"objectSelector", {{"matchLabels", {{"a", 1}}}}}})}),
      false, &skipped);
  EXPECT_TRUE(bad.empty());
  EXPECT_EQ(skipped.size(), 2u);
}

TEST(AdmissionRulesTest, OperationsGroupsVersionsResources) {
  json pod = PodObject();
  auto create = PodAttrs("CREATE", &pod);
  WebhookRule r{{"CREATE"}, {""}, {"v1"}, {"pods"}, "*"};
  EXPECT_TRUE(RuleMatches(r, create));
  EXPECT_FALSE(RuleMatches(r, PodAttrs("UPDATE", &pod, &pod)));
  EXPECT_TRUE(RuleMatches({{"*"}, {"*"}, {"*"}, {"*"}, "*"}, PodAttrs("DELETE", nullptr, &pod)));
  EXPECT_FALSE(RuleMatches({{"CREATE"}, {"apps"}, {"v1"}, {"pods"}, "*"}, create));
  EXPECT_FALSE(RuleMatches({{"CREATE"}, {""}, {"v2"}, {"pods"}, "*"}, create));
  EXPECT_FALSE(RuleMatches({{"CREATE"}, {""}, {"v1"}, {"services"}, "*"}, create));
  EXPECT_FALSE(RuleMatches({{"*"}, {"*"}, {"*"}, {}, "*"}, create)) << "no resources, no match";
}

TEST(AdmissionRulesTest, Subresources) {
  json pod = PodObject();
  auto status = PodAttrs("UPDATE", &pod, &pod, "status");
  auto main = PodAttrs("UPDATE", &pod, &pod);
  auto rule = [](std::string res) {
    return WebhookRule{{"*"}, {"*"}, {"*"}, {std::move(res)}, "*"};
  };
  EXPECT_FALSE(RuleMatches(rule("pods"), status)) << "pods does not cover pods/status";
  EXPECT_TRUE(RuleMatches(rule("pods/status"), status));
  EXPECT_TRUE(RuleMatches(rule("pods/*"), status));
  EXPECT_TRUE(RuleMatches(rule("*/status"), status));
  EXPECT_FALSE(RuleMatches(rule("*/status"), main));
  EXPECT_TRUE(RuleMatches(rule("*"), main));
  EXPECT_FALSE(RuleMatches(rule("*"), status)) << "* is every resource, no subresource";
  EXPECT_TRUE(RuleMatches(rule("*/*"), status));
  EXPECT_FALSE(RuleMatches(rule("pods/log"), status));
}

TEST(AdmissionRulesTest, Scope) {
  json pod = PodObject();
  auto namespaced = PodAttrs("CREATE", &pod);
  AdmissionAttributes node;
  node.operation = "CREATE";
  node.version = "v1";
  node.resource = "nodes";
  node.kind = "Node";
  node.namespaced = false;
  AdmissionAttributes ns = node;
  ns.resource = "namespaces";
  ns.kind = "Namespace";
  ns.ns = "team-a";  // a Namespace's own name, as the real server sets it
  for (auto* a : {&namespaced, &node, &ns}) {
    EXPECT_TRUE(RuleMatches({{"*"}, {"*"}, {"*"}, {"*"}, "*"}, *a)) << a->resource;
  }
  auto scoped = [](const char* scope) { return WebhookRule{{"*"}, {"*"}, {"*"}, {"*"}, scope}; };
  EXPECT_TRUE(RuleMatches(scoped("Namespaced"), namespaced));
  EXPECT_FALSE(RuleMatches(scoped("Namespaced"), node));
  EXPECT_FALSE(RuleMatches(scoped("Namespaced"), ns)) << "a Namespace is cluster-scoped";
  EXPECT_FALSE(RuleMatches(scoped("Cluster"), namespaced));
  EXPECT_TRUE(RuleMatches(scoped("Cluster"), node));
  EXPECT_TRUE(RuleMatches(scoped("Cluster"), ns));
}

TEST(AdmissionSelectorTest, NamespaceSelector) {
  Webhook hook = ParseWebhookConfiguration(
      Config("c", {Hook("h", {{"namespaceSelector", {{"matchLabels", {{"env", "prod"}}}}}})}),
      true)[0];
  json pod = PodObject();
  auto attrs = PodAttrs("CREATE", &pod);
  std::map<std::string, std::string> prod = {{"env", "prod"}}, dev = {{"env", "dev"}};
  EXPECT_TRUE(NamespaceSelectorMatches(hook, attrs, &prod));
  EXPECT_FALSE(NamespaceSelectorMatches(hook, attrs, &dev));
  EXPECT_FALSE(NamespaceSelectorMatches(hook, attrs, nullptr));

  AdmissionAttributes node;
  node.resource = "nodes";
  node.namespaced = false;
  EXPECT_TRUE(NamespaceSelectorMatches(hook, node, nullptr)) << "cluster-scoped: not filtered";

  json ns_obj = {{"metadata", {{"name", "team-a"}, {"labels", {{"env", "prod"}}}}}};
  AdmissionAttributes ns;
  ns.resource = "namespaces";
  ns.namespaced = false;
  ns.ns = "team-a";
  ns.object = &ns_obj;
  EXPECT_TRUE(NamespaceSelectorMatches(hook, ns, &dev)) << "a Namespace: its own labels";
  ns_obj["metadata"]["labels"]["env"] = "dev";
  EXPECT_FALSE(NamespaceSelectorMatches(hook, ns, &prod));
}

TEST(AdmissionSelectorTest, ObjectSelectorSeesNewAndOldLabels) {
  Webhook hook = ParseWebhookConfiguration(
      Config("c",
             {Hook("h", {{"objectSelector",
                          {{"matchExpressions", {{{"key", "gpu"}, {"operator", "Exists"}}}}}}})}),
      true)[0];
  json with = PodObject({{"gpu", "yes"}}), without = PodObject();
  EXPECT_TRUE(ObjectSelectorMatches(hook, PodAttrs("CREATE", &with)));
  EXPECT_FALSE(ObjectSelectorMatches(hook, PodAttrs("CREATE", &without)));
  EXPECT_TRUE(ObjectSelectorMatches(hook, PodAttrs("UPDATE", &without, &with)))
      << "the label is being removed: the old object matches";
  EXPECT_TRUE(ObjectSelectorMatches(hook, PodAttrs("DELETE", nullptr, &with)));
  EXPECT_FALSE(ObjectSelectorMatches(hook, PodAttrs("DELETE", nullptr, &without)));
}

// The request matches, field for field, one recorded from a real kube-apiserver.
TEST(AdmissionReviewTest, RequestMatchesTheRecordedOne) {
  for (int n : {1, 2}) {
    json golden = json::parse(testing::ReadFileOrDie(testing::SourcePath(
        "tests/golden/kube/admission-review-" + std::to_string(n) + ".json")))["review"];
    const json& want = golden["request"];
    json object = want["object"];
    object["metadata"].erase("creationTimestamp");  // the server has not set it yet
    AdmissionAttributes a;
    a.operation = "CREATE";
    a.version = "v1";
    a.resource = "pods";
    a.kind = "Pod";
    a.ns = "gpu-golden";
    a.name = "trainer-0";
    a.object = &object;
    a.dry_run = want["dryRun"].get<bool>();
    json got = BuildAdmissionReview(a, want["uid"].get<std::string>());
    EXPECT_EQ(got, golden) << "review " << n << "\n got: " << got.dump(1)
                           << "\nwant: " << golden.dump(1);
  }
}

TEST(AdmissionReviewTest, SubresourceAndDelete) {
  json pod = PodObject();
  auto status = BuildAdmissionReview(PodAttrs("UPDATE", &pod, &pod, "status"), "u");
  EXPECT_EQ(status["request"]["subResource"], "status");
  EXPECT_EQ(status["request"]["requestSubResource"], "status");
  EXPECT_EQ(status["request"]["options"]["kind"], "UpdateOptions");
  json options = {{"gracePeriodSeconds", 0}};
  auto del = PodAttrs("DELETE", nullptr, &pod);
  del.options = &options;
  auto review = BuildAdmissionReview(del, "u");
  EXPECT_TRUE(review["request"]["object"].is_null());
  EXPECT_EQ(review["request"]["oldObject"]["metadata"]["name"], "web");
  EXPECT_EQ(review["request"]["options"], json({{"apiVersion", "meta.k8s.io/v1"},
                                                {"kind", "DeleteOptions"},
                                                {"gracePeriodSeconds", 0}}));
  EXPECT_FALSE(review["request"].contains("subResource"));
}

TEST(AdmissionResponseTest, DecodesAndChecks) {
  json review = {{"request", {{"uid", "u-1"}}}};
  auto ok = DecodeAdmissionResponse(
      Allow(review, {{"warnings", {"w1"}},
                     {"patchType", "JSONPatch"},
                     {"patch", Base64Encode(R"([{"op":"add","path":"/x","value":1}])")}}),
      "u-1", true);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_TRUE(ok->allowed);
  EXPECT_EQ(ok->patch, R"([{"op":"add","path":"/x","value":1}])");
  EXPECT_EQ(ok->warnings, std::vector<std::string>{"w1"});

  auto message = [](const Result<AdmissionVerdict>& r) {
    return r.ok() ? std::string("ok") : r.error().message();
  };
  EXPECT_EQ(message(DecodeAdmissionResponse(Allow(review), "other", true)),
            "expected response.uid=\"other\", got \"u-1\"");
  EXPECT_EQ(message(DecodeAdmissionResponse(R"({"apiVersion":"admission.k8s.io/v1beta1",
      "kind":"AdmissionReview","response":{"uid":"u-1","allowed":true}})",
                                            "u-1", true)),
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got "
            "admission.k8s.io/v1beta1, Kind=AdmissionReview");
  EXPECT_EQ(message(DecodeAdmissionResponse(R"({"apiVersion":"admission.k8s.io/v1"})", "u", true)),
            "webhook response was absent");
  EXPECT_EQ(
      message(DecodeAdmissionResponse(Allow(review, {{"patch", Base64Encode("[]")}}), "u-1", true)),
      "webhook returned response.patch but not response.patchType");
  EXPECT_EQ(message(DecodeAdmissionResponse(
                Allow(review, {{"patchType", "JSONPatch"}, {"patch", Base64Encode("[]")}}), "u-1",
                false)),
            "validating webhooks may not return response.patch");
  EXPECT_NE(message(DecodeAdmissionResponse("not json", "u-1", true)), "ok");
  EXPECT_NE(message(DecodeAdmissionResponse(Allow(review, {{"patch", "%%%"}}), "u-1", true)), "ok");
}

TEST(AdmissionErrorsTest, DenialAndCallFailureShapes) {
  auto denied = WebhookDeniedError(
      "deny.example.com",
      {{"code", 403}, {"reason", "Forbidden"}, {"message", "no GPUs on Fridays"}});
  EXPECT_EQ(denied.code(), 403);
  EXPECT_EQ(denied.reason(), "Forbidden");
  EXPECT_EQ(denied.message(),
            "admission webhook \"deny.example.com\" denied the request: no GPUs on Fridays");
  auto low = WebhookDeniedError("d", {{"code", 200}, {"reason", "Because"}});
  EXPECT_EQ(low.code(), 400) << "a denial is at least 400";
  EXPECT_EQ(low.message(), "admission webhook \"d\" denied the request: Because");
  auto bare = WebhookDeniedError("d", nullptr);
  EXPECT_EQ(bare.code(), 400);
  EXPECT_EQ(bare.message(), "admission webhook \"d\" denied the request without explanation");
  EXPECT_EQ(bare.ToStatusJson()["status"], "Failure");

  auto failed = WebhookCallFailedError("w", "Post \"https://x\": context deadline exceeded");
  EXPECT_EQ(failed.code(), 500);
  EXPECT_EQ(failed.reason(), "InternalError");
  EXPECT_EQ(failed.message(),
            "Internal error occurred: failed calling webhook \"w\": Post \"https://x\": context "
            "deadline exceeded");
}

class AdmissionWebhooksTest : public ::testing::Test {
 protected:
  void AddConfig(const char* key, json config) {
    ASSERT_TRUE(store_.Create(key, std::move(config), {}).ok());
    admission_.Invalidate();
  }
  Store store_{100};
  FakeWebhooks fake_;
  AdmissionWebhooks admission_{store_, nullptr, fake_.Poster()};
};

TEST_F(AdmissionWebhooksTest, InactiveWithoutConfigurations) {
  EXPECT_FALSE(admission_.Active());
  json pod = PodObject();
  EXPECT_TRUE(admission_.Mutate(PodAttrs("CREATE", &pod), &pod, nullptr).ok());
  AddConfig(kValidatingKey, Config("v", {Hook("v")}));
  EXPECT_TRUE(admission_.Active());
  EXPECT_TRUE(admission_.Validate(PodAttrs("CREATE", &pod), nullptr).ok());
  EXPECT_EQ(fake_.calls.size(), 1u);
}

TEST_F(AdmissionWebhooksTest, MutatingOrderAndPatches) {
  // Configurations run in name order, webhooks in their order within one.
  AddConfig(kMutatingKey, Config("b-config", {Hook("b1"), Hook("b2")}));
  AddConfig(kMutatingKey, Config("a-config", {Hook("a1")}));
  fake_.answer = [](const WebhookCall& call, const json& review) -> Result<std::string> {
    std::string who = call.url.substr(call.url.rfind('/') + 1, 2);
    // Each webhook sees the previous one's patch.
    json labels = review["request"]["object"]["metadata"]["labels"];
    return PatchResponse(review, json::array({{{"op", "add"},
                                               {"path", "/metadata/labels/" + who},
                                               {"value", std::to_string(labels.size())}}})
                                     .dump());
  };
  json pod = PodObject();
  std::vector<std::string> warnings;
  auto ok = admission_.Mutate(PodAttrs("CREATE", &pod), &pod, &warnings);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(fake_.Paths(),
            (std::vector<std::string>{"/a1?timeout=10s", "/b1?timeout=10s", "/b2?timeout=10s"}));
  EXPECT_EQ(pod["metadata"]["labels"], json({{"a1", "0"}, {"b1", "1"}, {"b2", "2"}}));
}

TEST_F(AdmissionWebhooksTest, DenialWarningsAndFailedPatch) {
  AddConfig(kValidatingKey, Config("v", {Hook("deny.example.com")}));
  fake_.answer = [](const WebhookCall&, const json& review) -> Result<std::string> {
    json r = json::parse(Allow(review));
    r["response"]["allowed"] = false;
    r["response"]["warnings"] = {"careful"};
    r["response"]["status"] = {{"code", 422}, {"message", "nope"}};
    return r.dump();
  };
  json pod = PodObject();
  std::vector<std::string> warnings;
  auto denied = admission_.Validate(PodAttrs("CREATE", &pod), &warnings);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code(), 422);
  EXPECT_EQ(denied.error().message(),
            "admission webhook \"deny.example.com\" denied the request: nope");
  EXPECT_EQ(warnings, std::vector<std::string>{"careful"});

  AddConfig(kMutatingKey, Config("m", {Hook("m")}));
  fake_.answer = [](const WebhookCall&, const json& review) -> Result<std::string> {
    return PatchResponse(review, R"([{"op":"test","path":"/kind","value":"Service"}])");
  };
  auto bad_patch = admission_.Mutate(PodAttrs("CREATE", &pod), &pod, nullptr);
  ASSERT_FALSE(bad_patch.ok());
  EXPECT_EQ(bad_patch.error().code(), 500);
  EXPECT_EQ(bad_patch.error().reason(), "InternalError");
}

TEST_F(AdmissionWebhooksTest, FailurePolicy) {
  AddConfig(kValidatingKey, Config("v", {Hook("closed.example.com"),
                                         Hook("open.example.com", {{"failurePolicy", "Ignore"}})}));
  fake_.answer = [](const WebhookCall& call, const json&) -> Result<std::string> {
    return InternalError("Post \"" + call.url + "\": context deadline exceeded");
  };
  json pod = PodObject();
  auto failed = admission_.Validate(PodAttrs("CREATE", &pod), nullptr);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), 500);
  EXPECT_EQ(failed.error().message(),
            "Internal error occurred: failed calling webhook \"closed.example.com\": Post "
            "\"https://127.0.0.1:9443/closed.example.com?timeout=10s\": context deadline exceeded");

  fake_.calls.clear();
  store_.Delete(kValidatingKey, "v", 0).ok();
  AddConfig(kValidatingKey,
            Config("v2", {Hook("open.example.com", {{"failurePolicy", "Ignore"}}),
                          Hook("bad-response.example.com", {{"failurePolicy", "Ignore"}})}));
  fake_.answer = [](const WebhookCall& call, const json&) -> Result<std::string> {
    if (call.url.find("bad-response") != std::string::npos) return std::string("{}");
    return InternalError("refused");
  };
  EXPECT_TRUE(admission_.Validate(PodAttrs("CREATE", &pod), nullptr).ok());
  EXPECT_EQ(fake_.calls.size(), 2u) << "both were tried";
}

TEST_F(AdmissionWebhooksTest, DryRunNeedsNoSideEffects) {
  AddConfig(kValidatingKey, Config("v", {Hook("none.example.com"),
                                         Hook("dry.example.com", {{"sideEffects", "NoneOnDryRun"}}),
                                         Hook("some.example.com", {{"sideEffects", "Some"}})}));
  json pod = PodObject();
  auto attrs = PodAttrs("CREATE", &pod);
  EXPECT_TRUE(admission_.Validate(attrs, nullptr).ok());
  EXPECT_EQ(fake_.calls.size(), 3u);
  fake_.calls.clear();
  attrs.dry_run = true;
  auto refused = admission_.Validate(attrs, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), 400);
  EXPECT_EQ(refused.error().reason(), "BadRequest");
  EXPECT_EQ(refused.error().message(),
            "admission webhook \"some.example.com\" does not support dry run");
  ASSERT_EQ(fake_.calls.size(), 2u) << "the first two were called before";
  EXPECT_EQ(json::parse(fake_.calls[0].body)["request"]["dryRun"], true);
}

TEST_F(AdmissionWebhooksTest, SelectorsFilterCalls) {
  ASSERT_TRUE(store_
                  .Create("/namespaces",
                          {{"metadata", {{"name", "team-a"}, {"labels", {{"env", "prod"}}}}}}, {})
                  .ok());
  AddConfig(
      kValidatingKey,
      Config("v", {Hook("prod", {{"namespaceSelector", {{"matchLabels", {{"env", "prod"}}}}}}),
                   Hook("dev", {{"namespaceSelector", {{"matchLabels", {{"env", "dev"}}}}}}),
                   Hook("gpu", {{"objectSelector", {{"matchLabels", {{"gpu", "yes"}}}}}})}));
  json pod = PodObject();
  EXPECT_TRUE(admission_.Validate(PodAttrs("CREATE", &pod), nullptr).ok());
  EXPECT_EQ(fake_.Paths(), std::vector<std::string>{"/prod?timeout=10s"});
  fake_.calls.clear();
  json gpu_pod = PodObject({{"gpu", "yes"}});
  EXPECT_TRUE(admission_.Validate(PodAttrs("CREATE", &gpu_pod), nullptr).ok());
  EXPECT_EQ(fake_.Paths(), (std::vector<std::string>{"/prod?timeout=10s", "/gpu?timeout=10s"}));
}

TEST_F(AdmissionWebhooksTest, ServiceResolvesThroughEndpoints) {
  AddConfig(
      kValidatingKey,
      Config("v",
             {Hook("svc.example.com",
                   {{"timeoutSeconds", 3},
                    {"clientConfig",
                     {{"service",
                       {{"namespace", "hooks"}, {"name", "gate"}, {"path", "/validate"}}}}}})}));
  json pod = PodObject();
  auto failed = admission_.Validate(PodAttrs("CREATE", &pod), nullptr);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message(),
            "Internal error occurred: failed calling webhook \"svc.example.com\": service "
            "\"gate\" not found");
  ASSERT_TRUE(
      store_
          .Create(
              "/services",
              {{"metadata", {{"name", "gate"}, {"namespace", "hooks"}}},
               {"spec", {{"ports", {{{"name", "https"}, {"port", 443}, {"targetPort", 8443}}}}}}},
              {})
          .ok());
  failed = admission_.Validate(PodAttrs("CREATE", &pod), nullptr);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message().find("endpoints \"gate\" not found"), std::string::npos);
  ASSERT_TRUE(store_
                  .Create("/endpoints",
                          {{"metadata", {{"name", "gate"}, {"namespace", "hooks"}}},
                           {"subsets",
                            {{{"addresses", {{{"ip", "127.0.0.1"}}}},
                              {"ports", {{{"name", "https"}, {"port", 8443}}}}}}}},
                          {})
                  .ok());
  auto ok = admission_.Validate(PodAttrs("CREATE", &pod), nullptr);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  ASSERT_EQ(fake_.calls.size(), 1u);
  EXPECT_EQ(fake_.calls[0].url, "https://127.0.0.1:8443/validate?timeout=3s");
  EXPECT_EQ(fake_.calls[0].server_name, "gate.hooks.svc");
  EXPECT_EQ(fake_.calls[0].timeout, std::chrono::seconds(3));
}

TEST_F(AdmissionWebhooksTest, NeverCalledForWebhookConfigurations) {
  AddConfig(kValidatingKey, Config("v", {Hook("all", {{"rules",
                                                       {{{"operations", {"*"}},
                                                         {"apiGroups", {"*"}},
                                                         {"apiVersions", {"*"}},
                                                         {"resources", {"*"}}}}}})}));
  json config = Config("x", {});
  AdmissionAttributes a;
  a.operation = "CREATE";
  a.group = "admissionregistration.k8s.io";
  a.version = "v1";
  a.resource = "validatingwebhookconfigurations";
  a.kind = "ValidatingWebhookConfiguration";
  a.namespaced = false;
  a.object = &config;
  EXPECT_TRUE(admission_.Validate(a, nullptr).ok());
  EXPECT_TRUE(fake_.calls.empty());
}

TEST_F(AdmissionWebhooksTest, UnknownReviewVersionFailsTheCall) {
  AddConfig(kValidatingKey, Config("v", {Hook("old", {{"admissionReviewVersions", {"v1beta1"}}})}));
  json pod = PodObject();
  auto failed = admission_.Validate(PodAttrs("CREATE", &pod), nullptr);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message(),
            "Internal error occurred: failed calling webhook \"old\": could not create admission "
            "objects: webhook does not accept known AdmissionReview versions");
  EXPECT_TRUE(fake_.calls.empty());
}

}  // namespace
}  // namespace gpu_autoscaler::apiserver
