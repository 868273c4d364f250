// Preemption: the pure rules (preemption.h) and the cache's dry runs and
// nominations (cluster_cache.h).
#include "scheduler/preemption.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "scheduler/cluster_cache.h"
#include "scheduler/preemption_test_util.h"
#include "scheduler/scheduler_test_util.h"

namespace gpu_autoscaler::scheduler {
namespace {

using testutil::json;
using namespace preemption_testing;

// --- the pure rules ---

TEST(PreemptionRulesTest, MoreImportantIsHigherPriorityThenEarlierStart) {
  PreemptionVictim high{.pod = Running("h", "n", 0, 5), .priority = 5};
  PreemptionVictim old{.pod = Running("o", "n", 1, 1, 1, "2026-01-01T00:00:00Z"), .priority = 1};
  PreemptionVictim young{.pod = Running("y", "n", 2, 1, 1, "2026-06-01T00:00:00Z"), .priority = 1};
  PreemptionVictim unstarted{.pod = Running("u", "n", 3, 1), .priority = 1};
  std::vector<PreemptionVictim> v = {unstarted, young, high, old};
  std::sort(v.begin(), v.end(), MoreImportant);
  EXPECT_EQ(Names(v), (std::vector<std::string>{"h", "o", "y", "u"}));
}

TEST(PreemptionRulesTest, NodeChoiceFollowsDefaultPreemptionsOrder) {
  auto victim = [](const std::string& name, int priority, const std::string& started = "") {
    return PreemptionVictim{.pod = Running(name, "n", 0, priority, 1, started),
                            .priority = priority};
  };
  PreemptionCandidate base{.node = "base", .victims = {victim("a", 10), victim("b", 5)}};
  // 1. fewer budget violations wins over everything after it
  PreemptionCandidate violating = base;
  violating.budget_violations = 1;
  PreemptionCandidate heavier{.node = "h", .victims = {victim("c", 1000)}};
  EXPECT_TRUE(PreemptsBetter(heavier, violating));
  // 2. the lower highest victim priority
  PreemptionCandidate lower_top{.node = "l", .victims = {victim("d", 9), victim("e", 9)}};
  EXPECT_TRUE(PreemptsBetter(lower_top, base));
  // 3. the lower sum of priorities
  PreemptionCandidate smaller_sum{.node = "s", .victims = {victim("f", 10), victim("g", 1)}};
  EXPECT_TRUE(PreemptsBetter(smaller_sum, base));
  // ... counted so that negative priorities still cost more with more pods
  PreemptionCandidate one_negative{.node = "1", .victims = {victim("m", -5)}};
  PreemptionCandidate two_negative{.node = "2", .victims = {victim("m", -5), victim("n", -5)}};
  EXPECT_TRUE(PreemptsBetter(one_negative, two_negative));
  // 4. fewer victims (same top and sum)
  PreemptionCandidate same_sum_more{.node = "m",
                                    .victims = {victim("h", 10), victim("i", 3), victim("j", 2)}};
  PreemptionCandidate same_sum_fewer{.node = "f", .victims = {victim("k", 10), victim("l", 5)}};
  // Shifted sums differ with the count, so compare equal-count sets here.
  EXPECT_TRUE(PreemptsBetter(same_sum_fewer, same_sum_more));
  // 5. the later earliest start among the top victims
  PreemptionCandidate older{.node = "o", .victims = {victim("p", 10, "2026-01-01T00:00:00Z")}};
  PreemptionCandidate newer{.node = "y", .victims = {victim("q", 10, "2026-06-01T00:00:00Z")}};
  EXPECT_TRUE(PreemptsBetter(newer, older));
  // 6. the better placement score, then the node order
  PreemptionCandidate scored = newer;
  scored.score = 90;
  PreemptionCandidate unscored = newer;
  unscored.score = 10;
  EXPECT_TRUE(PreemptsBetter(scored, unscored));
  unscored.score = 90;
  unscored.order = 1;
  EXPECT_TRUE(PreemptsBetter(scored, unscored));
  EXPECT_FALSE(PreemptsBetter(unscored, scored));
}

TEST(PreemptionRulesTest, BudgetsAreSpentMostImportantFirst) {
  std::vector<PreemptionVictim> victims = {
      {.pod = Running("web-1", "n", 0, 1, 1, "2026-06-01T00:00:00Z", {{"app", "web"}}),
       .priority = 1},
      {.pod = Running("web-0", "n", 1, 1, 1, "2026-01-01T00:00:00Z", {{"app", "web"}}),
       .priority = 1},
      {.pod = Running("db-0", "n", 2, 1, 1, "", {{"app", "db"}}), .priority = 1},
      {.pod = Running("free", "n", 3, 1), .priority = 1}};
  DisruptionBudget web = Budget("web", 1);
  DisruptionBudget db = Budget("db", 0);
  EXPECT_EQ(MarkBudgetViolations(&victims, {web, db}), 2);
  // web-0 (started first) spends web's one disruption; web-1 is past it.
  EXPECT_EQ(Names(victims), (std::vector<std::string>{"web-0", "web-1", "db-0", "free"}));
  EXPECT_FALSE(victims[0].violates_budget);
  EXPECT_TRUE(victims[1].violates_budget);
  EXPECT_TRUE(victims[2].violates_budget);
  EXPECT_FALSE(victims[3].violates_budget);
  // A pod the API server already counted as disrupted spends nothing.
  db.disrupted_pods.insert("db-0");
  EXPECT_EQ(MarkBudgetViolations(&victims, {web, db}), 1);
  // An empty selector, or another namespace, protects nothing here.
  DisruptionBudget everything = Budget("web", 0);
  everything.selector = kube::LabelSelector();
  DisruptionBudget elsewhere = Budget("web", 0);
  elsewhere.ns = "other";
  EXPECT_EQ(MarkBudgetViolations(&victims, {everything, elsewhere}), 0);
}

TEST(PreemptionRulesTest, ParseDisruptionBudgetSaysWhatIsWrong) {
  EXPECT_EQ(ParseDisruptionBudget("{").error().message(), "PodDisruptionBudget: not a JSON object");
  // Found by preemption_fuzz: a field of the wrong type threw from json::value.
  EXPECT_EQ(ParseDisruptionBudget(R"({"metadata":{"name":"x","namespace":{}}})").error().message(),
            "PodDisruptionBudget: metadata.namespace and metadata.name must be strings");
  Result<DisruptionBudget> bad = ParseDisruptionBudget(
      R"({"metadata":{"name":"x","namespace":"d"},"spec":{"selector":{"matchExpressions":[{"key":"a","operator":"Near"}]}}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("PodDisruptionBudget d/x: spec.selector:"),
            std::string::npos)
      << bad.error().message();
  Result<DisruptionBudget> ok = ParseDisruptionBudget(
      R"({"metadata":{"name":"x","namespace":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}}},
          "status":{"disruptionsAllowed":2,"disruptedPods":{"p":"2026-12-06T00:00:00Z"}}})");
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_EQ(ok->disruptions_allowed, 2);
  EXPECT_EQ(ok->disrupted_pods, (std::set<std::string>{"p"}));
}

// --- the cache's dry runs ---

TEST(PreemptionPlanTest, EvictsOnlyWhatItMustAndSparesTheMostImportant) {
  auto cache = NewCache();
  AddGpuNode(*cache, "n", 4);
  cache->UpsertPod(Running("train", "n", 2, 10, 2));  // GPUs 2,3
  cache->UpsertPod(Running("notebook", "n", 1, 5));
  cache->UpsertPod(Running("batch", "n", 0, 0));
  auto urgent = Pending("urgent", 1000);
  ASSERT_FALSE(cache->Select(*urgent, true).ok());
  Result<PreemptionPlan> plan = cache->PlanPreemption(*urgent, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->node, "n");
  EXPECT_EQ(Names(plan->victims), (std::vector<std::string>{"batch"}));
  // Two GPUs: "train" is spared (most important), so both others go.
  Result<PreemptionPlan> two = cache->PlanPreemption(*Pending("urgent2", 1000, 2), {});
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(Names(two->victims), (std::vector<std::string>{"notebook", "batch"}));
  // A priority that outranks only "batch" cannot free two GPUs.
  Result<PreemptionPlan> mid = cache->PlanPreemption(*Pending("mid", 3, 2), {});
  ASSERT_FALSE(mid.ok());
  EXPECT_EQ(mid.error().message(), "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.");
}

// A shared pod of two replicas needs a whole GPU's share on one GPU. Counting
// replicas, as kube-scheduler does for an extended resource, would evict the
// two least important pods, x and y, one on each GPU, and the pod would still
// not fit. The dry run places pods on their GPUs, so it evicts the two that
// share GPU 0.
TEST(PreemptionPlanTest, VictimsAreChosenByGpuNotByCount) {
  auto cache = NewCache();
  cache->UpsertNode(Node({.name = "ts",
                          .allocatable_extra = {{"nvidia.com/gpu.shared", "4"}},
                          .labels = {{"nvidia.com/gpu.replicas", "2"}}}));
  auto shared = [](const std::string& name, int gpu, int priority, const std::string& started) {
    return PodWith({.name = name,
                    .requests = {{"nvidia.com/gpu.shared", "1"}},
                    .annotations = {{"gpuautoscaler.io/gpu-indices", std::to_string(gpu)}},
                    .node = "ts",
                    .phase = "Running"},
                   priority, started);
  };
  cache->UpsertPod(shared("z", 0, 5, "2026-01-01T00:00:00Z"));
  cache->UpsertPod(shared("x", 0, 1, "2026-01-01T00:00:00Z"));
  cache->UpsertPod(shared("w", 1, 9, "2026-01-01T00:00:00Z"));
  cache->UpsertPod(shared("y", 1, 1, "2026-02-01T00:00:00Z"));
  auto whole_share = PodWith({.name = "p", .requests = {{"nvidia.com/gpu.shared", "2"}}}, 1000);
  ASSERT_FALSE(cache->Select(*whole_share, true).ok());
  Result<PreemptionPlan> plan = cache->PlanPreemption(*whole_share, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(Names(plan->victims), (std::vector<std::string>{"z", "x"}));
}

TEST(PreemptionPlanTest, TheDryRunLeavesTheCacheAsItWas) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 4);
  AddGpuNode(*cache, "b", 4);
  cache->UpsertPod(Running("a0", "a", 0, 0, 2));
  cache->UpsertPod(Running("a1", "a", 3, 0));
  cache->UpsertPod(Running("b0", "b", 1, 0, 3));
  const double fragmentation = cache->FragmentationRatio();
  auto probe = Pending("probe", 0, 1);
  Result<PlacementChoice> before = cache->Select(*probe, true);
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(cache->PlanPreemption(*Pending("big", 100, 4), {}).ok());
  Result<PlacementChoice> after = cache->Select(*probe, true);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->node, before->node);
  EXPECT_EQ(after->gpus, before->gpus);
  EXPECT_DOUBLE_EQ(cache->FragmentationRatio(), fragmentation);
  EXPECT_EQ(cache->stats().unplaceable, 0);
  // Every pod is back on its own GPUs: no node has two free.
  EXPECT_FALSE(cache->Select(*Pending("two", 0, 2), true).ok());
}

