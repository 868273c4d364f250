// Preemption by and of pod groups (gangs): a pending gang preempts for all
// its members or not at all, and a running gang is a victim whole or not at
// all (cluster_cache.h, pod_group.h).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "scheduler/preemption_test_util.h"

namespace gpu_autoscaler::scheduler {
namespace {

using testutil::json;
using namespace preemption_testing;

// --- a pod group (gang) preempting as a whole ---

std::vector<std::shared_ptr<const kube::PodView>> Gang(int members, int priority, int gpus = 1) {
  std::vector<std::shared_ptr<const kube::PodView>> pods;
  for (int i = 0; i < members; ++i)
    pods.push_back(Pending("m" + std::to_string(i), priority, gpus));
  return pods;
}

TEST(GangPreemptionTest, PlacesEveryMemberAndEvictsForThoseThatNeedIt) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 2);
  AddGpuNode(*cache, "b", 2);
  cache->UpsertPod(Running("a0", "a", 0, 10));
  cache->UpsertPod(Running("a1", "a", 1, 20));
  cache->UpsertPod(Running("b0", "b", 0, 30));
  const double fragmentation = cache->FragmentationRatio();
  auto gang = Gang(3, 1000);
  Result<GangPreemptionPlan> plan = cache->PlanGangPreemption(gang, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  ASSERT_EQ(plan->members.size(), 3u);
  int preempting = 0;
  std::map<std::string, int> per_node;
  for (const auto& m : plan->members) {
    preempting += m.preempts;
    ++per_node[m.node];
  }
  // One member takes b's free GPU; two evict the least important pods.
  EXPECT_EQ(preempting, 2);
  std::vector<std::string> victims;
  for (const auto& v : plan->victims)
    victims.emplace_back(v.victim.pod->name());
  std::sort(victims.begin(), victims.end());
  EXPECT_EQ(victims, (std::vector<std::string>{"a0", "a1"}));
  EXPECT_EQ(per_node, (std::map<std::string, int>{{"a", 2}, {"b", 1}}));
  for (const auto& v : plan->victims)
    EXPECT_EQ(v.node, "a");
  // The dry run leaves the cache as it was.
  EXPECT_DOUBLE_EQ(cache->FragmentationRatio(), fragmentation);
  EXPECT_EQ(cache->stats().unplaceable, 0);
  EXPECT_EQ(cache->stats().pods, 3);
  EXPECT_FALSE(cache->Select(*Pending("two", 0, 2), true).ok());
}

// Members planned earlier count for the inter-pod rules of the later ones:
// a gang whose members keep apart is not planned onto one node.
TEST(GangPreemptionTest, MembersPlannedEarlierCountForTheLaterOnesRules) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 2, {{"kubernetes.io/hostname", "a"}});
  AddGpuNode(*cache, "b", 2, {{"kubernetes.io/hostname", "b"}});
  cache->UpsertPod(Running("a0", "a", 0, 0));
  cache->UpsertPod(Running("a1", "a", 1, 0));
  cache->UpsertPod(Running("b0", "b", 0, 5));
  cache->UpsertPod(Running("b1", "b", 1, 5));
  std::vector<std::shared_ptr<const kube::PodView>> members;
  for (const char* name : {"w0", "w1"}) {
    json pod = testutil::PodJson({.name = name,
                                  .requests = {{"nvidia.com/gpu", "1"}},
                                  .annotations = {{"gpuautoscaler.io/pod-group", "job"}}});
    pod["spec"]["priority"] = 1000;
    pod["metadata"]["labels"] = {{"job", "w"}};
    pod["spec"]["affinity"] = AntiAffinity({{"job", "w"}});
    members.push_back(Decoded(pod));
  }
  Result<GangPreemptionPlan> plan = cache->PlanGangPreemption(members, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  ASSERT_EQ(plan->members.size(), 2u);
  // a's victims matter least, but only one member may go there.
  EXPECT_NE(plan->members[0].node, plan->members[1].node);
  std::set<std::string> victim_nodes;
  for (const GangPreemptionPlan::Victim& v : plan->victims)
    victim_nodes.insert(v.node);
  EXPECT_EQ(victim_nodes, (std::set<std::string>{"a", "b"}));
}

TEST(GangPreemptionTest, AGroupThatCannotFitEvenSoSaysWhichMember) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 2);
  cache->UpsertPod(Running("a0", "a", 0, 10));
  Result<GangPreemptionPlan> plan = cache->PlanGangPreemption(Gang(3, 1000), {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(plan.error().message().find("m2: "), std::string::npos) << plan.error().message();
  // Nothing was left evicted or placed.
  EXPECT_EQ(cache->stats().pods, 1);
  EXPECT_TRUE(cache->Select(*Pending("one", 0), true).ok());
  EXPECT_FALSE(cache->Select(*Pending("two", 0, 2), true).ok());
}

TEST(GangPreemptionTest, VictimsRankBelowEveryMember) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 2);
  cache->UpsertPod(Running("mid", "a", 0, 100));
  cache->UpsertPod(Running("low", "a", 1, 10));
  auto gang = Gang(2, 1000);
  gang.push_back(Pending("lowest-member", 50));
  // Three GPUs for three members, and "mid" outranks one member: no plan.
  AddGpuNode(*cache, "b", 1);
  cache->UpsertPod(Running("b0", "b", 0, 10));
  EXPECT_FALSE(cache->PlanGangPreemption(gang, {}).ok());
  // Without that member, "mid" is fair game for the other two.
  gang.pop_back();
  Result<GangPreemptionPlan> plan = cache->PlanGangPreemption(gang, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->victims.size(), 2u);
}

