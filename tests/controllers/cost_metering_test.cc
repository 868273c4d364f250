// The cost controller's metering loop against a real SQLite store: seconds
// are stored once each, across store outages, restarts and backfills.
#include "controllers/cost_metering.h"

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <nlohmann/json.hpp>

#include "cost/store_factory.h"
#include "kube/object_codec.h"
#include "support/captured_logs.h"
#include "support/child_process.h"

namespace gpu_autoscaler::controllers {
namespace {

using nlohmann::json;

constexpr int64_t kStart = 1'800'000'000;

std::shared_ptr<const kube::NodeView> Node(const std::string& name,
                                           const std::string& instance_type = "p4d.24xlarge",
                                           const std::string& product = "A100-SXM4-40GB") {
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata",
                {{"name", name},
                 {"uid", "uid-" + name},
                 {"labels",
                  {{"node.kubernetes.io/instance-type", instance_type},
                   {"nvidia.com/gpu.product", product}}}}},
               {"status",
                {{"allocatable", {{"cpu", "96"}, {"memory", "1152Gi"}, {"nvidia.com/gpu", "8"}}}}}};
  auto view = kube::DecodeNode(node.dump());
  EXPECT_TRUE(view.ok()) << view.error().ToString();
  return std::make_shared<const kube::NodeView>(std::move(*view));
}

std::shared_ptr<const kube::PodView> Pod(const std::string& name, const std::string& node,
                                         int64_t created, json extra_requests = json::object(),
                                         json annotations = json::object(),
                                         std::string phase = "Running") {
  json requests = {{"cpu", "4"}, {"memory", "16Gi"}, {"nvidia.com/gpu", "1"}};
  if (extra_requests.is_object()) requests.update(extra_requests);
  char created_text[32];
  const time_t t = created;
  std::strftime(created_text, sizeof(created_text), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", name},
                {"namespace", "ml"},
                {"uid", "uid-" + name},
                {"creationTimestamp", created_text},
                {"labels", {{"team", "vision"}}},
                {"annotations", annotations}}},
              {"spec",
               {{"nodeName", node},
                {"containers", {{{"name", "main"}, {"resources", {{"requests", requests}}}}}}}},
              {"status", {{"phase", phase}}}};
  auto view = kube::DecodePod(pod.dump());
  EXPECT_TRUE(view.ok()) << view.error().ToString();
  return std::make_shared<const kube::PodView>(std::move(*view));
}

TEST(MeterInventoryTest, MetersScheduledLivePodsCreatedByTheSecond) {
  std::vector<std::shared_ptr<const kube::NodeView>> nodes = {Node("n1")};
  std::vector<std::shared_ptr<const kube::PodView>> pods = {
      Pod("running", "n1", kStart - 100),
      Pod("pending-unscheduled", "", kStart - 100),
      Pod("done", "n1", kStart - 100, {}, {}, "Succeeded"),
      Pod("later", "n1", kStart + 30),
      Pod("mig", "n1", kStart - 5, {{"nvidia.com/gpu", "0"}, {"nvidia.com/mig-1g.5gb", "2"}},
          {{"gpuautoscaler.io/mode", "mig"}, {"gpuautoscaler.io/mig-profile", "1g.5gb"}}),
      Pod("bad", "n1", kStart - 5, {}, {{"gpuautoscaler.io/mode", "sometimes"}}),
      Pod("sliced", "n1", kStart - 5, {{"nvidia.com/gpu", "0"}, {"nvidia.com/gpu.shared", "1"}},
          {{"gpuautoscaler.io/mode", "timeSlicing"}, {"gpuautoscaler.io/replicas", "4"}}),
  };
  MeterInventory inv = BuildMeterInventory(nodes, pods, kStart);
  ASSERT_EQ(inv.nodes.size(), 1u);
  EXPECT_EQ(inv.nodes[0].gpus, 8);
  EXPECT_DOUBLE_EQ(inv.nodes[0].cpu_cores, 96);
  std::vector<std::string> names;
  for (const auto& p : inv.pods)
    names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"running", "mig", "bad", "sliced"}));
  EXPECT_DOUBLE_EQ(inv.pods[3].gpus, 1);
  EXPECT_EQ(inv.pods[3].sharing.mode, cost::SharingMode::kTimeSlicing);
  EXPECT_EQ(inv.pods[3].sharing.replicas, 4);
  EXPECT_EQ(inv.valid_until, kStart + 30);
  EXPECT_DOUBLE_EQ(inv.pods[1].gpus, 2);
  EXPECT_EQ(inv.pods[1].sharing.mode, cost::SharingMode::kMig);
  EXPECT_EQ(inv.pods[0].labels.at("team"), "vision");
  ASSERT_EQ(inv.bad_annotations.size(), 1u);
  EXPECT_EQ(inv.bad_annotations[0].substr(0, 7), "ml/bad:");
}

