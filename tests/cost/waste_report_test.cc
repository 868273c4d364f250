// WasteFromHistory: the history's per-minute rows through the idle detector.
#include "cost/waste_report.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::cost {
namespace {

constexpr int64_t kT = 1'800'000'000 - 1'800'000'000 % 60;

// `minutes` one-minute rows of one pod holding `gpus` at $0.001 per GPU-second,
// starting `from` minutes after kT; utilisation < 0: none measured.
void AddMinutes(std::vector<CostRow>& rows, const std::string& pod, int from, int minutes,
                double gpus, double utilization) {
  for (int m = from; m < from + minutes; ++m) {
    CostRow row;
    row.keys = {pod};
    row.bucket = kT + 60 * m;
    row.totals.gpu_seconds = 60 * gpus;
    row.totals.gpu_cost = 60 * gpus * 0.001;
    if (utilization >= 0) {
      row.totals.metered_gpu_seconds = 60 * gpus;
      row.totals.utilized_gpu_seconds = 60 * gpus * utilization;
    }
    rows.push_back(row);
  }
}

TEST(WasteFromHistoryTest, IdleForTheWindowCountsTheWholeLowStretch) {
  std::vector<CostRow> rows;
  AddMinutes(rows, "ml/idle", 0, 40, 1, 0.01);  // 40 low minutes: idle from the start
  AddMinutes(rows, "ml/busy", 0, 40, 0.5, 0.5);
  AddMinutes(rows, "ml/gappy", 0, 20, 1, 0.0);   // 20 low minutes,
  AddMinutes(rows, "ml/gappy", 22, 20, 1, 0.0);  // two unmeasured, 20 more: never 30 in a row
  AddMinutes(rows, "ml/blind", 0, 40, 1, -1);    // no utilisation at all
  CostRow idle_capacity;                         // skipped
  idle_capacity.idle = true;
  idle_capacity.keys = {""};
  idle_capacity.totals.gpu_seconds = 60;
  rows.push_back(idle_capacity);

  const WasteReport report =
      WasteFromHistory(rows, 60, {.threshold = 0.05, .window_seconds = 1800});
  ASSERT_EQ(report.pods.size(), 4u);
  const PodWaste& idle = report.pods[0];  // the largest idle cost first
  EXPECT_EQ(idle.pod, "ml/idle");
  // Every minute is covered (a bucket is its start and end), all low.
  EXPECT_DOUBLE_EQ(idle.measured_gpu_seconds, 40 * 60);
  EXPECT_DOUBLE_EQ(idle.idle_gpu_seconds, 40 * 60);
  EXPECT_NEAR(idle.idle_cost, 40 * 60 * 0.001, 1e-9);
  EXPECT_TRUE(idle.idle);
  EXPECT_EQ(idle.idle_since, kT);
  EXPECT_EQ(idle.idle_periods, 1);
  for (size_t i = 1; i < report.pods.size(); ++i) {
    EXPECT_EQ(report.pods[i].idle_gpu_seconds, 0) << report.pods[i].pod;
    EXPECT_FALSE(report.pods[i].idle) << report.pods[i].pod;
  }
  auto find = [&](const std::string& pod) {
    for (const PodWaste& p : report.pods)
      if (p.pod == pod) return p;
    return PodWaste{};
  };
  EXPECT_DOUBLE_EQ(find("ml/busy").measured_gpu_seconds, 40 * 30);
  EXPECT_DOUBLE_EQ(find("ml/gappy").measured_gpu_seconds, (20 + 20) * 60);
  EXPECT_DOUBLE_EQ(find("ml/blind").measured_gpu_seconds, 0);
  EXPECT_EQ(report.totals.pods, 4u);
  EXPECT_EQ(report.totals.idle_pods, 1u);
  EXPECT_DOUBLE_EQ(report.totals.idle_gpu_seconds, 40 * 60);
}

TEST(WasteFromHistoryTest, NoRowsNoPods) {
  const WasteReport report = WasteFromHistory({}, 60, {});
  EXPECT_TRUE(report.pods.empty());
  EXPECT_EQ(report.totals.pods, 0u);
}

}  // namespace
}  // namespace gpu_autoscaler::cost
