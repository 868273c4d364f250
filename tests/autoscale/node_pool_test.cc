#include "autoscale/node_pool.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::autoscale {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr int kSpot = TierIndex(CapacityTier::kSpot);
constexpr int kOnDemand = TierIndex(CapacityTier::kOnDemand);
const Clock::TimePoint kT0 = Clock::TimePoint(std::chrono::hours(1000));
// 2026-12-04 (a Friday) 10:00 UTC.
constexpr int64_t kFriday10 = 1796378400;

// One T4 per node, 8 CPUs, 32 GiB; spot 0.20/h, on-demand 0.50/h.
NodePoolSpec T4Pool(int max_nodes = 10) {
  NodePoolSpec pool;
  pool.name = "t4";
  PoolInstanceType it{
      .name = "g4.t4x1", .gpu_model = "T4", .gpu_count = 1, .cpu_milli = 8000, .memory_mib = 32768};
  it.price[kSpot] = 0.20;
  it.price[kOnDemand] = 0.50;
  pool.instance_types.push_back(it);
  pool.max_nodes = max_nodes;
  pool.tiers[kSpot].enabled = true;
  pool.tiers[kOnDemand].enabled = true;
  return pool;
}

PodSpec Pod(std::string name, int gpu_milli, int num_gpu = 1) {
  PodSpec pod;
  pod.name = std::move(name);
  pod.cpu_milli = 500;
  pod.memory_mib = 1024;
  pod.num_gpu = num_gpu;
  pod.gpu_milli = gpu_milli;
  return pod;
}

std::vector<PodSpec> Pods(int n, int gpu_milli) {
  std::vector<PodSpec> out;
  for (int i = 0; i < n; ++i)
    out.push_back(Pod("ml/p" + std::to_string(i), gpu_milli));
  return out;
}

PoolNode Node(std::string name, CapacityTier tier = CapacityTier::kOnDemand,
              Clock::TimePoint last_change = kT0) {
  return PoolNode{
      .name = std::move(name), .instance_type = 0, .tier = tier, .last_pod_change = last_change};
}

int Count(const PoolScaleUpPlan& plan, CapacityTier tier) {
  int n = 0;
  for (const TierIncrease& inc : plan.increases)
    if (inc.tier == tier) n += inc.count;
  return n;
}

// The required case: four-way time-slicing packs 8 quarter-GPU pods on 2 GPUs.
TEST(PoolScaleUpTest, TimeSlicedQuarterPodsNeedTwoGpusNotEight) {
  const NodePoolSpec pool = T4Pool();
  auto plan = PlanPoolScaleUp({.pool = &pool, .pending = Pods(8, 1000 / 4), .now = kT0});
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  EXPECT_EQ(plan->new_gpus, 2);
  EXPECT_EQ(Count(*plan, CapacityTier::kSpot), 2);  // spot is cheaper at equal weight
  EXPECT_TRUE(plan->unplaced.empty());
  EXPECT_DOUBLE_EQ(plan->added_hourly_cost, 0.40);
  // Whole-GPU pods, for contrast: one GPU each.
  auto whole = PlanPoolScaleUp({.pool = &pool, .pending = Pods(8, 1000), .now = kT0});
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->new_gpus, 8);
}

TEST(PoolScaleUpTest, MpsClientsAndMigSlicesPackTheSameWay) {
  // 3 MPS clients per GPU (333 milli each): 7 pods need 3 GPUs.
  const NodePoolSpec pool = T4Pool();
  auto mps = PlanPoolScaleUp({.pool = &pool, .pending = Pods(7, 1000 / 3), .now = kT0});
  ASSERT_TRUE(mps.ok());
  EXPECT_EQ(mps->new_gpus, 3);
  // 1g.10gb MIG pods take 1/7 of a GPU (143 milli rounded up): 7 fit on one GPU, 8 need 2.
  auto mig = PlanPoolScaleUp({.pool = &pool, .pending = Pods(8, 143), .now = kT0});
  ASSERT_TRUE(mig.ok());
  EXPECT_EQ(mig->new_gpus, 2);
}

