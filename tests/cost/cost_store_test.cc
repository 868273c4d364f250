// The cost history on both backends: one typed suite runs against SQLite and
// against a real PostgreSQL server (tests/support/postgres_fixture.h).
//
// Costs in these tests are multiples of 1/1024, so every sum is exact in
// binary floating point and totals are compared with ==.
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/failpoint.h"
#include "cost/postgres_store.h"
#include "cost/sqlite_store.h"
#include "cost/store.h"
#include "cost/store_factory.h"
#include "cost_store_fixture.h"
#include "gtest/gtest.h"
#include "support/postgres_fixture.h"

namespace gpu_autoscaler::cost {
namespace {

TYPED_TEST(CostStoreTest, AppendsAndTotalsExactly) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  const auto samples =
      Seconds({Sample("a", "ml"), Sample("b", "ml"), Sample("c", "web")}, kT0, kT0 + 120);
  AppendStats stats = this->MustAppend(*store, samples);
  EXPECT_EQ(stats.inserted, 360);
  EXPECT_EQ(stats.duplicates, 0);

  const CostTotals t = this->Total(*store, {kT0, kT0 + 3600});
  EXPECT_EQ(t.samples, 360);
  EXPECT_EQ(t.gpu_seconds, 360);
  EXPECT_EQ(t.gpu_cost, 360 * 4 * kUnit);
  EXPECT_EQ(t.cpu_cost, 360 * 2 * kUnit);
  EXPECT_EQ(t.memory_cost, 360 * 1 * kUnit);
  EXPECT_EQ(t.total_cost(), 360 * 7 * kUnit);
  Result<int> version = store->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, kLatestCostSchemaVersion);
}

TYPED_TEST(CostStoreTest, ReplayedBatchesCountOnce) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  const auto first = Seconds({Sample("a", "ml"), Sample("b", "ml")}, kT0, kT0 + 90);
  EXPECT_EQ(this->MustAppend(*store, first).inserted, 180);

  // The same batch again: nothing new.
  AppendStats again = this->MustAppend(*store, first);
  EXPECT_EQ(again.inserted, 0);
  EXPECT_EQ(again.duplicates, 180);

  // Overlapping: seconds 60..150, of which 90..150 are new.
  AppendStats overlap = this->MustAppend(
      *store, Seconds({Sample("a", "ml"), Sample("b", "ml")}, kT0 + 60, kT0 + 150));
  EXPECT_EQ(overlap.inserted, 120);
  EXPECT_EQ(overlap.duplicates, 60);

  // A duplicate inside one batch counts once.
  std::vector<CostSample> twice = {Sample("c", "ml", kT0 + 5), Sample("c", "ml", kT0 + 5)};
  AppendStats within = this->MustAppend(*store, twice);
  EXPECT_EQ(within.inserted, 1);
  EXPECT_EQ(within.duplicates, 1);

  for (Resolution r : {Resolution::kSecond, Resolution::kMinute, Resolution::kHour}) {
    const CostTotals t = this->Total(*store, {kT0, kT0 + 3600}, r);
    EXPECT_EQ(t.samples, 301) << ResolutionName(r);
    EXPECT_EQ(t.gpu_cost, 301 * 4 * kUnit) << ResolutionName(r);
  }
}

