#include "autoscale/node_pool_decide.h"

#include <gtest/gtest.h>

namespace gpu_autoscaler::autoscale {
namespace {

using std::chrono::seconds;

constexpr int kSpot = TierIndex(CapacityTier::kSpot);
constexpr int kOnDemand = TierIndex(CapacityTier::kOnDemand);
const Clock::TimePoint kT0 = Clock::TimePoint(std::chrono::hours(1000));

// One T4 per node; spot 0.20/h (group 0, "t4-spot"), on-demand 0.50/h (group 1, "t4-od").
NodePoolSpec T4Pool() {
  NodePoolSpec pool;
  pool.name = "t4";
  PoolInstanceType it{
      .name = "g4.t4x1", .gpu_model = "T4", .gpu_count = 1, .cpu_milli = 8000, .memory_mib = 32768};
  it.price[kSpot] = 0.20;
  it.price[kOnDemand] = 0.50;
  pool.instance_types.push_back(it);
  pool.max_nodes = 10;
  pool.tiers[kSpot].enabled = true;
  pool.tiers[kOnDemand].enabled = true;
  return pool;
}

PodSpec Gpu(std::string name, int milli) {
  PodSpec pod;
  pod.name = std::move(name);
  pod.cpu_milli = 500;
  pod.memory_mib = 1024;
  pod.num_gpu = 1;
  pod.gpu_milli = milli;
  return pod;
}

PoolSnapshot Base(const NodePoolSpec* pool) {
  PoolSnapshot s{.pool = pool};
  s.groups = {{.instance_type = 0, .tier = CapacityTier::kSpot, .group = "t4-spot"},
              {.instance_type = 0, .tier = CapacityTier::kOnDemand, .group = "t4-od"}};
  return s;
}

// A registered node `name` in group `group` (0 spot, 1 on-demand), its instance "i-<name>".
void AddNode(PoolSnapshot* s, const std::string& name, int group,
             void (*edit)(NodeObservation*) = nullptr) {
  NodeObservation n{.name = name, .group = group, .instance_id = "i-" + name};
  if (edit != nullptr) edit(&n);
  s->groups[group].desired += 1;
  s->groups[group].instance_ids.push_back(n.instance_id);
  s->nodes.push_back(std::move(n));
}

void AddPod(PoolSnapshot* s, const std::string& key, const std::string& node, int milli = 1000,
            bool do_not_disrupt = false, bool terminating = false) {
  s->pods.push_back({.key = key,
                     .node = node,
                     .demand = Gpu(key, milli),
                     .do_not_disrupt = do_not_disrupt,
                     .terminating = terminating});
}

void AddPending(PoolSnapshot* s, int n, int milli) {
  for (int i = 0; i < n; ++i) {
    const std::string key = "ml/p" + std::to_string(i);
    s->pending.push_back({key, Gpu(key, milli)});
  }
}

std::string Describe(const PoolSnapshot& s, const PoolPlan& p) {
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : " ") + part; };
  for (const GroupShortage& x : p.shortages)
    add("shortage:" + s.groups[x.group].group + "->" + std::to_string(x.shrink_to));
  for (const InterruptionReplacement& x : p.interruptions)
    add("interrupted:" + x.node + "/" + std::to_string(x.pods) + "pods");
  for (const GroupIncrease& x : p.increases)
    add(s.groups[x.group].group + "+" + std::to_string(x.count));
  for (const PodEviction& x : p.evictions)
    add("evict:" + x.key);
  for (const InstanceTermination& x : p.terminations)
    add("terminate:" + x.node + (x.interrupted ? "(interrupted)" : ""));
  for (const NodeCordon& x : p.cordons)
    add("cordon:" + x.node + ":" + x.why);
  return out.empty() ? "-" : out;
}

struct Row {
  std::string name;
  void (*build)(PoolSnapshot*);
  seconds primed;  // an identical pass this long before (0: none): the batch window is over
  std::string want;
  seconds requeue;
};