TEST(PreemptionPlanTest, PicksTheNodeWhoseVictimsMatterLeast) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 2);
  AddGpuNode(*cache, "b", 2);
  AddGpuNode(*cache, "c", 2);
  cache->UpsertPod(Running("a0", "a", 0, 100));
  cache->UpsertPod(Running("a1", "a", 1, 100));
  cache->UpsertPod(Running("b0", "b", 0, 10));
  cache->UpsertPod(Running("b1", "b", 1, 10));
  cache->UpsertPod(Running("c0", "c", 0, 10));
  cache->UpsertPod(Running("c1", "c", 1, 1));
  Result<PreemptionPlan> plan = cache->PlanPreemption(*Pending("p", 1000), {});
  ASSERT_TRUE(plan.ok());
  // b and c lose one pod of priority 10 at most; c can give up its priority-1 pod.
  EXPECT_EQ(plan->node, "c");
  EXPECT_EQ(Names(plan->victims), (std::vector<std::string>{"c1"}));
}

TEST(PreemptionPlanTest, ABudgetSendsPreemptionElsewhere) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  AddGpuNode(*cache, "b", 1);
  cache->UpsertPod(Running("web-0", "a", 0, 1, 1, "", {{"app", "web"}}));
  cache->UpsertPod(Running("batch-0", "b", 0, 50));
  DisruptionBudget web = Budget("web", 0);
  Result<PreemptionPlan> plan = cache->PlanPreemption(*Pending("p", 1000), {web});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->node, "b");  // a higher priority victim, but within its budget
  EXPECT_EQ(plan->budget_violations, 0);
  // When every node would break a budget, the least bad is still taken.
  cache->UpsertPod(Running("batch-0", "b", 0, 50, 1, "", {{"app", "web"}}));
  plan = cache->PlanPreemption(*Pending("p", 1000), {web});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->node, "a");
  EXPECT_EQ(plan->budget_violations, 1);
}

