#include "api/crd_fields.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_paths.h"

namespace gpu_autoscaler::api {
namespace {

TEST(CrdFieldsTest, EveryExampleUsesOnlyDeclaredFields) {
  int checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(testing::SourcePath("docs/examples"))) {
    const std::string text = testing::ReadFileOrDie(e.path().string());
    std::string kind = "GPUSharingPolicy";
    for (const char* k :
         {"Budget", "ClusterBudget", "GPUNodePool", "ServiceProfile", "ReschedulePolicy"}) {
      if (text.find(std::string("kind: ") + k + "\n") != std::string::npos) kind = k;
    }
    auto unknown = UnknownFields(text, kind);
    ASSERT_TRUE(unknown.ok()) << e.path();
    EXPECT_TRUE(unknown->empty()) << e.path() << ": " << (*unknown)[0];
    ++checked;
  }
  EXPECT_GE(checked, 5);
  // A ClusterBudget's scope may select namespaces by label; a Budget's may not.
  const char* selector = R"(kind: ClusterBudget
spec: {amount: 1, scope: {namespaceSelector: {matchLabels: {org: x}}}})";
  EXPECT_TRUE(CheckKnownFields(selector, "ClusterBudget").ok());
  auto budget = UnknownFields(selector, "Budget");
  ASSERT_TRUE(budget.ok());
  EXPECT_EQ(*budget, (std::vector<std::string>{"spec.scope.namespaceSelector"}));
  EXPECT_EQ(KindsWithSchema(),
            (std::vector<std::string>{"Budget", "ClusterBudget", "GPUNodePool", "GPUSharingPolicy",
                                      "ReschedulePolicy", "ServiceProfile"}));
}

TEST(CrdFieldsTest, NamesEveryUnknownFieldWithItsPath) {
  const char* budget = R"(
apiVersion: gpuautoscaler.io/v1alpha1
kind: Budget
metadata: {name: b, namespace: ml, labels: {anything: goes}}
spec:
  amount: 100
  enforcment: blockNewGPUPods
  scope: {namespaces: [ml], selector: {matchLabels: {team: vision}}}
  notifications:
    - {type: slack, secretRef: {name: s, key: k}}
    - {type: slack, secretRef: {nmae: s, key: k}}
statuz: {}
)";
  auto unknown = UnknownFields(budget, "Budget");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(*unknown, (std::vector<std::string>{"spec.enforcment",
                                                "spec.notifications[1].secretRef.nmae", "statuz"}));
  Status s = CheckKnownFields(budget, "Budget");
  EXPECT_EQ(s.message(),
            "unknown field \"spec.enforcment\", unknown field "
            "\"spec.notifications[1].secretRef.nmae\", unknown field \"statuz\" (the Budget "
            "schema does not declare them)");
  // Maps (matchLabels) take any key; JSON works as YAML.
  EXPECT_TRUE(
      CheckKnownFields(R"({"spec":{"amount":1,"scope":{"selector":{"matchLabels":{"x":"y"}}}}})",
                       "Budget")
          .ok());
}

TEST(CrdFieldsTest, PolicyFieldsAndBadInput) {
  EXPECT_EQ(CheckKnownFields(R"({"spec":{"strategy":{"type":"mps","mps":{"maxClient":4}}}})",
                             "GPUSharingPolicy")
                .message(),
            "unknown field \"spec.strategy.mps.maxClient\" (the GPUSharingPolicy schema does not "
            "declare it)");
  EXPECT_FALSE(UnknownFields("{}", "Pod").ok());
  EXPECT_FALSE(UnknownFields("{: [", "Budget").ok());
  EXPECT_TRUE(UnknownFields("- a list", "Budget")->empty());  // the parsers say what is wrong
}

// spec.predictive is declared field by field: a misspelt method is refused,
// not silently pruned back to Auto.
TEST(CrdFieldsTest, GpuNodePoolPredictiveFields) {
  EXPECT_TRUE(CheckKnownFields(R"({"spec":{"predictive":{"enabled":true,"step":"5m",
      "seasonality":"24h","horizon":"90s","headroom":"20%","method":"Auto",
      "minHistory":"24h"}},"status":{"predictive":{"method":"m","horizonSteps":1,
      "forecastGPUs":1,"headroomGPUs":0,"floorNodes":1,"limitedBy":"MaxNodes",
      "historyPoints":2,"lastUpdated":"2026-12-05T05:31:19Z"}}})",
                               "GPUNodePool")
                  .ok());
  EXPECT_EQ(CheckKnownFields(R"({"spec":{"predictive":{"enabled":true,"metod":"SeasonalNaive"}}})",
                             "GPUNodePool")
                .message(),
            "unknown field \"spec.predictive.metod\" (the GPUNodePool schema does not declare "
            "it)");
}

}  // namespace
}  // namespace gpu_autoscaler::api
