// Per-second metering (fractional GPUs, idle cost, tiers) and attribution.
#include "cost/metering.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cost/attribution.h"

namespace gpu_autoscaler::cost {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kHour = 3600.0;

// big.8x: 8 A100s, 96 vCPUs, 1152 GiB for 40.32/h, split exactly into
// GPU 24/h (3/h per GPU), CPU 4.8/h (0.05/h per core), memory 11.52/h (0.01/h per GiB).
constexpr char kCatalog[] = R"(
schema_version: 1
currency: USD
default_spot_discount: 0.5
default_reserved_discount: 0.25
default_discount_source: test
default_discount_date: "2024-01-01"
split_weights: {vcpu_hourly: 0.05, memory_gib_hourly: 0.01, source: test, date: "2024-01-01"}
gpu_models:
  - {model: A100-SXM4-40GB, fallback_hourly: 3.0, source: test, date: "2024-01-01"}
families:
  - family: big
    cloud: aws
    region: us-east-1
    gpu_model: A100-SXM4-40GB
    spot_discount: 0.6
    reserved_discount: 0.4
    discount_source: test
    discount_date: "2024-01-01"
    instances:
      - {type: big.8x, gpus: 8, vcpus: 96, memory_gib: 1152, hourly: 40.32, source: t, date: d}
)";

class MeteringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto src = CatalogPricingSource::FromYaml(kCatalog, "test.yaml");
    ASSERT_TRUE(src.ok()) << src.error().ToString();
    pricing_ = std::move(src).value();
  }

  static MeteredNode BigNode(std::string name, CapacityTier tier = CapacityTier::kOnDemand) {
    return {.name = std::move(name),
            .instance_type = "big.8x",
            .tier = tier,
            .gpu_model = "",
            .gpus = 8,
            .cpu_cores = 96,
            .memory_bytes = 1152 * kGiB};
  }
  static MeteredPod Pod(std::string name, std::string node, double gpus, GpuSharing sharing = {},
                        double cpu = 0, double mem_gib = 0) {
    MeteredPod p;
    p.uid = "uid-" + name;
    p.name = name;
    p.ns = "ml";
    p.node = std::move(node);
    p.gpus = gpus;
    p.sharing = std::move(sharing);
    p.cpu_cores = cpu;
    p.memory_bytes = mem_gib * kGiB;
    return p;
  }

  std::unique_ptr<CatalogPricingSource> pricing_;
};

struct ShareCase {
  const char* name;
  double gpus;
  GpuSharing sharing;
  double expected_share;
};

TEST_F(MeteringTest, FractionalGpuSharesAreNotBilledAsWholeGpus) {
  // opencost#3828 bills every shared GPU as a whole GPU; here a 1g.5gb slice
  // costs 1/7 of the GPU, a 4-way time-slice 1/4, an MPS client its threads.
  const ShareCase cases[] = {
      {"exclusive x2", 2, {}, 2.0},
      {"mig 1g.5gb", 1, {.mode = SharingMode::kMig, .mig_profile = "1g.5gb"}, 1.0 / 7},
      {"mig 3g.20gb", 1, {.mode = SharingMode::kMig, .mig_profile = "3g.20gb"}, 3.0 / 7},
      {"mig 2 x 2g.10gb", 2, {.mode = SharingMode::kMig, .mig_profile = "2g.10gb"}, 4.0 / 7},
      {"mig 7g.40gb", 1, {.mode = SharingMode::kMig, .mig_profile = "7g.40gb"}, 1.0},
      {"time-slicing 4", 1, {.mode = SharingMode::kTimeSlicing, .replicas = 4}, 0.25},
      {"mps 30%", 1, {.mode = SharingMode::kMps, .mps_thread_percentage = 30}, 0.30},
      {"mps 1/2 by replicas", 1, {.mode = SharingMode::kMps, .replicas = 2}, 0.5},
      {"mps pct wins",
       1,
       {.mode = SharingMode::kMps, .replicas = 2, .mps_thread_percentage = 25},
       0.25},
      {"no gpu", 0, {}, 0.0},
  };
  for (const ShareCase& c : cases) {
    SCOPED_TRACE(c.name);
    Meter meter(*pricing_);
    std::vector<MeteredNode> nodes = {BigNode("n1")};
    std::vector<MeteredPod> pods = {Pod("p", "n1", c.gpus, c.sharing)};
    InventoryReport report = meter.SetInventory(nodes, pods);
    EXPECT_TRUE(report.bad_pods.empty()) << report.bad_pods[0];
    TickResult tick;
    meter.Tick(100, tick);
    ASSERT_EQ(tick.pods.size(), 1u);
    EXPECT_NEAR(tick.pods[0].gpu_share, c.expected_share, 1e-12);
    EXPECT_NEAR(tick.pods[0].gpu_cost, c.expected_share * 3.0 / kHour, 1e-15);
  }
}