TEST(PoolScaleUpTest, TierLimitFallsBackToOnDemand) {
  NodePoolSpec pool = T4Pool();
  pool.tiers[kSpot].max_nodes = 1;
  auto plan = PlanPoolScaleUp({.pool = &pool, .pending = Pods(3, 1000), .now = kT0});
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  EXPECT_EQ(Count(*plan, CapacityTier::kSpot), 1);
  EXPECT_EQ(Count(*plan, CapacityTier::kOnDemand), 2);
  EXPECT_TRUE(plan->unplaced.empty());
  EXPECT_DOUBLE_EQ(plan->added_hourly_cost, 0.20 + 2 * 0.50);
  // An existing spot node uses up the spot limit: all three go on-demand.
  auto full = PlanPoolScaleUp({.pool = &pool,
                               .nodes = {Node("s0", CapacityTier::kSpot)},
                               .pods = {{.spec = Pod("ml/x", 1000), .node = "s0"}},
                               .pending = Pods(3, 1000),
                               .now = kT0});
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(Count(*full, CapacityTier::kSpot), 0);
  EXPECT_EQ(Count(*full, CapacityTier::kOnDemand), 3);
}

TEST(PoolScaleUpTest, WeightsPreferATier) {
  NodePoolSpec pool = T4Pool();
  pool.tiers[kOnDemand].weight = 0.3;  // 0.50 × 0.3 = 0.15 < 0.20 spot
  auto plan = PlanPoolScaleUp({.pool = &pool, .pending = Pods(2, 1000), .now = kT0});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Count(*plan, CapacityTier::kOnDemand), 2);
  EXPECT_DOUBLE_EQ(plan->added_hourly_cost, 1.00);  // real prices, not weighted
}

TEST(PoolScaleUpTest, CapacityErrorMarksOfferingUnavailableForThreeMinutes) {
  const NodePoolSpec pool = T4Pool();
  UnavailableOfferings ice;
  ice.Mark("g4.t4x1", CapacityTier::kSpot, kT0);
  auto during = PlanPoolScaleUp(
      {.pool = &pool, .pending = Pods(2, 1000), .unavailable = &ice, .now = kT0 + seconds(179)});
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(Count(*during, CapacityTier::kSpot), 0);
  EXPECT_EQ(Count(*during, CapacityTier::kOnDemand), 2);
  EXPECT_EQ(ice.Live(kT0 + seconds(179)).size(), 1u);
  auto after = PlanPoolScaleUp(
      {.pool = &pool, .pending = Pods(2, 1000), .unavailable = &ice, .now = kT0 + minutes(3)});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Count(*after, CapacityTier::kSpot), 2);
  EXPECT_TRUE(ice.Live(kT0 + minutes(3)).empty());
}

TEST(PoolScaleUpTest, PoolMaxLeavesPodsUnplacedWithTheLimit) {
  const NodePoolSpec pool = T4Pool(/*max_nodes=*/3);
  auto plan = PlanPoolScaleUp({.pool = &pool,
                               .nodes = {Node("n0")},
                               .pods = {{.spec = Pod("ml/x", 1000), .node = "n0"}},
                               .pending = Pods(5, 1000),
                               .now = kT0});
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  EXPECT_EQ(plan->new_nodes(), 2);
  ASSERT_EQ(plan->unplaced.size(), 3u);
  for (const UnplacedPod& u : plan->unplaced)
    EXPECT_EQ(u.reason, UnplacedReason::kLimitsExhausted);
  EXPECT_EQ(plan->limit, ScaleUpLimit::kPoolMax);
  // Already at max: nothing is planned, every pod waits on the limit.
  const NodePoolSpec one = T4Pool(/*max_nodes=*/1);
  auto at_max = PlanPoolScaleUp({.pool = &one,
                                 .nodes = {Node("n0")},
                                 .pods = {{.spec = Pod("ml/x", 1000), .node = "n0"}},
                                 .pending = Pods(2, 1000),
                                 .now = kT0});
  ASSERT_TRUE(at_max.ok());
  EXPECT_EQ(at_max->new_nodes(), 0);
  EXPECT_EQ(at_max->unplaced.size(), 2u);
  EXPECT_EQ(at_max->limit, ScaleUpLimit::kPoolMax);
}

