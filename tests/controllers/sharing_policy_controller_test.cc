#include "controllers/sharing_policy_controller.h"

#include <gtest/gtest.h>

#include "kube/conditions.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

webhooks::GpuSharingPolicy Policy(const std::string& name, int priority,
                                  const std::string& workload, int replicas = 4) {
  json obj = {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "GPUSharingPolicy"},
      {"metadata", {{"name", name}, {"generation", 1}}},
      {"spec",
       {{"priority", priority},
        {"podSelector", {{"matchLabels", {{"workload", workload}}}}},
        {"strategy", {{"type", "timeSlicing"}, {"timeSlicing", {{"replicas", replicas}}}}}}}};
  auto p = webhooks::ParseGpuSharingPolicy(obj.dump());
  EXPECT_TRUE(p.ok()) << p.error().ToString();
  return *p;
}

std::optional<kube::ObjectCondition> Cond(const json& status, const std::string& type) {
  return kube::FindCondition(status["conditions"], type);
}

TEST(SharingPolicyDecisionTest, AcceptedWithMatchedPodsAndNoConflict) {
  SharingPolicyInput in{.name = "notebooks",
                        .generation = 4,
                        .policy = Policy("notebooks", 50, "notebook"),
                        .others = {Policy("training", 50, "trainer")},
                        .matched_pods = 7,
                        .now = 1000};
  SharingPolicyPlan plan = DecideSharingPolicyStatus(in);
  EXPECT_EQ(plan.status["observedGeneration"], 4);
  EXPECT_EQ(plan.status["matchedPods"], 7);
  EXPECT_EQ(Cond(plan.status, "Accepted")->status, "True");
  EXPECT_EQ(Cond(plan.status, "Conflicting")->status, "False");
  EXPECT_TRUE(plan.events.empty());  // a healthy first status says nothing
}

TEST(SharingPolicyDecisionTest, SamePriorityOverlapNamesTheOtherPolicies) {
  SharingPolicyInput in{
      .name = "a",
      .generation = 1,
      .policy = Policy("a", 10, "notebook"),
      .others = {Policy("c", 10, "notebook"), Policy("b", 10, "notebook"),
                 Policy("higher", 20, "notebook"), Policy("disjoint", 10, "trainer")},
      .now = 1000};
  SharingPolicyPlan plan = DecideSharingPolicyStatus(in);
  auto c = Cond(plan.status, "Conflicting");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, "True");
  EXPECT_EQ(c->reason, "SamePriorityOverlap");
  EXPECT_EQ(c->message,
            "may match the same pods as b, c at priority 10; the first by name wins. Give one a "
            "higher priority.");
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_TRUE(plan.events[0].warning);
  // Unchanged on the next pass: no new event.
  in.status = plan.status;
  EXPECT_TRUE(DecideSharingPolicyStatus(in).events.empty());
}

TEST(SharingPolicyDecisionTest, UnusableSpecIsNotAccepted) {
  SharingPolicyInput in{.name = "broken",
                        .generation = 2,
                        .invalid_reason = "spec.strategy.type: \"share\" is not a strategy",
                        .now = 1000};
  SharingPolicyPlan plan = DecideSharingPolicyStatus(in);
  auto accepted = Cond(plan.status, "Accepted");
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, "False");
  EXPECT_EQ(accepted->reason, "InvalidSpec");
  EXPECT_EQ(accepted->message, in.invalid_reason);
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_EQ(plan.events[0].reason, "InvalidSpec");
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