TEST_F(MeteringTest, AllocationUsageAndIdleSumToTheNodePrice) {
  Meter meter(*pricing_);
  std::vector<MeteredNode> nodes = {BigNode("n1")};
  std::vector<MeteredPod> pods = {
      Pod("a", "n1", 2, {}, 8, 64),
      Pod("b", "n1", 1, {.mode = SharingMode::kMig, .mig_profile = "1g.5gb"}),
      Pod("c", "n1", 1, {.mode = SharingMode::kTimeSlicing, .replicas = 4}),
      Pod("cpu-only", "n1", 0, {}, 4, 8),
      Pod("pending", "", 1),
  };
  pods[0].gpu_utilization = 0.5;
  InventoryReport report = meter.SetInventory(nodes, pods);
  EXPECT_TRUE(report.unpriced_nodes.empty());
  TickResult tick;
  meter.Tick(1'700'000'000, tick);
  ASSERT_EQ(tick.pods.size(), 4u);  // the pending pod holds nothing
  EXPECT_EQ(tick.second, 1'700'000'000);

  const PodSecondCost& a = tick.pods[0];
  EXPECT_EQ(a.pod_index, 0u);
  EXPECT_NEAR(a.gpu_cost, 6.0 / kHour, 1e-15);      // 2 GPUs x 3/h
  EXPECT_NEAR(a.cpu_cost, 0.4 / kHour, 1e-15);      // 8 cores x 0.05/h
  EXPECT_NEAR(a.memory_cost, 0.64 / kHour, 1e-15);  // 64 GiB x 0.01/h
  EXPECT_NEAR(a.usage_cost, 3.0 / kHour, 1e-15);    // half of the GPU cost
  EXPECT_NEAR(tick.pods[1].gpu_cost, 3.0 / 7 / kHour, 1e-15);
  EXPECT_EQ(tick.pods[1].usage_cost, 0);  // no metric
  EXPECT_NEAR(tick.pods[2].gpu_cost, 0.75 / kHour, 1e-15);
  const PodSecondCost& cpu_only = tick.pods[3];
  EXPECT_EQ(cpu_only.pod_index, 3u);
  EXPECT_EQ(cpu_only.gpu_cost, 0);
  EXPECT_NEAR(cpu_only.cpu_cost + cpu_only.memory_cost, 0.28 / kHour, 1e-15);

  ASSERT_EQ(tick.nodes.size(), 1u);
  const NodeSecondCost& n = tick.nodes[0];
  const double held_gpus = 2 + 1.0 / 7 + 0.25;
  EXPECT_NEAR(n.idle_gpus, 8 - held_gpus, 1e-12);
  EXPECT_NEAR(n.idle_gpu_cost, (8 - held_gpus) * 3.0 / kHour, 1e-15);
  EXPECT_NEAR(n.idle_cpu_cost, (96 - 12) * 0.05 / kHour, 1e-15);
  EXPECT_NEAR(n.idle_memory_cost, (1152 - 72) * 0.01 / kHour, 1e-15);
  EXPECT_NEAR(n.total_cost, 40.32 / kHour, 1e-15);
  EXPECT_NEAR(tick.allocated_cost + tick.idle_cost, 40.32 / kHour, 1e-14);
  EXPECT_NEAR(tick.idle_cost, n.idle_cost(), 1e-15);

  // Utilisation updates between ticks change only the usage cost.
  meter.SetUtilization(1, 1.0);
  meter.Tick(1'700'000'001, tick);
  EXPECT_NEAR(tick.pods[1].usage_cost, 3.0 / 7 / kHour, 1e-15);
  EXPECT_NEAR(tick.pods[1].gpu_cost, 3.0 / 7 / kHour, 1e-15);
}

TEST_F(MeteringTest, SharedIdleIsSplitByAllocationCost) {
  MeterOptions options;
  options.share_idle = true;
  Meter meter(*pricing_, options);
  std::vector<MeteredNode> nodes = {BigNode("busy"), BigNode("empty")};
  // Pod x costs 1 GPU (3/h), pod y 3 GPUs (9/h): y takes 3/4 of busy's idle.
  std::vector<MeteredPod> pods = {Pod("x", "busy", 1), Pod("y", "busy", 3)};
  meter.SetInventory(nodes, pods);
  TickResult tick;
  meter.Tick(0, tick);
  const double busy_idle = (4 * 3.0 + 4.8 + 11.52) / kHour;  // 4 free GPUs + all CPU + memory
  EXPECT_NEAR(tick.pods[0].idle_share_cost, busy_idle / 4, 1e-15);
  EXPECT_NEAR(tick.pods[1].idle_share_cost, busy_idle * 3 / 4, 1e-15);
  EXPECT_EQ(tick.nodes[0].idle_cost(), 0);                       // all shared out
  EXPECT_NEAR(tick.nodes[1].idle_cost(), 40.32 / kHour, 1e-15);  // no pods to share with
  EXPECT_NEAR(tick.idle_cost, 40.32 / kHour, 1e-14);
  EXPECT_NEAR(tick.allocated_cost, 40.32 / kHour, 1e-14);

  std::vector<CostSample> samples;
  meter.AppendSamples(tick, samples);
  ASSERT_EQ(samples.size(), 3u);  // two pods + the empty node's idle row
  EXPECT_NEAR(samples[1].idle_cost, busy_idle * 3 / 4, 1e-15);
  EXPECT_EQ(samples[2].pod_uid, "idle/empty");
  double total = 0;
  for (const CostSample& s : samples)
    total += s.gpu_cost + s.cpu_cost + s.memory_cost + s.idle_cost;
  EXPECT_NEAR(total, 2 * 40.32 / kHour, 1e-14);
}

// The manager fills one storage batch over many ticks. Reserving exactly one
// more tick's rows on each call reallocated (and moved every earlier row) 240
// times over 240 ticks, quadratic in the batch; geometric growth reallocates
// about log2(240) times.
TEST_F(MeteringTest, AppendSamplesOverManyTicksGrowsGeometrically) {
  Meter meter(*pricing_);
  std::vector<MeteredNode> nodes;
  std::vector<MeteredPod> pods;
  for (int n = 0; n < 10; ++n) {
    const std::string node = "n" + std::to_string(n);
    nodes.push_back(BigNode(node));
    for (int i = 0; i < 10; ++i)
      pods.push_back(Pod(node + "-p" + std::to_string(i), node, i < 4 ? 1 : 0, {}, 1, 1));
  }
  meter.SetInventory(nodes, pods);
  TickResult tick;
  std::vector<CostSample> samples;
  int reallocations = 0;
  for (int64_t second = 0; second < 240; ++second) {
    meter.Tick(second, tick);
    const size_t capacity = samples.capacity();
    meter.AppendSamples(tick, samples);
    if (samples.capacity() != capacity) ++reallocations;
  }
  EXPECT_EQ(samples.size(), 240u * (100 + 10));  // 100 pods and 10 idle rows per tick
  EXPECT_LE(reallocations, 10) << "capacity should double, not grow by one tick";
  EXPECT_EQ(samples.back().pod_uid, "idle/n9");
  EXPECT_EQ(samples.back().second, 239);
}

TEST_F(MeteringTest, PriceFollowsTheTier) {
  Meter meter(*pricing_);
  std::vector<MeteredNode> nodes = {BigNode("od"), BigNode("spot", CapacityTier::kSpot),
                                    BigNode("rsv", CapacityTier::kReserved)};
  std::vector<MeteredPod> pods = {Pod("a", "od", 1), Pod("b", "spot", 1), Pod("c", "rsv", 1)};
  meter.SetInventory(nodes, pods);
  TickResult tick;
  meter.Tick(0, tick);
  EXPECT_NEAR(tick.pods[0].gpu_cost, 3.0 / kHour, 1e-15);
  EXPECT_NEAR(tick.pods[1].gpu_cost, 3.0 * 0.4 / kHour, 1e-15);  // spot discount 0.6
  EXPECT_NEAR(tick.pods[2].gpu_cost, 3.0 * 0.6 / kHour, 1e-15);  // reserved discount 0.4
  std::vector<CostSample> samples;
  meter.AppendSamples(tick, samples, /*include_idle=*/false);
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[1].tier, CapacityTier::kSpot);
  EXPECT_EQ(samples[2].tier, CapacityTier::kReserved);
}

// The run store gets only what changed: everything (complete) first, then
// nothing while nothing changes, the one pod whose utilisation changed, a new
// pod and its node's idle row, and the uid of a pod that went away.
TEST_F(MeteringTest, DiffRunsReportsOnlyWhatChanged) {
  Meter meter(*pricing_);
  std::vector<MeteredNode> nodes = {BigNode("n1"), BigNode("n2")};
  std::vector<MeteredPod> pods = {Pod("a", "n1", 1), Pod("b", "n1", 2), Pod("c", "n2", 1)};
  meter.SetInventory(nodes, pods);
  TickResult tick;
  RunChanges changes;
  meter.Tick(100, tick);
  meter.DiffRuns(tick, changes);
  EXPECT_TRUE(changes.complete);
  ASSERT_EQ(changes.started.size(), 5u);  // three pods, two idle rows
  EXPECT_EQ(changes.started[0].pod_uid, "uid-a");
  EXPECT_EQ(changes.started[0].second, 100);
  EXPECT_EQ(changes.started[3].pod_uid, "idle/n1");
  EXPECT_TRUE(changes.ended.empty());

  changes.Clear();
  meter.Tick(101, tick);
  meter.DiffRuns(tick, changes);
  EXPECT_TRUE(changes.empty());

  meter.SetUtilization(1, 0.5);  // b
  meter.SetUtilization(0, -1);   // a: unchanged (no metric before either)
  meter.Tick(102, tick);
  meter.DiffRuns(tick, changes);
  EXPECT_FALSE(changes.complete);
  ASSERT_EQ(changes.started.size(), 1u);
  EXPECT_EQ(changes.started[0].pod_uid, "uid-b");
  EXPECT_EQ(changes.started[0].gpu_utilization, 0.5);
  EXPECT_NEAR(changes.started[0].usage_cost, changes.started[0].gpu_cost / 2, 1e-18);

  // c leaves n2 (its idle row changes), d arrives on n1 (n1's idle row
  // changes); a and b keep their rows (b its utilisation, now by uid).
  changes.Clear();
  pods = {Pod("d", "n1", 1), Pod("a", "n1", 1), Pod("b", "n1", 2)};
  meter.SetInventory(nodes, pods);
  meter.SetUtilization(2, 0.5);
  meter.Tick(103, tick);
  meter.DiffRuns(tick, changes);
  std::vector<std::string> started;
  for (const CostSample& s : changes.started)
    started.push_back(s.pod_uid);
  EXPECT_EQ(started, (std::vector<std::string>{"uid-d", "idle/n1", "idle/n2"}));
  EXPECT_EQ(changes.ended, std::vector<std::string>{"uid-c"});

  // After a failed write everything is reported again.
  changes.Clear();
  meter.ResetRuns();
  meter.Tick(104, tick);
  meter.DiffRuns(tick, changes);
  EXPECT_TRUE(changes.complete);
  EXPECT_EQ(changes.started.size(), 5u);
}

TEST(TierFromNodeLabels, WellKnownLabels) {
  struct Case {
    std::map<std::string, std::string> labels;
    CapacityTier tier;
  };
  const Case cases[] = {
      {{}, CapacityTier::kOnDemand},
      {{{"karpenter.sh/capacity-type", "spot"}}, CapacityTier::kSpot},
      {{{"karpenter.sh/capacity-type", "on-demand"}}, CapacityTier::kOnDemand},
      {{{"karpenter.sh/capacity-type", "reserved"}}, CapacityTier::kReserved},
      {{{"eks.amazonaws.com/capacityType", "SPOT"}}, CapacityTier::kSpot},
      {{{"eks.amazonaws.com/capacityType", "ON_DEMAND"}}, CapacityTier::kOnDemand},
      {{{"cloud.google.com/gke-spot", "true"}}, CapacityTier::kSpot},
      {{{"cloud.google.com/gke-preemptible", "true"}}, CapacityTier::kSpot},
      {{{"kubernetes.azure.com/scalesetpriority", "spot"}}, CapacityTier::kSpot},
      {{{"gpuautoscaler.io/capacity-tier", "reserved"}}, CapacityTier::kReserved},
      // Our label wins over the provider's (a reserved-instance pool on EKS).
      {{{"gpuautoscaler.io/capacity-tier", "reserved"},
        {"eks.amazonaws.com/capacityType", "ON_DEMAND"}},
       CapacityTier::kReserved},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(TierFromNodeLabels(c.labels), c.tier);
  }
}

TEST(SharingAnnotations, ParsesWhatTheWebhookWrites) {
  auto mig = ParseSharingAnnotations(
      {{"gpuautoscaler.io/mode", "mig"}, {"gpuautoscaler.io/mig-profile", "3g.20gb"}});
  ASSERT_TRUE(mig.ok());
  EXPECT_EQ(mig->mode, SharingMode::kMig);
  EXPECT_EQ(mig->mig_profile, "3g.20gb");
  auto ts = ParseSharingAnnotations(
      {{"gpuautoscaler.io/mode", "timeSlicing"}, {"gpuautoscaler.io/replicas", "4"}});
  ASSERT_TRUE(ts.ok());
  EXPECT_EQ(ts->replicas, 4);
  auto mps = ParseSharingAnnotations(
      {{"gpuautoscaler.io/mode", "mps"}, {"gpuautoscaler.io/mps-thread-percentage", "12.5"}});
  ASSERT_TRUE(mps.ok());
  EXPECT_DOUBLE_EQ(mps->mps_thread_percentage, 12.5);
  auto none = ParseSharingAnnotations({});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->mode, SharingMode::kExclusive);

  EXPECT_THAT(ParseSharingAnnotations({{"gpuautoscaler.io/mode", "magic"}}).error().message(),
              HasSubstr("gpuautoscaler.io/mode"));
  EXPECT_THAT(ParseSharingAnnotations({{"gpuautoscaler.io/replicas", "abc"}}).error().message(),
              HasSubstr("gpuautoscaler.io/replicas"));
  EXPECT_FALSE(ParseSharingAnnotations({{"gpuautoscaler.io/replicas", "0"}}).ok());
  EXPECT_FALSE(ParseSharingAnnotations({{"gpuautoscaler.io/mps-thread-percentage", "150"}}).ok());
  EXPECT_FALSE(ParseSharingAnnotations({{"gpuautoscaler.io/mode", "mig"}}).ok());
}

TEST_F(MeteringTest, UnpricedAndUnknownNodesAreReportedNotChargedZero) {
  Meter meter(*pricing_);
  std::vector<MeteredNode> nodes = {
      BigNode("n1"),
      {.name = "weird", .instance_type = "x9.huge", .gpu_model = "NVIDIA-B9000", .gpus = 2}};
  std::vector<MeteredPod> pods = {
      Pod("ok", "n1", 1), Pod("on-weird", "weird", 1), Pod("ghost", "no-such-node", 1),
      Pod("bad-ts", "n1", 1, {.mode = SharingMode::kTimeSlicing, .replicas = 0})};
  InventoryReport report = meter.SetInventory(nodes, pods);
  ASSERT_EQ(report.unpriced_nodes.size(), 1u);
  EXPECT_EQ(report.unpriced_nodes[0].node, "weird");
  EXPECT_THAT(report.unpriced_nodes[0].why.reason, HasSubstr("NVIDIA-B9000"));
  EXPECT_THAT(report.pods_on_unpriced_nodes, ElementsAre("ml/on-weird"));
  EXPECT_THAT(report.pods_on_unknown_nodes, ElementsAre("ml/ghost"));
  ASSERT_EQ(report.bad_pods.size(), 1u);
  EXPECT_THAT(report.bad_pods[0], HasSubstr("ml/bad-ts: time-slicing without a replica count"));
  TickResult tick;
  meter.Tick(0, tick);
  ASSERT_EQ(tick.pods.size(), 2u);
  EXPECT_EQ(tick.pods[0].pod_index, 0u);
  EXPECT_EQ(tick.pods[1].pod_index, 3u);
  EXPECT_NEAR(tick.pods[1].gpu_cost, 3.0 / kHour, 1e-15);  // charged as exclusive
  EXPECT_EQ(meter.node_count(), 1u);
}

TEST_F(MeteringTest, SamplesCarryAttributionLabels) {
  MeterOptions options;
  options.labels.team = "owner";  // alternative key
  Meter meter(*pricing_, options);
  std::vector<MeteredNode> nodes = {BigNode("n1", CapacityTier::kSpot)};
  MeteredPod p = Pod("trainer", "n1", 1, {.mode = SharingMode::kMig, .mig_profile = "1g.5gb"});
  p.labels = {{"owner", "vision"},
              {"project", "detector"},
              {"experiment-id", "exp-7"},
              {"team", "ignored"}};
  p.gpu_utilization = 0.25;
  std::vector<MeteredPod> pods = {p};
  meter.SetInventory(nodes, pods);
  TickResult tick;
  meter.Tick(42, tick);
  std::vector<CostSample> samples;
  meter.AppendSamples(tick, samples);
  ASSERT_EQ(samples.size(), 2u);
  const CostSample& s = samples[0];
  EXPECT_EQ(s.pod_uid, "uid-trainer");
  EXPECT_EQ(s.pod_name, "trainer");
  EXPECT_EQ(s.ns, "ml");
  EXPECT_EQ(s.team, "vision");
  EXPECT_EQ(s.project, "detector");
  EXPECT_EQ(s.experiment, "exp-7");
  EXPECT_EQ(s.node, "n1");
  EXPECT_EQ(s.gpu_model, "A100-SXM4-40GB");
  EXPECT_EQ(s.tier, CapacityTier::kSpot);
  EXPECT_EQ(s.second, 42);
  EXPECT_NEAR(s.gpu_share, 1.0 / 7, 1e-12);
  EXPECT_NEAR(s.gpu_cost, 1.2 / 7 / kHour, 1e-15);
  EXPECT_NEAR(s.usage_cost, 0.25 * 1.2 / 7 / kHour, 1e-15);
  EXPECT_DOUBLE_EQ(s.gpu_utilization, 0.25);
  EXPECT_FALSE(s.idle);
  const CostSample& idle = samples[1];
  EXPECT_TRUE(idle.idle);
  EXPECT_EQ(idle.pod_uid, "idle/n1");
  EXPECT_EQ(idle.ns, "");
  EXPECT_NEAR(idle.gpu_share, 8 - 1.0 / 7, 1e-12);
}

TEST(MigSliceFraction, UsesTheGpuCatalogue) {
  EXPECT_NEAR(MigSliceFraction("NVIDIA-A100-SXM4-40GB", "2g.10gb").value(), 2.0 / 7, 1e-12);
  EXPECT_NEAR(MigSliceFraction("NVIDIA-H100-80GB-HBM3", "1g.10gb").value(), 1.0 / 7, 1e-12);
  EXPECT_FALSE(MigSliceFraction("Tesla-T4", "1g.5gb").ok());
  EXPECT_FALSE(MigSliceFraction("NVIDIA-A100-SXM4-40GB", "9g.99gb").ok());
}

// ---- Attribution ----

CostSample Sample(std::string ns, std::string team, int64_t second, double gpu_cost) {
  CostSample s;
  s.pod_uid = "uid-" + ns + "-" + team;
  s.pod_name = "pod-" + team;
  s.ns = std::move(ns);
  s.team = std::move(team);
  s.node = "n1";
  s.gpu_model = "A100-SXM4-40GB";
  s.second = second;
  s.gpu_share = 0.5;
  s.gpu_cost = gpu_cost;
  s.cpu_cost = 0.1;
  return s;
}

TEST(Attribution, GroupsByNamespaceAndTeamOverAWindow) {
  std::vector<CostSample> samples = {
      Sample("ml", "vision", 100, 1.0),  Sample("ml", "vision", 101, 1.0),
      Sample("ml", "", 100, 2.0),        Sample("web", "infra", 100, 0.5),
      Sample("web", "infra", 200, 50.0),  // outside the window
  };
  CostSample idle;
  idle.pod_uid = "idle/n1";
  idle.node = "n1";
  idle.second = 100;
  idle.gpu_cost = 4.0;
  idle.gpu_share = 2;
  idle.idle = true;
  samples.push_back(idle);

  CostAggregator by_ns(GroupBy::kNamespace, {.from = 100, .until = 200});
  by_ns.Add(samples);
  std::vector<AttributionRow> rows = by_ns.Rows();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].key, "ml");  // 1.1 + 1.1 + 2.1 = 4.3
  EXPECT_NEAR(rows[0].total(), 4.3, 1e-12);
  EXPECT_EQ(rows[0].samples, 3);
  EXPECT_NEAR(rows[0].gpu_seconds, 1.5, 1e-12);
  EXPECT_EQ(rows[1].key, "<idle>");
  EXPECT_NEAR(rows[1].total(), 4.0, 1e-12);
  EXPECT_EQ(rows[2].key, "web");
  EXPECT_NEAR(rows[2].total(), 0.6, 1e-12);
  EXPECT_NEAR(by_ns.Total().total(), 8.9, 1e-12);

  CostAggregator by_team(GroupBy::kTeam, {.from = 100, .until = 200});
  by_team.Add(samples);
  rows = by_team.Rows();
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].key, "<idle>");
  EXPECT_EQ(rows[1].key, "vision");
  EXPECT_NEAR(rows[1].total(), 2.2, 1e-12);
  EXPECT_EQ(rows[2].key, "<unlabelled>");
  EXPECT_NEAR(rows[2].total(), 2.1, 1e-12);
  EXPECT_EQ(rows[3].key, "infra");

  // Idle capacity has a real node, model and tier.
  CostAggregator by_node(GroupBy::kNode);
  by_node.Add(samples);
  rows = by_node.Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].key, "n1");
  EXPECT_NEAR(rows[0].total(), 4.3 + 0.6 + 50.1 + 4.0, 1e-12);

  CostAggregator by_pod(GroupBy::kPod, {.from = 100, .until = 101});
  by_pod.Add(samples);
  rows = by_pod.Rows();
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].key, "<idle>");
  EXPECT_EQ(rows[1].key, "ml/pod-");
  EXPECT_EQ(rows[2].key, "ml/pod-vision");
}

