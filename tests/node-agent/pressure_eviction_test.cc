#include "node-agent/pressure_eviction.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace gpu_autoscaler::node_agent {
namespace {

using std::chrono::seconds;
constexpr int64_t kGiB = 1024 * 1024 * 1024;

Clock::TimePoint At(int s) {
  return Clock::TimePoint(seconds(1000 + s));
}

NodePressure Memory(double pct) {
  return {std::nullopt, pct, std::nullopt};
}

EvictionCandidate Pod(std::string name, EvictionTier tier, std::optional<int64_t> memory,
                      int64_t memory_request = 0) {
  EvictionCandidate p;
  p.ns = "team";
  p.name = name;
  p.uid = "uid-" + name;
  p.tier = tier;
  p.usage.memory_bytes = memory;
  p.memory_request_bytes = memory_request;
  return p;
}

// Only memory, 25% arms, 10% disarms, 60 s window; one eviction per minute.
PressureEvictionConfig MemoryOnly() {
  PressureEvictionConfig c;
  c.triggers[static_cast<size_t>(PressureResource::kCpu)].enabled = false;
  c.triggers[static_cast<size_t>(PressureResource::kIo)].enabled = false;
  c.max_evictions = 100;
  c.rate_window = seconds(600);
  c.cool_down = seconds(1);
  return c;
}

std::vector<std::string> Names(const EvictionPlan& plan) {
  std::vector<std::string> out;
  for (const auto& e : plan.evictions)
    out.push_back(e.name);
  return out;
}

TEST(PressureEvictionTest, HeldAboveThresholdForTheWindowEvictsTheReclaimedPod) {
  PressureEvictionPlanner planner(MemoryOnly());
  const std::vector<EvictionCandidate> pods = {
      Pod("web", EvictionTier::kShared, 3 * kGiB, 1 * kGiB),
      Pod("batch", EvictionTier::kReclaimed, 2 * kGiB),
      Pod("db", EvictionTier::kProtected, 60 * kGiB)};
  // Arms at t=0; the dip to 15% (between 10 and 25) keeps it armed.
  EXPECT_TRUE(planner.Plan(At(0), Memory(41.2), pods).evictions.empty());
  EXPECT_TRUE(planner.high(PressureResource::kMemory));
  EXPECT_TRUE(planner.Plan(At(30), Memory(15), pods).evictions.empty());
  EXPECT_TRUE(planner.Plan(At(55), Memory(30), pods).evictions.empty());  // 55 s < 60 s
  EvictionPlan plan = planner.Plan(At(60), Memory(41.2), pods);
  ASSERT_EQ(Names(plan), std::vector<std::string>{"batch"});
  const PlannedEviction& e = plan.evictions[0];
  EXPECT_EQ(e.resource, PressureResource::kMemory);
  EXPECT_EQ(e.tier, EvictionTier::kReclaimed);
  EXPECT_EQ(e.high_for, seconds(60));
  EXPECT_EQ(e.message,
            "memory pressure some avg10 41.2% above 25% for 60s; reclaimed_cores pod using "
            "2.0 GiB of memory (request 0 B)");
}

TEST(PressureEvictionTest, ASpikeShorterThanTheWindowEvictsNothing) {
  PressureEvictionPlanner planner(MemoryOnly());
  const std::vector<EvictionCandidate> pods = {Pod("batch", EvictionTier::kReclaimed, kGiB)};
  // Up for 55 s, then below 10%: calm again; the next rise starts a new window.
  for (int t = 0; t <= 55; t += 5)
    EXPECT_TRUE(planner.Plan(At(t), Memory(90), pods).evictions.empty()) << t;
  EXPECT_TRUE(planner.Plan(At(60), Memory(9.9), pods).evictions.empty());
  EXPECT_FALSE(planner.high(PressureResource::kMemory));
  EXPECT_TRUE(planner.Plan(At(65), Memory(26), pods).evictions.empty());
  EXPECT_TRUE(planner.Plan(At(120), Memory(26), pods).evictions.empty());  // 55 s
  EXPECT_EQ(Names(planner.Plan(At(125), Memory(26), pods)), std::vector<std::string>{"batch"});
}

TEST(PressureEvictionTest, AtThresholdIsNotAbove) {
  PressureEvictionPlanner planner(MemoryOnly());
  const std::vector<EvictionCandidate> pods = {Pod("batch", EvictionTier::kReclaimed, kGiB)};
  planner.Plan(At(0), Memory(25), pods);
  EXPECT_FALSE(planner.high(PressureResource::kMemory));
}

TEST(PressureEvictionTest, MissingPressureDataReturnsToCalm) {
  PressureEvictionPlanner planner(MemoryOnly());
  const std::vector<EvictionCandidate> pods = {Pod("batch", EvictionTier::kReclaimed, kGiB)};
  planner.Plan(At(0), Memory(50), pods);
  planner.Plan(At(30), NodePressure{}, pods);
  EXPECT_FALSE(planner.high(PressureResource::kMemory));
  EXPECT_TRUE(planner.Plan(At(60), Memory(50), pods).evictions.empty());
}

TEST(PressureEvictionTest, VictimOrderReclaimedByUsageThenSharedByExcess) {
  PressureEvictionPlanner planner(MemoryOnly());
  const std::vector<EvictionCandidate> pods = {
      Pod("dedicated", EvictionTier::kProtected, 100 * kGiB),  // never
      Pod("rc-small", EvictionTier::kReclaimed, 1 * kGiB),
      Pod("rc-big", EvictionTier::kReclaimed, 2 * kGiB),
      Pod("rc-nodata", EvictionTier::kReclaimed, std::nullopt),      // never: no usage
      Pod("sc-1g-over", EvictionTier::kShared, 5 * kGiB, 4 * kGiB),  // 1 GiB over
      Pod("sc-2g-over", EvictionTier::kShared, 3 * kGiB, 1 * kGiB),  // 2 GiB over
      Pod("sc-under", EvictionTier::kShared, 1 * kGiB, 2 * kGiB),    // within its request
      Pod("sc-nodata", EvictionTier::kShared, std::nullopt, 0)};
  planner.Plan(At(0), Memory(50), pods);
  std::vector<std::string> order;
  for (int t = 60; t <= 120; t += 10) {
    EvictionPlan plan = planner.Plan(At(t), Memory(50), pods);
    for (const auto& e : plan.evictions)
      order.push_back(e.name);
    if (plan.evictions.empty()) {
      ASSERT_EQ(plan.held.size(), 1u);
      EXPECT_EQ(plan.held[0].second, "no candidate");
    }
  }
  EXPECT_EQ(order, (std::vector<std::string>{"rc-big", "rc-small", "sc-2g-over", "sc-1g-over"}));
}

TEST(PressureEvictionTest, SharedPodMessageSaysHowFarOverItsRequest) {
  PressureEvictionPlanner planner(MemoryOnly());
  const std::vector<EvictionCandidate> pods = {
      Pod("web", EvictionTier::kShared, 3 * kGiB, 1 * kGiB)};
  planner.Plan(At(0), Memory(30), pods);
  auto plan = planner.Plan(At(90), Memory(33.33), pods);
  ASSERT_EQ(plan.evictions.size(), 1u);
  EXPECT_EQ(plan.evictions[0].message,
            "memory pressure some avg10 33.3% above 25% for 90s; shared_cores pod using 3.0 GiB "
            "of memory (request 1.0 GiB)");
}

TEST(PressureEvictionTest, RateLimitAndCoolDown) {
  PressureEvictionConfig c = MemoryOnly();
  c.max_evictions = 2;
  c.rate_window = seconds(600);
  c.cool_down = seconds(60);
  PressureEvictionPlanner planner(c);
  std::vector<EvictionCandidate> pods;
  for (int i = 0; i < 5; ++i)
    pods.push_back(Pod("rc-" + std::to_string(i), EvictionTier::kReclaimed, (i + 1) * kGiB));
  planner.Plan(At(0), Memory(50), pods);
  auto held = [&](int t) {
    EvictionPlan p = planner.Plan(At(t), Memory(50), pods);
    EXPECT_TRUE(p.evictions.empty()) << t;
    return p.held.empty() ? std::string() : p.held[0].second;
  };
  // An evicted pod is gone by the next tick.
  auto evict = [&](int t) {
    std::vector<std::string> names = Names(planner.Plan(At(t), Memory(50), pods));
    std::erase_if(pods, [&](const EvictionCandidate& p) {
      return std::find(names.begin(), names.end(), p.name) != names.end();
    });
    return names;
  };
  EXPECT_EQ(evict(60), std::vector<std::string>{"rc-4"});
  EXPECT_EQ(held(65), "cool-down");
  EXPECT_EQ(held(119), "cool-down");
  EXPECT_EQ(evict(120), std::vector<std::string>{"rc-3"});
  EXPECT_EQ(held(180), "rate limit");  // two in the last 600 s
  EXPECT_EQ(held(659), "rate limit");  // the first (t=60) is 599 s old
  EXPECT_EQ(evict(660), std::vector<std::string>{"rc-2"});
}

// Evictions of an earlier process (read back from the Node) count as the
// planner's own: against coolDown, maxEvictions and the pod's re-pick.
TEST(PressureEvictionTest, RememberedEvictionsCountAgainstTheLimits) {
  PressureEvictionConfig c = MemoryOnly();
  c.max_evictions = 2;
  c.rate_window = seconds(600);
  c.cool_down = seconds(60);
  PressureEvictionPlanner planner(c);
  planner.Remember("uid-rc-0", At(30));
  planner.Remember("uid-rc-1", At(-500));  // older first: kept in order
  std::vector<EvictionCandidate> pods = {Pod("rc-0", EvictionTier::kReclaimed, 4 * kGiB),
                                         Pod("rc-2", EvictionTier::kReclaimed, 1 * kGiB)};
  planner.Plan(At(0), Memory(50), pods);
  EvictionPlan p = planner.Plan(At(60), Memory(50), pods);
  ASSERT_EQ(p.held.size(), 1u);
  EXPECT_EQ(p.held[0].second, "cool-down");  // the one at 30 s
  p = planner.Plan(At(95), Memory(50), pods);
  ASSERT_EQ(p.held.size(), 1u);
  EXPECT_EQ(p.held[0].second, "rate limit");  // two within 600 s
  // At 100 s the one at -500 s leaves the window; rc-0 was picked at 30 s, so
  // the smaller rc-2 goes.
  EXPECT_EQ(Names(planner.Plan(At(100), Memory(50), pods)), std::vector<std::string>{"rc-2"});
}

TEST(PressureEvictionTest, ZeroMaxEvictionsOnlyObserves) {
  PressureEvictionConfig c = MemoryOnly();
  c.max_evictions = 0;
  PressureEvictionPlanner planner(c);
  const std::vector<EvictionCandidate> pods = {Pod("batch", EvictionTier::kReclaimed, kGiB)};
  planner.Plan(At(0), Memory(50), pods);
  EvictionPlan plan = planner.Plan(At(60), Memory(50), pods);
  EXPECT_TRUE(plan.evictions.empty());
  ASSERT_EQ(plan.held.size(), 1u);
  EXPECT_EQ(plan.held[0].second, "rate limit");
}

TEST(PressureEvictionTest, TerminatingPodsAreNotPickedAgain) {
  PressureEvictionPlanner planner(MemoryOnly());
  std::vector<EvictionCandidate> pods = {Pod("a", EvictionTier::kReclaimed, 4 * kGiB),
                                         Pod("b", EvictionTier::kReclaimed, kGiB)};
  pods[0].terminating = true;
  planner.Plan(At(0), Memory(50), pods);
  EXPECT_EQ(Names(planner.Plan(At(60), Memory(50), pods)), std::vector<std::string>{"b"});
}

TEST(PressureEvictionTest, CpuUsesUsageRateAgainstRequestAndIoUsesBytesPerSecond) {
  PressureEvictionConfig c;
  c.triggers[static_cast<size_t>(PressureResource::kMemory)].enabled = false;
  c.max_evictions = 10;
  c.cool_down = seconds(1);
  PressureEvictionPlanner planner(c);
  auto pod = [](std::string name, EvictionTier tier, std::optional<double> cpu, int64_t request,
                std::optional<double> io) {
    EvictionCandidate p;
    p.ns = "ns";
    p.name = name;
    p.uid = name;
    p.tier = tier;
    p.usage.cpu_millicores = cpu;
    p.cpu_request_millis = request;
    p.usage.io_bytes_per_second = io;
    return p;
  };
  const std::vector<EvictionCandidate> pods = {
      pod("sc-a", EvictionTier::kShared, 3000, 1000, 50e6),  // 2000m over; 50 MB/s
      pod("sc-b", EvictionTier::kShared, 1500, 1000, 80e6),  // 500m over; 80 MB/s
      pod("sc-c", EvictionTier::kShared, 900, 1000, 0)};     // under; no IO
  const NodePressure cpu_high = {95.0, std::nullopt, std::nullopt};
  planner.Plan(At(0), cpu_high, pods);
  auto plan = planner.Plan(At(120), cpu_high, pods);
  ASSERT_EQ(Names(plan), std::vector<std::string>{"sc-a"});
  EXPECT_EQ(plan.evictions[0].message,
            "cpu pressure some avg10 95.0% above 90% for 120s; shared_cores pod using 3000m CPU "
            "(request 1000m)");

  PressureEvictionConfig io = c;
  io.triggers[static_cast<size_t>(PressureResource::kCpu)].enabled = false;
  PressureEvictionPlanner io_planner(io);
  const NodePressure io_high = {std::nullopt, std::nullopt, 70.0};
  io_planner.Plan(At(0), io_high, pods);
  plan = io_planner.Plan(At(120), io_high, pods);
  ASSERT_EQ(Names(plan), std::vector<std::string>{"sc-b"});
  EXPECT_EQ(plan.evictions[0].message,
            "io pressure some avg10 70.0% above 60% for 120s; shared_cores pod doing 76.3 MiB/s "
            "of IO");
}

TEST(PressureEvictionTest, ChangedTriggerStartsCalmUnchangedKeepsItsWindow) {
  PressureEvictionConfig c = MemoryOnly();
  c.triggers[static_cast<size_t>(PressureResource::kCpu)].enabled = true;
  PressureEvictionPlanner planner(c);
  const std::vector<EvictionCandidate> pods = {Pod("batch", EvictionTier::kReclaimed, kGiB)};
  planner.Plan(At(0), {95.0, 50.0, std::nullopt}, pods);
  EXPECT_TRUE(planner.high(PressureResource::kMemory));
  EXPECT_TRUE(planner.high(PressureResource::kCpu));
  PressureEvictionConfig changed = c;
  changed.triggers[static_cast<size_t>(PressureResource::kMemory)].threshold = 40;
  changed.cool_down = seconds(5);  // not a trigger: keeps cpu's window
  planner.SetConfig(changed);
  EXPECT_FALSE(planner.high(PressureResource::kMemory));
  EXPECT_TRUE(planner.high(PressureResource::kCpu));
}

TEST(SelectPressureTest, LineAndAverage) {
  const PsiFile file{.some = {1, 2, 3, 100}, .full = PsiLine{4, 5, 6, 50}};
  auto sel = [&](PsiLineKind line, PsiAverage avg, const std::optional<PsiFile>& f) {
    PressureTrigger t;
    t.line = line;
    t.average = avg;
    return SelectPressure(f, 7.0, 8.0, t);
  };
  EXPECT_EQ(sel(PsiLineKind::kSome, PsiAverage::kAvg10, file), 1.0);
  EXPECT_EQ(sel(PsiLineKind::kSome, PsiAverage::kAvg60, file), 2.0);
  EXPECT_EQ(sel(PsiLineKind::kSome, PsiAverage::kAvg300, file), 3.0);
  EXPECT_EQ(sel(PsiLineKind::kFull, PsiAverage::kAvg10, file), 4.0);
  EXPECT_EQ(sel(PsiLineKind::kSome, PsiAverage::kTotal, file), 7.0);
  EXPECT_EQ(sel(PsiLineKind::kFull, PsiAverage::kTotal, std::nullopt), 8.0);
  EXPECT_EQ(sel(PsiLineKind::kSome, PsiAverage::kAvg10, std::nullopt), std::nullopt);
  const PsiFile no_full{.some = {1, 2, 3, 100}, .full = std::nullopt};
  EXPECT_EQ(sel(PsiLineKind::kFull, PsiAverage::kAvg10, no_full), std::nullopt);
}

}  // namespace
}  // namespace gpu_autoscaler::node_agent
