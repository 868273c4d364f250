#include "profiling/evaluation.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::profiling {
namespace {

// Samples every 60 s from t = 0: value(i) for i in [0, n).
template <typename F>
std::vector<TimedValue> Series(int n, F value) {
  std::vector<TimedValue> out;
  for (int i = 0; i < n; ++i)
    out.push_back({int64_t{i} * 60, value(i)});
  return out;
}

const PodResult& Find(const EvaluationReport& r, const std::string& name) {
  for (const PodResult& p : r.pod_results) {
    if (p.name == name) return p;
  }
  ADD_FAILURE() << name;
  return r.pod_results.front();
}

TEST(EvaluationTest, HandComputedSplitAndScores) {
  // Pod "a": 20 minutes, t = 0..1140; the cut is ceil(0.5 × 1140) = 570, so
  // 10 samples teach and 10 score. GPU memory 10 GB except 30 GB at t = 900
  // (a test minute); utilisation 10 % throughout.
  PodUsage a{.name = "a"};
  a.gpu_memory = Series(20, [](int i) { return i == 15 ? 30e9 : 10e9; });
  a.gpu_utilization = Series(20, [](int) { return 0.1; });
  // Pod "b": memory only, half its limit, 0.9 at t = 900.
  PodUsage b{.name = "b"};
  b.memory = Series(20, [](int i) { return i == 15 ? 0.9 : 0.5; });

  EvaluationOptions options;
  options.margin = 0.15;
  const auto report = Evaluate({a, b}, options);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(report->pods, 2);
  EXPECT_EQ(report->gpu_pods, 1);
  EXPECT_FALSE(report->margins_tuned);

  const PodResult& ra = Find(*report, "a");
  EXPECT_EQ(ra.train_seconds, 570);
  EXPECT_EQ(ra.test_seconds, 570);
  EXPECT_DOUBLE_EQ(ra.train_gpu_memory_peak, 10e9);
  // Ours: GPU memory = end of 10e9's bucket (10,207,902,624) × 1.15 = 11.74 GB;
  // compute = end of 0.1's bucket (0.10163) × 1.15 = 0.1169 -> MPS 15 %,
  // max(0.15, 11.74 / 80) = 0.15. 1g.20gb (1/7 ≥ 0.1169, 20 GB) has share
  // max(1/7, 2/8) = 0.25 ≤ 0.15 + 0.125, so MIG 1g.20gb with a 20 GB limit.
  const PodMethodResult& ours = ra.methods[static_cast<int>(Method::kOurs)];
  ASSERT_TRUE(ours.recommendation.gpu_memory.has_value());
  EXPECT_NEAR(ours.recommendation.gpu_memory->target, 11'739'088'017.64, 1);
  EXPECT_EQ(ours.recommendation.gpu.kind, GpuShareKind::kMig);
  EXPECT_EQ(ours.recommendation.gpu.mig_profile, "1g.20gb");
  EXPECT_DOUBLE_EQ(ours.recommendation.gpu.memory_limit_bytes, 20e9);
  EXPECT_EQ(ours.gpu_memory.test_minutes, 10);
  EXPECT_EQ(ours.gpu_memory.exceeded_minutes, 1);       // 30 GB > 20 GB
  EXPECT_EQ(ours.gpu_utilization.exceeded_minutes, 0);  // 0.1 < 1/7
  // VPA: one daily peak (10 GB) -> the same 11.74 GB target; the naive share
  // is time-slicing sized by it: 11.739 / 80 = 0.146739.
  const PodMethodResult& vpa = ra.methods[static_cast<int>(Method::kVpa)];
  EXPECT_EQ(vpa.recommendation.gpu.kind, GpuShareKind::kTimeSlicing);
  EXPECT_NEAR(vpa.recommendation.gpu.gpu_fraction, 0.14673860022, 1e-10);
  EXPECT_EQ(vpa.gpu_memory.exceeded_minutes, 1);

  // Pod "b": memory target = end of 0.5's bucket (0.505670) × 1.15 = 0.58152.
  const PodResult& rb = Find(*report, "b");
  EXPECT_FALSE(rb.uses_gpu);
  const PodMethodResult& ours_b = rb.methods[static_cast<int>(Method::kOurs)];
  ASSERT_TRUE(ours_b.recommendation.memory.has_value());
  EXPECT_NEAR(ours_b.recommendation.memory->target, 0.58152027843, 1e-10);
  EXPECT_EQ(ours_b.memory.exceeded_minutes, 1);
  EXPECT_EQ(rb.methods[static_cast<int>(Method::kWholeGpu)].memory.exceeded_minutes, 0);

  const MethodSummary& s_ours = report->methods[static_cast<int>(Method::kOurs)];
  EXPECT_DOUBLE_EQ(s_ours.gpu_memory.pct(), 10);
  EXPECT_DOUBLE_EQ(s_ours.memory.pct(), 10);
  EXPECT_DOUBLE_EQ(s_ours.gpus_saved_pct, 75);  // 100 × (1 − 0.25 / 1)
  EXPECT_EQ(s_ours.share_counts[static_cast<int>(GpuShareKind::kMig)], 1);
  const MethodSummary& s_vpa = report->methods[static_cast<int>(Method::kVpa)];
  EXPECT_NEAR(s_vpa.gpus_saved_pct, 85.326139978, 1e-6);
  const MethodSummary& s_whole = report->methods[static_cast<int>(Method::kWholeGpu)];
  EXPECT_DOUBLE_EQ(s_whole.gpus_saved_pct, 0);
  EXPECT_DOUBLE_EQ(s_whole.gpu_memory.pct(), 0);
}

// 40 minutes, t = 0..2340: the cut is 1170 and the nested cut of the training
// part ceil(0.5 × 1170) = 585. GPU memory 10 GB, 12.5 GB at t = 900 (in the
// nested validation part), and `test_value` after the cut. Utilisation 50 %
// keeps the share on MPS, whose limit is the GPU-memory target itself.
PodUsage TuningPod(double test_value) {
  PodUsage p{.name = "p"};
  p.gpu_memory = Series(40, [test_value](int i) {
    if (i * 60 >= 1170) return test_value;
    return i == 15 ? 12.5e9 : 10e9;
  });
  p.gpu_utilization = Series(40, [](int) { return 0.5; });
  return p;
}

TEST(EvaluationTest, MarginIsTunedOnTheTrainingPartOnly) {
  // Nested: learn 10e9 (bucket end 10,207,902,624), validate on 10 minutes
  // with one at 12.5e9: 10 % > 0.5 % until 10.2079e9 × (1 + m) ≥ 12.5e9,
  // m ≥ 0.2245: the grid's 0.25. The test part does not change the choice.
  for (double test_value : {10e9, 70e9}) {
    const auto report = Evaluate({TuningPod(test_value)}, EvaluationOptions{});
    ASSERT_TRUE(report.ok()) << report.error().message();
    EXPECT_TRUE(report->margins_tuned);
    EXPECT_DOUBLE_EQ(report->gpu_memory_margin, 0.25) << test_value;
    const PodMethodResult& ours = report->pod_results[0].methods[static_cast<int>(Method::kOurs)];
    EXPECT_EQ(ours.recommendation.gpu.kind, GpuShareKind::kMps);
    EXPECT_EQ(ours.gpu_memory.exceeded_minutes, test_value > 20e9 ? 20 : 0);
  }
}

TEST(EvaluationTest, BadInput) {
  EvaluationOptions options;
  options.train_fraction = 1;
  EXPECT_FALSE(Evaluate({TuningPod(1)}, options).ok());
  options.train_fraction = 0;
  EXPECT_FALSE(Evaluate({TuningPod(1)}, options).ok());
  const auto none = Evaluate({PodUsage{.name = "empty"}}, EvaluationOptions{});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message(), "no pod has usage samples");
}

TEST(EvaluationTest, PodWithoutGpuMemoryHistoryKeepsAWholeGpu) {
  PodUsage p{.name = "late"};
  // GPU memory appears only after the cut.
  p.gpu_utilization = Series(20, [](int) { return 0.2; });
  p.gpu_memory = {{900, 5e9}, {960, 5e9}};
  const auto report = Evaluate({p}, EvaluationOptions{.margin = 0.15});
  ASSERT_TRUE(report.ok());
  const MethodSummary& ours = report->methods[static_cast<int>(Method::kOurs)];
  EXPECT_EQ(ours.share_counts[static_cast<int>(GpuShareKind::kWholeGpu)], 1);
  EXPECT_DOUBLE_EQ(ours.gpus_saved_pct, 0);
  EXPECT_EQ(ours.gpu_memory.exceeded_minutes, 0);
}

}  // namespace
}  // namespace gpu_autoscaler::profiling
