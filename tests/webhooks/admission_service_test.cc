#include "webhooks/admission_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "apiserver/patch.h"
#include "common/base64.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;

json GoldenReview(int n) {
  json recorded = json::parse(testing::ReadFileOrDie(testing::SourcePath(
      "tests/golden/admission/admission-review-" + std::to_string(n) + ".json")));
  return recorded["review"];
}

GpuSharingPolicy MigPolicy(const std::string& name = "nlp-mig", int priority = 10) {
  json cr = json::parse(R"({"apiVersion":"gpuautoscaler.io/v1alpha1","kind":"GPUSharingPolicy",
    "metadata":{"name":"nlp-mig","generation":1},
    "spec":{"priority":10,"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"gpu-golden"}},
      "podSelector":{"matchLabels":{"team":"nlp"}},"gpuModels":["A100-80GB"],
      "strategy":{"type":"mig","mig":{"allowedProfiles":[
        {"gpuModel":"A100-80GB","profiles":["1g.10gb","2g.20gb","3g.40gb","7g.80gb"]}]}}}})");
  cr["metadata"]["name"] = name;
  cr["spec"]["priority"] = priority;
  auto p = AdmissionService::ParsePolicy(cr.dump());
  EXPECT_TRUE(p.ok()) << p.error().ToString();
  return std::move(p).value();
}

class AdmissionServiceTest : public ::testing::Test {
 protected:
  AdmissionServiceTest() : service_(Config()) { service_.SetPolicies({MigPolicy()}); }

  AdmissionConfig Config() {
    AdmissionConfig config;
    config.on_pod_matched = [this](std::string_view policy) {
      std::lock_guard<std::mutex> lock(mu_);
      matched_.emplace_back(policy);
    };
    return config;
  }

  std::vector<std::string> Matched() {
    std::lock_guard<std::mutex> lock(mu_);
    return matched_;
  }

  std::mutex mu_;
  std::vector<std::string> matched_;
  AdmissionService service_;
};

TEST_F(AdmissionServiceTest, RecordedReviewsArePatched) {
  std::string patches[2];
  for (int n : {1, 2}) {
    json review = GoldenReview(n);
    AdmissionOutcome out = service_.Review(AdmissionEndpoint::kMutatePods, review.dump());
    ASSERT_EQ(out.http_status, 200) << out.body;
    EXPECT_EQ(out.verdict, AdmissionVerdict::kPatched);
    json resp = json::parse(out.body);
    EXPECT_EQ(resp["apiVersion"], "admission.k8s.io/v1");
    EXPECT_EQ(resp["kind"], "AdmissionReview");
    EXPECT_EQ(resp["response"]["uid"], review["request"]["uid"]);
    EXPECT_EQ(resp["response"]["allowed"], true);
    EXPECT_EQ(resp["response"]["patchType"], "JSONPatch");
    patches[n - 1] = Base64Decode(resp["response"]["patch"].get<std::string>()).value_or("");

    auto pod = apiserver::ApplyJsonPatch(review["request"]["object"], patches[n - 1]);
    ASSERT_TRUE(pod.ok()) << patches[n - 1];
    const json& res = (*pod)["spec"]["containers"][0]["resources"];
    EXPECT_EQ(res["limits"],
              json({{"cpu", "1"}, {"memory", "1Gi"}, {"nvidia.com/mig-1g.10gb", "2"}}));
    EXPECT_EQ(res["requests"],
              json({{"cpu", "500m"}, {"memory", "1Gi"}, {"nvidia.com/mig-1g.10gb", "2"}}));
    const json& ann = (*pod)["metadata"]["annotations"];
    EXPECT_EQ(ann["gpuautoscaler.io/policy"], "nlp-mig");
    EXPECT_EQ(ann["gpuautoscaler.io/mode"], "mig");
    EXPECT_EQ(ann["gpuautoscaler.io/mig-profile"], "1g.10gb");
    EXPECT_EQ(ann["gpuautoscaler.io/original-request"], R"({"main":{"nvidia.com/gpu":"2"}})");
    json terms = (*pod)["spec"]["affinity"]["nodeAffinity"]
                       ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    EXPECT_EQ(terms[0]["matchExpressions"][0]["values"],
              json({"NVIDIA-A100-80GB-PCIe", "NVIDIA-A100-PCIE-80GB", "NVIDIA-A100-SXM4-80GB"}));

    // Reinvocation with the patched pod: allowed, no patch.
    json again = review;
    again["request"]["object"] = *pod;
    AdmissionOutcome second = service_.Review(AdmissionEndpoint::kMutatePods, again.dump());
    EXPECT_EQ(second.verdict, AdmissionVerdict::kAllowed);
    EXPECT_FALSE(json::parse(second.body)["response"].contains("patch"));
  }
  // Dry run gets the same patch, but only the real request counts as matched.
  EXPECT_EQ(patches[0], patches[1]);
  EXPECT_EQ(Matched(), std::vector<std::string>{"nlp-mig"});
}

