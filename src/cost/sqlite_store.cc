#include "cost/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/failpoint.h"
#include "cost/pending_rollups.h"
#include "cost/run_ledger.h"
#include "cost/sqlite_format.h"
#include "cost/sqlite_statement.h"
#include "cost/store_internal.h"

namespace gpu_autoscaler::cost {
namespace {

using internal::FloorTo;
using internal::Horizons;
using internal::kRollupColumns;
using internal::OpenRun;
using internal::RunValues;
using internal::SeriesKey;
using sqlite::BindText;
using sqlite::BucketKey;
using sqlite::BucketKeyHash;
using sqlite::ColumnText;
using sqlite::kMigrations;
using sqlite::kRawValues;
using sqlite::PackedRawValues;
using sqlite::PackRawValues;
using sqlite::PackRawValuesSql;
using sqlite::PackRunValues;
using sqlite::PendingRollups;
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

struct SqliteCostStore::Impl {
  sqlite3* db = nullptr;
  std::string path;
  int version = 0;

  Statement insert_raw;
  Statement select_cover;
  Statement upsert_run;
  Statement close_run;
  Statement upsert_minute;
  Statement upsert_hour;
  Statement insert_pod;
  Statement select_pod;
  Statement insert_series;
  Statement select_series;
  Statement select_pod_name;

  // Interned ids. Ids are never reused, so entries stay valid; they are
  // dropped when a transaction that created some of them rolls back.
  struct PodEntry {
    int64_t pod_id;
    int64_t series_id;
    // The newest second of this pod in batch number `batch`, to tell which of
    // its rows cannot be stored yet (see AppendInTransaction).
    uint64_t batch = 0;
    int64_t batch_newest = INT64_MIN;
  };
  std::unordered_map<std::string, PodEntry> pods;
  std::unordered_map<std::string, int64_t> series_ids;
  std::vector<std::optional<SeriesKey>> series;  // by id
  Horizons horizons;
  // Where open runs end (meta 'metered_through'); INT64_MIN: none written.
  int64_t metered_through = INT64_MIN;
  internal::RunLedger ledger;
  // Rollups of seconds >= horizons.rolled_until live here until their minute
  // closes; they are rebuilt from the raw table before the first Append.
  PendingRollups pending;
  bool pending_loaded = false;
  std::unordered_map<BucketKey, CostTotals, BucketKeyHash> late_minutes;  // seconds < rolled_until
  std::unordered_map<BucketKey, CostTotals, BucketKeyHash> late_hours;
  // The pod entry seen at each position of the previous batch: metering
  // emits pods in the same order every tick, so this usually avoids hashing.
  std::vector<std::pair<const std::string*, PodEntry*>> batch_memo;
  uint64_t batch_number = 0;

  // Rows known to be new, written kMaxRowsPerInsert at a time by multi-row
  // INSERTs: one statement per power-of-two row count, prepared on first use.
  struct RawRow {
    int64_t second;
    int64_t pod_id;
    int64_t series_id;
    PackedRawValues values;
  };
  static constexpr size_t kMaxRowsPerInsert = 128;  // 640 parameters, under every build's limit
  std::vector<RawRow> fresh;
  std::array<Statement, 8> insert_fresh;  // [k]: 2^k rows
  Statement select_newest_second;

  ~Impl() {
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

  Status Error(std::string_view what) const {
    return InternalError("sqlite " + path + ": " + std::string(what) + ": " + sqlite3_errmsg(db));
  }

  Status CorruptRawRow(int bytes) const {
    return InternalError("sqlite " + path + ": corrupt cost_raw row: value blob of " +
                         std::to_string(bytes) + " bytes, want " +
                         std::to_string(sizeof(PackedRawValues)));
  }

  Status Exec(const std::string& sql) {
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

  Result<Statement> Prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &stmt, nullptr) != SQLITE_OK) {
      return Error("prepare \"" + sql.substr(0, 60) + "\"");
    }
    return Statement(stmt);
  }

  Status StepDone(sqlite3_stmt* stmt, std::string_view what) {
    if (sqlite3_step(stmt) != SQLITE_DONE) return Error(what);
    return Status::Ok();
  }

