#include "webhooks/profile_admission.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "webhooks/admission_service.h"

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;

json Profile(const std::string& mode, json recommendations,
             const std::string& selector = "app=web") {
  return {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "ServiceProfile"},
      {"metadata", {{"name", "web"}, {"namespace", "ml"}}},
      {"spec", {{"targetRef", {{"kind", "Deployment"}, {"name", "web"}}}, {"updateMode", mode}}},
      {"status", {{"targetSelector", selector}, {"recommendations", std::move(recommendations)}}}};
}

const json kServerRec =
    json::array({{{"containerName", "server"},
                  {"cpu", {{"lowerBound", "120m"}, {"target", "250m"}}},
                  {"memory", {{"lowerBound", "200000000"}, {"target", "300000000"}}}}});

ProfileRule Rule(const json& profile) {
  auto rule = ParseProfileRule(profile.dump());
  EXPECT_TRUE(rule.ok() && rule->has_value()) << profile.dump();
  return rule.ok() && rule->has_value() ? **rule : ProfileRule{};
}

PodInfo WebPod(std::vector<std::pair<std::string, std::string>> requests,
               std::vector<std::pair<std::string, std::string>> limits) {
  PodInfo pod;
  pod.ns = "ml";
  pod.has_metadata = true;
  pod.labels = {{"app", "web"}};
  ContainerInfo c;
  c.name = "server";
  c.has_resources = true;
  c.has_requests = !requests.empty();
  c.has_limits = !limits.empty();
  c.core_requests = std::move(requests);
  c.core_limits = std::move(limits);
  pod.containers.push_back(std::move(c));
  return pod;
}

TEST(ParseProfileRule, AppliesOnlyInitialAndAutoWithRecommendations) {
  EXPECT_FALSE(ParseProfileRule(Profile("Off", kServerRec).dump())->has_value());
  EXPECT_FALSE(ParseProfileRule(Profile("Initial", json::array()).dump())->has_value());
  EXPECT_FALSE(ParseProfileRule(Profile("Auto", kServerRec, "").dump())->has_value());
  ProfileRule rule = Rule(Profile("Auto", kServerRec));
  EXPECT_EQ(rule.ns, "ml");
  EXPECT_EQ(rule.containers.at("server").cpu, "250m");
  EXPECT_EQ(rule.containers.at("server").memory, "300000000");
}

TEST(ParseProfileRule, BadStatusIsAnErrorNamingTheProfile) {
  auto bad_selector = ParseProfileRule(Profile("Initial", kServerRec, "app in (").dump());
  ASSERT_FALSE(bad_selector.ok());
  EXPECT_NE(bad_selector.error().message().find("ServiceProfile ml/web: status.targetSelector"),
            std::string::npos)
      << bad_selector.error().message();
  json rec = kServerRec;
  rec[0]["cpu"]["target"] = "lots";
  auto bad_quantity = ParseProfileRule(Profile("Initial", rec).dump());
  ASSERT_FALSE(bad_quantity.ok());
  EXPECT_NE(bad_quantity.error().message().find("target \"lots\" is not a quantity"),
            std::string::npos);
  EXPECT_FALSE(ParseProfileRule("[1]").ok());
}

