#include "profiling/histogram.h"

#include <gtest/gtest.h>

#include <cmath>

namespace gpu_autoscaler::profiling {
namespace {

// first 1, ratio 2, max 10: ceil(log2(10 + 1)) + 1 = 5 buckets starting at 0, 1, 3, 7, 15.
ExponentialBuckets Doubling() {
  return {10.0, 1.0, 2.0};
}

TEST(ExponentialBucketsTest, DoublingLayout) {
  const ExponentialBuckets b = Doubling();
  EXPECT_EQ(b.num_buckets(), 5);
  const double starts[] = {0, 1, 3, 7, 15};
  for (int i = 0; i < 5; ++i)
    EXPECT_DOUBLE_EQ(b.BucketStart(i), starts[i]) << i;
  struct Case {
    double value;
    int bucket;
  };
  for (const Case& c :
       {Case{0, 0}, Case{0.99, 0}, Case{1, 1}, Case{2.9, 1}, Case{3, 2}, Case{6.9, 2}, Case{7, 3},
        Case{14.9, 3}, Case{15, 4}, Case{1e9, 4}, Case{-5, 0}, Case{NAN, 0}}) {
    EXPECT_EQ(b.FindBucket(c.value), c.bucket) << c.value;
  }
}

TEST(ExponentialBucketsTest, VpaBucketCounts) {
  // ceil(log(max * 0.05 / first + 1) / log(1.05)) + 1
  EXPECT_EQ(ExponentialBuckets::CpuCores().num_buckets(), 223);     // log(50001)/log(1.05) = 221.8
  EXPECT_EQ(ExponentialBuckets::MemoryBytes().num_buckets(), 176);  // log(5001)/log(1.05) = 174.6
  EXPECT_EQ(ExponentialBuckets::Fraction().num_buckets(), 82);      // log(51)/log(1.05) = 80.6
  const ExponentialBuckets memory = ExponentialBuckets::MemoryBytes();
  // 3e9 bytes: log(3e9 * 0.05 / 1e7 + 1) / log(1.05) = log(16) / log(1.05) = 56.8 -> bucket 56.
  EXPECT_EQ(memory.FindBucket(3e9), 56);
  // start(57) = 1e7 * (1.05^57 - 1) / 0.05
  EXPECT_NEAR(memory.BucketStart(57), 1e7 * (std::pow(1.05, 57) - 1) / 0.05, 1);
  EXPECT_NEAR(memory.BucketStart(57), 3027156617.06, 0.01);
}

TEST(HistogramTest, EmptyPercentileIsZero) {
  Histogram h(Doubling());
  EXPECT_TRUE(h.IsEmpty());
  EXPECT_EQ(h.Percentile(0.9), 0);
}

TEST(HistogramTest, PercentileIsTheEndOfTheBucket) {
  Histogram h(Doubling());
  h.AddSample(0.5, 1);  // bucket 0
  h.AddSample(2, 1);    // bucket 1
  h.AddSample(5, 2);    // bucket 2; total 4
  struct Case {
    double p;
    double want;
  };
  for (const Case& c : {Case{0, 1}, Case{0.25, 1}, Case{0.26, 3}, Case{0.5, 3}, Case{0.51, 7},
                        Case{0.9, 7}, Case{1.0, 7}, Case{2.0, 7}}) {
    EXPECT_DOUBLE_EQ(h.Percentile(c.p), c.want) << c.p;
  }
  EXPECT_DOUBLE_EQ(h.total_weight(), 4);
}

TEST(HistogramTest, LastBucketReportsItsStart) {
  Histogram h(Doubling());
  h.AddSample(100, 1);
  EXPECT_DOUBLE_EQ(h.Percentile(0.5), 15);
}

TEST(HistogramTest, SubtractAndScale) {
  Histogram h(Doubling());
  h.AddSample(0.5, 1);
  h.AddSample(5, 1);
  h.SubtractSample(5, 1);
  EXPECT_DOUBLE_EQ(h.Percentile(1.0), 1);  // only bucket 0 left
  EXPECT_DOUBLE_EQ(h.total_weight(), 1);
  h.SubtractSample(0.5, 5);  // not below zero
  EXPECT_TRUE(h.IsEmpty());
  EXPECT_DOUBLE_EQ(h.total_weight(), 0);

  h.AddSample(2, 4);
  h.Scale(0.25);
  EXPECT_DOUBLE_EQ(h.total_weight(), 1);
  h.Scale(1e-5);  // 1e-5 < epsilon: empty
  EXPECT_TRUE(h.IsEmpty());
}

TEST(HistogramTest, NegativeWeightIgnored) {
  Histogram h(Doubling());
  h.AddSample(2, -1);
  EXPECT_TRUE(h.IsEmpty());
}

TEST(DecayingHistogramTest, LaterSamplesWeighMore) {
  // Half-life 100 s: a sample 100 s later weighs twice as much.
  DecayingHistogram h(Doubling(), 100);
  h.AddSample(0.5, 1, 0);  // weight 1
  h.AddSample(5, 1, 100);  // weight 2; total 3
  EXPECT_DOUBLE_EQ(h.histogram().total_weight(), 3);
  EXPECT_DOUBLE_EQ(h.Percentile(0.3), 1);  // 0.9 of 3: bucket 0 holds 1
  EXPECT_DOUBLE_EQ(h.Percentile(0.34), 7);
  EXPECT_EQ(h.reference_timestamp(), 0);
}

TEST(DecayingHistogramTest, RenormalisesPastOneHundredHalfLives) {
  DecayingHistogram h(Doubling(), 100);
  h.AddSample(0.5, 1, 0);
  h.AddSample(5, 1, 100);
  // 10,001 > 0 + 100 × 100: the reference moves to 10,001 rounded to 100 s,
  // 10,000, and old weights are scaled by 2^((0 - 10,000) / 100) = 2^-100.
  h.AddSample(2, 1, 10'001);
  EXPECT_EQ(h.reference_timestamp(), 10'000);
  EXPECT_DOUBLE_EQ(h.histogram().BucketWeight(0), std::ldexp(1.0, -100));
  EXPECT_DOUBLE_EQ(h.histogram().BucketWeight(2), std::ldexp(2.0, -100));
  EXPECT_DOUBLE_EQ(h.histogram().BucketWeight(1), std::exp2(0.01));
  // The old samples fell below epsilon: the percentile sees only the new one.
  EXPECT_DOUBLE_EQ(h.Percentile(0.0), 3);
  EXPECT_DOUBLE_EQ(h.Percentile(1.0), 3);
}

TEST(DecayingHistogramTest, FirstSampleOfARealClockSetsTheReference) {
  // GenTD26 timestamps: 1,662,858,720 s with a 24 h half-life rounds to
  // 19,246 days = 1,662,854,400 s (the nearer multiple).
  DecayingHistogram h(ExponentialBuckets::Fraction(), 86'400);
  h.AddSample(0.5, 1, 1'662'858'720);
  EXPECT_EQ(h.reference_timestamp(), 1'662'854'400);
  EXPECT_DOUBLE_EQ(h.histogram().total_weight(), std::exp2(4'320.0 / 86'400));
}

TEST(DecayingHistogramTest, SubtractUsesTheSameDecay) {
  DecayingHistogram h(Doubling(), 100);
  h.AddSample(5, 1, 200);  // weight 4
  h.AddSample(2, 1, 0);    // weight 1
  h.SubtractSample(5, 1, 200);
  EXPECT_DOUBLE_EQ(h.histogram().total_weight(), 1);
  EXPECT_DOUBLE_EQ(h.Percentile(1.0), 3);
}

}  // namespace
}  // namespace gpu_autoscaler::profiling