// One batch mixing every case the SQLite store writes differently: seconds
// newer than anything stored (multi-row inserts, chunked), a pod's seconds
// out of order, duplicates of the batch and of the table, and late seconds
// older than the newest stored one.
TYPED_TEST(CostStoreTest, MixedBatchStoresEverySecondOnce) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  std::vector<CostSample> pods;
  for (int i = 0; i < 13; ++i)
    pods.push_back(Sample("p" + std::to_string(i), "ns" + std::to_string(i % 3), 0, 1 + i % 4));
  // 13 pods x 100 s = 1,300 rows: ten full chunks of 128 and a remainder.
  EXPECT_EQ(this->MustAppend(*store, Seconds(pods, kT0 + 100, kT0 + 200)).inserted, 1300);

  std::vector<CostSample> mixed;
  auto add = [&](const CostSample& pod, int64_t second) {
    CostSample s = pod;
    s.second = second;
    mixed.push_back(s);
  };
  for (const CostSample& pod : pods) {
    add(pod, kT0 + 250);  // new, newest
    add(pod, kT0 + 220);  // new, out of order within the batch
    add(pod, kT0 + 250);  // duplicate within the batch
    add(pod, kT0 + 150);  // duplicate of a stored second
    add(pod, kT0 + 50);   // new, older than the newest stored second
    add(pod, kT0 + 300);  // new, newest again
  }
  AppendStats stats = this->MustAppend(*store, mixed);
  EXPECT_EQ(stats.inserted, 13 * 4);
  EXPECT_EQ(stats.duplicates, 13 * 2);

  // Replaying the mixed batch adds nothing.
  AppendStats replay = this->MustAppend(*store, mixed);
  EXPECT_EQ(replay.inserted, 0);
  EXPECT_EQ(replay.duplicates, 13 * 6);

  double expected_gpu_cost = 0;
  for (const CostSample& pod : pods)
    expected_gpu_cost += 104 * pod.gpu_cost;
  for (Resolution r : {Resolution::kSecond, Resolution::kMinute, Resolution::kHour}) {
    const CostTotals t = this->Total(*store, {kT0, kT0 + 3600}, r);
    EXPECT_EQ(t.samples, 13 * 104) << ResolutionName(r);
    EXPECT_EQ(t.gpu_cost, expected_gpu_cost) << ResolutionName(r);
  }
  CostReport per_pod =
      this->MustQuery(*store, {.window = {kT0, kT0 + 3600}, .group_by = {Dimension::kPod}});
  ASSERT_EQ(per_pod.rows.size(), pods.size());
  for (const CostRow& row : per_pod.rows)
    EXPECT_EQ(row.totals.samples, 104) << row.keys[0];
  // Each second exactly where it belongs.
  for (int64_t second : {kT0 + 50, kT0 + 220, kT0 + 250, kT0 + 300}) {
    const CostTotals t = this->Total(*store, {second, second + 1}, Resolution::kSecond);
    EXPECT_EQ(t.samples, 13) << second - kT0;
  }
  EXPECT_EQ(this->Total(*store, {kT0 + 200, kT0 + 220}, Resolution::kSecond).samples, 0);
}

TYPED_TEST(CostStoreTest, RollupsMatchRawSecondsPerBucket) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  // Pod a costs 4 units/s, pod b 8 units/s and holds half a GPU, over 2 h 10 min.
  CostSample b = Sample("b", "ml", 0, 8);
  b.gpu_share = 0.5;
  b.gpu_utilization = 0.5;
  this->MustAppend(*store, Seconds({Sample("a", "ml"), b}, kT0, kT0 + 7800));

  // Minute buckets: 60 s x (4 + 8) units each.
  CostReport minutes =
      this->MustQuery(*store, {.window = {kT0, kT0 + 7800}, .bucket = Resolution::kMinute});
  ASSERT_EQ(minutes.rows.size(), 130u);
  for (const CostRow& row : minutes.rows) {
    EXPECT_EQ(row.totals.samples, 120);
    EXPECT_EQ(row.totals.gpu_cost, 60 * 12 * kUnit);
    EXPECT_EQ(row.totals.gpu_seconds, 60 * 1.5);
  }
  // Hour buckets: two full hours and the 10-minute tail.
  CostReport hours =
      this->MustQuery(*store, {.window = {kT0, kT0 + 7800}, .bucket = Resolution::kHour});
  ASSERT_EQ(hours.rows.size(), 3u);
  EXPECT_EQ(hours.rows[0].bucket, kT0);
  EXPECT_EQ(hours.rows[0].totals.gpu_cost, 3600 * 12 * kUnit);
  EXPECT_EQ(hours.rows[1].totals.gpu_cost, 3600 * 12 * kUnit);
  EXPECT_EQ(hours.rows[2].bucket, kT0 + 7200);
  EXPECT_EQ(hours.rows[2].totals.gpu_cost, 600 * 12 * kUnit);

  // The same totals from raw seconds, minutes and hours; sharing and utilisation sums.
  for (Resolution r : {Resolution::kSecond, Resolution::kMinute, Resolution::kHour}) {
    const CostTotals t = this->Total(*store, {kT0, kT0 + 7800}, r);
    EXPECT_EQ(t.gpu_cost, 7800 * 12 * kUnit) << ResolutionName(r);
    // Pod b's half GPU would have been a whole one: twice its GPU cost.
    EXPECT_EQ(t.exclusive_gpu_cost, 7800 * (4 + 16) * kUnit) << ResolutionName(r);
    EXPECT_EQ(t.metered_gpu_seconds, 7800 * 0.5) << ResolutionName(r);
    EXPECT_EQ(t.utilized_gpu_seconds, 7800 * 0.25) << ResolutionName(r);
  }
}