TEST(PoolScaleUpTest, CostCeilingStopsShortOfIt) {
  NodePoolSpec pool = T4Pool();
  pool.tiers[kOnDemand].enabled = false;
  pool.instance_types[0].price[kSpot] = 0.40;
  pool.cost_per_hour_ceiling = 1.00;
  auto plan = PlanPoolScaleUp({.pool = &pool, .pending = Pods(4, 1000), .now = kT0});
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  EXPECT_EQ(plan->new_nodes(), 2);  // 0.80; a third would make 1.20
  EXPECT_DOUBLE_EQ(plan->added_hourly_cost, 0.80);
  EXPECT_EQ(plan->unplaced.size(), 2u);
  EXPECT_EQ(plan->limit, ScaleUpLimit::kCostCeiling);
}

TEST(PoolScaleUpTest, LaunchingNodesAbsorbPendingPods) {
  const NodePoolSpec pool = T4Pool();
  PoolNode launching = Node("launching-0", CapacityTier::kSpot);
  launching.launching = true;
  auto plan =
      PlanPoolScaleUp({.pool = &pool, .nodes = {launching}, .pending = Pods(4, 250), .now = kT0});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->new_nodes(), 0);
  EXPECT_TRUE(plan->unplaced.empty());
}

TEST(PoolScaleUpTest, SpotScaleDownRequestLaunchesNoSpot) {
  const NodePoolSpec pool = T4Pool();
  auto plan = PlanPoolScaleUp(
      {.pool = &pool, .pending = Pods(1, 1000), .spot_scale_down = true, .now = kT0});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Count(*plan, CapacityTier::kSpot), 0);
  EXPECT_EQ(Count(*plan, CapacityTier::kOnDemand), 1);
}

TEST(PoolScaleUpTest, PodTooBigForEveryInstanceTypeSaysSo) {
  const NodePoolSpec pool = T4Pool();
  auto plan = PlanPoolScaleUp({.pool = &pool, .pending = {Pod("ml/big", 1000, 2)}, .now = kT0});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->unplaced.size(), 1u);
  EXPECT_EQ(plan->unplaced[0].reason, UnplacedReason::kExceedsLargestOffering);
  EXPECT_EQ(plan->limit, ScaleUpLimit::kNone);
}

TEST(NodePoolValidationTest, NamesEachProblem) {
  NodePoolSpec pool = T4Pool(/*max_nodes=*/2);
  pool.min_nodes = 5;
  auto problems = ValidateNodePool(pool);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], "minNodes 5 > maxNodes 2");
  EXPECT_FALSE(PlanPoolScaleUp({.pool = &pool, .now = kT0}).ok());

  NodePoolSpec no_tier = T4Pool();
  no_tier.tiers[kSpot].enabled = no_tier.tiers[kOnDemand].enabled = false;
  EXPECT_EQ(ValidateNodePool(no_tier), std::vector<std::string>{"no tier has a provider group"});

  NodePoolSpec bad_budget = T4Pool();
  bad_budget.budgets = {{.nodes = 0, .percent = false, .schedule = "0 9 * * 1-5"}};
  EXPECT_EQ(ValidateNodePool(bad_budget),
            std::vector<std::string>{"a disruption budget needs schedule and duration together"});
  EXPECT_TRUE(ValidateNodePool(T4Pool()).empty());

  // Found by gpu_node_pool_spec_fuzz: a misspelt gpuModel passed validation
  // and the planner then failed on the "valid" pool.
  NodePoolSpec no_model = T4Pool();
  no_model.instance_types[0].gpu_model.clear();
  EXPECT_EQ(ValidateNodePool(no_model),
            std::vector<std::string>{"instance type " + no_model.instance_types[0].name +
                                     " has no gpuModel"});
}

TEST(DisruptionBudgetTest, ParsesKarpenterNodes) {
  auto p = ParseBudgetNodes("10%");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->percent);
  EXPECT_EQ(p->nodes, 10);
  auto c = ParseBudgetNodes("3");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->percent);
  EXPECT_EQ(c->nodes, 3);
  for (const char* bad : {"", "%", "101%", "-1", "3.5", "10 %", "1000%"})
    EXPECT_FALSE(ParseBudgetNodes(bad).ok()) << bad;
}

