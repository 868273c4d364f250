// Cost history storage (docs/benchmarks.md, "Cost storage").
//
//   BM_SqliteIngest/P            one metering tick of P pods per batch (one
//                                transaction), into a WAL file; samples/s
//   BM_SqliteRuns/P/C            the same P pods as runs (AppendRuns): one
//                                batch per second in which C pods change
//   BM_SqliteQuery30Days/...     cost by namespace over 30 days at 1-minute
//                                precision, 1,000 namespaces (the CLI's query)
//   BM_SqliteMinuteSeries30Days  the same window bucketed per minute: reads
//                                every 1-minute row (43.2 M), the worst case
//   BM_PostgresIngest/P          as BM_SqliteIngest, when GPA_BENCH_POSTGRES_URL
//                                names a scratch database (its cost tables are
//                                dropped first; else skipped)
//
// The 30-day dataset is written directly as rollup rows (1-minute and 1-hour,
// one series per namespace) because these queries never read raw seconds;
// generating 2.6 G raw seconds would only measure the generator. It is built
// once per run in a temporary file (several minutes, 3 GB), or once and kept
// at $GPA_COST_BENCH_DATASET when that is set.
#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cost/postgres_store.h"
#include "cost/sqlite_store.h"
#include "cost/store.h"

namespace gpu_autoscaler::cost {
namespace {

constexpr int64_t kStart = 1'700'006'400;  // a UTC midnight

std::filesystem::path TempPath(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("gpa-cost-bench-" + std::to_string(::getpid()) + "-" + name);
}

void RemoveDb(const std::filesystem::path& path) {
  for (const char* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(path.string() + suffix);
}

// A cluster's pods: 100 namespaces, 20 teams, 5,000 nodes, three GPU models.
std::vector<CostSample> MakePods(int count) {
  static const char* kModels[] = {"A100-SXM4-80GB", "H100-SXM5-80GB", "L4"};
  std::vector<CostSample> pods(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    CostSample& s = pods[static_cast<size_t>(i)];
    s.pod_uid = "6f1c2a7e-0000-4000-8000-" + std::to_string(100000000000 + i);
    s.pod_name = "job-" + std::to_string(i / 8) + "-worker-" + std::to_string(i % 8);
    s.ns = "ns-" + std::to_string(i % 100);
    s.team = "team-" + std::to_string(i % 20);
    s.project = "project-" + std::to_string(i % 50);
    s.experiment = i % 3 == 0 ? "" : "exp-" + std::to_string(i % 300);
    s.node = "node-" + std::to_string(i % 5000);
    s.gpu_model = kModels[i % 3];
    s.tier = i % 4 == 0 ? CapacityTier::kSpot : CapacityTier::kOnDemand;
    s.gpu_share = i % 5 == 0 ? 1.0 / 7 : 1.0;
    s.gpu_cost = 0.00114 * s.gpu_share;
    s.cpu_cost = 0.00003;
    s.memory_cost = 0.00001;
    s.usage_cost = s.gpu_cost * 0.6;
    s.gpu_utilization = 0.6;
  }
  return pods;
}

template <typename OpenFn>
void RunIngest(benchmark::State& state, OpenFn open) {
  Result<std::unique_ptr<CostStore>> store = open();
  if (!store.ok()) {
    state.SkipWithError(store.error().ToString().c_str());
    return;
  }
  std::vector<CostSample> batch = MakePods(static_cast<int>(state.range(0)));
  int64_t second = kStart;
  auto next_tick = [&] {
    for (CostSample& s : batch)
      s.second = second;
    ++second;
  };
  next_tick();  // first batch interns every pod and series: not steady state
  if (!(*store)->Append(batch).ok()) state.SkipWithError("warm-up append failed");
  for (auto _ : state) {
    state.PauseTiming();
    next_tick();
    state.ResumeTiming();
    Result<AppendStats> stats = (*store)->Append(batch);
    if (!stats.ok() || stats->inserted != static_cast<int64_t>(batch.size())) {
      state.SkipWithError(stats.ok() ? "samples skipped" : stats.error().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["samples/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * state.range(0)), benchmark::Counter::kIsRate);
}

void BM_SqliteIngest(benchmark::State& state) {
  const auto path = TempPath("ingest.db");
  RemoveDb(path);
  RunIngest(state, [&]() -> Result<std::unique_ptr<CostStore>> {
    GPU_ASSIGN_OR_RETURN(auto store, SqliteCostStore::Open(path.string()));
    return std::unique_ptr<CostStore>(std::move(store));
  });
  RemoveDb(path);
}
// Enough ticks that minutes close (every 60th batch writes the rollups).
BENCHMARK(BM_SqliteIngest)
    ->Arg(10'000)
    ->Iterations(180)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_SqliteIngest)
    ->Arg(150'000)
    ->Iterations(90)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Runs (CostStore::AppendRuns), as the manager writes them: the first batch
// opens a run for every pod; then one batch per second in which `churn` pods
// change price (each closes a run and opens one) and the rest go on. Compare
// with BM_SqliteIngest/150000 (one row per pod per second) in the same run.
void BM_SqliteRuns(benchmark::State& state) {
  const auto path = TempPath("runs.db");
  RemoveDb(path);
  {
    Result<std::unique_ptr<SqliteCostStore>> store = SqliteCostStore::Open(path.string());
    if (!store.ok()) {
      state.SkipWithError(store.error().ToString().c_str());
      return;
    }
    std::vector<CostSample> pods = MakePods(static_cast<int>(state.range(0)));
    const size_t churn = static_cast<size_t>(state.range(1));
    int64_t second = kStart;
    if (!(*store)
             ->AppendRuns(
                 {.from = second, .through = second + 1, .complete = true, .started = pods})
             .ok()) {
      state.SkipWithError("warm-up batch failed");
    }
    ++second;
    std::vector<CostSample> changed;
    size_t next = 0;
    int64_t rows = 0;
    for (auto _ : state) {
      state.PauseTiming();
      changed.clear();
      for (size_t i = 0; i < churn; ++i) {
        CostSample& s = pods[next++ % pods.size()];
        s.gpu_cost *= 1.01;  // a price change: a new run
        changed.push_back(s);
      }
      state.ResumeTiming();
      Result<AppendStats> stats =
          (*store)->AppendRuns({.from = second, .through = second + 1, .started = changed});
      if (!stats.ok()) {
        state.SkipWithError(stats.error().ToString().c_str());
        break;
      }
      rows += stats->runs_opened + stats->runs_closed;
      ++second;
    }
    state.counters["pod-seconds/s"] = benchmark::Counter(
        static_cast<double>(state.iterations() * state.range(0)), benchmark::Counter::kIsRate);
    state.counters["row writes/batch"] =
        static_cast<double>(rows) / static_cast<double>(std::max<int64_t>(1, state.iterations()));
  }
  RemoveDb(path);
}
// 180 batches: three minutes close, so the per-series rollups are included.
BENCHMARK(BM_SqliteRuns)
    ->Args({150'000, 0})
    ->Args({150'000, 100})
    ->Args({150'000, 1'000})
    ->Iterations(180)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_PostgresIngest(benchmark::State& state) {
  const char* url = std::getenv("GPA_BENCH_POSTGRES_URL");
  if (url == nullptr || *url == '\0') {
    state.SkipWithError("set GPA_BENCH_POSTGRES_URL to a scratch database to run");
    return;
  }
  // Start from no tables, so every run inserts the same rows.
  PGconn* conn = PQconnectdb(url);
  PGresult* dropped =
      PQexec(conn, "DROP TABLE IF EXISTS cost_raw, cost_1m, cost_1h, series, pods, meta CASCADE");
  const bool ok = PQresultStatus(dropped) == PGRES_COMMAND_OK;
  const std::string error = PQerrorMessage(conn);
  PQclear(dropped);
  PQfinish(conn);
  if (!ok) {
    state.SkipWithError(("cannot reset the database: " + error).c_str());
    return;
  }
  RunIngest(state, [&]() -> Result<std::unique_ptr<CostStore>> {
    GPU_ASSIGN_OR_RETURN(auto store, PostgresCostStore::Open(url));
    return std::unique_ptr<CostStore>(std::move(store));
  });
}
BENCHMARK(BM_PostgresIngest)
    ->Arg(10'000)
    ->Iterations(60)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

constexpr int kNamespaces = 1000;
constexpr int64_t kDays = 30;

// 30 days of 1-minute and 1-hour rollup rows for 1,000 namespaces.
class ThirtyDayDataset {
 public:
  static ThirtyDayDataset& Get() {
    static ThirtyDayDataset dataset;
    return dataset;
  }
  const std::string& error() const { return error_; }
  CostStore* store() const { return store_.get(); }
  ~ThirtyDayDataset() {
    store_.reset();
    if (!keep_) RemoveDb(path_);
  }

 private:
  ThirtyDayDataset() : path_(TempPath("30d.db")) {
    if (const char* kept = std::getenv("GPA_COST_BENCH_DATASET"); kept != nullptr && *kept) {
      path_ = kept;
      keep_ = true;
      if (std::filesystem::exists(path_)) {
        Result<std::unique_ptr<SqliteCostStore>> store = SqliteCostStore::Open(path_.string());
        if (store.ok()) {
          store_ = std::move(*store);
          return;
        }
      }
    }
    RemoveDb(path_);
    Result<std::unique_ptr<SqliteCostStore>> created = SqliteCostStore::Open(path_.string());
    if (!created.ok()) {
      error_ = created.error().ToString();
      return;
    }
    created->reset();  // schema only; rows go in below through SQL
    sqlite3* db = nullptr;
    sqlite3_open(path_.string().c_str(), &db);
    // Namespace i's pods cost (i % 17 + 1) units of 1/1024 per second, on one series each.
    const std::string minutes = std::to_string(kDays * 1440);
    const std::string sql =
        "PRAGMA synchronous = OFF; BEGIN;"
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < " +
        std::to_string(kNamespaces - 1) +
        ") INSERT INTO series(id, ns, team, project, experiment, node, gpu_model, tier, idle) "
        "SELECT i + 1, printf('ns-%04d', i), printf('team-%02d', i % 40), '', '', "
        "printf('node-%03d', i % 300), 'A100', i % 2, 0 FROM n;"
        "WITH RECURSIVE m(b) AS (SELECT " +
        std::to_string(kStart) + " UNION ALL SELECT b + 60 FROM m WHERE b < " +
        std::to_string(kStart) + " + 60 * (" + minutes +
        " - 1)) INSERT INTO cost_1m SELECT b, s.id, 60 * 8, 60 * 8.0, 0, "
        "60 * (s.id % 17 + 1) / 1024.0, 60 * 2 / 1024.0, 60 / 1024.0, 0, 0, "
        "60 * (s.id % 17 + 1) / 1024.0, 0, 0 FROM m, series s ORDER BY b, s.id;"
        "INSERT INTO cost_1h SELECT bucket - bucket % 3600, series_id, sum(samples), "
        "sum(gpu_seconds), 0, sum(gpu_cost), sum(cpu_cost), sum(memory_cost), 0, 0, "
        "sum(exclusive_gpu_cost), 0, 0 FROM cost_1m GROUP BY 1, 2;"
        "UPDATE meta SET value = '" +
        std::to_string(kStart + kDays * 86400) +
        "' WHERE key = 'rolled_until';"
        "COMMIT;";
    char* message = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      error_ = message != nullptr ? message : "dataset generation failed";
    }
    sqlite3_free(message);
    sqlite3_close(db);
    if (!error_.empty()) return;
    Result<std::unique_ptr<SqliteCostStore>> store = SqliteCostStore::Open(path_.string());
    if (!store.ok()) {
      error_ = store.error().ToString();
      return;
    }
    store_ = std::move(*store);
  }

  std::filesystem::path path_;
  bool keep_ = false;
  std::string error_;
  std::unique_ptr<SqliteCostStore> store_;
};

// `gpu-autoscaler cost --by namespace --since 30d`: the 30 days before a
// minute-aligned (not hour-aligned) "now".
CostQuery ThirtyDayQuery() {
  const int64_t until = kStart + kDays * 86400 - 17 * 60;
  return {.window = {until - kDays * 86400, until},
          .resolution = Resolution::kMinute,
          .group_by = {Dimension::kNamespace}};
}

void BM_SqliteQuery30Days(benchmark::State& state) {
  ThirtyDayDataset& data = ThirtyDayDataset::Get();
  if (!data.error().empty()) {
    state.SkipWithError(data.error().c_str());
    return;
  }
  size_t rows = 0;
  for (auto _ : state) {
    Result<CostReport> report = data.store()->Query(ThirtyDayQuery());
    if (!report.ok()) {
      state.SkipWithError(report.error().ToString().c_str());
      break;
    }
    rows = report->rows.size();
  }
  state.counters["namespaces"] = static_cast<double>(rows);
}
BENCHMARK(BM_SqliteQuery30Days)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

void BM_SqliteMinuteSeries30Days(benchmark::State& state) {
  ThirtyDayDataset& data = ThirtyDayDataset::Get();
  if (!data.error().empty()) {
    state.SkipWithError(data.error().c_str());
    return;
  }
  CostQuery query = ThirtyDayQuery();
  query.group_by.clear();
  query.bucket = Resolution::kMinute;
  size_t rows = 0;
  for (auto _ : state) {
    Result<CostReport> report = data.store()->Query(query);
    if (!report.ok()) {
      state.SkipWithError(report.error().ToString().c_str());
      break;
    }
    rows = report->rows.size();
  }
  state.counters["buckets"] = static_cast<double>(rows);
  state.counters["rows_read"] = static_cast<double>(rows) * kNamespaces;
}
BENCHMARK(BM_SqliteMinuteSeries30Days)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

}  // namespace
}  // namespace gpu_autoscaler::cost

BENCHMARK_MAIN();
