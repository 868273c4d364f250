// Cost runs (CostStore::AppendRuns) on both backends: every total equals
// what one row per pod per second gave, a restart continues the open runs,
// a killed writer or a failed transaction loses and doubles nothing, old
// databases migrate, and retention prunes only closed runs.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/failpoint.h"
#include "cost/store.h"
#include "cost_store_fixture.h"
#include "gtest/gtest.h"

namespace gpu_autoscaler::cost {
namespace {

// The per-second model the runs must match: for each pod, its values per
// second (absent: not running).
class PerSecondModel {
 public:
  void Set(const CostSample& pod, int64_t from, int64_t to) {
    for (int64_t t = from; t < to; ++t) {
      CostSample s = pod;
      s.second = t;
      rows_[{pod.pod_uid, t}] = s;
    }
  }
  CostTotals Total(int64_t from, int64_t to, const std::string& uid = "") const {
    CostTotals sum;
    for (const auto& [key, s] : rows_) {
      if (key.second < from || key.second >= to) continue;
      if (!uid.empty() && key.first != uid) continue;
      sum.Add(CostTotals::FromSample(s));
    }
    return sum;
  }

 private:
  std::map<std::pair<std::string, int64_t>, CostSample> rows_;
};

template <typename Backend>
class CostRunsTest : public CostStoreTest<Backend> {
 protected:
  static Result<AppendStats> AppendRuns(CostStore& store, int64_t from, int64_t through,
                                        const std::vector<CostSample>& started,
                                        const std::vector<std::string>& ended = {},
                                        bool complete = false) {
    return store.AppendRuns(RunBatch{.from = from,
                                     .through = through,
                                     .complete = complete,
                                     .started = started,
                                     .ended = ended});
  }
  static AppendStats MustAppendRuns(CostStore& store, int64_t from, int64_t through,
                                    const std::vector<CostSample>& started,
                                    const std::vector<std::string>& ended = {},
                                    bool complete = false) {
    Result<AppendStats> stats = AppendRuns(store, from, through, started, ended, complete);
    EXPECT_TRUE(stats.ok()) << stats.error().ToString();
    return stats.ok() ? *stats : AppendStats{};
  }

  // Per-minute buckets of [from, to) at `r` equal the model's, exactly.
  void ExpectMinutesMatch(CostStore& store, const PerSecondModel& model, int64_t from, int64_t to,
                          Resolution r) {
    CostReport report = this->MustQuery(
        store, {.window = {from, to}, .resolution = r, .bucket = Resolution::kMinute});
    std::map<int64_t, CostTotals> got;
    for (const CostRow& row : report.rows)
      got[row.bucket].Add(row.totals);
    for (int64_t m = from; m < to; m += 60) {
      const CostTotals want = model.Total(m, m + 60);
      EXPECT_EQ(got[m].samples, want.samples) << ResolutionName(r) << " minute " << m - kT0;
      EXPECT_EQ(got[m].total_cost(), want.total_cost()) << ResolutionName(r) << " " << m - kT0;
      EXPECT_EQ(got[m].gpu_seconds, want.gpu_seconds) << ResolutionName(r) << " " << m - kT0;
      EXPECT_EQ(got[m].exclusive_gpu_cost, want.exclusive_gpu_cost) << ResolutionName(r);
    }
  }

  // Whether `condition` (SQL) holds in the database.
  bool Holds(const std::string& condition) {
    const bool sqlite = std::string(Backend::kName) == "Sqlite";
    // SQLite has no RAISE outside triggers: abs() of the smallest integer
    // overflows, which is an error.
    const std::string sql =
        sqlite
            ? "SELECT CASE WHEN " + condition + " THEN 1 ELSE abs(-9223372036854775807 - 1) END"
            : "DO $$ BEGIN IF NOT (" + condition + ") THEN RAISE EXCEPTION 'false'; END IF; END $$";
    return this->backend_.Exec(sql).ok();
  }
};

TYPED_TEST_SUITE(CostRunsTest, Backends, BackendNames);

CostSample Quarter(std::string uid, double gpu_units) {
  CostSample s = Sample(std::move(uid), "ml", 0, gpu_units);
  s.gpu_share = 0.25;
  s.gpu_utilization = 0.5;
  s.usage_cost = gpu_units / 2 * kUnit;
  return s;
}

// A price change splits a run; a pod ending mid-minute closes its run; a
// quiet batch writes no run. Every minute, at every resolution, and every
// pod total equal the per-second rows.
TYPED_TEST(CostRunsTest, RunsTotalExactlyWhatTheirSecondsGave) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  PerSecondModel model;
  const CostSample a = Quarter("a", 4), b = Sample("b", "ml", 0, 2);
  CostSample a2 = Quarter("a", 6);  // a's price changes at +50
  model.Set(a, kT0 + 10, kT0 + 50);
  model.Set(a2, kT0 + 50, kT0 + 200);
  model.Set(b, kT0 + 10, kT0 + 130);

