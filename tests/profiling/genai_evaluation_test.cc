// The profiling evaluation on the full GenTD26 usage files copied into
// tests/data/genai/ (quality targets from issue 14, not timing).
#include <gtest/gtest.h>

#include "profiling/evaluation.h"
#include "profiling/genai_usage.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::profiling {
namespace {

TEST(GenAiEvaluationTest, MeetsTheTargetsOnTheTrace) {
  const std::string dir = testing::SourcePath("tests/data/genai/");
  const auto pods = LoadGenAiUsage({.gpu_utilization = dir + "pod_gpu_duty_cycle_anon.csv.gz",
                                    .gpu_memory = dir + "pod_gpu_memory_used_bytes_anon.csv.gz",
                                    .memory = dir + "pod_memory_util_anon.csv.gz"});
  ASSERT_TRUE(pods.ok()) << pods.error().message();
  const auto report = Evaluate(*pods, EvaluationOptions{});
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(report->pods, 164);  // 101 with GPU series, 63 more in the memory file only
  EXPECT_EQ(report->gpu_pods, 101);
  EXPECT_TRUE(report->margins_tuned);

  const MethodSummary& ours = report->methods[static_cast<int>(Method::kOurs)];
  // Targets: GPU-memory exceedance under 1 % of test minutes, at least 30 % of GPUs saved.
  EXPECT_LT(ours.gpu_memory.pct(), 1.0);
  EXPECT_GE(ours.gpus_saved_pct, 30.0);
  EXPECT_LT(ours.memory.pct(), 1.0);
  EXPECT_GT(ours.gpu_memory.test_minutes, 50'000);

  const MethodSummary& whole = report->methods[static_cast<int>(Method::kWholeGpu)];
  EXPECT_DOUBLE_EQ(whole.gpus_saved_pct, 0);
  EXPECT_EQ(whole.gpu_memory.exceeded_minutes, 0);  // peaks stay under 80 GB
}

}  // namespace
}  // namespace gpu_autoscaler::profiling