TEST(GangPreemptionTest, BudgetsAreSpentAcrossMembers) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  AddGpuNode(*cache, "b", 1);
  cache->UpsertPod(Running("a0", "a", 0, 10, 1, "", {{"app", "web"}}));
  cache->UpsertPod(Running("b0", "b", 0, 10, 1, "", {{"app", "web"}}));
  // One disruption allowed: the first member's eviction spends it.
  Result<GangPreemptionPlan> plan = cache->PlanGangPreemption(Gang(2, 1000), {Budget("web", 1)});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->victims.size(), 2u);
  EXPECT_EQ(plan->budget_violations, 1);
}

TEST(GangPreemptionTest, MembersOwnNominationsKeepNoRoomFromTheGroup) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 2);
  auto gang = Gang(2, 1000);
  // An earlier plan nominated both to a; a is free now.
  cache->Nominate(gang[0], "a");
  cache->Nominate(gang[1], "a");
  Result<GangPreemptionPlan> plan = cache->PlanGangPreemption(gang, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_TRUE(plan->victims.empty());
  for (const auto& m : plan->members) {
    EXPECT_EQ(m.node, "a");
    EXPECT_FALSE(m.preempts);
  }
}

// --- a running gang as victims: whole or not at all ---

// A member of pod group `group` running on `node`'s GPU `gpu`.
std::shared_ptr<const kube::PodView> Member(const std::string& name, const std::string& group,
                                            const std::string& node, int gpu, int priority,
                                            int min_member = 0, json labels = json::object()) {
  json annotations = {{"gpuautoscaler.io/gpu-indices", std::to_string(gpu)},
                      {"gpuautoscaler.io/pod-group", group}};
  if (min_member > 0) {
    annotations["gpuautoscaler.io/pod-group-min-member"] = std::to_string(min_member);
  }
  return PodWith({.name = name,
                  .requests = {{"nvidia.com/gpu", "1"}},
                  .annotations = annotations,
                  .node = node,
                  .phase = "Running"},
                 priority, "", std::move(labels));
}

// A pending member of pod group `group`, asking for one GPU.
std::shared_ptr<const kube::PodView> PendingMember(const std::string& name,
                                                   const std::string& group, int priority) {
  return PodWith({.name = name,
                  .requests = {{"nvidia.com/gpu", "1"}},
                  .annotations = {{"gpuautoscaler.io/pod-group", group}}},
                 priority);
}

std::map<std::string, std::string> GroupsOf(const std::vector<PreemptionVictim>& victims) {
  std::map<std::string, std::string> groups;
  for (const PreemptionVictim& v : victims)
    groups[std::string(v.pod->name())] = v.pod_group;
  return groups;
}