TEST_F(AdmissionServiceTest, ExcludedNamespaceAndOtherPodsPass) {
  json review = GoldenReview(2);
  review["request"]["namespace"] = "kube-system";
  review["request"]["object"]["metadata"]["namespace"] = "kube-system";
  AdmissionOutcome out = service_.Review(AdmissionEndpoint::kMutatePods, review.dump());
  EXPECT_EQ(out.verdict, AdmissionVerdict::kAllowed);

  json other_team = GoldenReview(2);
  other_team["request"]["object"]["metadata"]["labels"]["team"] = "vision";
  out = service_.Review(AdmissionEndpoint::kMutatePods, other_team.dump());
  EXPECT_EQ(out.verdict, AdmissionVerdict::kAllowed);

  json update = GoldenReview(2);
  update["request"]["operation"] = "UPDATE";
  out = service_.Review(AdmissionEndpoint::kMutatePods, update.dump());
  EXPECT_EQ(out.verdict, AdmissionVerdict::kAllowed);
  EXPECT_TRUE(Matched().empty());
}

TEST_F(AdmissionServiceTest, NamespaceLabelsComeFromTheLookup) {
  AdmissionConfig config;
  config.namespace_labels = [](std::string_view ns) {
    return std::map<std::string, std::string>{{"kubernetes.io/metadata.name", std::string(ns)},
                                              {"tier", "serving"}};
  };
  AdmissionService service(config);
  json cr = json::parse(R"({"kind":"GPUSharingPolicy","metadata":{"name":"serving"},
    "spec":{"namespaceSelector":{"matchLabels":{"tier":"serving"}},
            "strategy":{"type":"timeSlicing","timeSlicing":{"replicas":4}}}})");
  service.SetPolicies({AdmissionService::ParsePolicy(cr.dump()).value()});
  AdmissionOutcome out = service.Review(AdmissionEndpoint::kMutatePods, GoldenReview(2).dump());
  EXPECT_EQ(out.verdict, AdmissionVerdict::kPatched) << out.body;
  // Without the lookup the namespace has only its name label.
  AdmissionService plain(AdmissionConfig{});
  plain.SetPolicies({AdmissionService::ParsePolicy(cr.dump()).value()});
  EXPECT_EQ(plain.Review(AdmissionEndpoint::kMutatePods, GoldenReview(2).dump()).verdict,
            AdmissionVerdict::kAllowed);
}

TEST_F(AdmissionServiceTest, MutationDenialEchoesUid) {
  json review = GoldenReview(2);
  review["request"]["object"]["metadata"]["annotations"]["gpuautoscaler.io/gpu-memory"] = "100Gi";
  AdmissionOutcome out = service_.Review(AdmissionEndpoint::kMutatePods, review.dump());
  EXPECT_EQ(out.http_status, 200);
  EXPECT_EQ(out.verdict, AdmissionVerdict::kDenied);
  json resp = json::parse(out.body);
  EXPECT_EQ(resp["response"]["uid"], "c7e4cf2b-430b-4f52-85a3-d37e79b70f66");
  EXPECT_EQ(resp["response"]["allowed"], false);
  EXPECT_NE(resp["response"]["status"]["message"].get<std::string>().find(
                "the largest allowed is 7g.80gb"),
            std::string::npos);
}

TEST_F(AdmissionServiceTest, MalformedReviewsAre400) {
  const std::string golden = GoldenReview(2).dump();
  json no_uid = GoldenReview(2);
  no_uid["request"].erase("uid");
  json wrong_kind = GoldenReview(2);
  wrong_kind["kind"] = "AdmissionResponse";
  for (const std::string& body : {golden.substr(0, golden.size() / 2), std::string("null"),
                                  no_uid.dump(), wrong_kind.dump(), std::string(1 << 16, '{')}) {
    for (auto endpoint : {AdmissionEndpoint::kMutatePods, AdmissionEndpoint::kValidatePods,
                          AdmissionEndpoint::kValidateGpuSharingPolicies}) {
      AdmissionOutcome out = service_.Review(endpoint, body);
      EXPECT_EQ(out.http_status, 400);
      EXPECT_EQ(out.verdict, AdmissionVerdict::kBadRequest);
      EXPECT_FALSE(out.body.empty());
    }
  }
}

TEST_F(AdmissionServiceTest, ValidatePodsChecksAnnotations) {
  json review = GoldenReview(2);
  AdmissionOutcome ok = service_.Review(AdmissionEndpoint::kValidatePods, review.dump());
  EXPECT_EQ(ok.verdict, AdmissionVerdict::kAllowed);
  review["request"]["object"]["metadata"]["annotations"]["katalyst.kubewharf.io/qos_level"] =
      "gold";
  AdmissionOutcome bad = service_.Review(AdmissionEndpoint::kValidatePods, review.dump());
  EXPECT_EQ(bad.verdict, AdmissionVerdict::kDenied);
  json resp = json::parse(bad.body);
  EXPECT_EQ(resp["response"]["status"]["code"], 422);
  EXPECT_NE(resp["response"]["status"]["message"].get<std::string>().find(
                "metadata.annotations[katalyst.kubewharf.io/qos_level]: Unsupported value: "
                "\"gold\""),
            std::string::npos);
}

