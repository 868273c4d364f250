// SqliteCostStore: opening and migrating the file, the caches loaded from it,
// queries and retention. The write path is in sqlite_store_append.cc.
#include "cost/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "cost/sqlite_format.h"
#include "cost/sqlite_statement.h"
#include "cost/sqlite_store_impl.h"
#include "cost/store_internal.h"

namespace gpu_autoscaler::cost {
namespace {

using internal::Horizons;
using internal::kRollupColumns;
using internal::OpenRun;
using internal::SeriesKey;
using sqlite::BindText;
using sqlite::ColumnText;
using sqlite::kMigrations;
using sqlite::kRawValues;
using sqlite::PackRawValuesSql;
using sqlite::ResetOnExit;
using sqlite::Statement;
using sqlite::UnpackRawValues;

std::string UpsertRollupSql(const char* table) {
  std::string sql = std::string("INSERT INTO ") + table + "(bucket, series_id, " + kRollupColumns +
                    ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
                    "ON CONFLICT(bucket, series_id) DO UPDATE SET ";
  return sql + internal::RollupAccumulation("", "excluded");
}

}  // namespace

SqliteCostStore::Impl::~Impl() {
  // Statements must be finalized before the connection closes.
  insert_raw = {};
  select_cover = {};
  upsert_run = {};
  close_run = {};
  for (Statement& stmt : insert_fresh)
    stmt = {};
  select_newest_second = {};
  upsert_minute = {};
  upsert_hour = {};
  insert_pod = {};
  select_pod = {};
  insert_series = {};
  select_series = {};
  select_pod_name = {};
  if (db != nullptr) sqlite3_close(db);
}

Status SqliteCostStore::Impl::Error(std::string_view what) const {
  return InternalError("sqlite " + path + ": " + std::string(what) + ": " + sqlite3_errmsg(db));
}

Status SqliteCostStore::Impl::CorruptRawRow(int bytes) const {
  return InternalError("sqlite " + path + ": corrupt cost_raw row: value blob of " +
                       std::to_string(bytes) + " bytes, want " +
                       std::to_string(sizeof(PackedRawValues)));
}

Status SqliteCostStore::Impl::Exec(const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    const bool busy = sqlite3_errcode(db) == SQLITE_BUSY;
    return Status(busy ? StatusCode::kUnavailable : StatusCode::kInternal,
                  "sqlite " + path + ": " + text);
  }
  return Status::Ok();
}

Result<Statement> SqliteCostStore::Impl::Prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt, nullptr) != SQLITE_OK) {
    return Error("prepare \"" + sql.substr(0, 60) + "\"");
  }
  return Statement(stmt);
}

Status SqliteCostStore::Impl::StepDone(sqlite3_stmt* stmt, std::string_view what) {
  if (sqlite3_step(stmt) != SQLITE_DONE) return Error(what);
  return Status::Ok();
}

Result<std::string> SqliteCostStore::Impl::MetaValue(const std::string& key) {
  GPU_ASSIGN_OR_RETURN(Statement stmt, Prepare("SELECT value FROM meta WHERE key = ?1"));
  BindText(stmt.get(), 1, key);
  const int rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_ROW) return ColumnText(stmt.get(), 0);
  if (rc == SQLITE_DONE) return std::string();
  return Error("read meta " + key);
}