TEST(MeterInventoryTest, TimeSlicedNodesCountPhysicalGpusNotReplicas) {
  auto node = [](json allocatable, json labels) {
    json n = {{"apiVersion", "v1"},
              {"kind", "Node"},
              {"metadata", {{"name", "ts"}, {"labels", labels}}},
              {"status", {{"allocatable", allocatable}}}};
    return std::make_shared<const kube::NodeView>(std::move(*kube::DecodeNode(n.dump())));
  };
  std::vector<std::shared_ptr<const kube::NodeView>> nodes = {
      // renameByDefault: replicas as nvidia.com/gpu.shared.
      node({{"cpu", "96"}, {"nvidia.com/gpu.shared", "32"}}, {{"nvidia.com/gpu.replicas", "4"}}),
      // Without it: replicas as nvidia.com/gpu.
      node({{"cpu", "96"}, {"nvidia.com/gpu", "32"}}, {{"nvidia.com/gpu.replicas", "4"}}),
      node({{"cpu", "96"}, {"nvidia.com/gpu", "8"}}, json::object())};
  MeterInventory inv = BuildMeterInventory(nodes, {}, kStart);
  ASSERT_EQ(inv.nodes.size(), 3u);
  EXPECT_EQ(inv.nodes[0].gpus, 8);
  EXPECT_EQ(inv.nodes[1].gpus, 8);
  EXPECT_EQ(inv.nodes[2].gpus, 8);
}

class CostMeteringLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gpa-metering");
    db_ = dir_ + "/cost.db";
    nodes_.Upsert(Node("n1"));
    pods_.Upsert(Pod("a", "n1", kStart - 1000));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<CostMeteringLoop> Loop(int64_t max_backfill = 3600) {
    auto pricing = cost::CatalogPricingSource::Builtin();
    EXPECT_TRUE(pricing.ok());
    return std::make_unique<CostMeteringLoop>(
        nodes_, pods_,
        [this]() -> Result<std::unique_ptr<cost::CostStore>> {
          if (store_down_) return UnavailableError("database is down");
          return cost::OpenCostStore(db_);
        },
        std::shared_ptr<const cost::PricingSource>(std::move(*pricing)), registry_, clock_,
        CostMeteringOptions{.max_backfill_seconds = max_backfill, .chunk_seconds = 7});
  }

  void SetNow(int64_t unix_second) {
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(clock_.WallNow().time_since_epoch())
            .count();
    clock_.Step(std::chrono::seconds(unix_second - now));
  }

  // Stored seconds of a pod and their total cost.
  std::pair<int64_t, double> Stored(const std::string& pod) {
    auto store = cost::OpenCostStore(db_);
    EXPECT_TRUE(store.ok());
    cost::CostQuery q{.window = {kStart - 100'000, kStart + 100'000},
                      .resolution = cost::Resolution::kSecond,
                      .group_by = {cost::Dimension::kPod},
                      .filters = {{cost::Dimension::kPod, "ml/" + pod}}};
    auto report = (*store)->Query(q);
    EXPECT_TRUE(report.ok()) << report.error().ToString();
    int64_t samples = 0;
    double total = 0;
    for (const auto& row : report->rows) {
      if (row.idle) continue;
      samples += row.totals.samples;
      total += row.totals.total_cost();
    }
    return {samples, total};
  }

  std::optional<int64_t> Newest() {
    auto store = cost::OpenCostStore(db_);
    auto newest = (*store)->NewestSecond();
    EXPECT_TRUE(newest.ok());
    return *newest;
  }

  FakeClock clock_{Clock::WallTime(std::chrono::seconds(kStart))};
  prometheus::Registry registry_;
  kube::Store<kube::NodeView> nodes_;
  kube::Store<kube::PodView> pods_;
  std::string dir_, db_;
  bool store_down_ = false;
};