TYPED_TEST(CostStoreTest, WindowsAlignToTheResolution) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  this->MustAppend(*store, Seconds({Sample("a", "ml")}, kT0, kT0 + 3 * 3600));

  // Second precision: exactly the 95 seconds asked for.
  CostReport exact = this->MustQuery(
      *store, {.window = {kT0 + 3590, kT0 + 3685}, .resolution = Resolution::kSecond});
  EXPECT_EQ(exact.window, (TimeWindow{kT0 + 3590, kT0 + 3685}));
  ASSERT_EQ(exact.rows.size(), 1u);
  EXPECT_EQ(exact.rows[0].totals.samples, 95);

  // Minute precision widens to whole minutes: [3540, 3720).
  CostReport minute = this->MustQuery(*store, {.window = {kT0 + 3590, kT0 + 3685}});
  EXPECT_EQ(minute.window, (TimeWindow{kT0 + 3540, kT0 + 3720}));
  ASSERT_EQ(minute.rows.size(), 1u);
  EXPECT_EQ(minute.rows[0].totals.samples, 180);

  // A long unaligned window: hours in the middle, minutes and seconds at the edges.
  CostReport mixed = this->MustQuery(
      *store, {.window = {kT0 + 1001, kT0 + 9999}, .resolution = Resolution::kSecond});
  ASSERT_EQ(mixed.rows.size(), 1u);
  EXPECT_EQ(mixed.rows[0].totals.samples, 8998);
  EXPECT_EQ(mixed.rows[0].totals.gpu_cost, 8998 * 4 * kUnit);

  // Outside the data, and a bad window.
  EXPECT_TRUE(this->MustQuery(*store, {.window = {kT0 + 86400, kT0 + 90000}}).rows.empty());
  Result<CostReport> bad = store->Query({.window = {kT0 + 10, kT0 + 10}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(CostStoreTest, GroupsByEveryDimension) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  CostSample a = Sample("train-0", "ml", 0, 4);
  a.team = "vision";
  a.project = "detector";
  a.experiment = "exp-1";
  a.node = "node-a";
  a.gpu_model = "A100";
  a.tier = CapacityTier::kSpot;
  CostSample b = Sample("train-1", "ml", 0, 8);
  b.team = "vision";
  b.project = "segmenter";
  b.node = "node-b";
  b.gpu_model = "H100";
  CostSample c = Sample("web-0", "web", 0, 16);  // unlabelled
  c.node = "node-b";
  c.gpu_model = "H100";
  c.tier = CapacityTier::kReserved;
  this->MustAppend(*store, Seconds({a, b, c}, kT0, kT0 + 60));

  auto gpu_cost_by = [&](Dimension d) {
    std::map<std::string, double> out;
    CostReport r = this->MustQuery(
        *store, {.window = {kT0, kT0 + 60}, .resolution = Resolution::kSecond, .group_by = {d}});
    for (const CostRow& row : r.rows)
      out[row.keys.at(0)] += row.totals.gpu_cost / (60 * kUnit);
    return out;
  };
  using M = std::map<std::string, double>;
  EXPECT_EQ(gpu_cost_by(Dimension::kNamespace), (M{{"ml", 12}, {"web", 16}}));
  EXPECT_EQ(gpu_cost_by(Dimension::kTeam), (M{{"vision", 12}, {"", 16}}));
  EXPECT_EQ(gpu_cost_by(Dimension::kProject), (M{{"detector", 4}, {"segmenter", 8}, {"", 16}}));
  EXPECT_EQ(gpu_cost_by(Dimension::kExperiment), (M{{"exp-1", 4}, {"", 24}}));
  EXPECT_EQ(gpu_cost_by(Dimension::kNode), (M{{"node-a", 4}, {"node-b", 24}}));
  EXPECT_EQ(gpu_cost_by(Dimension::kModel), (M{{"A100", 4}, {"H100", 24}}));
  EXPECT_EQ(gpu_cost_by(Dimension::kTier), (M{{"spot", 4}, {"on-demand", 8}, {"reserved", 16}}));
  EXPECT_EQ(gpu_cost_by(Dimension::kPod),
            (M{{"ml/train-0", 4}, {"ml/train-1", 8}, {"web/web-0", 16}}));

  // Two keys, sorted by cost descending; filters, including "unlabelled".
  CostReport two = this->MustQuery(
      *store, {.window = {kT0, kT0 + 60}, .group_by = {Dimension::kNamespace, Dimension::kTeam}});
  ASSERT_EQ(two.rows.size(), 2u);
  EXPECT_EQ(two.rows[0].keys, (std::vector<std::string>{"web", ""}));
  EXPECT_EQ(two.rows[1].keys, (std::vector<std::string>{"ml", "vision"}));
  CostReport filtered = this->MustQuery(
      *store, {.window = {kT0, kT0 + 60},
               .group_by = {Dimension::kProject},
               .filters = {{Dimension::kNamespace, "ml"}, {Dimension::kTier, "on-demand"}}});
  ASSERT_EQ(filtered.rows.size(), 1u);
  EXPECT_EQ(filtered.rows[0].keys[0], "segmenter");
  CostReport unlabelled =
      this->MustQuery(*store, {.window = {kT0, kT0 + 60}, .filters = {{Dimension::kTeam, ""}}});
  ASSERT_EQ(unlabelled.rows.size(), 1u);
  EXPECT_EQ(unlabelled.rows[0].totals.gpu_cost, 60 * 16 * kUnit);
  CostReport one_pod = this->MustQuery(
      *store, {.window = {kT0, kT0 + 60}, .filters = {{Dimension::kPod, "ml/train-1"}}});
  ASSERT_EQ(one_pod.rows.size(), 1u);
  EXPECT_EQ(one_pod.rows[0].totals.gpu_cost, 60 * 8 * kUnit);
}

TYPED_TEST(CostStoreTest, IdleCapacityIsItsOwnRowByOwnerAndPartOfTheNode) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  CostSample pod = Sample("a", "ml");
  pod.idle_cost = 1 * kUnit;  // its share of the node's idle cost
  CostSample idle;
  idle.pod_uid = "idle/node-a";
  idle.node = "node-a";
  idle.gpu_model = "A100";
  idle.idle = true;
  idle.gpu_share = 3;
  idle.gpu_cost = 12 * kUnit;
  idle.cpu_cost = 2 * kUnit;
  this->MustAppend(*store, Seconds({pod, idle}, kT0, kT0 + 60));

  CostReport by_ns =
      this->MustQuery(*store, {.window = {kT0, kT0 + 60}, .group_by = {Dimension::kNamespace}});
  ASSERT_EQ(by_ns.rows.size(), 2u);
  EXPECT_FALSE(by_ns.rows[0].idle);
  EXPECT_EQ(by_ns.rows[0].keys[0], "ml");
  EXPECT_EQ(by_ns.rows[0].totals.total_cost(), 60 * 8 * kUnit);
  EXPECT_EQ(by_ns.rows[0].totals.idle_cost, 60 * 1 * kUnit);
  EXPECT_TRUE(by_ns.rows[1].idle);
  EXPECT_EQ(by_ns.rows[1].totals.idle_cost, 60 * 14 * kUnit);
  EXPECT_EQ(by_ns.rows[1].totals.idle_gpu_seconds, 60 * 3);
  EXPECT_EQ(by_ns.rows[1].totals.gpu_seconds, 0);

  CostReport by_node =
      this->MustQuery(*store, {.window = {kT0, kT0 + 60}, .group_by = {Dimension::kNode}});
  ASSERT_EQ(by_node.rows.size(), 1u);
  EXPECT_EQ(by_node.rows[0].totals.total_cost(), 60 * 22 * kUnit);
}