Status SqliteCostStore::Impl::SetMeta(const std::string& key, int64_t value) {
  GPU_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare("INSERT INTO meta(key, value) VALUES(?1, ?2) "
                               "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
  BindText(stmt.get(), 1, key);
  const std::string text = std::to_string(value);
  BindText(stmt.get(), 2, text);
  return StepDone(stmt.get(), "write meta " + key);
}

Result<int> SqliteCostStore::Impl::ReadVersion() {
  GPU_ASSIGN_OR_RETURN(std::string v, MetaValue("schema_version"));
  return v.empty() ? 0 : std::atoi(v.c_str());
}

Status SqliteCostStore::Impl::Migrate(int target) {
  GPU_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status status = MigrateInTransaction(target);
  if (!status.ok()) {
    (void)Exec("ROLLBACK");
    return status;
  }
  return Exec("COMMIT");
}

Status SqliteCostStore::Impl::MigrateInTransaction(int target) {
  GPU_RETURN_IF_ERROR(
      Exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"));
  GPU_ASSIGN_OR_RETURN(version, ReadVersion());
  return internal::StepSchema(
      "sqlite " + path, version, target, kMigrations,
      [this](const char* script) { return Exec(script); },
      [this](int next) {
        version = next;
        return SetMeta("schema_version", next);
      });
}

Status SqliteCostStore::Impl::PrepareStatements() {
  GPU_ASSIGN_OR_RETURN(insert_raw,
                       Prepare("INSERT INTO cost_runs(pod_id, start, end_second, series_id, v) "
                               "VALUES(?2, ?1, ?1 + 1, ?3, ?4)"));
  // The pod's last run starting at or before a second: it covers the second
  // when it ends after it (an open one: before the watermark).
  GPU_ASSIGN_OR_RETURN(select_cover,
                       Prepare("SELECT coalesce(end_second, ?3) FROM cost_runs "
                               "WHERE pod_id = ?1 AND start <= ?2 ORDER BY start DESC LIMIT 1"));
  GPU_ASSIGN_OR_RETURN(upsert_run,
                       Prepare("INSERT INTO cost_runs(pod_id, start, end_second, series_id, v) "
                               "VALUES(?1, ?2, NULL, ?3, ?4) ON CONFLICT(pod_id, start) DO "
                               "UPDATE SET end_second = NULL, series_id = excluded.series_id, "
                               "v = excluded.v"));
  GPU_ASSIGN_OR_RETURN(
      close_run, Prepare("UPDATE cost_runs SET end_second = ?3 WHERE pod_id = ?1 AND start = ?2"));
  GPU_ASSIGN_OR_RETURN(select_newest_second, Prepare("SELECT max(end_second) FROM cost_runs"));
  GPU_ASSIGN_OR_RETURN(upsert_minute, Prepare(UpsertRollupSql("cost_1m")));
  GPU_ASSIGN_OR_RETURN(upsert_hour, Prepare(UpsertRollupSql("cost_1h")));
  GPU_ASSIGN_OR_RETURN(insert_pod, Prepare("INSERT INTO pods(uid, ns, name) VALUES(?1, ?2, ?3) "
                                           "ON CONFLICT(uid) DO NOTHING"));
  GPU_ASSIGN_OR_RETURN(select_pod, Prepare("SELECT id FROM pods WHERE uid = ?1"));
  GPU_ASSIGN_OR_RETURN(
      insert_series,
      Prepare("INSERT INTO series(ns, team, project, experiment, node, gpu_model, tier, idle) "
              "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING"));
  GPU_ASSIGN_OR_RETURN(
      select_series,
      Prepare("SELECT id FROM series WHERE ns = ?1 AND team = ?2 AND project = ?3 AND "
              "experiment = ?4 AND node = ?5 AND gpu_model = ?6 AND tier = ?7 AND idle = ?8"));
  GPU_ASSIGN_OR_RETURN(select_pod_name, Prepare("SELECT ns, name, uid FROM pods WHERE id = ?1"));
  return Status::Ok();
}

Status SqliteCostStore::Impl::LoadSeries() {
  series.clear();
  series_ids.clear();
  GPU_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare("SELECT id, ns, team, project, experiment, node, gpu_model, tier, idle FROM series"));
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    const int64_t id = sqlite3_column_int64(stmt.get(), 0);
    SeriesKey key{ColumnText(stmt.get(), 1),
                  ColumnText(stmt.get(), 2),
                  ColumnText(stmt.get(), 3),
                  ColumnText(stmt.get(), 4),
                  ColumnText(stmt.get(), 5),
                  ColumnText(stmt.get(), 6),
                  static_cast<CapacityTier>(sqlite3_column_int(stmt.get(), 7)),
                  sqlite3_column_int(stmt.get(), 8) != 0};
    RememberSeries(id, std::move(key));
  }
  if (rc != SQLITE_DONE) return Error("load series");
  return Status::Ok();
}

void SqliteCostStore::Impl::RememberSeries(int64_t id, SeriesKey key) {
  if (id < 0) return;
  if (static_cast<size_t>(id) >= series.size()) series.resize(static_cast<size_t>(id) + 1);
  series_ids[key.Encoded()] = id;
  series[static_cast<size_t>(id)] = std::move(key);
}

