// Tests for the idle-GPU detector (src/cost/waste.h) and the GenTD26 usage
// trace reader (src/cost/usage_trace.h). Times are plain integers; costs are
// multiples of 1/1024 so sums compare exactly.
#include "cost/waste.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cost/usage_trace.h"
#include "support/test_paths.h"

namespace gpu_autoscaler::cost {
namespace {

using ::testing::HasSubstr;
using Kind = IdleEvent::Kind;

constexpr double kRate = 1.0 / 1024;  // cost per second

// Feeds one sample a minute from `t0`, values in percent.
void FeedMinutes(IdleGpuDetector& d, const std::string& pod, int64_t t0,
                 const std::vector<double>& percent, std::vector<IdleEvent>& events) {
  for (size_t i = 0; i < percent.size(); ++i) {
    d.Observe(pod, t0 + 60 * static_cast<int64_t>(i), percent[i] / 100, events);
  }
}

TEST(IdleGpuDetector, BusyGpuIsNeverIdle) {
  IdleGpuDetector d;
  d.SetAllocation("ml/a", 1, kRate);
  std::vector<IdleEvent> events;
  FeedMinutes(d, "ml/a", 0, std::vector<double>(120, 50), events);
  EXPECT_TRUE(events.empty());
  auto w = *d.Waste("ml/a");
  EXPECT_FALSE(w.idle);
  EXPECT_EQ(w.measured_gpu_seconds, 119 * 60);
  EXPECT_EQ(w.measured_cost, 119 * 60 * kRate);
  EXPECT_EQ(w.idle_gpu_seconds, 0);
}

TEST(IdleGpuDetector, BecomesIdleAfterTheWindowAndCountsTheWholeRun) {
  IdleGpuDetector d;  // 5 %, 30 min
  d.SetAllocation("ml/a", 1, kRate);
  std::vector<IdleEvent> events;
  // Busy for 10 minutes, then 1 % from the sample at minute 11.
  std::vector<double> u(11, 40);
  u.resize(11 + 30, 1);
  FeedMinutes(d, "ml/a", 1000, u, events);
  // The low run starts at minute 10 (the interval ending at minute 11) and
  // reaches 30 minutes at minute 40, the last sample.
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kBecameIdle);
  EXPECT_EQ(events[0].pod, "ml/a");
  EXPECT_EQ(events[0].at, 1000 + 40 * 60);
  EXPECT_EQ(events[0].since, 1000 + 10 * 60);
  auto w = *d.Waste("ml/a");
  EXPECT_TRUE(w.idle);
  EXPECT_EQ(w.idle_since, 1000 + 10 * 60);
  EXPECT_EQ(w.idle_gpu_seconds, 30 * 60);
  EXPECT_EQ(w.idle_cost, 30 * 60 * kRate);
  EXPECT_EQ(w.idle_periods, 1);
  EXPECT_EQ(d.Totals().idle_pods, 1u);

  // Still idle: every further low minute counts; then it gets busy.
  events.clear();
  FeedMinutes(d, "ml/a", 1000 + 41 * 60, {0, 0, 0, 30}, events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kBecameBusy);
  EXPECT_EQ(events[0].at, 1000 + 44 * 60);
  EXPECT_EQ(events[0].since, 1000 + 10 * 60);
  EXPECT_DOUBLE_EQ(events[0].utilization, 0.3);
  w = *d.Waste("ml/a");
  EXPECT_FALSE(w.idle);
  EXPECT_EQ(w.idle_gpu_seconds, 33 * 60);
  EXPECT_EQ(w.measured_gpu_seconds, 44 * 60);
}

TEST(IdleGpuDetector, ShortPausesAreNotWaste) {
  IdleGpuDetector d;
  d.SetAllocation("ml/a", 1, kRate);
  std::vector<IdleEvent> events;
  std::vector<double> u;
  for (int cycle = 0; cycle < 5; ++cycle) {
    u.insert(u.end(), 29, 0);  // 29 low minutes
    u.push_back(20);
  }
  FeedMinutes(d, "ml/a", 0, u, events);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(d.Waste("ml/a")->idle_gpu_seconds, 0);
}

TEST(IdleGpuDetector, ThresholdIsStrict) {
  IdleGpuDetector d({.threshold = 0.05, .window_seconds = 600});
  d.SetAllocation("p", 1, kRate);
  std::vector<IdleEvent> events;
  FeedMinutes(d, "p", 0, std::vector<double>(20, 5), events);  // exactly 5 %: in use
  EXPECT_TRUE(events.empty());
  FeedMinutes(d, "p", 20 * 60, std::vector<double>(20, 4.9), events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].since, 19 * 60);
}

