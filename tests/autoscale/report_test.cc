#include "autoscale/report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace gpu_autoscaler::autoscale {
namespace {

RunResult Run(std::string policy, uint64_t seed, double at100, double at130) {
  RunResult r;
  r.policy = std::move(policy);
  r.seed = seed;
  r.alloc_pct.fill(std::numeric_limits<double>::quiet_NaN());
  r.frag_pct.fill(std::numeric_limits<double>::quiet_NaN());
  r.frag_ratio.fill(0);
  r.alloc_pct[100] = at100;
  r.alloc_pct[130] = at130;
  r.frag_pct[100] = 5;
  r.frag_pct[130] = 4;
  r.failed_by_class = {2, 10, 20, 3};
  r.failed_cpu_only_cpu_milli = 2 * 12500;
  r.pods = 100;
  return r;
}

std::vector<PolicySummary> Sample() {
  return {SummarisePolicy("FGD", {Run("FGD", 42, 95, 96), Run("FGD", 43, 97, 98)}),
          SummarisePolicy("BestFit", {Run("BestFit", 42, 92, 93), Run("BestFit", 43, 92, 93)})};
}

TEST(ReportTest, SummariseIsMeanAndSampleSd) {
  const MeanSd s = Summarise({1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_NEAR(s.sd, 1.2909944, 1e-6);
  EXPECT_DOUBLE_EQ(Summarise({7}).sd, 0);
  const PolicySummary p = Sample()[0];
  EXPECT_DOUBLE_EQ(p.alloc_pct[100].mean, 96);
  EXPECT_NEAR(p.alloc_pct[100].sd, std::sqrt(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(p.failed_by_class[1].mean, 10);
}

TEST(ReportTest, TableShowsPoliciesSideBySide) {
  const std::string table = FormatTable(Sample());
  EXPECT_NE(table.find("FGD"), std::string::npos);
  EXPECT_NE(table.find("BestFit"), std::string::npos);
  EXPECT_NE(table.find("96.00 ± 1.41"), std::string::npos) << table;
  EXPECT_NE(table.find("92.00 ± 0.00"), std::string::npos) << table;
  EXPECT_NE(table.find("failed sharing pods"), std::string::npos);
  EXPECT_NE(table.find("failed cpu-only cores"), std::string::npos);
  // The FGD column comes first on every row.
  const size_t row = table.find("GPU alloc % @130");
  ASSERT_NE(row, std::string::npos);
  EXPECT_LT(table.find("97.00", row), table.find("93.00", row));
}

TEST(ReportTest, JsonIsValidAndComplete) {
  const nlohmann::json doc = nlohmann::json::parse(FormatJson(Sample()));
  ASSERT_EQ(doc.size(), 2u);
  EXPECT_EQ(doc[0]["policy"], "FGD");
  EXPECT_DOUBLE_EQ(doc[0]["gpu_alloc_pct"]["130"]["mean"].get<double>(), 97);
  EXPECT_EQ(doc[1]["seeds"], nlohmann::json({42, 43}));
  EXPECT_DOUBLE_EQ(doc[1]["failed_pods"]["whole-gpu"]["mean"].get<double>(), 20);
  EXPECT_DOUBLE_EQ(doc[1]["failed_cpu_only_cores"]["mean"].get<double>(), 25);
  EXPECT_EQ(doc[0]["runs"].size(), 2u);
}

TEST(ReportTest, ArrivedCurveHasOneRowPerPercent) {
  const std::string csv = FormatArrivedCurve(Sample());
  EXPECT_EQ(
      csv.rfind("arrived_pct,FGD_alloc_mean,FGD_alloc_sd,FGD_frag_mean,BestFit_alloc_mean", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + kArrivedColumns);
  EXPECT_NE(csv.find("\n100,96.000,1.414,5.000,92.000,0.000,5.000\n"), std::string::npos) << csv;
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