TEST(DisruptionBudgetTest, PercentRoundsUpAndSmallestActiveWins) {
  const DisruptionBudget ten{.nodes = 10, .percent = true};
  const DisruptionBudget twenty{.nodes = 20, .percent = true};
  EXPECT_EQ(AllowedDisruptions({ten}, 5, kFriday10), 1);      // ceil(0.5)
  EXPECT_EQ(AllowedDisruptions({twenty}, 19, kFriday10), 4);  // Karpenter's example
  EXPECT_EQ(AllowedDisruptions({ten}, 0, kFriday10), 0);
  EXPECT_EQ(AllowedDisruptions({{.nodes = 3, .percent = false}, twenty}, 30, kFriday10), 3);
  // "0" during weekday business hours only.
  const DisruptionBudget office{
      .nodes = 0, .percent = false, .schedule = "0 9 * * 1-5", .duration_seconds = 8 * 3600};
  EXPECT_EQ(AllowedDisruptions({twenty, office}, 10, kFriday10), 0);
  EXPECT_EQ(AllowedDisruptions({twenty, office}, 10, kFriday10 + 24 * 3600), 2);  // Saturday
  EXPECT_EQ(AllowedDisruptions({}, 7, kFriday10), 7);
}

TEST(PendingBatcherTest, IdleOneSecondAtMostTen) {
  PendingBatcher batcher;
  EXPECT_FALSE(batcher.DueAt().has_value());
  batcher.Observe({"ml/a"}, kT0);
  EXPECT_FALSE(batcher.Due(kT0 + milliseconds(999)));
  EXPECT_TRUE(batcher.Due(kT0 + seconds(1)));
  // A new pod restarts the idle timer...
  batcher.Observe({"ml/a", "ml/b"}, kT0 + milliseconds(900));
  EXPECT_FALSE(batcher.Due(kT0 + seconds(1)));
  EXPECT_EQ(*batcher.DueAt(), kT0 + milliseconds(1900));
  // ...but not past 10 s from the first.
  std::vector<std::string> keys = {"ml/a", "ml/b"};
  for (int i = 2; i <= 12; ++i) {
    keys.push_back("ml/p" + std::to_string(i));
    batcher.Observe(keys, kT0 + milliseconds(900) * i);
  }
  EXPECT_EQ(*batcher.DueAt(), kT0 + seconds(10));
  EXPECT_TRUE(batcher.Due(kT0 + seconds(10)));
  // Planned: the same pods do not start a new batch; a new one does.
  batcher.Flush();
  batcher.Observe(keys, kT0 + seconds(11));
  EXPECT_FALSE(batcher.DueAt().has_value());
  keys.push_back("ml/late");
  batcher.Observe(keys, kT0 + seconds(12));
  EXPECT_EQ(*batcher.DueAt(), kT0 + seconds(13));
  // Every pod gone: nothing to plan.
  batcher.Observe({}, kT0 + seconds(12));
  EXPECT_FALSE(batcher.DueAt().has_value());
}

// ---- Scale-down ----

NodePoolSpec FourGpuPool() {
  NodePoolSpec pool = T4Pool();
  pool.instance_types[0].gpu_count = 4;
  pool.instance_types[0].cpu_milli = 32000;
  pool.instance_types[0].memory_mib = 131072;
  pool.budgets = {{.nodes = 100, .percent = true}};
  pool.consolidate_after = seconds(30);
  return pool;
}

std::vector<std::string> Names(const PoolScaleDownPlan& plan) {
  std::vector<std::string> out;
  for (const NodeDisruption& d : plan.disrupt)
    out.push_back(d.node);
  return out;
}

