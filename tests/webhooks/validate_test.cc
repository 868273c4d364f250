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
        PodAnnotationCase{
            "OtherAnnotationsIgnored", {{"katalyst.kubewharf.io/qos_level", "gold"}}, ""}),
    [](const ::testing::TestParamInfo<PodAnnotationCase>& info) { return info.param.name; });

TEST(PodAnnotationTest, ReportsEveryProblem) {
  PodInfo pod;
  pod.annotations = {{"gpuautoscaler.io/gpu-memory", "x"},
                     {"gpuautoscaler.io/gpu-compute", "0"},
                     {"gpuautoscaler.io/sharing", "?"}};
  EXPECT_EQ(ValidatePodAnnotations(pod).size(), 3u);
}

}  // namespace
}  // namespace gpu_autoscaler::webhooks