TEST_F(CostMeteringLoopTest, StoresEachCompleteSecondOnce) {
  auto loop = Loop();
  auto stored = loop->RunOnce();
  ASSERT_TRUE(stored.ok()) << stored.error().ToString();
  EXPECT_EQ(*stored, 1);  // an empty history starts at the last complete second
  EXPECT_EQ(Newest(), kStart - 1);
  SetNow(kStart + 20);
  stored = loop->RunOnce();
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, 20);
  EXPECT_EQ(*loop->RunOnce(), 0);  // nothing new in the same second
  auto [samples, total] = Stored("a");
  EXPECT_EQ(samples, 21);
  // p4d.24xlarge: one of 8 GPUs plus 4 of 96 vCPUs and 16 of 1152 GiB, per second.
  const auto per_second = total / 21;
  EXPECT_GT(per_second, 0);
  EXPECT_EQ(Newest(), kStart + 19);
}

// Passes every call to a real store and reads the backlog gauge at each Append.
class BacklogObservingStore : public cost::CostStore {
 public:
  BacklogObservingStore(std::unique_ptr<cost::CostStore> inner, prometheus::Registry& registry,
                        std::vector<double>& seen)
      : inner_(std::move(inner)), registry_(registry), seen_(seen) {}
  Result<cost::AppendStats> Append(std::span<const cost::CostSample> samples) override {
    Observe();
    return inner_->Append(samples);
  }
  Result<cost::AppendStats> AppendRuns(const cost::RunBatch& batch) override {
    Observe();
    return inner_->AppendRuns(batch);
  }
  Result<cost::CostReport> Query(const cost::CostQuery& q) override { return inner_->Query(q); }
  Result<cost::RetentionStats> ApplyRetention(const cost::RetentionPolicy& p,
                                              int64_t now) override {
    return inner_->ApplyRetention(p, now);
  }
  Result<int> SchemaVersion() override { return inner_->SchemaVersion(); }
  Result<std::optional<int64_t>> NewestSecond() override { return inner_->NewestSecond(); }
  std::string_view backend() const override { return inner_->backend(); }

 private:
  void Observe() {
    for (const auto& family : registry_.Collect()) {
      if (family.name == "gpu_autoscaler_cost_backlog_seconds")
        seen_.push_back(family.metric.at(0).gauge.value);
    }
  }

  std::unique_ptr<cost::CostStore> inner_;
  prometheus::Registry& registry_;
  std::vector<double>& seen_;
};

TEST_F(CostMeteringLoopTest, TheBacklogGaugeFollowsACatchUpChunkByChunk) {
  std::vector<double> seen;
  auto pricing = cost::CatalogPricingSource::Builtin();
  ASSERT_TRUE(pricing.ok());
  CostMeteringLoop loop(
      nodes_, pods_,
      [&]() -> Result<std::unique_ptr<cost::CostStore>> {
        auto inner = cost::OpenCostStore(db_);
        if (!inner.ok()) return inner.error();
        return std::unique_ptr<cost::CostStore>(
            std::make_unique<BacklogObservingStore>(std::move(*inner), registry_, seen));
      },
      std::shared_ptr<const cost::PricingSource>(std::move(*pricing)), registry_, clock_,
      CostMeteringOptions{.chunk_seconds = 7});
  ASSERT_TRUE(loop.RunOnce().ok());  // kStart - 1
  seen.clear();
  SetNow(kStart + 20);  // kStart .. kStart+19 to store: chunks of 7, 7 and 6 seconds
  ASSERT_TRUE(loop.RunOnce().ok());
  // Before each chunk is stored, the seconds not yet stored, including it
  // (the gauge used to read 0 throughout a catch-up).
  EXPECT_EQ(seen, (std::vector<double>{20, 13, 6}));
  for (const auto& family : registry_.Collect()) {
    if (family.name == "gpu_autoscaler_cost_backlog_seconds") {
      EXPECT_EQ(family.metric.at(0).gauge.value, 0);
    }
  }
}