TEST(PreemptionPlanTest, SaysWhyNoNodeHelps) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1, {{"zone", "a"}});
  AddGpuNode(*cache, "b", 1, {{"zone", "b"}});
  AddGpuNode(*cache, "c", 1, {{"zone", "b"}});
  cache->UpsertPod(Running("a0", "a", 0, 0));
  cache->UpsertPod(Running("b0", "b", 0, 500));
  cache->UpsertPod(Running("c0", "c", 0, 0));
  auto p = Pending("p", 500, 1, {{"nodeSelector", {{"zone", "b"}}}});
  Result<PreemptionPlan> plan = cache->PlanPreemption(*p, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->node, "c");
  cache->UpsertPod(Running("c0", "c", 0, 500));
  plan = cache->PlanPreemption(*p, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(plan.error().message(),
            "0/3 nodes are available: 2 No preemption victims found for incoming pod, 1 "
            "Preemption is not helpful for scheduling.");
  // A pod no node could ever take is not a preemption question.
  auto mig = PodWith({.name = "mig", .requests = {{"nvidia.com/mig-7g.80gb", "1"}}}, 1000);
  EXPECT_EQ(cache->PlanPreemption(*mig, {}).error().code(), StatusCode::kInvalidArgument);
}

TEST(PreemptionPlanTest, GpusThatStayAreNeverCountedAsFreed) {
  auto cache = NewCache();
  AddGpuNode(*cache, "n", 4);
  cache->UpsertPod(Running("keeper", "n", 0, 5000));
  cache->UpsertPod(Running("low-1", "n", 1, 0));
  cache->UpsertPod(Running("low-2", "n", 2, 0, 2));  // GPUs 2,3
  Result<PreemptionPlan> three = cache->PlanPreemption(*Pending("three", 1000, 3), {});
  ASSERT_TRUE(three.ok()) << three.error().message();
  std::vector<std::string> victims = Names(three->victims);  // equals: no order between them
  std::sort(victims.begin(), victims.end());
  EXPECT_EQ(victims, (std::vector<std::string>{"low-1", "low-2"}));
  Result<PreemptionPlan> four = cache->PlanPreemption(*Pending("four", 1000, 4), {});
  ASSERT_FALSE(four.ok());
  EXPECT_EQ(four.error().message(), "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.");
}