TEST(DecidePoolTest, Table) {
  const Row rows[] = {
      {"idle", [](PoolSnapshot*) {}, seconds(0), "-", seconds(15)},
      {"pending pods wait for the batching window", [](PoolSnapshot* s) { AddPending(s, 8, 250); },
       seconds(0), "-", seconds(1)},
      // Sharing-aware: 8 quarter-GPU pods need 2 T4s; spot is cheaper.
      {"the window closed: scale up", [](PoolSnapshot* s) { AddPending(s, 8, 250); }, seconds(5),
       "t4-spot+2", seconds(1)},
      // Late shortages: a resize the cloud could not launch is looked at again in 1 s.
      {"launching instances are polled soon", [](PoolSnapshot* s) { s->groups[0].desired = 2; },
       seconds(0), "-", seconds(1)},
      {"a shortage after the resize shrinks the group and falls back",
       [](PoolSnapshot* s) {
         s->groups[0].desired = 2;
         s->groups[0].launch_shortage = "InsufficientInstanceCapacity";
         AddPending(s, 2, 1000);
       },
       seconds(5), "shortage:t4-spot->0 t4-od+2", seconds(1)},
      // The shortage is found after the batch was planned: its pods are
      // planned again in the same pass, not at the next resync.
      {"a shortage replans at once",
       [](PoolSnapshot* s) {
         s->groups[0].desired = 2;
         s->groups[0].launch_shortage = "InsufficientInstanceCapacity";
         AddPending(s, 2, 1000);
       },
       seconds(0), "shortage:t4-spot->0 t4-od+2", seconds(1)},
      // The interrupted spot node's pod needs a GPU elsewhere at once (no
      // batching window), spot is marked unavailable so on-demand replaces it,
      // and the node agent, not the controller, evicts.
      {"an interruption orders replacement capacity at once",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 0, [](NodeObservation* n) { n->interrupted = true; });
         AddPod(s, "ml/train", "n1");
       },
       seconds(0), "interrupted:n1/1pods t4-od+1", seconds(1)},
      {"an interrupted node whose pods are gone is terminated",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 0, [](NodeObservation* n) { n->interrupted = true; });
       },
       seconds(0), "interrupted:n1/0pods terminate:n1(interrupted)", seconds(1)},
      // An evicted pod's replacement is pending on its own; not counted twice.
      {"an evicted pod on an interrupted node is not replaced twice",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 0, [](NodeObservation* n) { n->interrupted = true; });
         AddPod(s, "ml/train", "n1", 1000, false, /*terminating=*/true);
       },
       seconds(0), "interrupted:n1/0pods", seconds(1)},
      {"draining: evict what may go, wait for the rest",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 1, [](NodeObservation* n) { n->disrupting = true; });
         AddPod(s, "ml/a", "n1");
         AddPod(s, "ml/keep", "n1", 1000, /*do_not_disrupt=*/true);
         AddPod(s, "ml/going", "n1", 1000, false, /*terminating=*/true);
       },
       seconds(0), "evict:ml/a", seconds(1)},
      {"drained: terminate",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 1, [](NodeObservation* n) { n->disrupting = true; });
       },
       seconds(0), "terminate:n1", seconds(1)},
      {"an empty node goes after consolidateAfter", [](PoolSnapshot* s) { AddNode(s, "n1", 1); },
       seconds(60), "cordon:n1:Empty", seconds(1)},
      {"an empty node waits for consolidateAfter", [](PoolSnapshot* s) { AddNode(s, "n1", 1); },
       seconds(20), "-", seconds(10)},
      {"the node's do-not-disrupt annotation keeps it",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 1, [](NodeObservation* n) { n->do_not_disrupt = true; });
       },
       seconds(60), "-", seconds(15)},
      // 2 nodes at 10%: one disruption. The interrupted node does not use it up.
      {"an interrupted node is left out of consolidation",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 0, [](NodeObservation* n) { n->interrupted = true; });
         AddNode(s, "n2", 1);
       },
       seconds(60), "terminate:n1(interrupted) cordon:n2:Empty", seconds(1)},
      {"pending pods hold consolidation; they fit on the empty node",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 1);
         AddPending(s, 1, 1000);
       },
       seconds(60), "-", seconds(15)},
      // A forecast's floor: the cheapest offering grows to it, and an empty
      // node inside it stays.
      {"the floor grows the pool",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 1);
         s->floor_nodes = 3;
       },
       seconds(60), "t4-spot+2", seconds(1)},
      {"the floor keeps empty nodes",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 1);
         s->floor_nodes = 1;
       },
       seconds(60), "-", seconds(15)},
      {"a Budget asking scaleDownSpot cordons busy spot nodes",
       [](PoolSnapshot* s) {
         AddNode(s, "n1", 0);
         AddPod(s, "ml/a", "n1");
         s->spot_scale_down_budgets = {"finance/ml"};
       },
       seconds(5), "cordon:n1:SpotScaleDown (finance/ml)", seconds(1)},
  };
  const NodePoolSpec pool = T4Pool();
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    PoolSnapshot s = Base(&pool);
    row.build(&s);
    PoolMemory memory;
    if (row.primed.count() > 0) {
      PoolSnapshot before = s;
      before.now = kT0 - row.primed;
      ASSERT_TRUE(DecidePool(before, &memory).ok());
    }
    s.now = kT0;
    auto plan = DecidePool(s, &memory);
    ASSERT_TRUE(plan.ok()) << plan.error().ToString();
    EXPECT_EQ(Describe(s, *plan), row.want);
    EXPECT_EQ(RequeueAfter(*plan, !plan->increases.empty(),
                           plan->draining + static_cast<int>(plan->cordons.size()), kT0, {}),
              row.requeue);
  }
}