TEST_F(CostMeteringLoopTest, AStoreOutageLosesNoSecond) {
  auto loop = Loop();
  ASSERT_TRUE(loop->RunOnce().ok());
  store_down_ = true;
  SetNow(kStart + 10);
  // The open store keeps working until it fails; force a reconnect by failing it.
  auto fresh = Loop();
  auto failed = fresh->RunOnce();
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().ToString().find("database is down"), std::string::npos);
  EXPECT_FALSE(fresh->cursor().has_value());
  SetNow(kStart + 30);
  EXPECT_FALSE(fresh->RunOnce().ok());
  store_down_ = false;
  SetNow(kStart + 40);
  auto stored = fresh->RunOnce();
  ASSERT_TRUE(stored.ok()) << stored.error().ToString();
  EXPECT_EQ(*stored, 40);  // kStart .. kStart+39, after the first loop's kStart-1
  EXPECT_EQ(Stored("a").first, 41);
}

TEST_F(CostMeteringLoopTest, ARestartResumesAfterTheNewestStoredSecond) {
  {
    auto loop = Loop();
    ASSERT_TRUE(loop->RunOnce().ok());
    SetNow(kStart + 5);
    ASSERT_TRUE(loop->RunOnce().ok());
  }                     // the manager dies here
  SetNow(kStart + 65);  // down for a minute
  auto loop = Loop();
  auto stored = loop->RunOnce();
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, 60);
  auto [samples, total] = Stored("a");
  EXPECT_EQ(samples, 66);  // kStart-1 .. kStart+64: no gap, no second twice
  // Re-metering seconds already stored changes nothing (idempotent Append).
  auto again = Loop();
  SetNow(kStart + 66);
  ASSERT_TRUE(again->RunOnce().ok());
  EXPECT_EQ(Stored("a").first, 67);
  (void)total;
}

TEST_F(CostMeteringLoopTest, BackfillIsBoundedAndChargesPodsFromTheirCreation) {
  {
    auto loop = Loop();
    ASSERT_TRUE(loop->RunOnce().ok());
  }
  // While no manager ran, pod b appeared at kStart+250.
  pods_.Upsert(Pod("b", "n1", kStart + 250));
  SetNow(kStart + 300);
  auto loop = Loop(/*max_backfill=*/100);
  auto stored = loop->RunOnce();
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, 100);  // kStart+200 .. kStart+299; the rest is reported lost
  EXPECT_EQ(Stored("a").first, 101);
  EXPECT_EQ(Stored("b").first, 50);  // kStart+250 .. kStart+299
}

// A utilisation source the test sets directly.
class FakeUtilization final : public cost::UtilizationSource {
 public:
  std::string_view name() const override { return "fake"; }
  Result<std::vector<cost::PodGpuUsage>> Fetch() override {
    if (down) return UnavailableError("prometheus at http://127.0.0.1:1: connection refused");
    return usage;
  }
  std::vector<cost::PodGpuUsage> usage;
  bool down = false;
};