TEST(PreemptionPlanTest, AssumedPodsAreNotVictims) {
  auto cache = NewCache();
  AddGpuNode(*cache, "n", 1);
  auto low = Pending("low", 0);
  Result<PlacementChoice> c = cache->Select(*low, true);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(cache->Assume(*low, *c).ok());  // its Binding is in flight
  Result<PreemptionPlan> plan = cache->PlanPreemption(*Pending("p", 1000), {});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message().find("No preemption victims"), std::string::npos);
}

// kube-scheduler's InterPodAffinity and PodTopologySpread filters answer
// Unschedulable for anti-affinity and skew, which evictions can clear, and
// its dry run checks them again with the victims gone.
TEST(PreemptionPlanTest, EvictsALowerPriorityPodWhoseAntiAffinityKeepsThePodOut) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 3, {{"kubernetes.io/hostname", "a"}});
  AddGpuNode(*cache, "b", 1, {{"kubernetes.io/hostname", "b"}});
  json guard = testutil::PodJson({.name = "guard",
                                  .requests = {{"nvidia.com/gpu", "1"}},
                                  .annotations = {{"gpuautoscaler.io/gpu-indices", "0"}},
                                  .node = "a",
                                  .phase = "Running"});
  guard["spec"]["priority"] = 10;  // more important than the bystander
  guard["spec"]["affinity"] = AntiAffinity({{"app", "urgent"}});
  cache->UpsertPod(Decoded(guard));
  cache->UpsertPod(Running("bystander", "a", 1, 0, 1, "2026-01-01T00:00:00Z"));
  cache->UpsertPod(Running("keeper", "b", 0, 5000));
  auto urgent = PodWith({.name = "urgent", .requests = {{"nvidia.com/gpu", "1"}}}, 1000, "",
                        {{"app", "urgent"}});
  Result<PlacementChoice> fit = cache->Select(*urgent, true);
  ASSERT_FALSE(fit.ok());
  EXPECT_NE(
      fit.error().message().find("1 node(s) didn't satisfy existing pods anti-affinity rules"),
      std::string::npos)
      << fit.error().message();
  Result<PreemptionPlan> plan = cache->PlanPreemption(*urgent, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->node, "a");
  // The guard goes, though the bystander matters less: a GPU was free already.
  EXPECT_EQ(Names(plan->victims), (std::vector<std::string>{"guard"}));

  // The pod's own anti-affinity: the pods it refuses go, the others stay.
  auto loner = PodWith({.name = "loner",
                        .requests = {{"nvidia.com/gpu", "1"}},
                        .spec_extra = {{"affinity", AntiAffinity({{"team", "x"}})}}},
                       1000);
  cache->UpsertPod(Running("bystander", "a", 1, 0, 1, "2026-01-01T00:00:00Z", {{"team", "x"}}));
  plan = cache->PlanPreemption(*loner, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->node, "a");
  EXPECT_EQ(Names(plan->victims), (std::vector<std::string>{"bystander"}));
}