TEST(PoolScaleDownTest, EmptyNodesGoAfterConsolidateAfter) {
  NodePoolSpec pool = FourGpuPool();
  pool.policy = ConsolidationPolicy::kWhenEmpty;
  auto plan = PlanPoolScaleDown(
      {.pool = &pool,
       .nodes = {Node("n1", CapacityTier::kOnDemand, kT0),
                 Node("n2", CapacityTier::kOnDemand, kT0 + seconds(20)), Node("n3")},
       .pods = {{.spec = Pod("ml/x", 1000), .node = "n3"}},
       .now = kT0 + seconds(30),
       .now_unix = kFriday10});
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  EXPECT_EQ(Names(*plan), std::vector<std::string>{"n1"});
  EXPECT_EQ(plan->disrupt[0].reason, DisruptionReason::kEmpty);
  // "Never": nothing goes.
  pool.consolidate_after.reset();
  auto never = PlanPoolScaleDown({.pool = &pool,
                                  .nodes = {Node("n1")},
                                  .now = kT0 + std::chrono::hours(100),
                                  .now_unix = kFriday10});
  ASSERT_TRUE(never.ok());
  EXPECT_TRUE(never->disrupt.empty());
}

TEST(PoolScaleDownTest, BudgetBoundsNodesGoingAtOnce) {
  NodePoolSpec pool = FourGpuPool();
  pool.budgets = {{.nodes = 10, .percent = true}};  // ceil(5 × 10%) = 1
  std::vector<PoolNode> nodes;
  for (int i = 0; i < 5; ++i)
    nodes.push_back(Node("n" + std::to_string(i)));
  auto plan = PlanPoolScaleDown(
      {.pool = &pool, .nodes = nodes, .now = kT0 + minutes(1), .now_unix = kFriday10});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->allowed, 1);
  EXPECT_EQ(plan->disrupt.size(), 1u);
  EXPECT_EQ(plan->blocked.size(), 4u);
  EXPECT_EQ(plan->blocked[0].second, "disruption budget");
  // One already draining uses the budget up.
  nodes[0].disrupting = true;
  auto busy = PlanPoolScaleDown(
      {.pool = &pool, .nodes = nodes, .now = kT0 + minutes(1), .now_unix = kFriday10});
  ASSERT_TRUE(busy.ok());
  EXPECT_EQ(busy->allowed, 0);
  EXPECT_TRUE(busy->disrupt.empty());
  // "3": three of five.
  nodes[0].disrupting = false;
  pool.budgets = {{.nodes = 3, .percent = false}};
  auto three = PlanPoolScaleDown(
      {.pool = &pool, .nodes = nodes, .now = kT0 + minutes(1), .now_unix = kFriday10});
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(three->disrupt.size(), 3u);
  // ...but not during the "0" business-hours window.
  pool.budgets.push_back(
      {.nodes = 0, .percent = false, .schedule = "0 9 * * 1-5", .duration_seconds = 8 * 3600});
  auto office = PlanPoolScaleDown(
      {.pool = &pool, .nodes = nodes, .now = kT0 + minutes(1), .now_unix = kFriday10});
  ASSERT_TRUE(office.ok());
  EXPECT_TRUE(office->disrupt.empty());
}

TEST(PoolScaleDownTest, MinNodesStay) {
  NodePoolSpec pool = FourGpuPool();
  pool.min_nodes = 2;
  auto plan = PlanPoolScaleDown({.pool = &pool,
                                 .nodes = {Node("n1"), Node("n2"), Node("n3")},
                                 .now = kT0 + minutes(1),
                                 .now_unix = kFriday10});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->disrupt.size(), 1u);
  ASSERT_EQ(plan->blocked.size(), 2u);
  EXPECT_EQ(plan->blocked[0].second, "minNodes 2");
}