  AppendStats s1 = this->MustAppendRuns(*store, kT0 + 10, kT0 + 50, {a, b}, {}, true);
  EXPECT_EQ(s1.runs_opened, 2);
  EXPECT_EQ(s1.inserted, 80);
  AppendStats s2 = this->MustAppendRuns(*store, kT0 + 50, kT0 + 130, {a2});
  EXPECT_EQ(s2.runs_opened, 1);
  EXPECT_EQ(s2.runs_closed, 1);
  AppendStats s3 = this->MustAppendRuns(*store, kT0 + 130, kT0 + 170, {}, {b.pod_uid});
  EXPECT_EQ(s3.runs_closed, 1);
  AppendStats s4 = this->MustAppendRuns(*store, kT0 + 170, kT0 + 200, {});
  EXPECT_EQ(s4.runs_opened + s4.runs_closed, 0);
  EXPECT_EQ(s4.inserted, 30);

  Result<std::optional<int64_t>> newest = store->NewestSecond();
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(*newest, kT0 + 199);
  for (Resolution r : {Resolution::kSecond, Resolution::kMinute, Resolution::kHour}) {
    const CostTotals t = this->Total(*store, {kT0, kT0 + 3600}, r);
    const CostTotals want = model.Total(kT0, kT0 + 3600);
    EXPECT_EQ(t.samples, 310) << ResolutionName(r);
    EXPECT_EQ(t.total_cost(), want.total_cost()) << ResolutionName(r);
    EXPECT_EQ(t.usage_cost, want.usage_cost) << ResolutionName(r);
    EXPECT_EQ(t.exclusive_gpu_cost, want.exclusive_gpu_cost) << ResolutionName(r);
    EXPECT_EQ(t.utilized_gpu_seconds, want.utilized_gpu_seconds) << ResolutionName(r);
  }
  this->ExpectMinutesMatch(*store, model, kT0, kT0 + 240, Resolution::kSecond);
  this->ExpectMinutesMatch(*store, model, kT0, kT0 + 240, Resolution::kMinute);
  CostReport per_pod =
      this->MustQuery(*store, {.window = {kT0 + 30, kT0 + 140}, .group_by = {Dimension::kPod}});
  ASSERT_EQ(per_pod.rows.size(), 2u);
  for (const CostRow& row : per_pod.rows) {
    const std::string uid = row.keys[0] == "ml/a" ? a.pod_uid : b.pod_uid;
    const CostTotals want = model.Total(kT0 + 30, kT0 + 140, uid);
    EXPECT_EQ(row.totals.samples, want.samples) << row.keys[0];
    EXPECT_EQ(row.totals.total_cost(), want.total_cost()) << row.keys[0];
  }
  // Three run rows in all (a twice, b once), b's closed at +130.
  EXPECT_TRUE(this->Holds("(SELECT count(*) FROM cost_runs) = 3"));
  EXPECT_TRUE(this->Holds(
      "(SELECT count(*) FROM cost_runs WHERE end_second = " + std::to_string(kT0 + 130) + ") = 1"));
}

// A restart re-reports every run (complete): unchanged runs go on without a
// write, changed ones split, and a replayed batch changes nothing.
TYPED_TEST(CostRunsTest, ARestartMidRunContinuesItAndReplaysCountOnce) {
  PerSecondModel model;
  const CostSample a = Sample("a", "ml", 0, 4), b = Sample("b", "ml", 0, 2);
  const CostSample b2 = Sample("b", "ml", 0, 3);
  model.Set(a, kT0, kT0 + 60);
  model.Set(b, kT0, kT0 + 30);
  model.Set(b2, kT0 + 30, kT0 + 60);
  {
    auto store = this->Open();
    ASSERT_NE(store, nullptr);
    this->MustAppendRuns(*store, kT0, kT0 + 30, {a, b}, {}, true);
  }  // the manager dies mid-run
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  Result<std::optional<int64_t>> newest = store->NewestSecond();
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(*newest, kT0 + 29);  // the restart resumes at +30
  AppendStats resync = this->MustAppendRuns(*store, kT0 + 30, kT0 + 60, {a, b2}, {}, true);
  EXPECT_EQ(resync.runs_continued, 1);
  EXPECT_EQ(resync.runs_opened, 1);
  EXPECT_EQ(resync.runs_closed, 1);
  EXPECT_TRUE(this->Holds("(SELECT count(*) FROM cost_runs) = 3"));
  // A writer replaying the first batch (a stale leader) stores nothing.
  AppendStats replay = this->MustAppendRuns(*store, kT0, kT0 + 30, {a, b}, {}, true);
  EXPECT_EQ(replay.inserted, 0);
  EXPECT_EQ(replay.runs_opened + replay.runs_closed, 0);
  for (Resolution r : {Resolution::kSecond, Resolution::kMinute}) {
    const CostTotals t = this->Total(*store, {kT0, kT0 + 3600}, r);
    EXPECT_EQ(t.samples, 120) << ResolutionName(r);
    EXPECT_EQ(t.total_cost(), model.Total(kT0, kT0 + 3600).total_cost()) << ResolutionName(r);
  }
  this->ExpectMinutesMatch(*store, model, kT0, kT0 + 120, Resolution::kMinute);
}

// A failed transaction leaves the watermark where it was; the retry (the
// meter re-reports everything after a failure) counts each second once. A
// gap nobody metered ends the open runs at the watermark.
TYPED_TEST(CostRunsTest, AStoreOutageKeepsTheWatermarkAndAGapEndsTheRuns) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  const CostSample a = Sample("a", "ml", 0, 4), b = Sample("b", "ml", 0, 2);
  this->MustAppendRuns(*store, kT0, kT0 + 10, {a, b}, {}, true);
  ASSERT_TRUE(failpoint::Configure("cost_store.append.before_commit=error").ok());
  Result<AppendStats> failed = this->AppendRuns(*store, kT0 + 10, kT0 + 20, {}, {b.pod_uid});
  ASSERT_TRUE(failpoint::Configure("").ok());
  ASSERT_FALSE(failed.ok());
  Result<std::optional<int64_t>> newest = store->NewestSecond();
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(*newest, kT0 + 9);
  // Retry, later, with everything re-reported.
  this->MustAppendRuns(*store, kT0 + 10, kT0 + 25, {a}, {}, true);
  EXPECT_EQ(this->Total(*store, {kT0, kT0 + 3600}, Resolution::kSecond).samples, 10 + 10 + 15);
  // Nobody metered [+25, +40): a's run ends at +25; from +40 a new one.
  AppendStats after_gap = this->MustAppendRuns(*store, kT0 + 40, kT0 + 50, {a}, {}, true);
  EXPECT_EQ(after_gap.runs_closed, 1);
  EXPECT_EQ(after_gap.runs_opened, 1);
  CostReport per_pod = this->MustQuery(*store, {.window = {kT0, kT0 + 3600},
                                                .resolution = Resolution::kSecond,
                                                .group_by = {Dimension::kPod}});
  std::map<std::string, int64_t> seconds;
  for (const CostRow& row : per_pod.rows)
    seconds[row.keys[0]] = row.totals.samples;
  EXPECT_EQ(seconds["ml/a"], 25 + 10);
  EXPECT_EQ(seconds["ml/b"], 10);
  EXPECT_EQ(this->Total(*store, {kT0, kT0 + 3600}, Resolution::kMinute).samples, 45);
}