TEST(PreemptionPlanTest, EvictsWhatTheSpreadNeedsFromTheCrowdedDomain) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 4, {{"zone", "z1"}});
  AddGpuNode(*cache, "b", 4, {{"zone", "z2"}});
  const json x = {{"app", "x"}};
  cache->UpsertPod(Running("x-0", "a", 0, 0, 1, "2026-01-01T00:00:00Z", x));
  cache->UpsertPod(Running("x-1", "a", 1, 0, 1, "2026-02-01T00:00:00Z", x));
  cache->UpsertPod(Running("x-2", "a", 2, 0, 1, "2026-03-01T00:00:00Z", x));
  cache->UpsertPod(Running("x-3", "b", 0, 5000, 1, "", x));
  cache->UpsertPod(Running("keep", "b", 1, 5000, 3));
  json spread = {{"maxSkew", 1},
                 {"topologyKey", "zone"},
                 {"whenUnsatisfiable", "DoNotSchedule"},
                 {"labelSelector", {{"matchLabels", x}}}};
  auto pod = PodWith({.name = "x-new",
                      .requests = {{"nvidia.com/gpu", "1"}},
                      .spec_extra = {{"topologySpreadConstraints", {spread}}}},
                     1000, "", x);
  ASSERT_FALSE(cache->Select(*pod, true).ok());
  Result<PreemptionPlan> plan = cache->PlanPreemption(*pod, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->node, "a");
  // z1 may keep one more than z2's one: x-0, the most important, stays.
  EXPECT_EQ(Names(plan->victims), (std::vector<std::string>{"x-1", "x-2"}));
}

