// The custom-metrics API's path parser and answers, with hand-computed values.
#include "profiling/custom_metrics.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::profiling {
namespace {

using nlohmann::json;
using Kind = CustomMetricsRequest::Kind;

constexpr std::string_view kBase = "/apis/custom.metrics.k8s.io/v1beta2";
constexpr int64_t kNow = 1'796'000'000;  // 2026-11-30T00:53:20Z

cost::PodGpuUsage Usage(std::string ns, std::string pod, double util, double mem, double gpus) {
  return {.ns = std::move(ns),
          .pod = std::move(pod),
          .gpu_utilization = util,
          .gpu_memory_bytes = mem,
          .gpus = gpus,
          .devices = 1};
}

TEST(ParseCustomMetricsRequest, PathsTheAggregatorSends) {
  struct Case {
    std::string path;
    Kind kind;
    std::string ns, pod, metric;
  };
  const std::string base(kBase);
  const Case cases[] = {
      {"/apis/custom.metrics.k8s.io", Kind::kGroup, "", "", ""},
      {base, Kind::kResourceList, "", "", ""},
      {base + "/", Kind::kResourceList, "", "", ""},
      {base + "/namespaces/ml/pods/web-0/gpu_utilization", Kind::kPod, "ml", "web-0",
       "gpu_utilization"},
      {base + "/namespaces/ml/pods/*/gpu_memory_used_bytes", Kind::kPodsBySelector, "ml", "",
       "gpu_memory_used_bytes"},
  };
  for (const Case& c : cases) {
    auto r = ParseCustomMetricsRequest({.path = c.path});
    ASSERT_TRUE(r.ok()) << c.path << ": " << r.error().ToString();
    EXPECT_EQ(r->kind, c.kind) << c.path;
    EXPECT_EQ(r->ns, c.ns) << c.path;
    EXPECT_EQ(r->pod, c.pod) << c.path;
    EXPECT_EQ(r->metric, c.metric) << c.path;
  }
}

TEST(ParseCustomMetricsRequest, OtherPathsAreNotFoundAndBadSelectorsBadRequest) {
  const std::string base(kBase);
  for (const std::string& path :
       {std::string("/"), std::string("/apis"), std::string("/apis/metrics.k8s.io/v1beta1"),
        std::string("/apis/custom.metrics.k8s.io/v1beta1"), base + "/namespaces/ml",
        base + "/namespaces/ml/metrics/gpu_utilization",
        base + "/namespaces/ml/deployments.apps/web/gpu_utilization",
        base + "/pods/*/gpu_utilization", base + "/namespaces/ml/pods/*/cpu_usage",
        base + "/namespaces/ml/pods/*/gpu_utilization/extra"}) {
    auto r = ParseCustomMetricsRequest({.path = path});
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_EQ(r.error().code(), StatusCode::kNotFound) << path;
  }
  auto bad = ParseCustomMetricsRequest(
      {.path = base + "/namespaces/ml/pods/*/gpu_utilization", .label_selector = "app in (web"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("labelSelector"), std::string::npos);
  const CustomMetricsError status = CustomMetricsStatus(bad.error());
  EXPECT_EQ(status.http_status, 400);
  EXPECT_EQ(json::parse(status.body)["reason"], "BadRequest");
}

// Bytes that are not UTF-8 reach the Status message; the body stays valid JSON
// (found by the fuzz target: nlohmann's dump threw, which would end the manager).
TEST(ParseCustomMetricsRequest, BytesThatAreNotUtf8GiveAValidStatus) {
  const std::string path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/\xf1]/pods/*/x\xff";
  auto r = ParseCustomMetricsRequest({.path = path});
  ASSERT_FALSE(r.ok());
  const CustomMetricsError status = CustomMetricsStatus(r.error());
  EXPECT_EQ(status.http_status, 404);
  EXPECT_TRUE(json::accept(status.body)) << status.body;
}

TEST(FormatDecimalQuantityMilli, CanonicalDecimalSi) {
  EXPECT_EQ(FormatDecimalQuantityMilli(0), "0");
  EXPECT_EQ(FormatDecimalQuantityMilli(42500), "42500m");
  EXPECT_EQ(FormatDecimalQuantityMilli(3000), "3");
  EXPECT_EQ(FormatDecimalQuantityMilli(100000), "100");
  EXPECT_EQ(FormatDecimalQuantityMilli(2'000'000), "2k");
  EXPECT_EQ(FormatDecimalQuantityMilli(1'500'000'000), "1500k");
  // 1 GiB of framebuffer: 1073741824 is not a multiple of 1000.
  EXPECT_EQ(FormatDecimalQuantityMilli(1'073'741'824'000), "1073741824");
  EXPECT_EQ(FormatDecimalQuantityMilli(4'000'000'000'000), "4G");
  EXPECT_EQ(FormatDecimalQuantityMilli(-1500), "-1500m");
}

TEST(BuildCustomMetricsAnswer, DiscoveryListsPodsMetrics) {
  auto req = ParseCustomMetricsRequest({.path = kBase});
  ASSERT_TRUE(req.ok());
  auto body = BuildCustomMetricsAnswer(*req, {}, {}, kNow);
  ASSERT_TRUE(body.ok());
  const json list = json::parse(*body);
  EXPECT_EQ(list["kind"], "APIResourceList");
  EXPECT_EQ(list["apiVersion"], "v1");
  EXPECT_EQ(list["groupVersion"], "custom.metrics.k8s.io/v1beta2");
  ASSERT_EQ(list["resources"].size(), 2u);
  EXPECT_EQ(list["resources"][0],
            json::parse(R"({"name":"pods/gpu_utilization","singularName":"","namespaced":true,
                            "kind":"MetricValueList","verbs":["get"]})"));
  EXPECT_EQ(list["resources"][1]["name"], "pods/gpu_memory_used_bytes");

  req = ParseCustomMetricsRequest({.path = "/apis/custom.metrics.k8s.io"});
  ASSERT_TRUE(req.ok());
  const json group = json::parse(*BuildCustomMetricsAnswer(*req, {}, {}, kNow));
  EXPECT_EQ(group["kind"], "APIGroup");
  EXPECT_EQ(group["preferredVersion"]["groupVersion"], "custom.metrics.k8s.io/v1beta2");
}

class PodsBySelector : public ::testing::Test {
 protected:
  std::vector<MetricsPod> pods_ = {
      {"ml", "web-1", {{"app", "web"}}},     {"ml", "web-0", {{"app", "web"}}},
      {"ml", "web-2", {{"app", "web"}}},  // no figure
      {"ml", "batch-0", {{"app", "batch"}}}, {"other", "web-0", {{"app", "web"}}},
  };
  std::vector<cost::PodGpuUsage> usage_ = {
      // A whole GPU at 42.5 %, 10 GiB.
      Usage("ml", "web-0", 0.425, 10.0 * (1 << 30), 1),
      // Half of a time-sliced GPU that is 60 % busy: its divided share is 0.3 of
      // the GPU, 0.3 / 0.5 = 60 % of its own share; 3 GB of framebuffer.
      Usage("ml", "web-1", 0.3, 3e9, 0.5),
      Usage("ml", "batch-0", 0.9, 1e9, 1),
      Usage("other", "web-0", 0.1, 1e9, 1),
  };

  json Answer(std::string_view metric, std::string_view selector) {
    const std::string path = std::string(kBase) + "/namespaces/ml/pods/*/" + std::string(metric);
    auto req = ParseCustomMetricsRequest({.path = path, .label_selector = selector});
    EXPECT_TRUE(req.ok());
    auto body = BuildCustomMetricsAnswer(*req, pods_, usage_, kNow);
    EXPECT_TRUE(body.ok()) << body.error().ToString();
    return json::parse(*body);
  }
};