// The writer is SIGKILLed between a batch's writes and its COMMIT; after the
// restart (which re-reports every run) each second is stored exactly once.
TYPED_TEST(CostRunsTest, KilledRunWriterLosesAndDoublesNothing) {
  constexpr int kPods = 200;
  std::vector<CostSample> pods;
  for (int i = 0; i < kPods; ++i)
    pods.push_back(Sample("p" + std::to_string(i), "ns" + std::to_string(i % 7), 0, 1 + i % 5));
  // The state at each 100-second step: every 10th pod's price changes at each
  // step, and from step 2 on the first 5 pods are gone.
  auto state_at = [&](int step) {
    std::vector<CostSample> out;
    for (int i = 0; i < kPods; ++i) {
      if (step >= 2 && i < 5) continue;
      CostSample s = pods[static_cast<size_t>(i)];
      if (i % 10 == 0) s.gpu_cost = (1 + step) * kUnit;
      out.push_back(s);
    }
    return out;
  };
  constexpr int kSteps = 6;
  constexpr int kKillAtStep = 3;
  PerSecondModel model;
  for (int step = 0; step < kSteps; ++step)
    for (const CostSample& s : state_at(step))
      model.Set(s, kT0 + step * 100, kT0 + (step + 1) * 100);
  ASSERT_NE(this->Open(), nullptr);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!failpoint::Configure("cost_store.append.before_commit=kill@" +
                              std::to_string(kKillAtStep + 1))
             .ok()) {
      ::_exit(2);
    }
    Result<std::unique_ptr<CostStore>> writer = this->backend_.Open();
    if (!writer.ok()) ::_exit(3);
    std::map<std::string, CostSample> reported;
    for (int step = 0; step < kSteps; ++step) {
      std::vector<CostSample> started;
      std::vector<std::string> ended;
      std::map<std::string, CostSample> now;
      for (const CostSample& s : state_at(step))
        now[s.pod_uid] = s;
      for (const auto& [uid, s] : now) {
        auto it = reported.find(uid);
        if (it == reported.end() || it->second.gpu_cost != s.gpu_cost) started.push_back(s);
      }
      for (const auto& [uid, s] : reported)
        if (now.count(uid) == 0) ended.push_back(uid);
      reported = now;
      if (!(*writer)
               ->AppendRuns(RunBatch{.from = kT0 + step * 100,
                                     .through = kT0 + (step + 1) * 100,
                                     .complete = step == 0,
                                     .started = started,
                                     .ended = ended})
               .ok()) {
        ::_exit(5);
      }
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the writer was not killed at the failpoint; exit status " << status;

  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  Result<std::optional<int64_t>> newest = store->NewestSecond();
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(*newest, kT0 + kKillAtStep * 100 - 1);
  // The restarted manager resumes at the watermark, re-reporting everything.
  for (int step = kKillAtStep; step < kSteps; ++step) {
    this->MustAppendRuns(*store, kT0 + step * 100, kT0 + (step + 1) * 100, state_at(step), {},
                         true);
  }
  const CostTotals want = model.Total(kT0, kT0 + 3600);
  for (Resolution r : {Resolution::kSecond, Resolution::kMinute, Resolution::kHour}) {
    const CostTotals t = this->Total(*store, {kT0, kT0 + 3600}, r);
    EXPECT_EQ(t.samples, want.samples) << ResolutionName(r);
    EXPECT_EQ(t.total_cost(), want.total_cost()) << ResolutionName(r);
  }
  this->ExpectMinutesMatch(*store, model, kT0, kT0 + kSteps * 100, Resolution::kMinute);
}