TEST(PreemptionPlanTest, NoEvictionFindsAPartnerForAffinity) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1, {{"kubernetes.io/hostname", "a"}});
  cache->UpsertPod(Running("low", "a", 0, 0));
  json affinity = {{"podAffinity",
                    {{"requiredDuringSchedulingIgnoredDuringExecution",
                      {{{"labelSelector", {{"matchLabels", {{"app", "cache"}}}}},
                        {"topologyKey", "kubernetes.io/hostname"}}}}}}};
  auto pod = Pending("client", 1000, 1, {{"affinity", affinity}});
  Result<PreemptionPlan> plan = cache->PlanPreemption(*pod, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message(),
            "0/1 nodes are available: 1 Preemption is not helpful for scheduling.");
}

// --- nominations ---

TEST(NominationTest, TheRoomIsKeptFromPodsOfNoHigherPriority) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 2);
  AddGpuNode(*cache, "b", 1);
  cache->UpsertPod(Running("a0", "a", 0, 0));
  auto urgent = Pending("urgent", 1000);
  EXPECT_TRUE(cache->Nominate(urgent, "a").empty());
  EXPECT_EQ(cache->NominatedNode("default", "urgent"), "a");
  // a's free GPU is held for "urgent": a pod of lower priority goes to b ...
  Result<PlacementChoice> low = cache->Select(*Pending("low", 10), true);
  ASSERT_TRUE(low.ok());
  EXPECT_EQ(low->node, "b");
  EXPECT_FALSE(cache->PlanOn(*Pending("low", 10), "a", true).ok());
  // ... and once b is full, it is told a is short of GPUs.
  cache->UpsertPod(Running("b0", "b", 0, 0));
  Result<PlacementChoice> none = cache->Select(*Pending("low", 10), true);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message(), "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.");
  // The nominated pod itself, and a pod of higher priority, may use it.
  Result<PlacementChoice> own = cache->PlanOn(*urgent, "a", true);
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->gpus, (std::vector<int>{1}));
  EXPECT_TRUE(cache->Select(*Pending("higher", 2000), true).ok());
}

