#include "webhooks/review.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;

std::string GoldenReviewBody(int n) {
  json recorded = json::parse(testing::ReadFileOrDie(testing::SourcePath(
      "tests/golden/admission/admission-review-" + std::to_string(n) + ".json")));
  return recorded["review"].dump();
}

TEST(DecodeAdmissionReviewTest, RecordedDryRunReview) {
  auto review = DecodeAdmissionReview(GoldenReviewBody(1), ObjectDecoding::kPod);
  ASSERT_TRUE(review.ok()) << review.error().ToString();
  EXPECT_EQ(review->uid, "427967e5-a9b1-488a-ae41-4401d9af2421");
  EXPECT_EQ(review->operation, "CREATE");
  EXPECT_EQ(review->kind, "Pod");
  EXPECT_EQ(review->group, "");
  EXPECT_EQ(review->ns, "gpu-golden");
  EXPECT_TRUE(review->dry_run);
  ASSERT_TRUE(review->pod.has_value());
  const PodInfo& pod = *review->pod;
  EXPECT_EQ(pod.name, "trainer-0");
  EXPECT_EQ(pod.ns, "gpu-golden");
  EXPECT_TRUE(pod.has_annotations);
  EXPECT_EQ(pod.annotations.at("gpuautoscaler.io/gpu-memory"), "10Gi");
  EXPECT_EQ(pod.labels.at("team"), "nlp");
  EXPECT_EQ(pod.labels.size(), 4u);
  ASSERT_EQ(pod.containers.size(), 1u);
  const ContainerInfo& c = pod.containers[0];
  EXPECT_EQ(c.name, "main");
  EXPECT_TRUE(c.has_limits && c.has_requests);
  // Only nvidia.com/* resources are kept.
  ASSERT_EQ(c.limits.size(), 1u);
  EXPECT_EQ(c.limits[0], (std::pair<std::string, std::string>{"nvidia.com/gpu", "2"}));
  EXPECT_EQ(c.requests[0], (std::pair<std::string, std::string>{"nvidia.com/gpu", "2"}));
  EXPECT_FALSE(c.has_env);
  EXPECT_FALSE(pod.has_affinity);
  EXPECT_TRUE(pod.shape_ok);
}

TEST(DecodeAdmissionReviewTest, RecordedReviewWithoutDryRun) {
  auto review = DecodeAdmissionReview(GoldenReviewBody(2), ObjectDecoding::kPod);
  ASSERT_TRUE(review.ok()) << review.error().ToString();
  EXPECT_EQ(review->uid, "c7e4cf2b-430b-4f52-85a3-d37e79b70f66");
  EXPECT_FALSE(review->dry_run);
}

TEST(DecodeAdmissionReviewTest, RawModeKeepsObjectJson) {
  auto review = DecodeAdmissionReview(GoldenReviewBody(2), ObjectDecoding::kRaw);
  ASSERT_TRUE(review.ok());
  EXPECT_FALSE(review->pod.has_value());
  json object = json::parse(review->object_json);
  EXPECT_EQ(object["metadata"]["name"], "trainer-0");
  EXPECT_EQ(review->old_object_json, "");  // oldObject is null on CREATE
}

TEST(DecodeAdmissionReviewTest, ReadsAffinityEnvAndInitContainers) {
  const std::string body = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
    "request":{"uid":"u1","operation":"CREATE","kind":{"group":"","version":"v1","kind":"Pod"},
    "namespace":"ns1","object":{"metadata":{"generateName":"job-","labels":{"a":"b"},
      "annotations":{"other.io/x":"y","gpuautoscaler.io/gpu-compute":"50"}},
    "spec":{"nodeSelector":{"nvidia.com/gpu.product":"NVIDIA-H100-NVL"},
      "initContainers":[{"name":"init","resources":{"limits":{"nvidia.com/gpu":1}}}],
      "containers":[{"name":"c","env":[{"name":"A","value":"1"}],"resources":{}}],
      "affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{
        "nodeSelectorTerms":[{"matchExpressions":[{"key":"k","operator":"In","values":["v"]}]},
                             {"matchFields":[{"key":"metadata.name","operator":"In","values":["n"]}]}]}}}}}}})";
  auto review = DecodeAdmissionReview(body, ObjectDecoding::kPod);
  ASSERT_TRUE(review.ok()) << review.error().ToString();
  const PodInfo& pod = *review->pod;
  EXPECT_EQ(pod.ns, "ns1");  // from the request when the object has none
  EXPECT_EQ(pod.generate_name, "job-");
  EXPECT_EQ(pod.annotations.size(), 1u);  // only gpuautoscaler.io/*
  EXPECT_EQ(pod.node_selector_gpu_product, "NVIDIA-H100-NVL");
  ASSERT_EQ(pod.init_containers.size(), 1u);
  EXPECT_EQ(pod.init_containers[0].limits[0].second, "1");  // a number is accepted
  ASSERT_EQ(pod.containers.size(), 1u);
  EXPECT_TRUE(pod.containers[0].has_resources);
  EXPECT_FALSE(pod.containers[0].has_limits);
  EXPECT_EQ(pod.containers[0].env_names, std::vector<std::string>{"A"});
  EXPECT_TRUE(pod.has_affinity && pod.has_node_affinity && pod.has_required && pod.has_terms);
  ASSERT_EQ(pod.terms.size(), 2u);
  EXPECT_TRUE(pod.terms[0].has_match_expressions);
  EXPECT_EQ(pod.terms[0].match_expressions[0].key, "k");
  EXPECT_EQ(pod.terms[0].match_expressions[0].values, std::vector<std::string>{"v"});
  EXPECT_FALSE(pod.terms[1].has_match_expressions);
}