const SeriesKey* SqliteCostStore::Impl::FindSeries(int64_t id) {
  if (id < 0) return nullptr;
  if (static_cast<size_t>(id) >= series.size() || !series[static_cast<size_t>(id)]) {
    (void)LoadSeries();  // written by another process since we loaded
  }
  if (static_cast<size_t>(id) >= series.size() || !series[static_cast<size_t>(id)]) {
    return nullptr;
  }
  return &*series[static_cast<size_t>(id)];
}

Status SqliteCostStore::Impl::LoadHorizons() {
  int64_t* fields[] = {&horizons.second, &horizons.minute, &horizons.hour, &horizons.rolled_until};
  const char* keys[] = {"horizon_second", "horizon_minute", "horizon_hour", "rolled_until"};
  for (int i = 0; i < 4; ++i) {
    GPU_ASSIGN_OR_RETURN(std::string v, MetaValue(keys[i]));
    *fields[i] = v.empty() ? 0 : std::atoll(v.c_str());
  }
  GPU_ASSIGN_OR_RETURN(std::string through, MetaValue("metered_through"));
  metered_through = through.empty() ? INT64_MIN : std::atoll(through.c_str());
  return Status::Ok();
}

Status SqliteCostStore::Impl::LoadPending() {
  pending.Clear();
  GPU_RETURN_IF_ERROR(ScanRuns(
      horizons.rolled_until, INT64_MAX,
      [&](int64_t, int64_t start, int64_t end, int64_t series_id, const CostSample& sample) {
        const CostTotals t = CostTotals::FromSample(sample);
        internal::ForEachMinute(std::max(start, horizons.rolled_until), end,
                                [&](int64_t minute, int64_t n) {
                                  pending.Add(minute, series_id, internal::Scaled(t, n));
                                });
      }));
  pending_loaded = true;
  return Status::Ok();
}

Status SqliteCostStore::Impl::LoadLedger() {
  ledger.Clear();
  GPU_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare("SELECT r.pod_id, p.uid, r.start, r.series_id, r.v FROM "
                               "cost_runs r JOIN pods p ON p.id = r.pod_id "
                               "WHERE r.end_second IS NULL"));
  sqlite3_stmt* st = stmt.get();
  CostSample sample;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!UnpackRawValues(sqlite3_column_blob(st, 4), sqlite3_column_bytes(st, 4), sample)) {
      return CorruptRawRow(sqlite3_column_bytes(st, 4));
    }
    const int64_t series_id = sqlite3_column_int64(st, 3);
    const SeriesKey* key = FindSeries(series_id);
    OpenRun run{sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 2), series_id,
                internal::ValuesOf(sample), key != nullptr && key->idle};
    ledger.Load(ColumnText(st, 1), run);
  }
  if (rc != SQLITE_DONE) return Error("load open runs");
  ledger.MarkLoaded();
  return Status::Ok();
}

Result<int64_t> SqliteCostStore::Impl::NewestClosedEnd() {
  sqlite3_stmt* stmt = select_newest_second.get();
  ResetOnExit reset(stmt);
  if (sqlite3_step(stmt) != SQLITE_ROW) return Error("select newest second");
  return sqlite3_column_type(stmt, 0) == SQLITE_NULL ? INT64_MIN : sqlite3_column_int64(stmt, 0);
}

Result<int64_t> SqliteCostStore::Impl::NewestStoredSecond() {
  GPU_ASSIGN_OR_RETURN(const int64_t end, NewestClosedEnd());
  const int64_t newest_end = std::max(end, metered_through);
  return newest_end == INT64_MIN ? INT64_MIN : newest_end - 1;
}

Status SqliteCostStore::Impl::RequireLatest() const {
  if (version == kLatestCostSchemaVersion) return Status::Ok();
  return FailedPreconditionError("sqlite " + path + ": opened at schema version " +
                                 std::to_string(version) + ", reopen to migrate to " +
                                 std::to_string(kLatestCostSchemaVersion));
}