// A per-second history (what a version-1 writer left: raw seconds, rolled
// up at once) migrates: each second becomes a one-second run, totals are
// unchanged, and runs go on from there.
TYPED_TEST(CostRunsTest, MigratesAPerSecondDatabase) {
  ASSERT_NE(this->Open(1), nullptr);
  const bool sqlite = std::string(TypeParam::kName) == "Sqlite";
  std::string sql =
      "INSERT INTO pods(id, uid, ns, name) VALUES (1, 'uid-x', 'ml', 'x');"
      "INSERT INTO series(id, ns, team, project, experiment, node, gpu_model, tier, idle) "
      "VALUES (1, 'ml', '', '', '', 'node-a', 'A100', 0, " +
      std::string(sqlite ? "0" : "false") + ");";
  // Pod x: a quarter GPU at 8 units/s, CPU 2, memory 1, usage 4 (50%).
  for (int64_t t = kT0; t < kT0 + 90; ++t) {
    sql += "INSERT INTO cost_raw VALUES (" + std::to_string(t) +
           ", 1, 1, 0.25, 0.0078125, 0.001953125, 0.0009765625, 0.00390625, 0, 0.5);";
  }
  sql += "INSERT INTO cost_1m VALUES (" + std::to_string(kT0) +
         ", 1, 60, 15, 0, 0.46875, 0.1171875, 0.05859375, 0.234375, 0);";
  sql += "INSERT INTO cost_1m VALUES (" + std::to_string(kT0 + 60) +
         ", 1, 30, 7.5, 0, 0.234375, 0.05859375, 0.029296875, 0.1171875, 0);";
  ASSERT_TRUE(this->backend_.Exec(sql).ok()) << this->backend_.Exec(sql).ToString();

  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  Result<int> version = store->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, kLatestCostSchemaVersion);
  EXPECT_TRUE(this->Holds("(SELECT count(*) FROM cost_runs WHERE end_second = start + 1) = 90"));
  Result<std::optional<int64_t>> newest = store->NewestSecond();
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(*newest, kT0 + 89);
  const CostSample x = Quarter("x", 8);
  // Re-appending a migrated second is a duplicate.
  EXPECT_EQ(this->MustAppend(*store, Seconds({x}, kT0 + 80, kT0 + 90)).duplicates, 10);
  this->MustAppendRuns(*store, kT0 + 90, kT0 + 150, {x}, {}, true);
  PerSecondModel model;
  model.Set(x, kT0, kT0 + 150);
  for (Resolution r : {Resolution::kSecond, Resolution::kMinute, Resolution::kHour}) {
    const CostTotals t = this->Total(*store, {kT0, kT0 + 3600}, r);
    EXPECT_EQ(t.samples, 150) << ResolutionName(r);
    EXPECT_EQ(t.total_cost(), model.Total(kT0, kT0 + 3600).total_cost()) << ResolutionName(r);
    EXPECT_EQ(t.utilized_gpu_seconds, 150 * 0.125) << ResolutionName(r);
  }
  this->ExpectMinutesMatch(*store, model, kT0, kT0 + 180, Resolution::kMinute);
}