// Members of the wrong type read as absent, and an mpsThreadPercent beyond
// int is clamped (it was narrowed: 2^32 + 50 became 50).
TEST(ParseProfileRule, MembersOfTheWrongTypeReadAsAbsent) {
  json recs = kServerRec;
  recs.push_back("not an object");
  recs.push_back({{"containerName", "side"}, {"cpu", "250m"}, {"memory", {{"target", 5}}}});
  recs.push_back(
      {{"containerName", "gpu"}, {"gpu", {{"share", "mps"}, {"mpsThreadPercent", 4294967346LL}}}});
  json profile = Profile("Auto", recs);
  profile["metadata"]["name"] = 7;
  auto rule = ParseProfileRule(profile.dump());
  ASSERT_TRUE(rule.ok()) << rule.error().message();
  ASSERT_TRUE(rule->has_value());
  EXPECT_EQ((*rule)->name, "");
  EXPECT_EQ((*rule)->containers.at("server").cpu, "250m");
  EXPECT_EQ((*rule)->containers.at("side").cpu, "");
  EXPECT_EQ((*rule)->containers.at("side").memory, "");
  EXPECT_EQ((*rule)->containers.at("gpu").gpu_compute_percent, 100);

  json not_a_list = Profile("Auto", {{"containerName", "server"}});
  auto refused = ParseProfileRule(not_a_list.dump());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("status.recommendations: not a list"),
            std::string::npos);
  json wrong_parents = Profile("Auto", kServerRec);
  wrong_parents["spec"] = "Auto";
  EXPECT_FALSE(ParseProfileRule(wrong_parents.dump())->has_value());  // no updateMode
}

TEST(ProfileSet, MatchesBySelectorInTheNamespace) {
  ProfileSet set({Rule(Profile("Initial", kServerRec))});
  PodInfo pod = WebPod({}, {});
  EXPECT_NE(set.Match(pod), nullptr);
  pod.ns = "other";
  EXPECT_EQ(set.Match(pod), nullptr);
  pod.ns = "ml";
  pod.labels = {{"app", "api"}};
  EXPECT_EQ(set.Match(pod), nullptr);
}

struct LimitCase {
  std::string name;
  std::vector<std::pair<std::string, std::string>> requests, limits;
  std::map<std::string, std::string> want_requests, want_limits;
};

class ApplyProfileTest : public ::testing::TestWithParam<LimitCase> {};

TEST_P(ApplyProfileTest, SetsTargetsAndKeepsLimitRatio) {
  const LimitCase& c = GetParam();
  PodInfo pod = WebPod(c.requests, c.limits);
  PodResourceEdits edits = PodResourceEdits::From(pod);
  ApplyProfile(pod, Rule(Profile("Initial", kServerRec)), &edits);
  EXPECT_EQ(edits.containers[0].requests, c.want_requests);
  EXPECT_EQ(edits.containers[0].limits, c.want_limits);
  EXPECT_EQ(edits.annotations.at("gpuautoscaler.io/service-profile"), "web");
  json original = json::object();
  if (!c.requests.empty())
    original["server"]["requests"] = json(std::map(c.requests.begin(), c.requests.end()));
  if (!c.limits.empty())
    original["server"]["limits"] = json(std::map(c.limits.begin(), c.limits.end()));
  if (original.empty()) original["server"] = json::object();
  EXPECT_EQ(json::parse(edits.annotations.at("gpuautoscaler.io/original-resources")), original);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ApplyProfileTest,
    ::testing::Values(
        // cpu 1 -> 250m with limit 2 (ratio 2) -> 500m; memory 1e9 -> 3e8, limit 1.5e9 -> 4.5e8.
        LimitCase{"Ratio",
                  {{"cpu", "1"}, {"memory", "1G"}},
                  {{"cpu", "2"}, {"memory", "1500M"}},
                  {{"cpu", "250m"}, {"memory", "300000000"}},
                  {{"cpu", "500m"}, {"memory", "450000000"}}},
        LimitCase{"NoLimits", {{"cpu", "1"}}, {}, {{"cpu", "250m"}, {"memory", "300000000"}}, {}},
        // A limit without a request: the API server's default request = limit, ratio 1.
        LimitCase{"LimitOnly",
                  {},
                  {{"cpu", "4"}},
                  {{"cpu", "250m"}, {"memory", "300000000"}},
                  {{"cpu", "250m"}}},
        // 3 × 250m / 1000m... ratio 1.5 exactly: 375m.
        LimitCase{"ThirdsRoundUp",
                  {{"cpu", "2"}},
                  {{"cpu", "3"}},
                  {{"cpu", "250m"}, {"memory", "300000000"}},
                  {{"cpu", "375m"}}}),
    [](const ::testing::TestParamInfo<LimitCase>& info) { return info.param.name; });