TEST(GangVictimTest, AGangGoesWholeAndCountsAsAllItsMembers) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  AddGpuNode(*cache, "b", 1);
  AddGpuNode(*cache, "c", 1);
  cache->UpsertPod(Member("g0", "train", "a", 0, 10));
  cache->UpsertPod(Member("g1", "train", "b", 0, 10));
  cache->UpsertPod(Running("solo", "c", 0, 10));
  // One pod of the same priority costs less than a gang of two.
  Result<PreemptionPlan> plan = cache->PlanPreemption(*Pending("urgent", 1000), {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->node, "c");
  EXPECT_EQ(Names(plan->victims), (std::vector<std::string>{"solo"}));

  // Without it, the gang goes: both members, the one on b too.
  cache->DeletePod("default", "solo");
  cache->UpsertPod(Running("solo", "c", 0, 500));
  plan = cache->PlanPreemption(*Pending("urgent", 1000), {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_NE(plan->node, "c");
  EXPECT_EQ(GroupsOf(plan->victims),
            (std::map<std::string, std::string>{{"g0", "default/train"}, {"g1", "default/train"}}));
  // The dry run left every member in place.
  EXPECT_FALSE(cache->Select(*Pending("one", 0), true).ok());
  EXPECT_EQ(cache->stats().pods, 3);
}

TEST(GangVictimTest, MembersBeyondMinMemberGoAloneThenTheGangGoes) {
  auto cache = NewCache();
  for (const char* node : {"a", "b", "c"})
    AddGpuNode(*cache, node, 1);
  cache->UpsertPod(Member("g0", "elastic", "a", 0, 10, 2));
  cache->UpsertPod(Member("g1", "elastic", "b", 0, 10, 2));
  cache->UpsertPod(Member("g2", "elastic", "c", 0, 10, 2));
  // Three running, two needed: one member may go alone.
  Result<PreemptionPlan> plan = cache->PlanPreemption(*Pending("urgent", 1000), {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  ASSERT_EQ(plan->victims.size(), 1u);
  EXPECT_EQ(plan->victims[0].pod_group, "");
  // A two-member gang takes the spare member, then the rest of the gang.
  Result<GangPreemptionPlan> gang = cache->PlanGangPreemption(Gang(2, 1000), {});
  ASSERT_TRUE(gang.ok()) << gang.error().message();
  std::vector<std::string> victims;
  int whole = 0;
  for (const auto& v : gang->victims) {
    victims.emplace_back(v.victim.pod->name());
    whole += !v.victim.pod_group.empty();
  }
  std::sort(victims.begin(), victims.end());
  EXPECT_EQ(victims, (std::vector<std::string>{"g0", "g1", "g2"}));
  EXPECT_EQ(whole, 2);  // the first went alone
  EXPECT_EQ(cache->stats().pods, 3);
}

TEST(GangVictimTest, AGangWithAMemberTooImportantIsNoVictim) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  AddGpuNode(*cache, "b", 1);
  cache->UpsertPod(Member("g0", "serve", "a", 0, 10));
  cache->UpsertPod(Member("g1", "serve", "b", 0, 2000));
  Result<PreemptionPlan> plan = cache->PlanPreemption(*Pending("urgent", 1000), {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message(),
            "0/2 nodes are available: 2 No preemption victims found for incoming pod.");
}

TEST(GangVictimTest, AGangStillBindingIsNoVictim) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  AddGpuNode(*cache, "b", 1);
  cache->UpsertPod(Member("g0", "train", "a", 0, 10));
  auto g1 = PendingMember("g1", "train", 10);
  Result<PlacementChoice> choice = cache->PlanOn(*g1, "b", true);
  ASSERT_TRUE(choice.ok()) << choice.error().message();
  ASSERT_TRUE(cache->Assume(*g1, *choice).ok());
  // g1's Binding is in flight: evicting g0 would break the gang as it starts.
  EXPECT_FALSE(cache->PlanPreemption(*Pending("urgent", 1000), {}).ok());
  cache->UpsertPod(Member("g1", "train", "b", 0, 10));  // bound now
  Result<PreemptionPlan> plan = cache->PlanPreemption(*Pending("urgent", 1000), {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->victims.size(), 2u);
}

TEST(GangVictimTest, ThePreemptorsOwnGroupIsNoVictim) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  cache->UpsertPod(Member("g0", "train", "a", 0, 10, 1));
  const std::vector<std::shared_ptr<const kube::PodView>> group = {
      PendingMember("g1", "train", 1000)};
  EXPECT_FALSE(cache->PlanPreemption(*group[0], {}).ok());
  EXPECT_FALSE(cache->PlanGangPreemption(group, {}).ok());
}

TEST(GangVictimTest, BehindKubeSchedulerAGangAcrossNodesIsNeverBroken) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 2);
  AddGpuNode(*cache, "b", 1);
  cache->UpsertPod(Member("g0", "train", "a", 0, 10));
  cache->UpsertPod(Member("g1", "train", "b", 0, 10));
  cache->UpsertPod(Running("busy", "a", 1, 2000));
  const std::vector<std::string_view> a = {"a"};
  Result<PreemptionPlan> plan = cache->PlanPreemptionAmong(*Pending("urgent", 1000), a, {}, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message().find("would stop a pod group that also runs on other nodes"),
            std::string::npos)
      << plan.error().message();
  // A gang all on one node goes whole there.
  cache->DeletePod("default", "g1");
  cache->DeletePod("default", "busy");
  cache->UpsertPod(Member("g1", "train", "a", 1, 10));
  plan = cache->PlanPreemptionAmong(*Pending("urgent", 1000), a, {}, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(GroupsOf(plan->victims),
            (std::map<std::string, std::string>{{"g0", "default/train"}, {"g1", "default/train"}}));
}

TEST(GangVictimTest, AGangsMembersElsewhereCountAgainstTheirBudgets) {
  auto cache = NewCache();
  AddGpuNode(*cache, "a", 1);
  AddGpuNode(*cache, "b", 1);
  cache->UpsertPod(Member("g0", "train", "a", 0, 10, 0, {{"app", "train"}}));
  cache->UpsertPod(Member("g1", "train", "b", 0, 10, 0, {{"app", "train"}}));
  // One disruption allowed, two members go: one is past the budget.
  Result<PreemptionPlan> plan =
      cache->PlanPreemption(*Pending("urgent", 1000), {Budget("train", 1)});
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->victims.size(), 2u);
  EXPECT_EQ(plan->budget_violations, 1);
}

}  // namespace
}  // namespace gpu_autoscaler::scheduler