TEST_F(CostMeteringLoopTest, UsageCostFollowsUtilisationAndIdleGpusRaiseEvents) {
  FakeUtilization source;
  source.usage = {{.ns = "ml", .pod = "a", .gpu_utilization = 0.02, .gpus = 1, .devices = 1}};
  std::vector<std::pair<std::string, cost::IdleEvent::Kind>> events;
  auto pricing = cost::CatalogPricingSource::Builtin();
  ASSERT_TRUE(pricing.ok());
  CostMeteringLoop loop(
      nodes_, pods_, [this]() { return cost::OpenCostStore(db_); },
      std::shared_ptr<const cost::PricingSource>(std::move(*pricing)), registry_, clock_,
      CostMeteringOptions{
          .utilization = &source,
          .waste = {.threshold = 0.05, .window_seconds = 60},
          .on_idle_event = [&](const std::string& pod, const cost::IdleEvent& e, double hourly) {
            EXPECT_GT(hourly, 0);
            events.emplace_back(pod, e.kind);
          }});
  for (int i = 0; i <= 90; i += 10) {
    SetNow(kStart + i);
    ASSERT_TRUE(loop.RunOnce().ok());
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].first, "ml/a");
  EXPECT_EQ(events[0].second, cost::IdleEvent::Kind::kBecameIdle);
  // Busy again: one more event.
  source.usage[0].gpu_utilization = 0.9;
  SetNow(kStart + 100);
  ASSERT_TRUE(loop.RunOnce().ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].second, cost::IdleEvent::Kind::kBecameBusy);
  // Usage cost is the GPU cost weighted by utilisation.
  auto store = cost::OpenCostStore(db_);
  ASSERT_TRUE(store.ok());
  auto report = (*store)->Query({.window = {kStart + 1, kStart + 90},
                                 .resolution = cost::Resolution::kSecond,
                                 .filters = {{cost::Dimension::kPod, "ml/a"}}});
  ASSERT_TRUE(report.ok());
  ASSERT_FALSE(report->rows.empty());
  const cost::CostTotals& t = report->rows[0].totals;
  EXPECT_NEAR(t.usage_cost, t.gpu_cost * 0.02, t.gpu_cost * 1e-6);
  // A failing source: allocation cost only, no crash.
  source.down = true;
  SetNow(kStart + 110);
  ASSERT_TRUE(loop.RunOnce().ok());
}

TEST_F(CostMeteringLoopTest, UnpricedNodesAreOneWarningPerInstanceTypeNotOnePerNode) {
  for (int i = 0; i < 5; ++i)
    nodes_.Upsert(Node("g2-" + std::to_string(i), "", "G2"));
  nodes_.Upsert(Node("p100", "", "P100"));
  testing::CapturedLogs logs;
  auto loop = Loop();
  ASSERT_TRUE(loop->RunOnce().ok());
  auto warned = logs.Lines("no price");
  ASSERT_EQ(warned.size(), 2u) << ::testing::PrintToString(warned);
  const std::string& g2 = warned[0].find("G2") != std::string::npos ? warned[0] : warned[1];
  const std::string& p100 = &g2 == &warned[0] ? warned[1] : warned[0];
  EXPECT_THAT(g2, ::testing::HasSubstr("nodes have no price; their pods are not charged"));
  EXPECT_THAT(g2, ::testing::HasSubstr("g2-0,g2-1,g2-2 and 2 more"));
  EXPECT_THAT(g2, ::testing::HasSubstr("count=5"));
  EXPECT_THAT(p100, ::testing::HasSubstr("node has no price; its pods are not charged"));
  EXPECT_THAT(p100, ::testing::HasSubstr("nodes=p100"));

  // Known nodes are not warned about again; a new one is.
  nodes_.Upsert(Node("g2-5", "", "G2"));
  loop->MarkInventoryChanged();
  SetNow(kStart + 5);
  ASSERT_TRUE(loop->RunOnce().ok());
  warned = logs.Lines("no price");
  ASSERT_EQ(warned.size(), 3u) << ::testing::PrintToString(warned);
  EXPECT_THAT(warned[2], ::testing::HasSubstr("nodes=g2-5"));
  EXPECT_THAT(warned[2], ::testing::HasSubstr("count=1"));
}

}  // namespace
}  // namespace gpu_autoscaler::controllers