TEST(ApplyProfile, AlreadyProfiledPodIsLeftAlone) {
  PodInfo pod = WebPod({{"cpu", "1"}}, {});
  pod.annotations["gpuautoscaler.io/service-profile"] = "web";
  PodResourceEdits edits = PodResourceEdits::From(pod);
  ApplyProfile(pod, Rule(Profile("Initial", kServerRec)), &edits);
  EXPECT_EQ(edits.containers[0].requests.at("cpu"), "1");
  EXPECT_TRUE(edits.annotations.empty());
}

TEST(ApplyProfile, GpuShareBecomesTheSharingAnnotations) {
  json rec = kServerRec;
  rec[0]["gpu"] = {{"share", "mps"}, {"mpsThreadPercent", 30}, {"gpuMemoryLimit", "16000000000"}};
  PodInfo pod = WebPod({{"cpu", "1"}}, {});
  pod.containers[0].limits = {{"nvidia.com/gpu", "1"}};
  PodResourceEdits edits = PodResourceEdits::From(pod);
  ApplyProfile(pod, Rule(Profile("Initial", rec)), &edits);
  // 16e9 bytes = 15258.8 MiB -> 15259Mi.
  EXPECT_EQ(edits.annotations.at("gpuautoscaler.io/gpu-memory"), "15259Mi");
  EXPECT_EQ(edits.annotations.at("gpuautoscaler.io/gpu-compute"), "30");

  rec[0]["gpu"] = {{"share", "mig"}, {"migProfile", "2g.20gb"}, {"gpuMemoryLimit", "20000000000"}};
  edits = PodResourceEdits::From(pod);
  ApplyProfile(pod, Rule(Profile("Initial", rec)), &edits);
  EXPECT_EQ(edits.annotations.at("gpuautoscaler.io/gpu-memory"), "20GB");
  EXPECT_FALSE(edits.annotations.contains("gpuautoscaler.io/gpu-compute"));

  // The pod's own hints and an opt-out win.
  pod.annotations["gpuautoscaler.io/sharing"] = "disabled";
  edits = PodResourceEdits::From(pod);
  ApplyProfile(pod, Rule(Profile("Initial", rec)), &edits);
  EXPECT_FALSE(edits.annotations.contains("gpuautoscaler.io/gpu-memory"));
}