TEST(PoolScaleDownTest, UnderusedNodeGoesWhenItsPodsFitElsewhere) {
  NodePoolSpec pool = FourGpuPool();  // threshold 0.5
  // n1: 1 of 4 GPUs used (0.25); n2: 2 of 4 (0.5, not under the threshold).
  std::vector<PoolPod> pods = {{.spec = Pod("ml/a", 1000), .node = "n1"},
                               {.spec = Pod("ml/b", 1000), .node = "n2"},
                               {.spec = Pod("ml/c", 1000), .node = "n2"}};
  auto plan = PlanPoolScaleDown({.pool = &pool,
                                 .nodes = {Node("n1"), Node("n2")},
                                 .pods = pods,
                                 .now = kT0 + minutes(1),
                                 .now_unix = kFriday10});
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  ASSERT_EQ(Names(*plan), std::vector<std::string>{"n1"});
  EXPECT_EQ(plan->disrupt[0].reason, DisruptionReason::kUnderutilized);
  // Not yet settled: a pod changed 10 s ago.
  auto early = PlanPoolScaleDown(
      {.pool = &pool,
       .nodes = {Node("n1", CapacityTier::kOnDemand, kT0 + seconds(50)), Node("n2")},
       .pods = pods,
       .now = kT0 + minutes(1),
       .now_unix = kFriday10});
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->disrupt.empty());
  // WhenEmpty leaves it alone.
  pool.policy = ConsolidationPolicy::kWhenEmpty;
  auto when_empty = PlanPoolScaleDown({.pool = &pool,
                                       .nodes = {Node("n1"), Node("n2")},
                                       .pods = pods,
                                       .now = kT0 + minutes(1),
                                       .now_unix = kFriday10});
  ASSERT_TRUE(when_empty.ok());
  EXPECT_TRUE(when_empty->disrupt.empty());
}

TEST(PoolScaleDownTest, DoNotDisruptPodBlocksItsNode) {
  NodePoolSpec pool = FourGpuPool();
  std::vector<PoolPod> pods = {{.spec = Pod("ml/a", 1000), .node = "n1", .do_not_disrupt = true},
                               {.spec = Pod("ml/b", 1000), .node = "n2"},
                               {.spec = Pod("ml/c", 1000), .node = "n2"}};
  auto plan = PlanPoolScaleDown({.pool = &pool,
                                 .nodes = {Node("n1"), Node("n2")},
                                 .pods = pods,
                                 .now = kT0 + minutes(1),
                                 .now_unix = kFriday10});
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  EXPECT_TRUE(plan->disrupt.empty());
  ASSERT_EQ(plan->blocked.size(), 1u);
  EXPECT_EQ(plan->blocked[0].first, "n1");
  EXPECT_EQ(plan->blocked[0].second, "do-not-disrupt pod ml/a");
  // The node's own annotation blocks an empty node too.
  PoolNode annotated = Node("n3");
  annotated.do_not_disrupt = true;
  auto node_level = PlanPoolScaleDown(
      {.pool = &pool, .nodes = {annotated}, .now = kT0 + minutes(1), .now_unix = kFriday10});
  ASSERT_TRUE(node_level.ok());
  EXPECT_TRUE(node_level->disrupt.empty());
}

TEST(PoolScaleDownTest, SpotScaleDownDrainsSpotFewestPodsFirstWithinBudget) {
  NodePoolSpec pool = FourGpuPool();
  pool.budgets = {{.nodes = 1, .percent = false}};
  std::vector<PoolPod> pods = {
      {.spec = Pod("ml/a", 1000), .node = "s1"}, {.spec = Pod("ml/b", 1000), .node = "s1"},
      {.spec = Pod("ml/c", 1000), .node = "s2"}, {.spec = Pod("ml/d", 1000), .node = "od"},
      {.spec = Pod("ml/e", 1000), .node = "od"}, {.spec = Pod("ml/f", 1000), .node = "od"}};
  auto plan = PlanPoolScaleDown({.pool = &pool,
                                 .nodes = {Node("s1", CapacityTier::kSpot, kT0 + minutes(1)),
                                           Node("s2", CapacityTier::kSpot, kT0 + minutes(1)),
                                           Node("od", CapacityTier::kOnDemand, kT0 + minutes(1))},
                                 .pods = pods,
                                 .spot_scale_down = true,
                                 .now = kT0 + minutes(1),
                                 .now_unix = kFriday10});
  ASSERT_TRUE(plan.ok()) << plan.error().ToString();
  ASSERT_EQ(Names(*plan), std::vector<std::string>{"s2"});
  EXPECT_EQ(plan->disrupt[0].reason, DisruptionReason::kSpotScaleDown);
  ASSERT_EQ(plan->blocked.size(), 1u);
  EXPECT_EQ(plan->blocked[0].first, "s1");
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