TYPED_TEST(CostStoreTest, RetentionDropsOldDataAndRefusesReplaysOfIt) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  const auto old_day = Seconds({Sample("a", "ml")}, kT0, kT0 + 7200);
  this->MustAppend(*store, old_day);
  this->MustAppend(*store, Seconds({Sample("a", "ml")}, kT0 + 86400, kT0 + 86400 + 60));

  // Now = day 1 + 1 min: keep raw seconds 1 h (horizon kT0 + 23 h), minutes
  // 25 h (nothing of day 0 goes), hours forever.
  const int64_t now = kT0 + 86400 + 60;
  Result<RetentionStats> stats = store->ApplyRetention(
      {.raw_seconds = 3600, .minute_seconds = 86400 + 3600, .hour_seconds = 0}, now);
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_EQ(stats->raw_deleted, 7200);
  EXPECT_EQ(stats->hour_deleted, 0);

  // Old seconds are answered from rollups, and the report says so.
  CostReport old =
      this->MustQuery(*store, {.window = {kT0 + 30, kT0 + 90}, .resolution = Resolution::kSecond});
  EXPECT_EQ(old.resolution, Resolution::kMinute);
  EXPECT_EQ(old.window, (TimeWindow{kT0, kT0 + 120}));
  ASSERT_EQ(old.rows.size(), 1u);
  EXPECT_EQ(old.rows[0].totals.samples, 120);

  // Replaying the deleted seconds must not count them again.
  AppendStats replay = this->MustAppend(*store, old_day);
  EXPECT_EQ(replay.too_old, 7200);
  EXPECT_EQ(replay.inserted, 0);
  EXPECT_EQ(this->Total(*store, {kT0, kT0 + 2 * 86400}).samples, 7260);

  // Minutes older than their retention are answered by the hour.
  Result<RetentionStats> again =
      store->ApplyRetention({.raw_seconds = 3600, .minute_seconds = 3600, .hour_seconds = 0}, now);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->minute_deleted, 120);
  CostReport hourly = this->MustQuery(*store, {.window = {kT0 + 60, kT0 + 120}});
  EXPECT_EQ(hourly.resolution, Resolution::kHour);
  EXPECT_EQ(hourly.window, (TimeWindow{kT0, kT0 + 3600}));
  ASSERT_EQ(hourly.rows.size(), 1u);
  EXPECT_EQ(hourly.rows[0].totals.samples, 3600);
}