// Raw retention deletes closed runs that ended before the horizon and keeps
// open ones, however old their start.
TYPED_TEST(CostRunsTest, RetentionPrunesOnlyClosedRuns) {
  auto store = this->Open();
  ASSERT_NE(store, nullptr);
  const CostSample a = Sample("a", "ml", 0, 4), b = Sample("b", "ml", 0, 2);
  this->MustAppendRuns(*store, kT0, kT0 + 100, {a, b}, {}, true);
  this->MustAppendRuns(*store, kT0 + 100, kT0 + 3 * 86400, {}, {b.pod_uid});
  Result<RetentionStats> pruned =
      store->ApplyRetention({.raw_seconds = 86400, .minute_seconds = 0}, kT0 + 3 * 86400);
  ASSERT_TRUE(pruned.ok()) << pruned.error().ToString();
  EXPECT_EQ(pruned->raw_deleted, 1);
  CostReport per_pod = this->MustQuery(
      *store, {.window = {kT0 + 2 * 86400, kT0 + 3 * 86400}, .group_by = {Dimension::kPod}});
  ASSERT_EQ(per_pod.rows.size(), 1u);
  EXPECT_EQ(per_pod.rows[0].keys[0], "ml/a");
  EXPECT_EQ(per_pod.rows[0].totals.samples, 86400);
  // The rollups still hold b's seconds.
  EXPECT_EQ(this->Total(*store, {kT0, kT0 + 3600}, Resolution::kHour).samples, 3600 + 100);
}

}  // namespace
}  // namespace gpu_autoscaler::cost