json PolicyReview(const json& policy, const std::string& operation = "CREATE") {
  return {
      {"apiVersion", "admission.k8s.io/v1"},
      {"kind", "AdmissionReview"},
      {"request",
       {{"uid", "policy-uid"},
        {"kind",
         {{"group", "gpuautoscaler.io"}, {"version", "v1alpha1"}, {"kind", "GPUSharingPolicy"}}},
        {"operation", operation},
        {"name", policy["metadata"]["name"]},
        {"object", policy},
        {"oldObject", nullptr}}}};
}

TEST_F(AdmissionServiceTest, ValidatesPolicies) {
  json good = json::parse(R"({"apiVersion":"gpuautoscaler.io/v1alpha1","kind":"GPUSharingPolicy",
    "metadata":{"name":"batch-ts"},"spec":{"priority":10,"podSelector":{"matchLabels":{"team":"vision"}},
    "strategy":{"type":"timeSlicing","timeSlicing":{"replicas":8}}}})");
  AdmissionOutcome out =
      service_.Review(AdmissionEndpoint::kValidateGpuSharingPolicies, PolicyReview(good).dump());
  EXPECT_EQ(out.verdict, AdmissionVerdict::kAllowed) << out.body;
  EXPECT_EQ(json::parse(out.body)["response"]["uid"], "policy-uid");

  json overlapping = good;
  overlapping["spec"]["podSelector"]["matchLabels"]["team"] = "nlp";
  out = service_.Review(AdmissionEndpoint::kValidateGpuSharingPolicies,
                        PolicyReview(overlapping).dump());
  ASSERT_EQ(out.verdict, AdmissionVerdict::kDenied);
  std::string message = json::parse(out.body)["response"]["status"]["message"];
  EXPECT_NE(message.find("GPUSharingPolicy \"batch-ts\" is invalid: spec.priority: Invalid "
                         "value: 10: GPUSharingPolicy \"nlp-mig\" has the same priority"),
            std::string::npos)
      << message;

  json misspelled = good;
  misspelled["spec"]["strategy"]["timeSlicing"]["replcas"] = 2;
  out = service_.Review(AdmissionEndpoint::kValidateGpuSharingPolicies,
                        PolicyReview(misspelled).dump());
  ASSERT_EQ(out.verdict, AdmissionVerdict::kDenied);
  EXPECT_EQ(json::parse(out.body)["response"]["status"]["message"],
            "GPUSharingPolicy \"batch-ts\" is invalid: unknown field "
            "\"spec.strategy.timeSlicing.replcas\" (the GPUSharingPolicy schema does not declare "
            "it)");

  json bad = good;
  bad["spec"]["strategy"]["timeSlicing"]["replicas"] = 100;
  out = service_.Review(AdmissionEndpoint::kValidateGpuSharingPolicies,
                        PolicyReview(bad, "UPDATE").dump());
  ASSERT_EQ(out.verdict, AdmissionVerdict::kDenied);
  message = json::parse(out.body)["response"]["status"]["message"];
  EXPECT_NE(message.find("spec.strategy.timeSlicing.replicas: Invalid value: 100: must be "
                         "between 2 and 64"),
            std::string::npos)
      << message;

  // Deleting is always allowed.
  out = service_.Review(AdmissionEndpoint::kValidateGpuSharingPolicies,
                        PolicyReview(bad, "DELETE").dump());
  EXPECT_EQ(out.verdict, AdmissionVerdict::kAllowed);
}

TEST(AdmissionServiceParsePolicyTest, RejectsInvalidPolicies) {
  auto p = AdmissionService::ParsePolicy(
      R"({"kind":"GPUSharingPolicy","metadata":{"name":"x"},"spec":{"strategy":{"type":"mps","mps":{"maxClients":1}}}})");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("spec.strategy.mps.maxClients: Invalid value: 1"),
            std::string::npos);
}

TEST(AdmissionServiceConcurrencyTest, ReviewsWhilePoliciesChange) {
  AdmissionService service(AdmissionConfig{});
  const std::string body = GoldenReview(2).dump();
  std::atomic<int> patched{0}, allowed{0};
  std::vector<std::thread> reviewers;
  for (int t = 0; t < 4; ++t) {
    reviewers.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        AdmissionOutcome out = service.Review(AdmissionEndpoint::kMutatePods, body);
        ASSERT_EQ(out.http_status, 200);
        (out.verdict == AdmissionVerdict::kPatched ? patched : allowed)++;
      }
    });
  }
  for (int i = 0; i < 100; ++i) {
    if (i % 2 == 0) {
      service.SetPolicies({MigPolicy()});
    } else {
      service.SetPolicies({});
    }
  }
  service.SetPolicies({MigPolicy()});
  for (auto& t : reviewers)
    t.join();
  EXPECT_EQ(patched + allowed, 800);
  EXPECT_EQ(service.Review(AdmissionEndpoint::kMutatePods, body).verdict,
            AdmissionVerdict::kPatched);
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