TEST(Attribution, GroupsByModelAndTier) {
  std::vector<CostSample> samples = {Sample("a", "t", 1, 1.0), Sample("b", "t", 1, 2.0)};
  samples[1].tier = CapacityTier::kSpot;
  samples[1].gpu_model = "";
  CostAggregator by_tier(GroupBy::kTier);
  by_tier.Add(samples);
  auto rows = by_tier.Rows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].key, "spot");
  EXPECT_EQ(rows[1].key, "on-demand");
  CostAggregator by_model(GroupBy::kGpuModel);
  by_model.Add(samples);
  rows = by_model.Rows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].key, "<no gpu>");
  EXPECT_EQ(rows[1].key, "A100-SXM4-40GB");
}

TEST(Attribution, ParsesGroupByNames) {
  for (GroupBy by : {GroupBy::kNamespace, GroupBy::kTeam, GroupBy::kProject, GroupBy::kExperiment,
                     GroupBy::kPod, GroupBy::kNode, GroupBy::kGpuModel, GroupBy::kTier}) {
    EXPECT_EQ(ParseGroupBy(GroupByName(by)).value(), by);
  }
  auto bad = ParseGroupBy("colour");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), HasSubstr("colour"));
}

}  // namespace
}  // namespace gpu_autoscaler::cost