Status SqliteCostStore::Impl::ScanRollup(const internal::Segment& segment,
                                         internal::ReportBuilder& builder) {
  const char* table = segment.resolution == Resolution::kMinute ? "cost_1m" : "cost_1h";
  GPU_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(std::string("SELECT bucket, series_id, ") + kRollupColumns +
                               " FROM " + table + " WHERE bucket >= ?1 AND bucket < ?2"));
  sqlite3_stmt* s = stmt.get();
  sqlite3_bind_int64(s, 1, segment.from);
  sqlite3_bind_int64(s, 2, segment.to);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    CostTotals t;
    t.samples = sqlite3_column_int64(s, 2);
    t.gpu_seconds = sqlite3_column_double(s, 3);
    t.idle_gpu_seconds = sqlite3_column_double(s, 4);
    t.gpu_cost = sqlite3_column_double(s, 5);
    t.cpu_cost = sqlite3_column_double(s, 6);
    t.memory_cost = sqlite3_column_double(s, 7);
    t.usage_cost = sqlite3_column_double(s, 8);
    t.idle_cost = sqlite3_column_double(s, 9);
    t.exclusive_gpu_cost = sqlite3_column_double(s, 10);
    t.utilized_gpu_seconds = sqlite3_column_double(s, 11);
    t.metered_gpu_seconds = sqlite3_column_double(s, 12);
    builder.Add(sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), 0, t);
  }
  if (rc != SQLITE_DONE) return Error(std::string("scan ") + table);
  return Status::Ok();
}

Status SqliteCostStore::Impl::ScanRaw(const internal::Segment& segment,
                                      internal::ReportBuilder& builder) {
  return ScanRuns(
      segment.from, segment.to,
      [&](int64_t pod_id, int64_t start, int64_t end, int64_t series_id, const CostSample& sample) {
        builder.AddRun(std::max(start, segment.from), std::min(end, segment.to), series_id, pod_id,
                       CostTotals::FromSample(sample));
      });
}

std::string SqliteCostStore::Impl::PodName(int64_t pod_id) {
  sqlite3_stmt* s = select_pod_name.get();
  ResetOnExit reset(s);
  sqlite3_bind_int64(s, 1, pod_id);
  if (sqlite3_step(s) != SQLITE_ROW) return "pod#" + std::to_string(pod_id);
  std::string ns = ColumnText(s, 0);
  std::string name = ColumnText(s, 1);
  if (name.empty()) return ColumnText(s, 2);
  return ns + "/" + name;
}

Result<CostReport> SqliteCostStore::Impl::QueryInTransaction(const CostQuery& query) {
  GPU_RETURN_IF_ERROR(LoadHorizons());
  return internal::RunQuery(
      query, horizons,
      {.series = [this](int64_t id) { return FindSeries(id); },
       .pod_names = [this](int64_t pod_id) { return PodName(pod_id); },
       .scan_seconds = [this](const auto& s, auto& b) { return ScanRaw(s, b); },
       .scan_rollup = [this](const auto& s, auto& b) { return ScanRollup(s, b); }});
}

SqliteCostStore::SqliteCostStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteCostStore::~SqliteCostStore() = default;