  Result<std::string> MetaValue(const std::string& key) {
    GPU_ASSIGN_OR_RETURN(Statement stmt, Prepare("SELECT value FROM meta WHERE key = ?1"));
    BindText(stmt.get(), 1, key);
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_ROW) return ColumnText(stmt.get(), 0);
    if (rc == SQLITE_DONE) return std::string();
    return Error("read meta " + key);
  }

  Status SetMeta(const std::string& key, int64_t value) {
    GPU_ASSIGN_OR_RETURN(Statement stmt,
                         Prepare("INSERT INTO meta(key, value) VALUES(?1, ?2) "
                                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
    BindText(stmt.get(), 1, key);
    const std::string text = std::to_string(value);
    BindText(stmt.get(), 2, text);
    return StepDone(stmt.get(), "write meta " + key);
  }

  Result<int> ReadVersion() {
    GPU_ASSIGN_OR_RETURN(std::string v, MetaValue("schema_version"));
    return v.empty() ? 0 : std::atoi(v.c_str());
  }

  Status Migrate(int target) {
    GPU_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status status = MigrateInTransaction(target);
    if (!status.ok()) {
      (void)Exec("ROLLBACK");
      return status;
    }
    return Exec("COMMIT");
  }

  Status MigrateInTransaction(int target) {
    GPU_RETURN_IF_ERROR(
        Exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"));
    GPU_ASSIGN_OR_RETURN(version, ReadVersion());
    if (version > kLatestCostSchemaVersion) {
      return FailedPreconditionError("sqlite " + path + ": schema version " +
                                     std::to_string(version) +
                                     " is newer than this program supports (" +
                                     std::to_string(kLatestCostSchemaVersion) + ")");
    }
    while (version < target) {
      Status step = Exec(kMigrations[static_cast<size_t>(version)]);
      if (!step.ok()) {
        return step.WithContext("migrating to schema version " + std::to_string(version + 1));
      }
      ++version;
      GPU_RETURN_IF_ERROR(SetMeta("schema_version", version));
    }
    return Status::Ok();
  }

  Status PrepareStatements() {
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
        close_run,
        Prepare("UPDATE cost_runs SET end_second = ?3 WHERE pod_id = ?1 AND start = ?2"));
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

  Status LoadSeries() {
    series.clear();
    series_ids.clear();
    GPU_ASSIGN_OR_RETURN(
        Statement stmt,
        Prepare(
            "SELECT id, ns, team, project, experiment, node, gpu_model, tier, idle FROM series"));
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

  void RememberSeries(int64_t id, SeriesKey key) {
    if (id < 0) return;
    if (static_cast<size_t>(id) >= series.size()) series.resize(static_cast<size_t>(id) + 1);
    series_ids[key.Encoded()] = id;
    series[static_cast<size_t>(id)] = std::move(key);
  }

  const SeriesKey* FindSeries(int64_t id) {
    if (id < 0) return nullptr;
    if (static_cast<size_t>(id) >= series.size() || !series[static_cast<size_t>(id)]) {
      (void)LoadSeries();  // written by another process since we loaded
    }
    if (static_cast<size_t>(id) >= series.size() || !series[static_cast<size_t>(id)]) {
      return nullptr;
    }
    return &*series[static_cast<size_t>(id)];
  }

  Status LoadHorizons() {
    int64_t* fields[] = {&horizons.second, &horizons.minute, &horizons.hour,
                         &horizons.rolled_until};
    const char* keys[] = {"horizon_second", "horizon_minute", "horizon_hour", "rolled_until"};
    for (int i = 0; i < 4; ++i) {
      GPU_ASSIGN_OR_RETURN(std::string v, MetaValue(keys[i]));
      *fields[i] = v.empty() ? 0 : std::atoll(v.c_str());
    }
    GPU_ASSIGN_OR_RETURN(std::string through, MetaValue("metered_through"));
    metered_through = through.empty() ? INT64_MIN : std::atoll(through.c_str());
    return Status::Ok();
  }

  // Calls fn(pod_id, start, end, series_id, values) for every run that
  // overlaps [from, to) (open runs end at the watermark), unclipped.
  template <typename Fn>
  Status ScanRuns(int64_t from, int64_t to, Fn fn) {
    GPU_ASSIGN_OR_RETURN(
        Statement stmt,
        Prepare("SELECT pod_id, start, ?3, series_id, v FROM cost_runs "
                "WHERE end_second IS NULL AND start < ?2 AND ?3 > ?1 "
                "UNION ALL SELECT pod_id, start, end_second, series_id, v FROM cost_runs "
                "WHERE end_second > ?1 AND start < ?2"));
    sqlite3_stmt* st = stmt.get();
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    sqlite3_bind_int64(st, 3, metered_through == INT64_MIN ? 0 : metered_through);
    CostSample sample;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const int64_t series_id = sqlite3_column_int64(st, 3);
      const SeriesKey* key = FindSeries(series_id);
      sample.idle = key != nullptr && key->idle;
      if (!UnpackRawValues(sqlite3_column_blob(st, 4), sqlite3_column_bytes(st, 4), sample)) {
        return CorruptRawRow(sqlite3_column_bytes(st, 4));
      }
      fn(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
         series_id, sample);
    }
    if (rc != SQLITE_DONE) return Error("scan cost_runs");
    return Status::Ok();
  }

  // Rebuilds the open minutes from the runs' seconds not yet rolled up.
  Status LoadPending() {
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

  // Reads the open runs back into the ledger.
  Status LoadLedger() {
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

  Result<int64_t> InternSeries(const CostSample& s) {
    SeriesKey key = SeriesKey::Of(s);
    std::string encoded = key.Encoded();
    if (auto it = series_ids.find(encoded); it != series_ids.end()) return it->second;
    sqlite3_stmt* ins = insert_series.get();
    {
      ResetOnExit reset(ins);
      BindText(ins, 1, key.ns);
      BindText(ins, 2, key.team);
      BindText(ins, 3, key.project);
      BindText(ins, 4, key.experiment);
      BindText(ins, 5, key.node);
      BindText(ins, 6, key.gpu_model);
      sqlite3_bind_int(ins, 7, static_cast<int>(key.tier));
      sqlite3_bind_int(ins, 8, key.idle ? 1 : 0);
      GPU_RETURN_IF_ERROR(StepDone(ins, "insert series"));
    }
    int64_t id = 0;
    if (sqlite3_changes(db) == 1) {
      id = sqlite3_last_insert_rowid(db);
    } else {
      sqlite3_stmt* sel = select_series.get();
      ResetOnExit reset(sel);
      BindText(sel, 1, key.ns);
      BindText(sel, 2, key.team);
      BindText(sel, 3, key.project);
      BindText(sel, 4, key.experiment);
      BindText(sel, 5, key.node);
      BindText(sel, 6, key.gpu_model);
      sqlite3_bind_int(sel, 7, static_cast<int>(key.tier));
      sqlite3_bind_int(sel, 8, key.idle ? 1 : 0);
      if (sqlite3_step(sel) != SQLITE_ROW) return Error("select series");
      id = sqlite3_column_int64(sel, 0);
    }
    RememberSeries(id, std::move(key));
    return id;
  }

  Result<PodEntry> Intern(const CostSample& s) {
    auto it = pods.find(s.pod_uid);
    if (it != pods.end()) {
      const PodEntry entry = it->second;
      const auto& known = series[static_cast<size_t>(entry.series_id)];
      if (known && known->Matches(s)) return entry;
      // The pod's labels (or node) changed: a new series from now on.
      GPU_ASSIGN_OR_RETURN(int64_t series_id, InternSeries(s));
      it->second.series_id = series_id;
      return it->second;
    }
    GPU_ASSIGN_OR_RETURN(int64_t series_id, InternSeries(s));
    int64_t pod_id = 0;
    {
      sqlite3_stmt* ins = insert_pod.get();
      ResetOnExit reset(ins);
      BindText(ins, 1, s.pod_uid);
      BindText(ins, 2, s.ns);
      BindText(ins, 3, s.pod_name);
      GPU_RETURN_IF_ERROR(StepDone(ins, "insert pod"));
    }
    if (sqlite3_changes(db) == 1) {
      pod_id = sqlite3_last_insert_rowid(db);
    } else {
      sqlite3_stmt* sel = select_pod.get();
      ResetOnExit reset(sel);
      BindText(sel, 1, s.pod_uid);
      if (sqlite3_step(sel) != SQLITE_ROW) return Error("select pod");
      pod_id = sqlite3_column_int64(sel, 0);
    }
    PodEntry entry{pod_id, series_id};
    pods.emplace(s.pod_uid, entry);
    return entry;
  }

  Status Upsert(sqlite3_stmt* stmt, int64_t bucket, int64_t series_id, const CostTotals& t) {
    ResetOnExit reset(stmt);
    sqlite3_bind_int64(stmt, 1, bucket);
    sqlite3_bind_int64(stmt, 2, series_id);
    sqlite3_bind_int64(stmt, 3, t.samples);
    const double values[] = {t.gpu_seconds,        t.idle_gpu_seconds,   t.gpu_cost,
                             t.cpu_cost,           t.memory_cost,        t.usage_cost,
                             t.idle_cost,          t.exclusive_gpu_cost, t.utilized_gpu_seconds,
                             t.metered_gpu_seconds};
    for (int i = 0; i < 10; ++i)
      sqlite3_bind_double(stmt, 4 + i, values[i]);
    return StepDone(stmt, "upsert rollup");
  }

  // The interned pod (stable address: unordered_map elements survive
  // rehashing) whose series_id is `s`'s series.
  Result<PodEntry*> InternAt(const CostSample& s, size_t position) {
    if (position < batch_memo.size()) {
      auto [uid, entry] = batch_memo[position];
      if (uid != nullptr && *uid == s.pod_uid) {
        const auto& known = series[static_cast<size_t>(entry->series_id)];
        if (known && known->Matches(s)) return entry;
      }
    } else {
      batch_memo.resize(position + 1, {nullptr, nullptr});
    }
    if (Result<PodEntry> interned = Intern(s); !interned.ok()) return interned.error();
    auto it = pods.find(s.pod_uid);
    batch_memo[position] = {&it->first, &it->second};
    return &it->second;
  }

  // One past the newest second a closed run covers (INT64_MIN: none).
  Result<int64_t> NewestClosedEnd() {
    sqlite3_stmt* stmt = select_newest_second.get();
    ResetOnExit reset(stmt);
    if (sqlite3_step(stmt) != SQLITE_ROW) return Error("select newest second");
    return sqlite3_column_type(stmt, 0) == SQLITE_NULL ? INT64_MIN : sqlite3_column_int64(stmt, 0);
  }

  // The newest second stored at all (closed runs, or open ones up to the
  // watermark); INT64_MIN when nothing is.
  Result<int64_t> NewestStoredSecond() {
    GPU_ASSIGN_OR_RETURN(const int64_t end, NewestClosedEnd());
    const int64_t newest_end = std::max(end, metered_through);
    return newest_end == INT64_MIN ? INT64_MIN : newest_end - 1;
  }

  Result<sqlite3_stmt*> FreshInsert(int log2_rows) {
    Statement& stmt = insert_fresh[static_cast<size_t>(log2_rows)];
    if (stmt.get() == nullptr) {
      // No ON CONFLICT: these rows cannot conflict, and if one did (a bug)
      // the error rolls the whole batch back rather than dropping the row.
      // OR FAIL keeps the rows before it, so SQLite needs no statement
      // journal; the transaction is rolled back anyway.
      std::string sql =
          "INSERT OR FAIL INTO cost_runs(pod_id, start, end_second, series_id, v) VALUES ";
      for (int i = 0; i < (1 << log2_rows); ++i)
        sql += i == 0 ? "(?,?,?,?,?)" : ",(?,?,?,?,?)";
      GPU_ASSIGN_OR_RETURN(stmt, Prepare(sql));
    }
    return stmt.get();
  }

  // Writes the buffered fresh rows, largest power-of-two statements first.
  Status FlushFresh() {
    size_t done = 0;
    while (done < fresh.size()) {
      const size_t left = fresh.size() - done;
      int log2_rows = 0;
      while ((size_t{2} << log2_rows) <= std::min(left, kMaxRowsPerInsert))
        ++log2_rows;
      GPU_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, FreshInsert(log2_rows));
      const size_t rows = size_t{1} << log2_rows;
      int param = 1;
      for (size_t r = done; r < done + rows; ++r) {
        const RawRow& row = fresh[r];
        sqlite3_bind_int64(stmt, param++, row.pod_id);
        sqlite3_bind_int64(stmt, param++, row.second);
        sqlite3_bind_int64(stmt, param++, row.second + 1);
        sqlite3_bind_int64(stmt, param++, row.series_id);
        // Static: `fresh` is not touched until the statement has run.
        sqlite3_bind_blob(stmt, param++, row.values.data(), static_cast<int>(row.values.size()),
                          SQLITE_STATIC);
      }
      const int rc = sqlite3_step(stmt);
      sqlite3_reset(stmt);
      if (rc != SQLITE_DONE) return Error("insert samples");
      done += rows;
    }
    fresh.clear();
    return Status::Ok();
  }

  // Whether a run of the pod already covers `second`.
  Result<bool> Covered(int64_t pod_id, int64_t second) {
    sqlite3_stmt* stmt = select_cover.get();
    ResetOnExit reset(stmt);
    sqlite3_bind_int64(stmt, 1, pod_id);
    sqlite3_bind_int64(stmt, 2, second);
    sqlite3_bind_int64(stmt, 3, metered_through == INT64_MIN ? 0 : metered_through);
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return false;
    if (rc != SQLITE_ROW) return Error("select covering run");
    return sqlite3_column_int64(stmt, 0) > second;
  }

  // A newly stored sample's share of the rollups.
  void AddToRollups(const CostSample& s, int64_t series_id) {
    AddToRollups(FloorTo(s.second, 60), series_id, CostTotals::FromSample(s));
  }
  // Seconds of `minute` newly stored.
  void AddToRollups(int64_t minute, int64_t series_id, const CostTotals& t) {
    if (minute + 60 > horizons.rolled_until) {
      pending.Add(minute, series_id, t);
    } else {  // a late second of a closed minute: straight into the rollups
      late_minutes[{minute, series_id}].Add(t);
      late_hours[{FloorTo(minute, 3600), series_id}].Add(t);
    }
  }

  // Writes the late rollups, and every pending minute before `newest`'s.
  Status CloseMinutes(int64_t newest) {
    for (const auto& [key, t] : late_minutes)
      GPU_RETURN_IF_ERROR(Upsert(upsert_minute.get(), key.bucket, key.series_id, t));
    for (const auto& [key, t] : late_hours)
      GPU_RETURN_IF_ERROR(Upsert(upsert_hour.get(), key.bucket, key.series_id, t));
    if (newest == INT64_MIN) return Status::Ok();
    const int64_t rolled_until = std::max(horizons.rolled_until, FloorTo(newest, 60));
    if (rolled_until == horizons.rolled_until) return Status::Ok();
    GPU_RETURN_IF_ERROR(pending.TakeBefore(
        rolled_until, [&](int64_t minute, int64_t series_id, const CostTotals& t) -> Status {
          GPU_RETURN_IF_ERROR(Upsert(upsert_minute.get(), minute, series_id, t));
          return Upsert(upsert_hour.get(), FloorTo(minute, 3600), series_id, t);
        }));
    return SetMeta("rolled_until", rolled_until);
  }

  Status AppendRunsInTransaction(const RunBatch& batch, AppendStats& stats) {
    GPU_RETURN_IF_ERROR(LoadHorizons());
    if (!pending_loaded) GPU_RETURN_IF_ERROR(LoadPending());
    if (!ledger.loaded()) GPU_RETURN_IF_ERROR(LoadLedger());
    late_minutes.clear();
    late_hours.clear();
    GPU_ASSIGN_OR_RETURN(const int64_t newest_end, NewestClosedEnd());
    internal::RunSink sink;
    sink.open = [&](const OpenRun& run) -> Status {
      sqlite3_stmt* st = upsert_run.get();
      ResetOnExit reset(st);
      sqlite3_bind_int64(st, 1, run.pod_id);
      sqlite3_bind_int64(st, 2, run.start);
      sqlite3_bind_int64(st, 3, run.series_id);
      const PackedRawValues values = PackRunValues(run.values);
      sqlite3_bind_blob(st, 4, values.data(), static_cast<int>(values.size()), SQLITE_STATIC);
      return StepDone(st, "open run");
    };
    sink.close = [&](int64_t pod_id, int64_t start, int64_t end) -> Status {
      sqlite3_stmt* st = close_run.get();
      ResetOnExit reset(st);
      sqlite3_bind_int64(st, 1, pod_id);
      sqlite3_bind_int64(st, 2, start);
      sqlite3_bind_int64(st, 3, end);
      return StepDone(st, "close run");
    };
    sink.roll = [&](int64_t minute, int64_t series_id, const CostTotals& t) {
      AddToRollups(minute, series_id, t);
    };
    auto intern = [&](const CostSample& s) -> Result<std::pair<int64_t, int64_t>> {
      GPU_ASSIGN_OR_RETURN(PodEntry entry, Intern(s));
      return std::make_pair(entry.pod_id, entry.series_id);
    };
    GPU_ASSIGN_OR_RETURN(
        stats, ledger.Apply(batch, metered_through, newest_end, horizons.second, intern, sink));
    // A replay, or all past retention: the ledger changed nothing.
    if (batch.through <= std::max(metered_through, newest_end) ||
        batch.through <= horizons.second) {
      return Status::Ok();
    }
    metered_through = batch.through;
    GPU_RETURN_IF_ERROR(SetMeta("metered_through", batch.through));
    return CloseMinutes(batch.through - 1);
  }

  Status AppendInTransaction(std::span<const CostSample> samples, AppendStats& stats) {
    GPU_RETURN_IF_ERROR(LoadHorizons());
    if (!pending_loaded) GPU_RETURN_IF_ERROR(LoadPending());
    late_minutes.clear();
    late_hours.clear();
    fresh.clear();
    // A row is fresh, so certainly not stored yet, when it is newer than every
    // stored second and than its pod's earlier rows in this batch: the usual
    // metering tick. Fresh rows are buffered for multi-row INSERTs; any other
    // row is checked against the table (after writing the buffer).
    GPU_ASSIGN_OR_RETURN(const int64_t stored_newest, NewestStoredSecond());
    const uint64_t batch = ++batch_number;
    sqlite3_stmt* ins = insert_raw.get();
    int64_t newest = INT64_MIN;
    for (size_t i = 0; i < samples.size(); ++i) {
      const CostSample& s = samples[i];
      if (s.second < horizons.second) {
        ++stats.too_old;
        continue;
      }
      newest = std::max(newest, s.second);
      GPU_ASSIGN_OR_RETURN(PodEntry * pod, InternAt(s, i));
      const PodEntry ids = *pod;
      const int64_t pod_newest = pod->batch == batch ? pod->batch_newest : INT64_MIN;
      pod->batch = batch;
      pod->batch_newest = std::max(pod_newest, s.second);
      if (s.second > stored_newest && s.second > pod_newest) {
        fresh.push_back({s.second, ids.pod_id, ids.series_id, PackRawValues(s)});
        if (fresh.size() == kMaxRowsPerInsert) GPU_RETURN_IF_ERROR(FlushFresh());
        ++stats.inserted;
        AddToRollups(s, ids.series_id);
        continue;
      }
      GPU_RETURN_IF_ERROR(FlushFresh());
      GPU_ASSIGN_OR_RETURN(const bool covered, Covered(ids.pod_id, s.second));
      if (covered) {
        ++stats.duplicates;
        continue;
      }
      sqlite3_bind_int64(ins, 1, s.second);
      sqlite3_bind_int64(ins, 2, ids.pod_id);
      sqlite3_bind_int64(ins, 3, ids.series_id);
      const PackedRawValues values = PackRawValues(s);
      sqlite3_bind_blob(ins, 4, values.data(), static_cast<int>(values.size()), SQLITE_STATIC);
      const int rc = sqlite3_step(ins);
      sqlite3_reset(ins);
      if (rc != SQLITE_DONE) return Error("insert sample");
      ++stats.inserted;
      AddToRollups(s, ids.series_id);
    }
    GPU_RETURN_IF_ERROR(FlushFresh());
    // Every minute before the newest sample's is closed: write it out.
    return CloseMinutes(newest);
  }

  // Forget ids a rolled-back transaction may have created.
  void DropCaches() {
    ledger.Clear();
    pending.Clear();
    pending_loaded = false;
    batch_memo.clear();
    pods.clear();
    (void)LoadSeries();
  }

  Status RequireLatest() const {
    if (version == kLatestCostSchemaVersion) return Status::Ok();
    return FailedPreconditionError("sqlite " + path + ": opened at schema version " +
                                   std::to_string(version) + ", reopen to migrate to " +
                                   std::to_string(kLatestCostSchemaVersion));
  }

  Status ScanRollup(const internal::Segment& segment, internal::ReportBuilder& builder) {
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

  Status ScanRaw(const internal::Segment& segment, internal::ReportBuilder& builder) {
    return ScanRuns(segment.from, segment.to,
                    [&](int64_t pod_id, int64_t start, int64_t end, int64_t series_id,
                        const CostSample& sample) {
                      builder.AddRun(std::max(start, segment.from), std::min(end, segment.to),
                                     series_id, pod_id, CostTotals::FromSample(sample));
                    });
  }

  std::string PodName(int64_t pod_id) {
    sqlite3_stmt* s = select_pod_name.get();
    ResetOnExit reset(s);
    sqlite3_bind_int64(s, 1, pod_id);
    if (sqlite3_step(s) != SQLITE_ROW) return "pod#" + std::to_string(pod_id);
    std::string ns = ColumnText(s, 0);
    std::string name = ColumnText(s, 1);
    if (name.empty()) return ColumnText(s, 2);
    return ns + "/" + name;
  }

  Result<CostReport> QueryInTransaction(const CostQuery& query) {
    GPU_RETURN_IF_ERROR(LoadHorizons());
    GPU_ASSIGN_OR_RETURN(internal::QueryPlan plan, internal::PlanQuery(query, horizons));
    internal::ReportBuilder builder(query, plan, [this](int64_t id) { return FindSeries(id); });
    if (builder.needs_pods()) {
      builder.SetPodNames([this](int64_t pod_id) { return PodName(pod_id); });
    }
    for (const internal::Segment& segment : plan.segments) {
      GPU_RETURN_IF_ERROR(segment.resolution == Resolution::kSecond ? ScanRaw(segment, builder)
                                                                    : ScanRollup(segment, builder));
    }
    return builder.Finish();
  }
};

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

Result<AppendStats> SqliteCostStore::Append(std::span<const CostSample> samples) {
  GPU_RETURN_IF_ERROR(impl_->RequireLatest());
  GPU_RETURN_IF_ERROR(internal::ValidateSamples(samples));
  AppendStats stats;
  if (samples.empty()) return stats;
  GPU_RETURN_IF_ERROR(impl_->Exec("BEGIN IMMEDIATE"));
  Status status = impl_->AppendInTransaction(samples, stats);
  // Crash tests stop the writer here, with the rows written and not committed.
  if (status.ok()) status = failpoint::Evaluate("cost_store.append.before_commit");
  if (status.ok()) status = impl_->Exec("COMMIT");
  if (!status.ok()) {
    (void)impl_->Exec("ROLLBACK");
    impl_->DropCaches();
    return status;
  }
  return stats;
}

Result<AppendStats> SqliteCostStore::AppendRuns(const RunBatch& batch) {
  GPU_RETURN_IF_ERROR(impl_->RequireLatest());
  AppendStats stats;
  GPU_RETURN_IF_ERROR(impl_->Exec("BEGIN IMMEDIATE"));
  Status status = impl_->AppendRunsInTransaction(batch, stats);
  if (status.ok()) status = failpoint::Evaluate("cost_store.append.before_commit");
  if (status.ok()) status = impl_->Exec("COMMIT");
  if (!status.ok()) {
    (void)impl_->Exec("ROLLBACK");
    impl_->DropCaches();
    (void)impl_->LoadHorizons();
    return status;
  }
  return stats;
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