// kube-scheduler counts the pods nominated to a node, of no lower priority,
// for the inter-pod rules there too, and the pod must fit with and without
// them.
TEST(NominationTest, NominatedPodsCountForInterPodRulesOnTheirNode) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 4, {{"kubernetes.io/hostname", "a"}});
  AddGpuNode(*cache, "b", 4, {{"kubernetes.io/hostname", "b"}});
  json guard = testutil::PodJson({.name = "guard", .requests = {{"nvidia.com/gpu", "1"}}});
  guard["spec"]["priority"] = 1000;
  guard["spec"]["affinity"] = AntiAffinity({{"app", "batch"}});
  guard["metadata"]["labels"] = {{"role", "guard"}};
  auto guard_view = Decoded(guard);
  EXPECT_TRUE(cache->Nominate(guard_view, "a").empty());
  auto batch =
      PodWith({.name = "batch", .requests = {{"nvidia.com/gpu", "1"}}}, 10, "", {{"app", "batch"}});
  // The guard is not bound yet, but its anti-affinity already closes a.
  EXPECT_FALSE(cache->PlanOn(*batch, "a", true).ok());
  Result<PlacementChoice> choice = cache->Select(*batch, true);
  ASSERT_TRUE(choice.ok()) << choice.error().message();
  EXPECT_EQ(choice->node, "b");
  // A pod that needs the guard beside it must not count on it either: with
  // the nominated pod not there, no partner is on a.
  json affinity = {{"podAffinity",
                    {{"requiredDuringSchedulingIgnoredDuringExecution",
                      {{{"labelSelector", {{"matchLabels", {{"role", "guard"}}}}},
                        {"topologyKey", "kubernetes.io/hostname"}}}}}}};
  cache->UpsertPod(Running("guard-0", "b", 3, 1000, 1, "", {{"role", "guard"}}));
  auto follower = Pending("follower", 10, 1, {{"affinity", affinity}});
  Result<PlacementChoice> on_a = cache->PlanOn(*follower, "a", true);
  ASSERT_FALSE(on_a.ok());
  EXPECT_EQ(on_a.error().message(), "node \"a\": node(s) didn't match pod affinity rules");
  Result<PlacementChoice> f = cache->Select(*follower, true);
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->node, "b");
}

TEST(NominationTest, ANominatedPodAlreadyAccountedHoldsNothingMore) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 2);
  auto first = Pending("first", 1000);
  cache->Nominate(first, "a");
  Result<PlacementChoice> own = cache->PlanOn(*first, "a", true);
  ASSERT_TRUE(own.ok());
  ASSERT_TRUE(cache->Assume(*first, *own).ok());
  // "first" counts once, as assumed: its nomination keeps no second GPU.
  Result<PlacementChoice> second = cache->Select(*Pending("second", 1000), true);
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(second->node, "a");
}

TEST(NominationTest, NominationsEndWithBindingOrDeletionAndSurviveARestart) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  auto low = Pending("low", 10);
  auto urgent = Pending("urgent", 1000);
  cache->Nominate(low, "a");
  // A higher-priority nomination on the same node drops the lower one.
  EXPECT_EQ(cache->Nominate(urgent, "a"), (std::vector<std::string>{"default/low"}));
  EXPECT_EQ(cache->NominatedNode("default", "low"), "");
  // A stale copy of the pod (status not yet patched) keeps the nomination.
  cache->UpsertPod(urgent);
  EXPECT_EQ(cache->NominatedNode("default", "urgent"), "a");
  // Bound: gone.
  cache->UpsertPod(Running("urgent", "a", 0, 1000));
  EXPECT_EQ(cache->NominatedNode("default", "urgent"), "");
  // A fresh cache learns nominations from status.nominatedNodeName.
  auto fresh = NewCache();
  AddGpuNode(*fresh, "a", 1);
  json pod = testutil::PodJson({.name = "waiting", .requests = {{"nvidia.com/gpu", "1"}}});
  pod["spec"]["priority"] = 1000;
  pod["status"]["nominatedNodeName"] = "a";
  auto view = kube::DecodePod(pod.dump());
  ASSERT_TRUE(view.ok());
  fresh->UpsertPod(std::make_shared<const kube::PodView>(std::move(view).value()));
  EXPECT_EQ(fresh->NominatedNode("default", "waiting"), "a");
  EXPECT_FALSE(fresh->Select(*Pending("low", 10), true).ok());
  fresh->DeletePod("default", "waiting");
  EXPECT_EQ(fresh->NominatedNode("default", "waiting"), "");
  EXPECT_TRUE(fresh->Select(*Pending("low", 10), true).ok());
}

std::shared_ptr<const kube::PodView> PendingNominatedTo(const std::string& name, int priority,
                                                        const std::string& node) {
  json pod = testutil::PodJson({.name = name, .requests = {{"nvidia.com/gpu", "1"}}});
  pod["spec"]["priority"] = priority;
  if (!node.empty()) pod["status"]["nominatedNodeName"] = node;
  auto view = kube::DecodePod(pod.dump());
  EXPECT_TRUE(view.ok());
  return std::make_shared<const kube::PodView>(std::move(view).value());
}

