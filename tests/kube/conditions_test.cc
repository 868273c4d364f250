#include "kube/conditions.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube/meta_time.h"

namespace gpu_autoscaler::kube {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const Clock::WallTime kT0 = Clock::WallTime(std::chrono::seconds(1'800'000'000));

TEST(ConditionsTest, AddsToNullAndSetsTransitionTime) {
  json conditions;
  auto changed = SetCondition(&conditions,
                              {.type = "Ready",
                               .status = "False",
                               .reason = "Pending",
                               .message = "waiting",
                               .observed_generation = 3},
                              kT0);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  ASSERT_TRUE(conditions.is_array());
  ASSERT_EQ(conditions.size(), 1u);
  EXPECT_EQ(conditions[0]["lastTransitionTime"], FormatTime(kT0));
  EXPECT_EQ(conditions[0]["observedGeneration"], 3);
  EXPECT_TRUE(IsConditionFalse(conditions, "Ready"));
  EXPECT_FALSE(IsConditionTrue(conditions, "Ready"));
}

TEST(ConditionsTest, TransitionTimeMovesOnlyOnStatusChange) {
  json conditions = json::array();
  ASSERT_TRUE(
      SetCondition(&conditions, {.type = "Ready", .status = "False", .reason = "A"}, kT0).ok());
  // Same status, new reason/message/generation: time stays.
  auto changed = SetCondition(
      &conditions,
      {.type = "Ready", .status = "False", .reason = "B", .message = "m", .observed_generation = 2},
      kT0 + 60s);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  auto c = FindCondition(conditions, "Ready");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->reason, "B");
  EXPECT_EQ(c->observed_generation, 2);
  EXPECT_EQ(c->last_transition_time, FormatTime(kT0));
  // Identical: no change reported.
  changed = SetCondition(
      &conditions,
      {.type = "Ready", .status = "False", .reason = "B", .message = "m", .observed_generation = 2},
      kT0 + 120s);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  // Status flips: time moves.
  ASSERT_TRUE(
      SetCondition(&conditions, {.type = "Ready", .status = "True", .reason = "Up"}, kT0 + 180s)
          .ok());
  EXPECT_EQ(FindCondition(conditions, "Ready")->last_transition_time, FormatTime(kT0 + 180s));
  EXPECT_TRUE(IsConditionTrue(conditions, "Ready"));
  EXPECT_EQ(conditions.size(), 1u);
}

TEST(ConditionsTest, KeepsOtherConditionsAndRemoves) {
  json conditions = json::array();
  ASSERT_TRUE(SetCondition(&conditions, {.type = "A", .status = "True", .reason = "R"}, kT0).ok());
  ASSERT_TRUE(
      SetCondition(&conditions, {.type = "B", .status = "Unknown", .reason = "R"}, kT0).ok());
  EXPECT_EQ(conditions.size(), 2u);
  EXPECT_FALSE(IsConditionTrue(conditions, "B"));
  EXPECT_FALSE(IsConditionFalse(conditions, "B"));
  EXPECT_TRUE(RemoveCondition(&conditions, "A"));
  EXPECT_FALSE(RemoveCondition(&conditions, "A"));
  EXPECT_FALSE(FindCondition(conditions, "A"));
  EXPECT_TRUE(FindCondition(conditions, "B"));
}

TEST(ConditionsTest, RejectsBadInput) {
  json conditions = json::array();
  EXPECT_FALSE(SetCondition(&conditions, {.type = "", .status = "True"}, kT0).ok());
  EXPECT_FALSE(SetCondition(&conditions, {.type = "Ready", .status = "yes"}, kT0).ok());
  json not_array = json::object();
  auto r = SetCondition(&not_array, {.type = "Ready", .status = "True"}, kT0);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(not_array.is_object());
  EXPECT_FALSE(FindCondition(json("garbage"), "Ready"));
  EXPECT_TRUE(conditions.empty());
}

}  // namespace
}  // namespace gpu_autoscaler::kube