TEST(DecodeAdmissionReviewTest, WrongShapesReadAsAbsent) {
  // Fields of the wrong JSON type are ignored, never thrown on.
  const std::string body = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
    "request":{"uid":"u","kind":"Pod","dryRun":"yes","object":{"metadata":{"labels":[1],
      "annotations":{"gpuautoscaler.io/gpu-memory":7}},"spec":{"containers":[5,{"name":3,
      "resources":{"limits":[]},"env":[1,{"name":{}}]}],"nodeSelector":[],
      "affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{
        "nodeSelectorTerms":[7,{"matchExpressions":[1,{"key":[],"values":[2]}]}]}}}}}}})";
  auto review = DecodeAdmissionReview(body, ObjectDecoding::kPod);
  ASSERT_TRUE(review.ok()) << review.error().ToString();
  EXPECT_EQ(review->kind, "");
  EXPECT_FALSE(review->dry_run);
  const PodInfo& pod = *review->pod;
  EXPECT_FALSE(pod.has_labels);
  EXPECT_EQ(pod.annotations.at("gpuautoscaler.io/gpu-memory"), "");
  ASSERT_EQ(pod.containers.size(), 2u);
  EXPECT_FALSE(pod.containers[1].has_limits);
  EXPECT_EQ(pod.containers[1].env_names, (std::vector<std::string>{"", ""}));
  // The patch builder must not write under such fields.
  EXPECT_FALSE(pod.shape_ok);
  ASSERT_EQ(pod.terms.size(), 2u);
  ASSERT_EQ(pod.terms[1].match_expressions.size(), 2u);
  EXPECT_EQ(pod.terms[1].match_expressions[1].values, std::vector<std::string>{""});
}

struct BadReview {
  std::string name;
  std::string body;
  std::string reason;  // substring of the error
};

class BadReviewTest : public ::testing::TestWithParam<BadReview> {};

TEST_P(BadReviewTest, GivesAReason) {
  auto review = DecodeAdmissionReview(GetParam().body, ObjectDecoding::kPod);
  ASSERT_FALSE(review.ok());
  EXPECT_EQ(review.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(review.error().message().find(GetParam().reason), std::string::npos)
      << review.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadReviewTest,
    ::testing::Values(
        BadReview{"Empty", "", "malformed AdmissionReview JSON"},
        BadReview{"Truncated", GoldenReviewBody(2).substr(0, 700),
                  "malformed AdmissionReview JSON"},
        BadReview{"NotAnObject", "[1,2]", "must be a JSON object"},
        BadReview{
            "V1beta1",
            R"({"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}})",
            "expected admission.k8s.io/v1"},
        BadReview{"WrongKind",
                  R"({"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"u"}})",
                  "unsupported kind \"Pod\""},
        BadReview{"NoRequest", R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})",
                  "no request object"},
        BadReview{"NullRequest",
                  R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null})",
                  "no request object"},
        BadReview{
            "MissingUid",
            R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}})",
            "request.uid is missing"},
        BadReview{
            "ObjectNotAnObject",
            R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":7}})",
            "request.object must be a JSON object"}),
    [](const ::testing::TestParamInfo<BadReview>& info) { return info.param.name; });

TEST(EncodeTest, AllowedWithPatchAndWarnings) {
  const std::string patch = R"([{"op":"add","path":"/a","value":1}])";
  json out = json::parse(EncodeAllowed("uid-\"1\"", patch, {"careful\n"}));
  EXPECT_EQ(out["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(out["kind"], "AdmissionReview");
  EXPECT_EQ(out["response"]["uid"], "uid-\"1\"");
  EXPECT_EQ(out["response"]["allowed"], true);
  EXPECT_EQ(out["response"]["patchType"], "JSONPatch");
  EXPECT_EQ(out["response"]["patch"], Base64Encode(patch));
  EXPECT_EQ(out["response"]["warnings"], json::array({"careful\n"}));
}

TEST(EncodeTest, AllowedWithoutPatchHasNoPatchType) {
  json out = json::parse(EncodeAllowed("u", ""));
  EXPECT_FALSE(out["response"].contains("patchType"));
  EXPECT_FALSE(out["response"].contains("patch"));
}

TEST(EncodeTest, Denied) {
  json out = json::parse(EncodeDenied("u", 422, "spec.x: \"bad\""));
  EXPECT_EQ(out["response"]["allowed"], false);
  EXPECT_EQ(out["response"]["status"]["code"], 422);
  EXPECT_EQ(out["response"]["status"]["message"], "spec.x: \"bad\"");
}

TEST(Base64Test, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(AppendJsonStringTest, EscapesControlCharacters) {
  std::string out;
  AppendJsonString(out, std::string("a\"b\\c\x01\td", 8));
  EXPECT_EQ(out, R"("a\"b\\c\u0001\td")");
  EXPECT_EQ(json::parse(out).get<std::string>(), std::string("a\"b\\c\x01\td", 8));
}

TEST(AppendJsonStringTest, EveryAsciiCharacterAndUtf8RoundTrip) {
  std::string all;
  for (int c = 0; c < 0x80; ++c)
    all.push_back(static_cast<char>(c));
  all += "\xc3\xa9\xe2\x82\xac";  // é €, copied as they are
  for (const std::string& s : {all, std::string("\"\""), std::string("x"), std::string()}) {
    std::string out = "prefix";
    AppendJsonString(out, s);
    ASSERT_EQ(out.substr(0, 6), "prefix");
    EXPECT_EQ(json::parse(out.substr(6)).get<std::string>(), s);
  }
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