TEST_F(PodsBySelector, UtilisationOfTheSelectedPodsInTheirNamespace) {
  const json list = Answer("gpu_utilization", "app=web");
  EXPECT_EQ(list["kind"], "MetricValueList");
  EXPECT_EQ(list["apiVersion"], "custom.metrics.k8s.io/v1beta2");
  EXPECT_EQ(list["metadata"], json::object());
  ASSERT_EQ(list["items"].size(), 2u) << list.dump(2);  // web-2 has no figure: left out
  EXPECT_EQ(list["items"][0], json::parse(R"({
      "describedObject": {"kind": "Pod", "namespace": "ml", "name": "web-0", "apiVersion": "v1"},
      "metric": {"name": "gpu_utilization"},
      "timestamp": "2026-11-30T00:53:20Z",
      "windowSeconds": 0,
      "value": "42500m"})"));
  EXPECT_EQ(list["items"][1]["describedObject"]["name"], "web-1");
  EXPECT_EQ(list["items"][1]["value"], "60");
}

TEST_F(PodsBySelector, MemoryAndSelectorForms) {
  json list = Answer("gpu_memory_used_bytes", "app=web");
  ASSERT_EQ(list["items"].size(), 2u);
  EXPECT_EQ(list["items"][0]["value"], "10737418240");
  EXPECT_EQ(list["items"][1]["value"], "3G");
  list = Answer("gpu_memory_used_bytes", "");  // everything in the namespace
  ASSERT_EQ(list["items"].size(), 3u);
  EXPECT_EQ(list["items"][0]["describedObject"]["name"], "batch-0");
  list = Answer("gpu_memory_used_bytes", "app notin (web)");
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["value"], "1G");
  list = Answer("gpu_utilization", "app=nothing");
  EXPECT_EQ(list["items"], json::array());
}

TEST_F(PodsBySelector, AMetricSelectorThatNeedsLabelsSelectsNothing) {
  auto req = ParseCustomMetricsRequest(
      {.path = std::string(kBase) + "/namespaces/ml/pods/*/gpu_utilization",
       .metric_label_selector = "gpu=0"});
  ASSERT_TRUE(req.ok());
  const json list = json::parse(*BuildCustomMetricsAnswer(*req, pods_, usage_, kNow));
  EXPECT_EQ(list["items"], json::array());
}

TEST_F(PodsBySelector, ANamedPod) {
  auto one = [&](const std::string& name) {
    auto req = ParseCustomMetricsRequest(
        {.path = std::string(kBase) + "/namespaces/ml/pods/" + name + "/gpu_utilization"});
    EXPECT_TRUE(req.ok());
    return BuildCustomMetricsAnswer(*req, pods_, usage_, kNow);
  };
  auto found = one("web-1");
  ASSERT_TRUE(found.ok());
  const json list = json::parse(*found);
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["value"], "60");
  for (const char* missing : {"web-2", "ghost"}) {
    auto r = one(missing);
    ASSERT_FALSE(r.ok()) << missing;
    EXPECT_EQ(r.error().code(), StatusCode::kNotFound);
    const CustomMetricsError status = CustomMetricsStatus(r.error());
    EXPECT_EQ(status.http_status, 404);
    const json body = json::parse(status.body);
    EXPECT_EQ(body["kind"], "Status");
    EXPECT_EQ(body["status"], "Failure");
    EXPECT_EQ(body["reason"], "NotFound");
    EXPECT_EQ(body["code"], 404);
  }
}

}  // namespace
}  // namespace gpu_autoscaler::profiling