TEST(DecidePoolTest, AnInterruptionIsAnsweredOnceAndMarksItsOffering) {
  const NodePoolSpec pool = T4Pool();
  PoolSnapshot s = Base(&pool);
  AddNode(&s, "n1", 0, [](NodeObservation* n) {
    n->interrupted = true;
    n->interruption_notice = "SpotInterruption 2026-12-05T03:00:00Z";
  });
  AddPod(&s, "ml/a", "n1", 500);
  AddPod(&s, "ml/b", "n1", 250);
  s.now = kT0;
  PoolMemory memory;
  auto first = DecidePool(s, &memory);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->interruptions.size(), 1u);
  EXPECT_EQ(first->interruptions[0].pods, 2);
  EXPECT_DOUBLE_EQ(first->interruptions[0].gpus, 0.75);
  EXPECT_EQ(first->interruptions[0].notice, "SpotInterruption 2026-12-05T03:00:00Z");
  EXPECT_EQ(first->replacing, 2);
  EXPECT_TRUE(memory.unavailable.Unavailable("g4.t4x1", CapacityTier::kSpot, kT0));
  EXPECT_EQ(Describe(s, *first), "interrupted:n1/2pods t4-od+1");

  // The controller carried the increase out; the next pass neither answers
  // the notice again nor orders more.
  s.groups[1].desired = 1;
  s.now = kT0 + seconds(1);
  auto second = DecidePool(s, &memory);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(Describe(s, *second), "-");
  EXPECT_EQ(second->launching, 1);

  // The node is gone: forgotten, so a node of the same name is answered anew.
  s.nodes.clear();
  s.pods.clear();
  ASSERT_TRUE(DecidePool(s, &memory).ok());
  EXPECT_TRUE(memory.interrupted.empty());
}

// The resync replans pods a plan already saw; the first pod of a burst
// after a quiet spell still waits for its batching window (Karpenter's).
TEST(DecidePoolTest, ABurstAfterAQuietSpellIsBatched) {
  const NodePoolSpec pool = T4Pool();
  PoolSnapshot s = Base(&pool);
  AddPending(&s, 1, 1000);
  PoolMemory memory;
  memory.last_plan = kT0 - std::chrono::minutes(5);
  s.now = kT0;
  auto first = DecidePool(s, &memory);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->scale_up_planned);
  EXPECT_EQ(first->wake, kT0 + seconds(1));
  AddPending(&s, 3, 1000);  // the burst goes on: ml/p1..p3
  s.now = kT0 + std::chrono::milliseconds(500);
  ASSERT_FALSE(DecidePool(s, &memory)->scale_up_planned);
  s.now = kT0 + std::chrono::milliseconds(1500);
  auto batch = DecidePool(s, &memory);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(Describe(s, *batch), "t4-spot+4");
  // Still waiting 15 s later (the nodes were never asked for): planned again.
  s.groups[0].desired = 0;
  s.now = kT0 + seconds(17);
  auto again = DecidePool(s, &memory);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->scale_up_planned);
}