Result<std::unique_ptr<SqliteCostStore>> SqliteCostStore::Open(const std::string& path,
                                                               const SqliteStoreOptions& options) {
  if (options.schema_version < 1 || options.schema_version > kLatestCostSchemaVersion) {
    return InvalidArgumentError("schema_version must be 1.." +
                                std::to_string(kLatestCostSchemaVersion));
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const int flags = options.read_only
                        ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
                        : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &impl->db, flags, nullptr) != SQLITE_OK) {
    return impl->db == nullptr
               ? InternalError("sqlite " + path + ": out of memory")
               : UnavailableError("cannot open " + path + ": " + sqlite3_errmsg(impl->db));
  }
  sqlite3_busy_timeout(impl->db, 30'000);
  if (options.read_only) {
    GPU_RETURN_IF_ERROR(impl->Exec("PRAGMA cache_size = -" +
                                   std::to_string(options.cache_mib * 1024) +
                                   "; PRAGMA temp_store = MEMORY"));
    auto version = impl->ReadVersion();
    if (!version.ok()) {
      return FailedPreconditionError("sqlite " + path + ": not a gpu-autoscaler cost history (" +
                                     version.error().message() + ")");
    }
    impl->version = *version;
    if (impl->version != kLatestCostSchemaVersion)
      return internal::SchemaMismatch("sqlite " + path, impl->version);
    GPU_RETURN_IF_ERROR(impl->PrepareStatements());
    GPU_RETURN_IF_ERROR(impl->LoadSeries());
    GPU_RETURN_IF_ERROR(impl->LoadHorizons());
    return std::unique_ptr<SqliteCostStore>(new SqliteCostStore(std::move(impl)));
  }
  // Larger pages: fewer B-tree splits on the append-mostly raw table. Only
  // takes effect when the file is created.
  GPU_RETURN_IF_ERROR(impl->Exec("PRAGMA page_size = 16384"));
  GPU_RETURN_IF_ERROR(impl->Exec("PRAGMA journal_mode = WAL"));
  GPU_RETURN_IF_ERROR(impl->Exec(options.synchronous_full ? "PRAGMA synchronous = FULL"
                                                          : "PRAGMA synchronous = NORMAL"));
  // The page cache (options.cache_mib); the WAL is truncated back to 64 MiB
  // after a checkpoint, so one huge batch does not leave a huge file behind.
  GPU_RETURN_IF_ERROR(
      impl->Exec("PRAGMA cache_size = -" + std::to_string(options.cache_mib * 1024) +
                 "; PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = 67108864"));
  if (sqlite3_create_function_v2(impl->db, "gpa_pack_raw_values", kRawValues,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, nullptr,
                                 &PackRawValuesSql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return impl->Error("register gpa_pack_raw_values");
  }
  GPU_RETURN_IF_ERROR(impl->Migrate(options.schema_version));
  if (impl->version == kLatestCostSchemaVersion) {
    GPU_RETURN_IF_ERROR(impl->PrepareStatements());
    GPU_RETURN_IF_ERROR(impl->LoadSeries());
    GPU_RETURN_IF_ERROR(impl->LoadHorizons());
  }
  return std::unique_ptr<SqliteCostStore>(new SqliteCostStore(std::move(impl)));
}

Result<CostReport> SqliteCostStore::Query(const CostQuery& query) {
  GPU_RETURN_IF_ERROR(impl_->RequireLatest());
  // One read transaction: every segment sees the same snapshot.
  GPU_RETURN_IF_ERROR(impl_->Exec("BEGIN"));
  Result<CostReport> report = impl_->QueryInTransaction(query);
  (void)impl_->Exec("COMMIT");
  return report;
}

Result<RetentionStats> SqliteCostStore::ApplyRetention(const RetentionPolicy& policy, int64_t now) {
  GPU_RETURN_IF_ERROR(impl_->RequireLatest());
  GPU_RETURN_IF_ERROR(impl_->Exec("BEGIN IMMEDIATE"));
  RetentionStats stats;
  auto run = [&]() -> Status {
    GPU_RETURN_IF_ERROR(impl_->LoadHorizons());
    const Horizons next = internal::RetentionHorizons(policy, now, impl_->horizons);
    struct Step {
      const char* sql;
      int64_t horizon;
      int64_t* deleted;
      const char* meta;
    };
    const Step steps[] = {
        {"DELETE FROM cost_runs WHERE end_second <= ?1", next.second, &stats.raw_deleted,
         "horizon_second"},
        {"DELETE FROM cost_1m WHERE bucket < ?1", next.minute, &stats.minute_deleted,
         "horizon_minute"},
        {"DELETE FROM cost_1h WHERE bucket < ?1", next.hour, &stats.hour_deleted, "horizon_hour"},
    };
    for (const Step& step : steps) {
      GPU_ASSIGN_OR_RETURN(Statement stmt, impl_->Prepare(step.sql));
      sqlite3_bind_int64(stmt.get(), 1, step.horizon);
      GPU_RETURN_IF_ERROR(impl_->StepDone(stmt.get(), step.sql));
      *step.deleted = sqlite3_changes(impl_->db);
      GPU_RETURN_IF_ERROR(impl_->SetMeta(step.meta, step.horizon));
    }
    impl_->horizons = next;
    return Status::Ok();
  };
  Status status = run();
  if (status.ok()) status = impl_->Exec("COMMIT");
  if (!status.ok()) {
    (void)impl_->Exec("ROLLBACK");
    (void)impl_->LoadHorizons();
    return status;
  }
  return stats;
}

Result<int> SqliteCostStore::SchemaVersion() {
  return impl_->ReadVersion();
}

Result<std::optional<int64_t>> SqliteCostStore::NewestSecond() {
  GPU_RETURN_IF_ERROR(impl_->RequireLatest());
  GPU_RETURN_IF_ERROR(impl_->LoadHorizons());  // another writer may have moved the watermark
  GPU_ASSIGN_OR_RETURN(int64_t newest, impl_->NewestStoredSecond());
  if (newest == INT64_MIN) return std::optional<int64_t>();
  return std::optional<int64_t>(newest);
}

}  // namespace gpu_autoscaler::cost