TEST(AdmissionService, MutatePodsAppliesProfileThenQos) {
  AdmissionService service(AdmissionConfig{});
  service.SetProfiles({Rule(Profile("Initial", kServerRec))});
  json review = {{"apiVersion", "admission.k8s.io/v1"},
                 {"kind", "AdmissionReview"},
                 {"request",
                  {{"uid", "u1"},
                   {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
                   {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
                   {"namespace", "ml"},
                   {"operation", "CREATE"},
                   {"object",
                    {{"apiVersion", "v1"},
                     {"kind", "Pod"},
                     {"metadata",
                      {{"name", "web-1"},
                       {"namespace", "ml"},
                       {"labels", {{"app", "web"}}},
                       {"annotations", {{"katalyst.kubewharf.io/qos_level", "dedicated_cores"}}}}},
                     {"spec",
                      {{"containers",
                        {{{"name", "server"},
                          {"resources",
                           {{"requests", {{"cpu", "1"}, {"memory", "1G"}}},
                            {"limits", {{"cpu", "1"}, {"memory", "1G"}}}}}}}}}}}}}}};
  AdmissionOutcome out = service.Review(AdmissionEndpoint::kMutatePods, review.dump());
  ASSERT_EQ(out.verdict, AdmissionVerdict::kPatched) << out.body;
  // The profile's 250m becomes one whole core again (dedicated_cores: the
  // unchanged "1"); memory takes the profile's 3e8 with its 1:1 limit.
  const json response = json::parse(out.body)["response"];
  const json patch = json::parse(Base64Decode(response["patch"].get<std::string>()).value());
  const std::string base = "/spec/containers/0/resources";
  EXPECT_EQ(patch, json::parse(R"([
    {"op":"replace","path":")" +
                               base + R"(/requests/memory","value":"300000000"},
    {"op":"replace","path":")" +
                               base + R"(/limits/memory","value":"300000000"},
    {"op":"add","path":"/metadata/annotations/gpuautoscaler.io~1original-resources",
     "value":"{\"server\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1G\"},\"requests\":{\"cpu\":\"1\",\"memory\":\"1G\"}}}"},
    {"op":"add","path":"/metadata/annotations/gpuautoscaler.io~1service-profile","value":"web"}
  ])"))
      << patch.dump(1);
}

// Found by admission_review_fuzz: a pod object with two "spec" members. This
// decoder reads the first, kube-apiserver's JSON patch applies to the last, so
// a QoS resource patch computed for one would be applied to the other (and
// the pod, reviewed again, patched again). A real API server never sends
// duplicate keys; such a review is admitted without a patch.
TEST(AdmissionService, MutatePodsLeavesAPodWithDuplicateKeysAlone) {
  AdmissionService service(AdmissionConfig{});
  const std::string review =
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2",)"
      R"("kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"ml","operation":"CREATE",)"
      R"("object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":)"
      R"({"katalyst.kubewharf.io/qos_level":"dedicated_cores"}},)"
      R"("spec":{"containers":[{"name":"main","resources":{"limits":{"cpu":"1","memory":"1Gi"},)"
      R"("requests":{"cpu":"500m","memory":"1Gi"}}}]},"spec":{"priority":1}}}})";
  AdmissionOutcome out = service.Review(AdmissionEndpoint::kMutatePods, review);
  EXPECT_EQ(out.http_status, 200);
  EXPECT_EQ(out.verdict, AdmissionVerdict::kAllowed) << out.body;
  // Without the duplicate, the same pod gets its requests raised to its limits.
  const std::string single =
      std::string(review).replace(review.find(R"(,"spec":{"priority":1})"),
                                  std::string(R"(,"spec":{"priority":1})").size(), "");
  EXPECT_EQ(service.Review(AdmissionEndpoint::kMutatePods, single).verdict,
            AdmissionVerdict::kPatched);
}

// The validating side refuses such a pod: the annotations or the budget it
// would check could be the other reading of the object.
TEST(AdmissionService, ValidatePodsRefusesAPodWithDuplicateKeys) {
  AdmissionService service(AdmissionConfig{});
  const std::string review =
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u3",)"
      R"("kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"ml","operation":"CREATE",)"
      R"("object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":)"
      R"({"katalyst.kubewharf.io/qos_level":"shared_cores"}},)"
      R"("spec":{"containers":[{"name":"main","resources":{"limits":{"cpu":"1"}}}]},)"
      R"("metadata":{"name":"p","annotations":{"katalyst.kubewharf.io/qos_level":"no_such"}}}}})";
  AdmissionOutcome out = service.Review(AdmissionEndpoint::kValidatePods, review);
  EXPECT_EQ(out.http_status, 200);
  EXPECT_EQ(out.verdict, AdmissionVerdict::kDenied) << out.body;
  EXPECT_NE(out.body.find("pod is ambiguous: it has duplicate keys"), std::string::npos)
      << out.body;
  const std::string duplicate =
      R"(,"metadata":{"name":"p","annotations":{"katalyst.kubewharf.io/qos_level":"no_such"}})";
  const std::string single =
      std::string(review).replace(review.find(duplicate), duplicate.size(), "");
  EXPECT_EQ(service.Review(AdmissionEndpoint::kValidatePods, single).verdict,
            AdmissionVerdict::kAllowed);
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