TYPED_TEST(CostStoreTest, BadSamplesRejectTheWholeBatch) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  std::vector<CostSample> batch = {Sample("a", "ml", kT0), Sample("b", "ml", kT0)};
  batch[1].pod_uid.clear();
  Result<AppendStats> r = store->Append(batch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("pod_uid"), std::string::npos);
  batch[1] = Sample("b", "ml", kT0, -1);
  EXPECT_FALSE(store->Append(batch).ok());
  EXPECT_EQ(this->Total(*store, {kT0, kT0 + 60}).samples, 0);
}

TYPED_TEST(CostStoreTest, MigratesAVersion1Database) {
  {
    auto v1 = this->Open(1);
    ASSERT_NE(v1, nullptr);
    Result<int> version = v1->SchemaVersion();
    ASSERT_TRUE(version.ok());
    EXPECT_EQ(*version, 1);
    // A v1 store cannot be used until migrated.
    Result<AppendStats> refused = v1->Append(std::vector<CostSample>{Sample("a", "ml", kT0)});
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code(), StatusCode::kFailedPrecondition);
  }
  // What a v1 writer left: pod x (a quarter GPU, 8 units/s) for 120 seconds
  // with raw seconds; minute kT0 + 3600 with no raw seconds left.
  std::string sql =
      "INSERT INTO pods(id, uid, ns, name) VALUES (1, 'uid-x', 'ml', 'x');"
      "INSERT INTO series(id, ns, team, project, experiment, node, gpu_model, tier, idle) "
      "VALUES (1, 'ml', 'vision', '', '', 'node-a', 'A100', 0, " +
      std::string(std::string(TypeParam::kName) == "Sqlite" ? "0" : "false") + ");";
  for (int64_t t = kT0; t < kT0 + 120; ++t) {
    sql += "INSERT INTO cost_raw VALUES (" + std::to_string(t) +
           ", 1, 1, 0.25, 0.0078125, 0, 0, 0, 0, 0.5);";
  }
  for (int64_t m : {kT0, kT0 + 60}) {
    sql += "INSERT INTO cost_1m VALUES (" + std::to_string(m) +
           ", 1, 60, 15, 0, 0.46875, 0, 0, 0, 0);";
  }
  sql += "INSERT INTO cost_1m VALUES (" + std::to_string(kT0 + 3600) +
         ", 1, 60, 15, 0, 0.46875, 0, 0, 0, 0);";
  ASSERT_TRUE(this->backend_.Exec(sql).ok()) << this->backend_.Exec(sql).ToString();

  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  Result<int> version = store->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, kLatestCostSchemaVersion);

  // Hour rollups were backfilled from the minutes.
  CostReport hours = this->MustQuery(*store, {.window = {kT0, kT0 + 7200},
                                              .resolution = Resolution::kHour,
                                              .group_by = {Dimension::kTeam},
                                              .bucket = Resolution::kHour});
  ASSERT_EQ(hours.rows.size(), 2u);
  EXPECT_EQ(hours.rows[0].keys[0], "vision");
  EXPECT_EQ(hours.rows[0].totals.samples, 120);
  EXPECT_EQ(hours.rows[0].totals.gpu_cost, 120 * 8 * kUnit);
  // Sharing savings recomputed where raw seconds remain (a quarter GPU would
  // have been a whole one: 4x); none claimed for the minute without them.
  EXPECT_EQ(hours.rows[0].totals.exclusive_gpu_cost, 4 * 120 * 8 * kUnit);
  EXPECT_EQ(hours.rows[0].totals.utilized_gpu_seconds, 120 * 0.125);
  EXPECT_EQ(hours.rows[1].totals.exclusive_gpu_cost, 60 * 8 * kUnit);

  // The migrated store appends on top of the old data.
  CostSample next = Sample("x", "ml", kT0 + 120, 8);
  next.pod_uid = "uid-x";
  next.team = "vision";
  next.gpu_share = 0.25;
  EXPECT_EQ(this->MustAppend(*store, {next}).inserted, 1);
  EXPECT_EQ(this->Total(*store, {kT0, kT0 + 3600}).samples, 121);
}

