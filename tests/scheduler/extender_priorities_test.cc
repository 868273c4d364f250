#include "scheduler/extender_priorities.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::scheduler {
namespace {

using Priorities = std::vector<int>;

TEST(ExtenderPrioritiesTest, TheHighestScoreGetsTenAndTheOthersScaleFromOne) {
  const std::vector<ExtenderCandidate> c = {
      {.score = 40, .order = 0}, {.score = 80, .order = 1}, {.score = 60, .order = 2}};
  // Others: 1 + (score − 40) · 8 / 40 → 1 and 5.
  EXPECT_EQ(ExtenderPriorities(c), (Priorities{1, 10, 5}));
}

TEST(ExtenderPrioritiesTest, EqualScoresGoToTheTiebreakThenTheLowestOrder) {
  // What standalone's Select does: score, then tiebreak, then node order.
  std::vector<ExtenderCandidate> c = {{.score = 70, .tiebreak = 0, .order = 5},
                                      {.score = 70, .tiebreak = 0, .order = 2},
                                      {.score = 70, .tiebreak = 0, .order = 9}};
  EXPECT_EQ(ExtenderPriorities(c), (Priorities{9, 10, 9}));
  c[2].tiebreak = 0.5;
  EXPECT_EQ(ExtenderPriorities(c), (Priorities{9, 9, 10}));
  // A tied node that loses the tie still outranks lower scores.
  c.push_back({.score = 30, .order = 0});
  EXPECT_EQ(ExtenderPriorities(c), (Priorities{9, 9, 10, 1}));
}

TEST(ExtenderPrioritiesTest, NodesThatDoNotFitGetZero) {
  EXPECT_EQ(ExtenderPriorities(std::vector<ExtenderCandidate>{
                {.score = -1, .order = 0}, {.score = 3, .order = 1}, {.score = -1, .order = 2}}),
            (Priorities{0, 10, 0}));
  EXPECT_EQ(ExtenderPriorities(std::vector<ExtenderCandidate>{{.score = -1}, {.score = -1}}),
            (Priorities{0, 0}));
  EXPECT_TRUE(ExtenderPriorities({}).empty());
  // Score 0 fits: it is the policy's lowest score, not a refusal.
  EXPECT_EQ(ExtenderPriorities(
                std::vector<ExtenderCandidate>{{.score = 0, .order = 1}, {.score = 0, .order = 0}}),
            (Priorities{9, 10}));
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