TEST(IdleGpuDetector, FractionalShareScalesGpuSecondsNotCost) {
  IdleGpuDetector d({.window_seconds = 60});
  d.SetAllocation("half", 0.5, kRate);
  std::vector<IdleEvent> events;
  FeedMinutes(d, "half", 0, {0, 0, 0}, events);
  auto w = *d.Waste("half");
  EXPECT_EQ(w.idle_gpu_seconds, 0.5 * 120);
  EXPECT_EQ(w.idle_cost, 120 * kRate);
}

TEST(IdleGpuDetector, GapsAndMissingFiguresAreNotIdle) {
  IdleGpuDetector d({.window_seconds = 300, .max_gap_seconds = 120});
  d.SetAllocation("p", 1, kRate);
  std::vector<IdleEvent> events;
  FeedMinutes(d, "p", 0, {0, 0, 0, 0, 0, 0}, events);  // 5 low minutes: idle
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kBecameIdle);
  // A 10-minute silence: not measured, ends the idle period.
  d.Observe("p", 15 * 60, 0, events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, Kind::kStoppedMeasuring);
  EXPECT_EQ(d.Waste("p")->idle_gpu_seconds, 300);
  EXPECT_EQ(d.Waste("p")->measured_gpu_seconds, 300);
  // A missing figure breaks a run too.
  FeedMinutes(d, "p", 16 * 60, {0, 0, -100, 0, 0, 0, 0}, events);
  EXPECT_EQ(events.size(), 2u);
  // Stale and duplicate samples are ignored.
  d.Observe("p", 10, 0, events);
  d.Observe("p", 22 * 60, 0, events);
  EXPECT_EQ(d.Waste("p")->measured_gpu_seconds, 300 + 2 * 60 + 4 * 60);
}

TEST(IdleGpuDetector, PodWithoutGpusIsNeverIdle) {
  IdleGpuDetector d({.window_seconds = 60});
  d.SetAllocation("cpu-only", 0, 0);
  std::vector<IdleEvent> events;
  FeedMinutes(d, "cpu-only", 0, {0, 0, 0, 0}, events);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(d.Waste("cpu-only")->idle_gpu_seconds, 0);
}

TEST(IdleGpuDetector, UnknownPodsGetOneGpuAndRemoveReportsTheEnd) {
  IdleGpuDetector d({.window_seconds = 60});
  std::vector<IdleEvent> events;
  FeedMinutes(d, "new", 0, {0, 0}, events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(d.Waste("new")->gpu_share, 1);
  EXPECT_EQ(d.Waste("new")->idle_cost, 0);
  auto gone = d.Remove("new", 200, events);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->idle_gpu_seconds, 60);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, Kind::kStoppedMeasuring);
  EXPECT_FALSE(d.Waste("new").has_value());
  EXPECT_FALSE(d.Remove("new", 200, events).has_value());
  EXPECT_EQ(d.Totals().pods, 0u);
  EXPECT_EQ(IdleEventKindName(Kind::kBecameIdle), "BecameIdle");
}