TYPED_TEST(CostStoreTest, RefusesASchemaNewerThanItKnows) {
  ASSERT_NE(this->Open(), nullptr);
  ASSERT_TRUE(
      this->backend_.Exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'").ok());
  Result<std::unique_ptr<CostStore>> store = this->backend_.Open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.error().message().find("99"), std::string::npos);
}

TYPED_TEST(CostStoreTest, OpensThroughTheDbFlag) {
  Result<std::unique_ptr<CostStore>> store = OpenCostStore(this->backend_.db());
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  EXPECT_EQ((*store)->backend().substr(0, 6),
            std::string(TypeParam::kName) == "Sqlite" ? "sqlite" : "postgr");
}

// The writer is SIGKILLed inside the transaction of batch kKillAtBatch, at the
// failpoint between its last INSERT and its COMMIT: exactly the batches before
// it survive (the open transaction rolls back), and after restart, replaying
// the whole input leaves every second counted exactly once.
TYPED_TEST(CostStoreTest, KilledWriterLosesAndDoublesNothingAfterReplay) {
  constexpr int kBatches = 6;
  constexpr int kKillAtBatch = 3;
  std::vector<CostSample> pods;
  for (int i = 0; i < 200; ++i)
    pods.push_back(Sample("p" + std::to_string(i), "ns" + std::to_string(i % 7), 0, 1 + i % 5));
  std::vector<std::vector<CostSample>> batches;
  for (int b = 0; b < kBatches; ++b)
    batches.push_back(Seconds(pods, kT0 + b * 100, kT0 + (b + 1) * 100));
  const size_t batch_size = batches[0].size();
  CostTotals expected;
  for (const auto& batch : batches)
    for (const CostSample& s : batch)
      expected.Add(CostTotals::FromSample(s));
  ASSERT_NE(this->Open(), nullptr);  // creates the schema; closed again before forking

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The (kKillAtBatch + 1)-th Append kills the writer before its COMMIT.
    if (!failpoint::Configure("cost_store.append.before_commit=kill@" +
                              std::to_string(kKillAtBatch + 1))
             .ok()) {
      ::_exit(2);
    }
    Result<std::unique_ptr<CostStore>> writer = this->backend_.Open();
    if (!writer.ok()) ::_exit(3);
    for (int b = 0; b < kBatches; ++b) {
      if (!(*writer)->Append(batches[static_cast<size_t>(b)]).ok()) ::_exit(5);
    }
    ::_exit(0);  // the failpoint did not fire
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the writer was not killed at the failpoint; exit status " << status;

  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  // Exactly batches 0..kKillAtBatch-1 survived: the rows batch kKillAtBatch
  // had written inside its transaction were rolled back.
  const CostTotals survived = this->Total(*store, {kT0, kT0 + 3600});
  EXPECT_EQ(survived.samples, kKillAtBatch * static_cast<int64_t>(batch_size));

  // Restart: replay everything from the beginning.
  int64_t inserted = 0;
  for (const auto& batch : batches)
    inserted += this->MustAppend(*store, batch).inserted;
  EXPECT_EQ(inserted + survived.samples, kBatches * static_cast<int64_t>(batch_size));
  for (Resolution r : {Resolution::kSecond, Resolution::kMinute, Resolution::kHour}) {
    const CostTotals t = this->Total(*store, {kT0, kT0 + 3600}, r);
    EXPECT_EQ(t.samples, expected.samples) << ResolutionName(r);
    EXPECT_EQ(t.gpu_cost, expected.gpu_cost) << ResolutionName(r);
    EXPECT_EQ(t.total_cost(), expected.total_cost()) << ResolutionName(r);
  }
  // Every second of every pod is there once.
  CostReport per_pod = this->MustQuery(
      *store, {.window = {kT0, kT0 + kBatches * 100}, .group_by = {Dimension::kPod}});
  ASSERT_EQ(per_pod.rows.size(), pods.size());
  for (const CostRow& row : per_pod.rows)
    EXPECT_EQ(row.totals.samples, kBatches * 100) << row.keys[0];
}

