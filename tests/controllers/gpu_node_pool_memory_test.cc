// The GPUNodePool decision memory written to and read back from the pool's
// status: answered interruption notices and unavailable offerings survive a
// restart; what expired or does not parse is dropped.
#include "controllers/gpu_node_pool_memory.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kube/meta_time.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using autoscale::CapacityTier;

const Clock::TimePoint kNow = Clock::TimePoint{} + 1000h;
Clock::WallTime Wall(const char* text) {
  return *kube::ParseRfc3339(text);
}

TEST(GpuNodePoolMemoryTest, WhatIsWrittenIsReadBackByARestartedManager) {
  autoscale::PoolMemory before;
  before.interrupted = {"node-b", "node-a"};
  before.unavailable.Mark("g6.xlarge", CapacityTier::kSpot, kNow, 3min);
  const Clock::WallTime wall = Wall("2026-12-05T10:00:00Z");
  const json status = {{"answeredInterruptions", AnsweredInterruptionsJson(before)},
                       {"unavailableOfferings", UnavailableOfferingsJson(before, kNow, wall)}};
  EXPECT_EQ(status["answeredInterruptions"], json({"node-a", "node-b"}));
  EXPECT_EQ(
      status["unavailableOfferings"],
      json({{{"instanceType", "g6.xlarge"}, {"tier", "spot"}, {"until", "2026-12-05T10:03:00Z"}}}));

  // A new process: its steady clock starts elsewhere; 60 s of wall time later.
  const Clock::TimePoint later = Clock::TimePoint{} + 5h;
  autoscale::PoolMemory after;
  RestorePoolMemory(status, later, wall + 60s, &after);
  EXPECT_EQ(after.interrupted, (std::set<std::string>{"node-a", "node-b"}));
  EXPECT_TRUE(after.unavailable.Unavailable("g6.xlarge", CapacityTier::kSpot, later + 119s));
  EXPECT_FALSE(after.unavailable.Unavailable("g6.xlarge", CapacityTier::kSpot, later + 120s));
  EXPECT_FALSE(after.unavailable.Unavailable("g6.xlarge", CapacityTier::kOnDemand, later));
}

TEST(GpuNodePoolMemoryTest, ExpiredAndMalformedEntriesAreSkipped) {
  const json status = json::parse(R"({
    "answeredInterruptions": ["node-a", 7, null],
    "unavailableOfferings": [
      {"instanceType": "expired", "tier": "spot", "until": "2026-12-05T09:59:59Z"},
      {"instanceType": "bad-tier", "tier": "cheap", "until": "2026-12-05T11:00:00Z"},
      {"instanceType": "bad-time", "tier": "spot", "until": "tomorrow"},
      {"tier": "spot", "until": "2026-12-05T11:00:00Z"},
      "not an object",
      {"instanceType": "kept", "tier": "onDemand", "until": "2026-12-05T10:00:30Z"}
    ]})");
  autoscale::PoolMemory memory;
  RestorePoolMemory(status, kNow, Wall("2026-12-05T10:00:00Z"), &memory);
  EXPECT_EQ(memory.interrupted, (std::set<std::string>{"node-a"}));
  const auto live = memory.unavailable.Live(kNow);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].first.first, "kept");
  EXPECT_EQ(live[0].first.second, CapacityTier::kOnDemand);
  EXPECT_EQ(live[0].second, kNow + 30s);

  autoscale::PoolMemory untouched;
  RestorePoolMemory(json::array(), kNow, Wall("2026-12-05T10:00:00Z"), &untouched);
  RestorePoolMemory(json{{"answeredInterruptions", "node-a"}}, kNow, Wall("2026-12-05T10:00:00Z"),
                    &untouched);
  EXPECT_TRUE(untouched.interrupted.empty());
  EXPECT_TRUE(untouched.unavailable.Live(kNow).empty());
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
