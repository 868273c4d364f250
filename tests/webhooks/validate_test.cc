#include "webhooks/validate.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::webhooks {
namespace {

struct PodAnnotationCase {
  std::string name;
  std::map<std::string, std::string> annotations;
  std::string problem;  // "" = valid; otherwise a substring of the only problem
};

class PodAnnotationTest : public ::testing::TestWithParam<PodAnnotationCase> {};

TEST_P(PodAnnotationTest, Validates) {
  PodInfo pod;
  pod.annotations = GetParam().annotations;
  std::vector<std::string> problems = ValidatePodAnnotations(pod);
  if (GetParam().problem.empty()) {
    EXPECT_TRUE(problems.empty()) << problems.front();
    return;
  }
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find(GetParam().problem), std::string::npos) << problems[0];
}

INSTANTIATE_TEST_SUITE_P(
    Table, PodAnnotationTest,
    ::testing::Values(
        PodAnnotationCase{"NoAnnotations", {}, ""},
        PodAnnotationCase{"GoodSharing",
                          {{"gpuautoscaler.io/gpu-memory", "10Gi"},
                           {"gpuautoscaler.io/gpu-compute", "30"},
                           {"gpuautoscaler.io/sharing", "enabled"},
                           {"gpuautoscaler.io/mig-profile", "3g.71gb"}},
                          ""},
        PodAnnotationCase{"BadMemory",
                          {{"gpuautoscaler.io/gpu-memory", "ten"}},
                          "metadata.annotations[gpuautoscaler.io/gpu-memory]: Invalid value: "
                          "\"ten\": must be a quantity such as \"10Gi\""},
        PodAnnotationCase{"MemoryBeyondAnyGpu",
                          {{"gpuautoscaler.io/gpu-memory", "200Gi"}},
                          "exceeds the largest supported GPU (141GB)"},
        PodAnnotationCase{"ComputeRange",
                          {{"gpuautoscaler.io/gpu-compute", "150"}},
                          "metadata.annotations[gpuautoscaler.io/gpu-compute]: Invalid value: "
                          "\"150\": must be a whole percent from 1 to 100"},
        PodAnnotationCase{
            "SharingValue",
            {{"gpuautoscaler.io/sharing", "off"}},
            "Unsupported value: \"off\": supported values: \"enabled\", \"disabled\""},
        PodAnnotationCase{"UnknownProfile",
                          {{"gpuautoscaler.io/mig-profile", "2g.5gb"}},
                          "metadata.annotations[gpuautoscaler.io/mig-profile]: Unsupported value: "
                          "\"2g.5gb\": not a MIG profile of any supported GPU (A100-SXM4-40GB: "
                          "1g.5gb"},
        PodAnnotationCase{"QosLevels", {{"gpuautoscaler.io/qos-level", "reclaimed_cores"}}, ""},
        PodAnnotationCase{
            "BadQos",
            {{"gpuautoscaler.io/qos-level", "best_effort"}},
            "metadata.annotations[gpuautoscaler.io/qos-level]: Unsupported value: "
            "\"best_effort\": supported values: \"dedicated_cores\", \"shared_cores\", "
            "\"reclaimed_cores\", \"system_cores\""},
        PodAnnotationCase{"NumaWithDedicated",
                          {{"gpuautoscaler.io/qos-level", "dedicated_cores"},
                           {"gpuautoscaler.io/memory-enhancement", R"({"numa_binding":"true"})"}},
                          ""},
        PodAnnotationCase{"NumaWithShared",
                          {{"gpuautoscaler.io/qos-level", "shared_cores"},
                           {"gpuautoscaler.io/memory-enhancement", R"({"numa_binding":"true"})"}},
                          "metadata.annotations[gpuautoscaler.io/memory-enhancement].numa_binding: "
                          "Forbidden: numa_binding is only allowed with "
                          "gpuautoscaler.io/qos-level=dedicated_cores, not shared_cores"},
        PodAnnotationCase{"NumaShortFormDefaultQos",
                          {{"gpuautoscaler.io/numa_binding", "true"}},
                          "metadata.annotations[gpuautoscaler.io/numa_binding]: Forbidden"},
        PodAnnotationCase{"NumaFalseIsHarmless",
                          {{"gpuautoscaler.io/qos-level", "reclaimed_cores"},
                           {"gpuautoscaler.io/memory-enhancement", R"({"numa_binding":false})"}},
                          ""},
        PodAnnotationCase{"NumaBadValue",
                          {{"gpuautoscaler.io/numa_binding", "yes"}},
                          "Unsupported value: \"yes\": supported values: \"true\", \"false\""},
        PodAnnotationCase{"PoolWithShared",
                          {{"gpuautoscaler.io/qos-level", "shared_cores"},
                           {"gpuautoscaler.io/cpu-enhancement", R"({"cpuset_pool":"batch"})"}},
                          ""},
        PodAnnotationCase{"PoolDefaultQos", {{"gpuautoscaler.io/cpuset_pool", "batch"}}, ""},
        PodAnnotationCase{"PoolWithDedicated",
                          {{"gpuautoscaler.io/qos-level", "dedicated_cores"},
                           {"gpuautoscaler.io/cpu-enhancement", R"({"cpuset_pool":"batch"})"}},
                          "metadata.annotations[gpuautoscaler.io/cpu-enhancement].cpuset_pool: "
                          "Forbidden: cpuset_pool is only allowed with "
                          "gpuautoscaler.io/qos-level=shared_cores, not dedicated_cores"},
        PodAnnotationCase{"EnhancementNotJson",
                          {{"gpuautoscaler.io/cpu-enhancement", "cpuset_pool=batch"}},
                          "metadata.annotations[gpuautoscaler.io/cpu-enhancement]: Invalid value: "
                          "\"cpuset_pool=batch\": must be a JSON object"}),
    [](const ::testing::TestParamInfo<PodAnnotationCase>& info) { return info.param.name; });

TEST(PodAnnotationTest, ReportsEveryProblem) {
  PodInfo pod;
  pod.annotations = {{"gpuautoscaler.io/gpu-memory", "x"},
                     {"gpuautoscaler.io/gpu-compute", "0"},
                     {"gpuautoscaler.io/qos-level", "?"}};
  EXPECT_EQ(ValidatePodAnnotations(pod).size(), 3u);
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