// An error at the same point (a lost connection, a full disk) rolls the batch
// back, and the store stays usable: the retry counts it once.
TYPED_TEST(CostStoreTest, FailureBeforeCommitRollsTheBatchBack) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  std::vector<CostSample> pods;
  for (int i = 0; i < 20; ++i)
    pods.push_back(Sample("p" + std::to_string(i), "ns", 0, 1));
  const std::vector<CostSample> batch = Seconds(pods, kT0, kT0 + 10);
  ASSERT_TRUE(failpoint::Configure("cost_store.append.before_commit=error").ok());
  Result<AppendStats> failed = store->Append(batch);
  ASSERT_TRUE(failpoint::Configure("").ok());
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message().find("cost_store.append.before_commit"), std::string::npos);
  EXPECT_EQ(this->Total(*store, {kT0, kT0 + 3600}).samples, 0);
  EXPECT_EQ(this->MustAppend(*store, batch).inserted, static_cast<int64_t>(batch.size()));
  EXPECT_EQ(this->Total(*store, {kT0, kT0 + 3600}).samples, static_cast<int64_t>(batch.size()));
}

// Hypertables are used exactly when the server offers TimescaleDB; otherwise
// the same schema stays plain tables. TimescaleDB is not a Debian package, so
// on the test server only the fallback half can run; the other half is
// skipped with that reason. It runs where the PostgreSQL the fixture starts
// (GPA_PG_BINDIR or the newest installed) has timescaledb.so.
TEST(PostgresTimescaleTest, HypertablesExactlyWhenTheServerOffersTimescaleDb) {
  PostgresBackend backend;
  std::string why;
  if (!backend.Init(&why)) GTEST_SKIP() << "PostgreSQL unavailable: " << why;
  // Installed and preloaded (tests/support/postgres_fixture.cc preloads it
  // when the PostgreSQL build has timescaledb.so).
  const bool offered = backend.Exec("CREATE EXTENSION IF NOT EXISTS timescaledb").ok();

  auto plain = PostgresCostStore::Open(backend.db(), {.use_timescaledb = false});
  ASSERT_TRUE(plain.ok()) << plain.error().ToString();
  EXPECT_FALSE((*plain)->uses_timescaledb());
  EXPECT_EQ((*plain)->backend(), "postgres");
  plain->reset();

  auto store = PostgresCostStore::Open(backend.db());
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  if (!offered) {
    EXPECT_FALSE((*store)->uses_timescaledb());
    EXPECT_EQ((*store)->backend(), "postgres");
    EXPECT_FALSE(backend.Exec("SELECT 1 FROM timescaledb_information.hypertables").ok());
    GTEST_SKIP() << "the test PostgreSQL server has no timescaledb extension (not a Debian "
                    "package): checked that plain tables are used; hypertables not exercised";
  }
  EXPECT_TRUE((*store)->uses_timescaledb());
  EXPECT_EQ((*store)->backend(), "postgres+timescaledb");
  EXPECT_TRUE(backend
                  .Exec("DO $$ BEGIN IF (SELECT count(*) FROM "
                        "timescaledb_information.hypertables WHERE hypertable_name IN "
                        "('cost_runs', 'cost_1m', 'cost_1h')) <> 3 THEN RAISE EXCEPTION "
                        "'missing hypertables'; END IF; END $$")
                  .ok());
}

}  // namespace
}  // namespace gpu_autoscaler::cost
