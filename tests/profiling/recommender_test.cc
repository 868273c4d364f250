#include "profiling/recommender.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace gpu_autoscaler::profiling {
namespace {

const gpu::GpuSpec& A100() {
  return gpu::GetGpu(gpu::GpuModel::kA100_80GB);
}

TEST(RecommenderTest, VpaFormulaOnHandComputedBuckets) {
  // Buckets 0, 1, 3, 7, 15, ... (first 1, ratio 2); a half-life so long that
  // every sample weighs 1 to within 1e-9.
  RecommenderConfig config = VpaConfig();
  config.half_life_seconds = int64_t{1} << 50;
  ResourcePolicy& p = config.policy(Resource::kGpuUtilization);
  p.buckets = ExponentialBuckets(100, 1, 2);
  p.lower_percentile = 0.4;
  ContainerUsage usage(config);
  // Two days at one sample a minute: 2 the first day, 5 the second.
  for (int i = 0; i < 2880; ++i)
    usage.Add(Resource::kGpuUtilization, int64_t{i} * 60, i < 1440 ? 2.0 : 5.0);

  // lifespan 2879 min = 2879/1440 days; 2880 samples / 1440 = 2 -> the lifespan.
  const double confidence = 2879.0 / 1440;
  EXPECT_DOUBLE_EQ(usage.Confidence(Resource::kGpuUtilization), confidence);
  const auto e = EstimateResource(usage, Resource::kGpuUtilization, p);
  ASSERT_TRUE(e.has_value());
  // p90 and p95 fall in [3, 7) -> 7; p40 in [1, 3) -> 3; all × 1.15.
  EXPECT_DOUBLE_EQ(e->target, 7 * 1.15);
  EXPECT_DOUBLE_EQ(e->upper, 7 * 1.15 * (1 + 1 / confidence));
  EXPECT_DOUBLE_EQ(e->lower, 3 * 1.15 * std::pow(1 + 0.001 / confidence, -2));
}

TEST(RecommenderTest, VpaMemoryKeepsOnePeakPerDay) {
  RecommenderConfig config = VpaConfig();
  ContainerUsage usage(config);
  // Day one [0, 86400): peaks at 3e9; day two: 0.5e9.
  usage.Add(Resource::kMemory, 0, 1e9);
  usage.Add(Resource::kMemory, 3600, 3e9);
  usage.Add(Resource::kMemory, 7200, 2e9);
  usage.Add(Resource::kMemory, 86'410, 0.5e9);
  usage.Add(Resource::kMemory, 100, 9e9);  // older than the last sample: dropped
  // Peaks are stored at their window's end: 3e9 at 86,400 s (weight 2),
  // 0.5e9 at 172,800 s (weight 4). Total 6.
  const Histogram& h = usage.histogram(Resource::kMemory).histogram();
  EXPECT_DOUBLE_EQ(h.total_weight(), 6);
  const ExponentialBuckets& b = h.buckets();
  // p90: 5.4 of 6 reached in 3e9's bucket 56, which ends at 3,027,156,617 bytes;
  // p50: 3 of 6 reached in 0.5e9's bucket 25, which ends at 511,134,537.6 bytes.
  EXPECT_EQ(b.FindBucket(3e9), 56);
  EXPECT_EQ(b.FindBucket(0.5e9), 25);
  const double confidence = 4.0 / 1440;  // min(86,410 s in days, 4 kept samples / 1440)
  EXPECT_DOUBLE_EQ(usage.Confidence(Resource::kMemory), confidence);
  const auto e = EstimateResource(usage, Resource::kMemory, config.policy(Resource::kMemory));
  ASSERT_TRUE(e.has_value());
  EXPECT_NEAR(e->target, 3027156617.06 * 1.15, 1);
  EXPECT_NEAR(e->lower, 511134537.59 * 1.15 * std::pow(1 + 0.001 / confidence, -2), 1);
  EXPECT_NEAR(e->upper, 3027156617.06 * 1.15 * (1 + 1 / confidence), 1e3);
}

TEST(RecommenderTest, MinimumsAndEmptyHistory) {
  RecommenderConfig config = VpaConfig();
  ContainerUsage usage(config);
  EXPECT_FALSE(EstimateResource(usage, Resource::kCpu, config.policy(Resource::kCpu)));
  usage.Add(Resource::kCpu, 0, 0.001, 0.1);  // one sample: confidence 1/1440
  const auto cpu = EstimateResource(usage, Resource::kCpu, config.policy(Resource::kCpu));
  ASSERT_TRUE(cpu.has_value());
  // Confidence min(0 days, 1/1440) = 0: the upper bound is unbounded, the lower
  // bound collapses to 0, and all three are floored at 25 millicores.
  EXPECT_EQ(cpu->upper, std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(cpu->lower, 0.025);
  EXPECT_DOUBLE_EQ(cpu->target, 0.025);
}

struct ShareCase {
  const char* name;
  double memory_bytes;
  double compute;
  double median;
  GpuShareKind kind;
  const char* profile;
  int thread_percent;
  double compute_share;
  double fraction;
};

TEST(RecommenderTest, ChooseGpuShareTable) {
  const ShareCase cases[] = {
      // 25 GB = 0.3125 of 80 GB; 20 % compute -> MPS 20 %. The cheapest MIG that
      // holds 25 GB with 20 % compute is 3g.40gb, max(3/7, 4/8) = 0.5 > 0.3125 + 0.125.
      {"mps", 25e9, 0.2, 0.1, GpuShareKind::kMps, "", 20, 0.2, 0.3125},
      // 15 GB: 1g.20gb = max(1/7, 2/8) = 0.25 <= 0.1875 + 0.125 -> MIG.
      {"mig", 15e9, 0.1, 0.2, GpuShareKind::kMig, "1g.20gb", 100, 1.0 / 7, 0.25},
      // 9 GB with 12 % compute: 1g.10gb = max(1/7, 1/8) = 1/7.
      {"smallest mig", 9e9, 0.12, 0.2, GpuShareKind::kMig, "1g.10gb", 100, 1.0 / 7, 1.0 / 7},
      // 50 GB, mostly idle: only 7g.80gb holds 50 GB -> time-slicing, 0.625.
      {"time-slicing", 50e9, 0.3, 0.01, GpuShareKind::kTimeSlicing, "", 100, 0.3, 0.625},
      // 0.21 compute rounds up to 25 %; 45 GB fits no MIG slice but 7g.80gb.
      {"rounded threads", 45e9, 0.21, 0.3, GpuShareKind::kMps, "", 25, 0.25, 0.5625},
      // Compute below the 5 % floor counts as 5 %; 1g.10gb (1/7) vs 0.0625 + 0.125.
      {"tiny", 5e9, 0.0, 0.3, GpuShareKind::kMig, "1g.10gb", 100, 1.0 / 7, 1.0 / 7},
      {"memory-bound", 75e9, 0.2, 0.3, GpuShareKind::kWholeGpu, "", 100, 1, 1},
      {"compute-bound", 20e9, 0.95, 0.9, GpuShareKind::kWholeGpu, "", 100, 1, 1},
  };
  for (const ShareCase& c : cases) {
    const GpuShare s = ChooseGpuShare(c.memory_bytes, c.compute, c.median, A100(), {});
    EXPECT_EQ(s.kind, c.kind) << c.name << ": " << s.reason;
    EXPECT_EQ(s.mig_profile, c.profile) << c.name;
    EXPECT_EQ(s.mps_thread_percent, c.thread_percent) << c.name;
    EXPECT_NEAR(s.compute_share, c.compute_share, 1e-12) << c.name;
    EXPECT_NEAR(s.gpu_fraction, c.fraction, 1e-12) << c.name;
  }
}

TEST(RecommenderTest, MigMemoryLimitIsTheSlice) {
  const GpuShare s = ChooseGpuShare(15e9, 0.1, 0.2, A100(), {});
  EXPECT_DOUBLE_EQ(s.memory_limit_bytes, 20e9);
  const GpuShare mps = ChooseGpuShare(25e9, 0.2, 0.1, A100(), {});
  EXPECT_DOUBLE_EQ(mps.memory_limit_bytes, 25e9);
}

TEST(RecommenderTest, NaiveShareIsSizedByMemoryAlone) {
  const GpuShareConfig naive = VpaConfig().share;
  const GpuShare s = ChooseGpuShare(20e9, 0.99, 0.9, A100(), naive);
  EXPECT_EQ(s.kind, GpuShareKind::kTimeSlicing);
  EXPECT_DOUBLE_EQ(s.gpu_fraction, 0.25);
  EXPECT_DOUBLE_EQ(s.memory_limit_bytes, 20e9);
  EXPECT_EQ(ChooseGpuShare(90e9, 0.1, 0.1, A100(), naive).kind, GpuShareKind::kWholeGpu);
}

TEST(RecommenderTest, RecommendEndToEnd) {
  const RecommenderConfig config = OurConfig();
  ContainerUsage usage(config);
  // 12 GB of GPU memory, 10 % busy (median and p95), one sample a minute for an hour.
  for (int i = 0; i < 60; ++i) {
    usage.Add(Resource::kGpuMemory, 1000 + i * 60, 12e9);
    usage.Add(Resource::kGpuUtilization, 1000 + i * 60, 0.1);
  }
  const Recommendation r = Recommend(usage, config, A100());
  ASSERT_TRUE(r.gpu_memory.has_value());
  const ExponentialBuckets b = ExponentialBuckets::GpuMemoryBytes();
  // Target = the end of 12e9's bucket × 1.15 (p100 with a 15 % margin).
  const double bucket_end = b.BucketStart(b.FindBucket(12e9) + 1);
  EXPECT_DOUBLE_EQ(r.gpu_memory->target, bucket_end * 1.15);
  EXPECT_GT(r.gpu_memory->target, 12e9 * 1.15);
  EXPECT_LT(r.gpu_memory->target, 12e9 * 1.15 * 1.05);
  // ~14.3 GB with ~12 % compute: 1g.20gb.
  EXPECT_EQ(r.gpu.kind, GpuShareKind::kMig);
  EXPECT_EQ(r.gpu.mig_profile, "1g.20gb");
  EXPECT_FALSE(r.cpu.has_value());
  EXPECT_FALSE(r.memory.has_value());

  ContainerUsage empty(config);
  const Recommendation none = Recommend(empty, config, A100());
  EXPECT_EQ(none.gpu.kind, GpuShareKind::kWholeGpu);
  EXPECT_DOUBLE_EQ(none.gpu.memory_limit_bytes, 80e9);
}

}  // namespace
}  // namespace gpu_autoscaler::profiling