TEST(DecidePoolTest, ReplanAfterACapacityErrorCountsWhatSucceeded) {
  const NodePoolSpec pool = T4Pool();
  PoolSnapshot s = Base(&pool);
  AddPending(&s, 3, 1000);
  PoolMemory memory;
  // Spot refused at SetDesiredSize: the controller marks it and replans.
  memory.unavailable.Mark("g4.t4x1", CapacityTier::kSpot, kT0);
  s.now = kT0;
  auto up = DecideScaleUp(s, memory);
  ASSERT_TRUE(up.ok());
  ASSERT_EQ(IncreasesOnGroups(s, *up).size(), 1u);
  EXPECT_EQ(IncreasesOnGroups(s, *up)[0].group, 1);
  EXPECT_EQ(IncreasesOnGroups(s, *up)[0].count, 3);
  // One on-demand node was taken: two remain to order.
  s.groups[1].desired = 1;
  up = DecideScaleUp(s, memory);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(IncreasesOnGroups(s, *up)[0].count, 2);
}

TEST(DecidePoolTest, TotalsCountNodesDesiredAndCost) {
  const NodePoolSpec pool = T4Pool();
  PoolSnapshot s = Base(&pool);
  AddNode(&s, "n1", 0);
  AddNode(&s, "n2", 1);
  s.groups[1].desired = 3;
  const PoolTotals t = TotalsOf(s);
  EXPECT_EQ(t.registered, 2);
  EXPECT_EQ(t.nodes[kSpot], 1);
  EXPECT_EQ(t.desired[kOnDemand], 3);
  EXPECT_EQ(t.desired_total, 4);
  EXPECT_DOUBLE_EQ(t.hourly, 0.70);
}

TEST(DecidePoolTest, RejectsInconsistentInput) {
  const NodePoolSpec pool = T4Pool();
  PoolSnapshot s = Base(&pool);
  s.nodes.push_back({.name = "stray", .group = 7});
  PoolMemory memory;
  EXPECT_FALSE(DecidePool(s, &memory).ok());
  EXPECT_FALSE(DecidePool(PoolSnapshot{}, &memory).ok());
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale

namespace gpu_autoscaler::autoscale {
namespace {

// The floor stays within the scale-up's limits: the cost ceiling (0.70/h with
// one 0.20 spot node leaves room for floor(0.50 / 0.20) = 2 more) and the
// tier's maxNodes (spot 2 with one spot node: 1 more).
TEST(DecidePoolTest, FloorStaysWithinCostCeilingAndTierMax) {
  NodePoolSpec pool = T4Pool();
  pool.cost_per_hour_ceiling = 0.70;
  PoolSnapshot s = Base(&pool);
  AddNode(&s, "n1", 0);
  s.floor_nodes = 6;
  s.now = kT0;
  PoolMemory memory;
  auto plan = DecidePool(s, &memory);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Describe(s, *plan), "t4-spot+2");
  EXPECT_EQ(plan->floor_added, 2);

  NodePoolSpec capped = T4Pool();
  capped.tiers[kSpot].max_nodes = 2;
  PoolSnapshot c = Base(&capped);
  AddNode(&c, "n1", 0);
  c.floor_nodes = 4;
  c.now = kT0;
  PoolMemory memory2;
  plan = DecidePool(c, &memory2);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Describe(c, *plan), "t4-spot+1");
  // Next pass the spot tier is full (n1 and the one asked for): on-demand
  // takes the other 2.
  c.groups[0].desired += 1;
  plan = DecidePool(c, &memory2);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Describe(c, *plan), "t4-od+2");
  EXPECT_EQ(plan->floor_added, 2);
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
