#include "controllers/controller_selection.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::controllers {
namespace {

const std::vector<std::string> kKnown = {"node-gpu-inventory", "sharing-policy", "cost", "budget"};

TEST(ControllerSelectionTest, StarSelectsEveryController) {
  auto on = SelectControllers("*", kKnown);
  ASSERT_TRUE(on.ok()) << on.error().ToString();
  EXPECT_EQ(*on, std::set<std::string>(kKnown.begin(), kKnown.end()));
}

TEST(ControllerSelectionTest, MinusDropsOneAndLaterEntriesWin) {
  auto on = SelectControllers("*,-budget", kKnown);
  ASSERT_TRUE(on.ok());
  EXPECT_EQ(*on, (std::set<std::string>{"node-gpu-inventory", "sharing-policy", "cost"}));
  on = SelectControllers("cost, budget ,-cost", kKnown);
  ASSERT_TRUE(on.ok());
  EXPECT_EQ(*on, std::set<std::string>{"budget"});
  on = SelectControllers("-cost,*", kKnown);
  ASSERT_TRUE(on.ok());
  EXPECT_EQ(on->size(), 4u);
}

TEST(ControllerSelectionTest, UnknownNameListsTheKnownOnes) {
  auto on = SelectControllers("*,-budgt", kKnown);
  ASSERT_FALSE(on.ok());
  EXPECT_EQ(on.error().message(),
            "--controllers: unknown controller \"budgt\" (known: node-gpu-inventory, "
            "sharing-policy, cost, budget)");
  EXPECT_FALSE(SelectControllers("", kKnown).ok());
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