TEST(IdleGpuDetector, TotalsAddUpPods) {
  IdleGpuDetector d({.window_seconds = 60});
  d.SetAllocation("a", 1, kRate);
  d.SetAllocation("b", 2, 2 * kRate);
  std::vector<IdleEvent> events;
  FeedMinutes(d, "a", 0, {0, 0, 0}, events);
  FeedMinutes(d, "b", 0, {90, 90, 90}, events);
  WasteTotals t = d.Totals();
  EXPECT_EQ(t.pods, 2u);
  EXPECT_EQ(t.idle_pods, 1u);
  EXPECT_EQ(t.measured_gpu_seconds, 120 + 240);
  EXPECT_EQ(t.measured_cost, 120 * kRate + 240 * kRate);
  EXPECT_EQ(t.idle_gpu_seconds, 120);
  auto all = d.AllWaste();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].pod, "a");
}

TEST(ParseUsageTraceCsv, ReadsTheGenTD26Layout) {
  auto t = ParseUsageTraceCsv(
      "value,timestamp_anon,container_ip\n"
      "0.0,1662858720.0,aa\n"
      "37.5,1662858777.0,aa\r\n"
      "\n"
      "99.66666666666669,1662858720.4,bb\n",
      "x.csv");
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  ASSERT_EQ(t->pods.size(), 2u);
  EXPECT_EQ(t->pods[0], "aa");
  ASSERT_EQ(t->samples.size(), 3u);
  EXPECT_EQ(t->samples[1].pod, 0u);
  EXPECT_EQ(t->samples[1].timestamp, 1662858777);
  EXPECT_EQ(t->samples[1].value, 37.5);
  EXPECT_EQ(t->samples[2].pod, 1u);
  EXPECT_EQ(t->samples[2].timestamp, 1662858720);
}

TEST(ParseUsageTraceCsv, ColumnsByNameInAnyOrder) {
  auto t =
      ParseUsageTraceCsv("timestamp_anon,extra,value,container_ip\n5,x,1e3,p\n", "m.csv", 0, 1e12);
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_EQ(t->samples[0].value, 1000);
  EXPECT_EQ(t->samples[0].timestamp, 5);
}

TEST(ParseUsageTraceCsv, ErrorsNameFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "x.csv:1: empty file"},
      {"value,timestamp_anon\n", "x.csv:1: header lacks column \"container_ip\""},
      {"value,timestamp_anon,container_ip\n1,2\n", "x.csv:2: expected 3 fields, found 2"},
      {"value,timestamp_anon,container_ip\n1,2,a\nabc,2,a\n", "x.csv:3: value \"abc\" is not"},
      {"value,timestamp_anon,container_ip\nnan,2,a\n", "x.csv:2: value \"nan\" is not"},
      {"value,timestamp_anon,container_ip\n100.5,2,a\n", "x.csv:2: value 100.5 is outside"},
      {"value,timestamp_anon,container_ip\n-1,2,a\n", "is outside"},
      {"value,timestamp_anon,container_ip\n1,1e300,a\n", "is not a time in seconds"},
      {"value,timestamp_anon,container_ip\n1,2,\n", "x.csv:2: empty container_ip"},
  };
  for (const auto& [text, want] : cases) {
    auto t = ParseUsageTraceCsv(text, "x.csv");
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_THAT(t.error().message(), HasSubstr(want)) << text;
  }
}

TEST(ParseUsageTraceCsv, ReadsTheCheckedInExcerpt) {
  const std::string text = gpu_autoscaler::testing::ReadFileOrDie(
      gpu_autoscaler::testing::SourcePath("tests/data/genai/pod_gpu_duty_cycle_excerpt.csv"));
  auto t = ParseUsageTraceCsv(text, "pod_gpu_duty_cycle_excerpt.csv");
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_EQ(t->pods.size(), 4u);
  EXPECT_EQ(t->samples.size(), 399u);
}

}  // namespace
}  // namespace gpu_autoscaler::cost
