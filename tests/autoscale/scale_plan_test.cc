#include "autoscale/scale_plan.h"

#include <gtest/gtest.h>

#include <set>

#include "autoscale/random.h"

namespace gpu_autoscaler::autoscale {
namespace {

constexpr int kSpot = TierIndex(CapacityTier::kSpot);
constexpr int kReserved = TierIndex(CapacityTier::kReserved);
constexpr int kOnDemand = TierIndex(CapacityTier::kOnDemand);

NodeSpec Spec(std::string name, int gpus, std::string model = "T4", int64_t cpu = 64000,
              int64_t memory = 262144, int max_pods = kDefaultMaxPods) {
  NodeSpec n;
  n.name = std::move(name);
  n.cpu_milli = cpu;
  n.memory_mib = memory;
  n.max_pods = max_pods;
  n.gpu_model = std::move(model);
  n.gpu_count = gpus;
  return n;
}

Offering Offer(std::string type, int gpus, double spot_price, std::string model = "T4") {
  Offering o;
  o.instance_type = std::move(type);
  o.gpu_model = std::move(model);
  o.gpu_count = gpus;
  o.cpu_milli = 16000 * gpus;
  o.memory_mib = 65536 * gpus;
  o.tiers[kSpot].price_per_hour = spot_price;
  return o;
}

PodSpec Pod(int num_gpu, int gpu_milli = 1000, std::vector<std::string> models = {}) {
  PodSpec p;
  p.name = "p";
  p.cpu_milli = 1000;
  p.memory_mib = 1024;
  p.num_gpu = num_gpu;
  p.gpu_milli = gpu_milli;
  p.gpu_models = std::move(models);
  return p;
}

std::vector<PodSpec> Pods(int n, const PodSpec& pod) {
  return std::vector<PodSpec>(n, pod);
}

ScaleUpPlan Plan(const std::vector<PodSpec>& pods, const std::vector<Offering>& offerings,
                 ScaleUpOptions options = {}, const ClusterState& existing = {}) {
  Result<ScaleUpPlan> plan = PlanScaleUp(existing, pods, offerings, options);
  EXPECT_TRUE(plan.ok()) << plan.error().ToString();
  return plan.ok() ? *plan : ScaleUpPlan{};
}

// Replays a plan on a fresh cluster: every assignment must be a valid placement.
void ExpectFeasible(const ScaleUpPlan& plan, const std::vector<PodSpec>& pods,
                    const std::vector<Offering>& offerings, const ClusterState& existing = {}) {
  ClusterState fresh;
  for (const NewNode& n : plan.new_nodes) {
    const Offering& o = offerings[n.offering];
    ASSERT_TRUE(n.tier == CapacityTier::kReserved || n.tier == CapacityTier::kSpot ||
                n.tier == CapacityTier::kOnDemand);
    ASSERT_TRUE(o.tiers[TierIndex(n.tier)].price_per_hour.has_value());
    ASSERT_TRUE(
        fresh.AddNode(Spec(n.name, o.gpu_count, o.gpu_model, o.cpu_milli, o.memory_mib, o.max_pods))
            .ok());
  }
  ClusterState old = existing;
  std::set<int> seen;
  for (const PodAssignment& a : plan.assignments) {
    EXPECT_TRUE(seen.insert(a.pod).second);
    ClusterState& c = a.new_node ? fresh : old;
    const PodRequest req = c.Resolve(pods[a.pod]);
    EXPECT_TRUE(c.Place(req, {a.node, a.gpus}).ok()) << "pod " << a.pod;
  }
  for (const UnplacedPod& u : plan.unplaced)
    EXPECT_TRUE(seen.insert(u.pod).second);
  EXPECT_EQ(seen.size(), pods.size());
}

int CountType(const ScaleUpPlan& plan, const std::vector<Offering>& offerings,
              const std::string& type) {
  int n = 0;
  for (const NewNode& node : plan.new_nodes)
    n += offerings[node.offering].instance_type == type;
  return n;
}

TEST(ScaleUpTest, HandCheckedOptimalSmallCases) {
  const std::vector<Offering> offers = {Offer("g1", 1, 1.0), Offer("g4", 4, 3.0)};
  {
    const auto pods = Pods(4, Pod(1));
    const ScaleUpPlan plan = Plan(pods, offers);
    ExpectFeasible(plan, pods, offers);
    ASSERT_EQ(plan.new_nodes.size(), 1u);
    EXPECT_EQ(CountType(plan, offers, "g4"), 1);
    EXPECT_DOUBLE_EQ(plan.hourly_cost, 3.0);
  }
  {
    const auto pods = Pods(5, Pod(1));  // optimum: g4 + g1
    const ScaleUpPlan plan = Plan(pods, offers);
    ExpectFeasible(plan, pods, offers);
    EXPECT_DOUBLE_EQ(plan.hourly_cost, 4.0);
    EXPECT_EQ(CountType(plan, offers, "g4"), 1);
    EXPECT_EQ(CountType(plan, offers, "g1"), 1);
  }
  {
    std::vector<PodSpec> pods = Pods(2, Pod(2));  // two 2-GPU pods: one g4
    const ScaleUpPlan plan = Plan(pods, offers);
    ExpectFeasible(plan, pods, offers);
    EXPECT_DOUBLE_EQ(plan.hourly_cost, 3.0);
  }
  EXPECT_TRUE(Plan({}, offers).new_nodes.empty());
}

TEST(ScaleUpTest, RespectsPoolMaxNodes) {
  std::vector<Offering> offers = {Offer("g1", 1, 1.0), Offer("g4", 4, 3.0)};
  offers[1].max_nodes = 1;
  const auto pods = Pods(8, Pod(1));
  const ScaleUpPlan plan = Plan(pods, offers);
  ExpectFeasible(plan, pods, offers);
  EXPECT_EQ(CountType(plan, offers, "g4"), 1);
  EXPECT_EQ(CountType(plan, offers, "g1"), 4);
  EXPECT_DOUBLE_EQ(plan.hourly_cost, 7.0);
  EXPECT_TRUE(plan.unplaced.empty());
}

TEST(ScaleUpTest, RespectsTierAvailabilityAndFallsBackToTheNextTier) {
  Offering g4 = Offer("g4", 4, 2.0);
  g4.tiers[kSpot].max_nodes = 1;
  g4.tiers[kOnDemand].price_per_hour = 3.0;
  const std::vector<Offering> offers = {g4};
  const auto pods = Pods(8, Pod(1));
  const ScaleUpPlan plan = Plan(pods, offers);
  ExpectFeasible(plan, pods, offers);
  ASSERT_EQ(plan.new_nodes.size(), 2u);
  std::multiset<CapacityTier> tiers;
  for (const NewNode& n : plan.new_nodes)
    tiers.insert(n.tier);
  EXPECT_EQ(tiers.count(CapacityTier::kSpot), 1u);
  EXPECT_EQ(tiers.count(CapacityTier::kOnDemand), 1u);
  EXPECT_DOUBLE_EQ(plan.hourly_cost, 5.0);
  // The bound knows spot has one node: 4 GPUs at $0.5, then 4 at $0.75.
  EXPECT_DOUBLE_EQ(plan.lower_bound, 5.0);
  EXPECT_DOUBLE_EQ(plan.gap(), 0.0);
}

TEST(ScaleUpTest, TierPreferenceAndWeights) {
  Offering g1 = Offer("g1", 1, 2.0);
  g1.tiers[kReserved].price_per_hour = 3.0;
  g1.tiers[kOnDemand].price_per_hour = 4.0;
  const auto pods = Pods(1, Pod(1));
  EXPECT_EQ(Plan(pods, {g1}).new_nodes.at(0).tier, CapacityTier::kSpot);

  ScaleUpOptions weighted;
  weighted.tier_weights[kReserved] = 0.5;  // effective 1.5 < 2.0
  const ScaleUpPlan plan = Plan(pods, {g1}, weighted);
  EXPECT_EQ(plan.new_nodes.at(0).tier, CapacityTier::kReserved);
  EXPECT_DOUBLE_EQ(plan.hourly_cost, 3.0);
  EXPECT_DOUBLE_EQ(plan.effective_cost, 1.5);

  g1.tiers[kReserved].price_per_hour = 2.0;  // equal price: reserved first
  EXPECT_EQ(Plan(pods, {g1}).new_nodes.at(0).tier, CapacityTier::kReserved);
  g1.tiers[kReserved].price_per_hour.reset();
  g1.tiers[kSpot].price_per_hour = 4.0;  // equal price: spot before on-demand
  EXPECT_EQ(Plan(pods, {g1}).new_nodes.at(0).tier, CapacityTier::kSpot);
}

TEST(ScaleUpTest, PacksSharedPodsOntoFewGpus) {
  const std::vector<Offering> offers = {Offer("g1", 1, 1.0), Offer("g4", 4, 3.0)};
  const auto pods = Pods(8, Pod(1, 250));  // 2 GPUs worth
  const ScaleUpPlan plan = Plan(pods, offers);
  ExpectFeasible(plan, pods, offers);
  EXPECT_DOUBLE_EQ(plan.hourly_cost, 2.0);
  EXPECT_EQ(CountType(plan, offers, "g1"), 2);
  // Time-slicing with 3 replicas: 333 milli per pod, 3 pods per GPU.
  const auto sliced = Pods(7, Pod(1, kMilliPerGpu / 3));
  const ScaleUpPlan sliced_plan = Plan(sliced, offers);
  ExpectFeasible(sliced_plan, sliced, offers);
  EXPECT_DOUBLE_EQ(sliced_plan.hourly_cost, 3.0);  // 3 GPUs at $1 each, either way
}

TEST(ScaleUpTest, HonoursGpuModelConstraints) {
  const std::vector<Offering> offers = {Offer("t4", 1, 1.0, "T4"), Offer("a100", 1, 4.0, "A100")};
  std::vector<PodSpec> pods = {Pod(1, 1000, {"A100"}), Pod(1), Pod(1, 1000, {"H100"})};
  const ScaleUpPlan plan = Plan(pods, offers);
  ExpectFeasible(plan, pods, offers);
  EXPECT_DOUBLE_EQ(plan.hourly_cost, 5.0);
  EXPECT_EQ(CountType(plan, offers, "a100"), 1);
  // The pinned pod is priced at A100 rates, the free one at T4 rates.
  EXPECT_DOUBLE_EQ(plan.lower_bound, 5.0);
  ASSERT_EQ(plan.unplaced.size(), 1u);
  EXPECT_EQ(plan.unplaced[0].pod, 2);
  EXPECT_EQ(plan.unplaced[0].reason, UnplacedReason::kNoOfferingWithModel);
}

TEST(ScaleUpTest, ExplainsEveryUnplacedPod) {
  std::vector<Offering> offers = {Offer("g4", 4, 3.0)};
  offers[0].max_nodes = 1;
  std::vector<PodSpec> pods = {Pod(8), Pod(4), Pod(4), Pod(1, 1000, {"V100"})};
  const ScaleUpPlan plan = Plan(pods, offers);
  ExpectFeasible(plan, pods, offers);
  ASSERT_EQ(plan.unplaced.size(), 3u);
  EXPECT_EQ(plan.unplaced[0].pod, 0);
  EXPECT_EQ(plan.unplaced[0].reason, UnplacedReason::kExceedsLargestOffering);
  EXPECT_EQ(plan.unplaced[1].pod, 2);
  EXPECT_EQ(plan.unplaced[1].reason, UnplacedReason::kLimitsExhausted);
  EXPECT_EQ(plan.unplaced[2].reason, UnplacedReason::kNoOfferingWithModel);
  EXPECT_EQ(UnplacedReasonName(UnplacedReason::kLimitsExhausted), "pool or tier limits exhausted");
}

TEST(ScaleUpTest, UsesExistingFreeCapacityFirst) {
  ClusterState existing;
  ASSERT_TRUE(existing.AddNode(Spec("old", 2)).ok());
  const std::vector<Offering> offers = {Offer("g1", 1, 1.0)};
  const auto pods = Pods(3, Pod(1));
  const ScaleUpPlan plan = Plan(pods, offers, {}, existing);
  ExpectFeasible(plan, pods, offers, existing);
  EXPECT_EQ(plan.new_nodes.size(), 1u);
  int on_existing = 0;
  for (const PodAssignment& a : plan.assignments)
    on_existing += !a.new_node;
  EXPECT_EQ(on_existing, 2);
  EXPECT_DOUBLE_EQ(plan.lower_bound, 1.0);  // one GPU of new capacity at $1/GPU
}

TEST(ScaleUpTest, RejectsBadInput) {
  const std::vector<Offering> dup = {Offer("g1", 1, 1.0), Offer("g1", 2, 1.0)};
  EXPECT_EQ(PlanScaleUp({}, {}, dup, {}).error().code(), StatusCode::kInvalidArgument);
  ScaleUpOptions zero;
  zero.tier_weights[kSpot] = 0;
  EXPECT_EQ(PlanScaleUp({}, {}, {Offer("g1", 1, 1.0)}, zero).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanScaleUp({}, {}, {Offer("g1", 1, -1.0)}, {}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanScaleUp({}, {}, {Offer("big", kMaxGpusPerNode + 1, 1.0)}, {}).error().code(),
            StatusCode::kInvalidArgument);
}

TEST(ScaleUpTest, BoundNeverExceedsCostAndPlansAreFeasible) {
  Rng rng(2024);
  const std::vector<std::string> models = {"T4", "A100", "H100"};
  for (int round = 0; round < 150; ++round) {
    std::vector<Offering> offers;
    const int n_offers = 1 + static_cast<int>(rng.Below(6));
    for (int i = 0; i < n_offers; ++i) {
      const int gpus = 1 << rng.Below(4);
      Offering o = Offer("o" + std::to_string(i), gpus, 0.5 + rng.Below(100) / 10.0,
                         models[rng.Below(models.size())]);
      o.cpu_milli = 4000 * (1 + static_cast<int64_t>(rng.Below(16)));
      if (rng.Below(2)) o.tiers[kOnDemand].price_per_hour = 1.0 + rng.Below(100) / 5.0;
      if (rng.Below(2)) o.tiers[kReserved].price_per_hour = 0.5 + rng.Below(50) / 10.0;
      if (rng.Below(3) == 0) o.max_nodes = static_cast<int>(rng.Below(4));
      if (rng.Below(3) == 0) o.tiers[kSpot].max_nodes = static_cast<int>(rng.Below(3));
      offers.push_back(o);
    }
    std::vector<PodSpec> pods;
    const int n_pods = static_cast<int>(rng.Below(60));
    for (int i = 0; i < n_pods; ++i) {
      PodSpec p = rng.Below(2) ? Pod(1, 100 * (1 + static_cast<int>(rng.Below(10))))
                               : Pod(1 << rng.Below(4));
      p.cpu_milli = 500 * (1 + static_cast<int64_t>(rng.Below(16)));
      if (rng.Below(4) == 0) p.gpu_models = {models[rng.Below(models.size())]};
      pods.push_back(p);
    }
    ScaleUpOptions options;
    options.tier_weights[kOnDemand] = 1.0 + rng.Below(3) / 2.0;
    // Some rounds start with existing nodes, one of a model no offering has.
    ClusterState existing;
    const std::vector<std::string> existing_models = {"T4", "A100", "V100"};
    for (int i = 0, n = static_cast<int>(rng.Below(3)); i < n; ++i) {
      ASSERT_TRUE(existing
                      .AddNode(Spec("old" + std::to_string(i), 1 + static_cast<int>(rng.Below(4)),
                                    existing_models[rng.Below(existing_models.size())]))
                      .ok());
    }
    if (rng.Below(3) == 0) pods.push_back(Pod(1, 1000, {"V100"}));
    const ScaleUpPlan plan = Plan(pods, offers, options, existing);
    ExpectFeasible(plan, pods, offers, existing);
    EXPECT_LE(plan.lower_bound, plan.effective_cost + 1e-9) << "round " << round;
    options.improve = false;
    const ScaleUpPlan greedy = Plan(pods, offers, options, existing);
    EXPECT_LE(plan.effective_cost, greedy.effective_cost + 1e-9) << "round " << round;
    EXPECT_EQ(plan.assignments.size(), greedy.assignments.size()) << "round " << round;
  }
}

}  // namespace
}  // namespace gpu_autoscaler::autoscale
