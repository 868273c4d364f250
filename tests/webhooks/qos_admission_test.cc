#include "webhooks/qos_admission.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::webhooks {
namespace {

using nlohmann::json;
using Entries = std::vector<std::pair<std::string, std::string>>;

PodInfo PodWith(std::map<std::string, std::string> annotations, Entries requests = {},
                Entries limits = {}) {
  PodInfo pod;
  pod.has_metadata = true;
  pod.has_annotations = !annotations.empty();
  pod.annotations = std::move(annotations);
  ContainerInfo c;
  c.name = "main";
  c.has_resources = true;
  c.has_requests = !requests.empty();
  c.has_limits = !limits.empty();
  c.core_requests = std::move(requests);
  c.core_limits = std::move(limits);
  pod.containers.push_back(std::move(c));
  return pod;
}

const Entries kGuaranteed2 = {{"cpu", "2"}, {"memory", "4Gi"}};

struct QosCase {
  std::string name;
  std::map<std::string, std::string> annotations;
  Entries requests;
  Entries limits;
  std::string problem;  // "" = valid; otherwise a substring of the only problem
};

class QosValidationTest : public ::testing::TestWithParam<QosCase> {};

TEST_P(QosValidationTest, Validates) {
  const QosCase& c = GetParam();
  std::vector<std::string> problems = ValidateQos(PodWith(c.annotations, c.requests, c.limits));
  if (c.problem.empty()) {
    EXPECT_TRUE(problems.empty()) << problems.front();
    return;
  }
  ASSERT_EQ(problems.size(), 1u) << problems.front();
  EXPECT_NE(problems[0].find(c.problem), std::string::npos) << problems[0];
}

const std::string kLevel = "katalyst.kubewharf.io/qos_level";
const std::string kMem = "katalyst.kubewharf.io/memory_enhancement";
const std::string kCpu = "katalyst.kubewharf.io/cpu_enhancement";

INSTANTIATE_TEST_SUITE_P(
    Table, QosValidationTest,
    ::testing::Values(
        QosCase{"NoAnnotationsIsShared", {}, {{"cpu", "500m"}}, {}, ""},
        QosCase{"UnknownLevel",
                {{kLevel, "best_effort"}},
                {},
                {},
                "metadata.annotations[katalyst.kubewharf.io/qos_level]: Unsupported value: "
                "\"best_effort\": supported values: \"dedicated_cores\", \"shared_cores\", "
                "\"reclaimed_cores\", \"system_cores\""},
        QosCase{"DedicatedNuma",
                {{kLevel, "dedicated_cores"},
                 {kMem, R"({"numa_binding":"true","numa_exclusive":"true"})"}},
                kGuaranteed2,
                kGuaranteed2,
                ""},
        QosCase{"NumaOnlyWithDedicated",
                {{kLevel, "shared_cores"}, {kMem, R"({"numa_binding":"true"})"}},
                {},
                {},
                "metadata.annotations[katalyst.kubewharf.io/memory_enhancement].numa_binding: "
                "Forbidden: numa_binding is only allowed with "
                "katalyst.kubewharf.io/qos_level=dedicated_cores, not shared_cores"},
        QosCase{
            "NumaDefaultLevel", {{kMem, R"({"numa_binding":"true"})"}}, {}, {}, "not shared_cores"},
        QosCase{"NumaFalseAnywhere",
                {{kLevel, "system_cores"}, {kMem, R"({"numa_binding":"false"})"}},
                {},
                {},
                ""},
        QosCase{"NumaValue",
                {{kLevel, "dedicated_cores"}, {kMem, R"({"numa_binding":"yes"})"}},
                kGuaranteed2,
                kGuaranteed2,
                "numa_binding: Unsupported value: \"yes\": supported values: \"true\", \"false\""},
        QosCase{"NumaBooleanNotString",
                {{kLevel, "dedicated_cores"}, {kMem, R"({"numa_binding":true})"}},
                kGuaranteed2,
                kGuaranteed2,
                "memory_enhancement].numa_binding: Invalid value: true: must be a string"},
        QosCase{"ExclusiveNeedsBinding",
                {{kLevel, "dedicated_cores"}, {kMem, R"({"numa_exclusive":"true"})"}},
                kGuaranteed2,
                kGuaranteed2,
                "numa_exclusive: Forbidden: numa_exclusive needs numa_binding \"true\""},
        QosCase{"PoolWithShared",
                {{kLevel, "shared_cores"}, {kCpu, R"({"cpuset_pool":"batch"})"}},
                {},
                {},
                ""},
        QosCase{"PoolOnlyWithShared",
                {{kLevel, "dedicated_cores"}, {kCpu, R"({"cpuset_pool":"batch"})"}},
                kGuaranteed2,
                kGuaranteed2,
                "metadata.annotations[katalyst.kubewharf.io/cpu_enhancement].cpuset_pool: "
                "Forbidden: cpuset_pool is only allowed with "
                "katalyst.kubewharf.io/qos_level=shared_cores, not dedicated_cores"},
        QosCase{"EnhancementNotJson",
                {{kCpu, "cpuset_pool=batch"}},
                {},
                {},
                "metadata.annotations[katalyst.kubewharf.io/cpu_enhancement]: Invalid value: "
                "\"cpuset_pool=batch\": must be a JSON object of strings such as "
                "{\"cpuset_pool\":\"batch\"}"},
        QosCase{
            "EnhancementArray", {{kMem, R"(["numa_binding"])"}}, {}, {}, "must be a JSON object"},
        QosCase{"OomPriorityInRange",
                {{kLevel, "reclaimed_cores"}, {kMem, R"({"oom_priority":"-50"})"}},
                {},
                {},
                ""},
        QosCase{"OomPriorityOutOfRange",
                {{kLevel, "shared_cores"}, {kMem, R"({"oom_priority":"150"})"}},
                {},
                {},
                "oom_priority: Invalid value: 150: must be in [0, 100) for shared_cores "
                "(or -300, 300)"},
        QosCase{"OomPriorityNever",
                {{kLevel, "shared_cores"}, {kMem, R"({"oom_priority":"300"})"}},
                {},
                {},
                ""},
        QosCase{"OomPriorityNotInt",
                {{kMem, R"({"oom_priority":"high"})"}},
                {},
                {},
                "oom_priority: Invalid value: \"high\": must be an integer"},
        QosCase{"SuppressionOnlyReclaimed",
                {{kLevel, "shared_cores"}, {kCpu, R"({"suppression_tolerance_rate":"1.5"})"}},
                {},
                {},
                "suppression_tolerance_rate is only allowed with "
                "katalyst.kubewharf.io/qos_level=reclaimed_cores"},
        QosCase{"SuppressionRate",
                {{kLevel, "reclaimed_cores"}, {kCpu, R"({"suppression_tolerance_rate":"0"})"}},
                {},
                {},
                "must be a number greater than 0"},
        QosCase{"BurstPolicy",
                {{kCpu, R"({"cpu_burst_policy":"always"})"}},
                {},
                {},
                "cpu_burst_policy: Unsupported value: \"always\""},
        QosCase{"DedicatedFractionalCpu",
                {{kLevel, "dedicated_cores"}},
                {{"cpu", "1500m"}, {"memory", "4Gi"}},
                {{"cpu", "1500m"}, {"memory", "4Gi"}},
                "spec.containers[0].resources: Invalid value: cpu \"1500m\" must be a whole "
                "number of cores: dedicated_cores needs Guaranteed resources with whole CPUs"},
        QosCase{"DedicatedBurstable",
                {{kLevel, "dedicated_cores"}},
                {{"cpu", "2"}, {"memory", "4Gi"}},
                {{"cpu", "4"}, {"memory", "4Gi"}},
                "cpu request \"2\" and limit \"4\" must be equal"},
        QosCase{"DedicatedNoCpu",
                {{kLevel, "dedicated_cores"}},
                {},
                {},
                "cpu request (none) and limit (none) must be equal"},
        QosCase{"DedicatedMemoryUnequal",
                {{kLevel, "dedicated_cores"}},
                {{"cpu", "2"}, {"memory", "1Gi"}},
                {{"cpu", "2"}, {"memory", "4Gi"}},
                "memory request \"1Gi\" and limit \"4Gi\" must be equal"},
        QosCase{"ReclaimedWithCpu",
                {{kLevel, "reclaimed_cores"}},
                {{"cpu", "2"}},
                {},
                "spec.containers[0].resources.requests[cpu]: Forbidden: reclaimed_cores pods ask "
                "for resource.katalyst.kubewharf.io/reclaimed_millicpu instead of cpu"},
        QosCase{"ReclaimedResources",
                {{kLevel, "reclaimed_cores"}},
                {{"resource.katalyst.kubewharf.io/reclaimed_millicpu", "2000"}},
                {{"resource.katalyst.kubewharf.io/reclaimed_millicpu", "2000"}},
                ""},
        QosCase{"ReclaimedResourcesOnlyForReclaimed",
                {},
                {{"resource.katalyst.kubewharf.io/reclaimed_memory", "1Gi"}},
                {},
                "spec.containers[0].resources: Forbidden: reclaimed resources "
                "(resource.katalyst.kubewharf.io/reclaimed_millicpu, "
                "resource.katalyst.kubewharf.io/reclaimed_memory) are only for reclaimed_cores "
                "pods, not shared_cores"}),
    [](const ::testing::TestParamInfo<QosCase>& info) { return info.param.name; });

TEST(QosValidation, ReportsEveryProblem) {
  PodInfo pod = PodWith({{kLevel, "shared_cores"},
                         {kMem, R"({"numa_binding":"true","oom_priority":"500"})"},
                         {kCpu, "{"}});
  EXPECT_EQ(ValidateQos(pod).size(), 3u);
}

struct NormalizeCase {
  std::string name;
  std::string level;
  Entries requests, limits;
  std::map<std::string, std::string> want_requests, want_limits;
};

class QosNormalizeTest : public ::testing::TestWithParam<NormalizeCase> {};

TEST_P(QosNormalizeTest, MakesResourcesFitTheLevel) {
  const NormalizeCase& c = GetParam();
  PodInfo pod = PodWith({{kLevel, c.level}}, c.requests, c.limits);
  PodResourceEdits edits = PodResourceEdits::From(pod);
  NormalizeQosResources(pod, &edits);
  EXPECT_EQ(edits.containers[0].requests, c.want_requests);
  EXPECT_EQ(edits.containers[0].limits, c.want_limits);
  // What normalisation produced passes validation (when it could fix it).
  PodInfo after;
  (void)ResourcePatch(pod, edits, &after);
  if (!c.want_requests.empty()) {
    EXPECT_TRUE(ValidateQos(after).empty()) << ValidateQos(after)[0];
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, QosNormalizeTest,
    ::testing::Values(
        // Rounded up to whole cores; the larger of request and limit, never less.
        NormalizeCase{"DedicatedRoundsUp",
                      "dedicated_cores",
                      {{"cpu", "1500m"}, {"memory", "1Gi"}},
                      {{"memory", "2Gi"}},
                      {{"cpu", "2"}, {"memory", "2Gi"}},
                      {{"cpu", "2"}, {"memory", "2Gi"}}},
        NormalizeCase{"DedicatedLimitLarger",
                      "dedicated_cores",
                      {{"cpu", "2"}, {"memory", "4Gi"}},
                      {{"cpu", "2100m"}, {"memory", "4Gi"}},
                      {{"cpu", "3"}, {"memory", "4Gi"}},
                      {{"cpu", "3"}, {"memory", "4Gi"}}},
        NormalizeCase{"DedicatedAlreadyGuaranteed",
                      "dedicated_cores",
                      kGuaranteed2,
                      kGuaranteed2,
                      {{"cpu", "2"}, {"memory", "4Gi"}},
                      {{"cpu", "2"}, {"memory", "4Gi"}}},
        // cpu 2500m -> 2500 millicores of reclaimed_millicpu; memory by request.
        NormalizeCase{"ReclaimedConverts",
                      "reclaimed_cores",
                      {{"cpu", "2500m"}, {"memory", "1Gi"}},
                      {{"cpu", "4"}, {"memory", "2Gi"}},
                      {{"resource.katalyst.kubewharf.io/reclaimed_millicpu", "2500"},
                       {"resource.katalyst.kubewharf.io/reclaimed_memory", "1073741824"}},
                      {{"resource.katalyst.kubewharf.io/reclaimed_millicpu", "2500"},
                       {"resource.katalyst.kubewharf.io/reclaimed_memory", "1073741824"}}},
        NormalizeCase{"ReclaimedLimitOnly",
                      "reclaimed_cores",
                      {},
                      {{"cpu", "1"}},
                      {{"resource.katalyst.kubewharf.io/reclaimed_millicpu", "1000"}},
                      {{"resource.katalyst.kubewharf.io/reclaimed_millicpu", "1000"}}},
        NormalizeCase{"SharedUntouched",
                      "shared_cores",
                      {{"cpu", "1500m"}},
                      {{"cpu", "3"}},
                      {{"cpu", "1500m"}},
                      {{"cpu", "3"}}}),
    [](const ::testing::TestParamInfo<NormalizeCase>& info) { return info.param.name; });

TEST(ResourcePatch, ReplacesAddsAndRemovesEntries) {
  PodInfo pod = PodWith({{kLevel, "reclaimed_cores"}}, {{"cpu", "2"}, {"memory", "1Gi"}}, {});
  PodResourceEdits edits = PodResourceEdits::From(pod);
  NormalizeQosResources(pod, &edits);
  PodInfo after;
  const json patch = json::parse(ResourcePatch(pod, edits, &after));
  const std::string base = "/spec/containers/0/resources";
  EXPECT_EQ(
      patch,
      json::parse(
          R"([
    {"op":"remove","path":")" +
          base + R"(/requests/cpu"},
    {"op":"remove","path":")" +
          base + R"(/requests/memory"},
    {"op":"add","path":")" +
          base +
          R"(/requests/resource.katalyst.kubewharf.io~1reclaimed_memory","value":"1073741824"},
    {"op":"add","path":")" +
          base + R"(/requests/resource.katalyst.kubewharf.io~1reclaimed_millicpu","value":"2000"},
    {"op":"add","path":")" +
          base +
          R"(/limits","value":{"resource.katalyst.kubewharf.io/reclaimed_memory":"1073741824","resource.katalyst.kubewharf.io/reclaimed_millicpu":"2000"}}
  ])"));
  EXPECT_TRUE(after.containers[0].has_limits);
}

TEST(ResourcePatch, AddsMissingResourcesAndAnnotations) {
  PodInfo pod;
  pod.has_metadata = true;
  pod.containers.push_back(ContainerInfo{.name = "main"});
  PodResourceEdits edits = PodResourceEdits::From(pod);
  edits.containers[0].requests["cpu"] = "250m";
  edits.annotations["gpuautoscaler.io/service-profile"] = "web";
  PodInfo after;
  EXPECT_EQ(json::parse(ResourcePatch(pod, edits, &after)), json::parse(R"([
    {"op":"add","path":"/spec/containers/0/resources","value":{"requests":{"cpu":"250m"}}},
    {"op":"add","path":"/metadata/annotations","value":{"gpuautoscaler.io/service-profile":"web"}}
  ])"));
  EXPECT_TRUE(after.has_annotations);
  EXPECT_EQ(after.annotations["gpuautoscaler.io/service-profile"], "web");
  // Nothing to do: no patch.
  PodResourceEdits same = PodResourceEdits::From(after);
  EXPECT_EQ(ResourcePatch(after, same, &pod), "");
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