TEST(NominationTest, TheSchedulersOwnDecisionsWinOverOlderCopies) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  AddGpuNode(*cache, "b", 1);
  cache->Nominate(PendingNominatedTo("p", 1000, ""), "a");
  // A copy from before another scheduler's write, or from before ours.
  cache->UpsertPod(PendingNominatedTo("p", 1000, "b"));
  EXPECT_EQ(cache->NominatedNode("default", "p"), "a");
  // Cleared here: a copy still naming a does not bring it back ...
  cache->ClearNomination("default", "p");
  cache->UpsertPod(PendingNominatedTo("p", 1000, "a"));
  EXPECT_EQ(cache->NominatedNode("default", "p"), "");
  // ... until the clearing has landed; then the status is read again.
  cache->UpsertPod(PendingNominatedTo("p", 1000, ""));
  cache->UpsertPod(PendingNominatedTo("p", 1000, "b"));
  EXPECT_EQ(cache->NominatedNode("default", "p"), "b");
  // A nomination read from the status follows the status, cleared included.
  cache->UpsertPod(PendingNominatedTo("p", 1000, ""));
  EXPECT_EQ(cache->NominatedNode("default", "p"), "");
  // A lower nomination that a higher one displaced stays dropped too.
  cache->UpsertPod(PendingNominatedTo("low", 10, "a"));
  EXPECT_EQ(cache->Nominate(PendingNominatedTo("p", 1000, ""), "a"),
            (std::vector<std::string>{"default/low"}));
  cache->UpsertPod(PendingNominatedTo("low", 10, "a"));
  EXPECT_EQ(cache->NominatedNode("default", "low"), "");
}

TEST(NominationTest, APreemptionUnderWayIsSeen) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  json pod = testutil::PodJson(
      {.name = "victim", .requests = {{"nvidia.com/gpu", "1"}}, .node = "a", .phase = "Running"});
  pod["spec"]["priority"] = 10;
  pod["metadata"]["deletionTimestamp"] = "2026-12-06T00:00:30Z";
  auto view = kube::DecodePod(pod.dump());
  ASSERT_TRUE(view.ok());
  cache->UpsertPod(std::make_shared<const kube::PodView>(std::move(view).value()));
  EXPECT_TRUE(cache->PreemptionUnderWay("a", 1000));
  EXPECT_FALSE(cache->PreemptionUnderWay("a", 10));
  EXPECT_FALSE(cache->PreemptionUnderWay("b", 1000));
}

// A victim counts as going from the moment it is planned, before the informer
// shows it terminating: a preemptor tried again meanwhile waits instead of
// evicting it a second time. A failed eviction unmarks it.
TEST(NominationTest, AVictimBeingEvictedIsSeenBeforeTheInformerShowsIt) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  json pod = testutil::PodJson(
      {.name = "victim", .requests = {{"nvidia.com/gpu", "1"}}, .node = "a", .phase = "Running"});
  pod["spec"]["priority"] = 10;
  auto view = kube::DecodePod(pod.dump());
  ASSERT_TRUE(view.ok());
  cache->UpsertPod(std::make_shared<const kube::PodView>(std::move(view).value()));
  EXPECT_FALSE(cache->PreemptionUnderWay("a", 1000));
  const std::vector<std::string> victims = {"default/victim"};
  cache->MarkEvicting(victims, true);
  EXPECT_TRUE(cache->PreemptionUnderWay("a", 1000));
  EXPECT_FALSE(cache->PreemptionUnderWay("a", 10));
  cache->MarkEvicting(victims, false);
  EXPECT_FALSE(cache->PreemptionUnderWay("a", 1000));
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
