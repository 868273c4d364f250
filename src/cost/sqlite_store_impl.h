// File: src/cost/sqlite_store_impl.h
//
// The state and the operations behind SqliteCostStore (sqlite_store.h): one
// connection, its prepared statements, the interned pods and series, the
// retention horizons, the open runs' ledger and the rollups not yet written.
// Internal to src/cost: sqlite_store.cc opens, migrates and reads;
// sqlite_store_append.cc writes.
//
// Thread-safety: none; SqliteCostStore serialises every call.
#pragma once

#include <sqlite3.h>

#include <array>
#include <climits>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cost/pending_rollups.h"
#include "cost/run_ledger.h"
#include "cost/sqlite_format.h"
#include "cost/sqlite_statement.h"
#include "cost/sqlite_store.h"
#include "cost/store_internal.h"

namespace gpu_autoscaler::cost {

struct SqliteCostStore::Impl {
  using BucketKey = sqlite::BucketKey;
  using BucketKeyHash = sqlite::BucketKeyHash;
  using Horizons = internal::Horizons;
  using PackedRawValues = sqlite::PackedRawValues;
  using PendingRollups = sqlite::PendingRollups;
  using SeriesKey = internal::SeriesKey;
  using Statement = sqlite::Statement;

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

  ~Impl();

  // SQL helpers; errors name the file.
  Status Error(std::string_view what) const;
  Status CorruptRawRow(int bytes) const;
  Status Exec(const std::string& sql);
  Result<Statement> Prepare(const std::string& sql);
  Status StepDone(sqlite3_stmt* stmt, std::string_view what);

  // The meta table and the schema.
  Result<std::string> MetaValue(const std::string& key);
  Status SetMeta(const std::string& key, int64_t value);
  Result<int> ReadVersion();
  Status Migrate(int target);
  Status MigrateInTransaction(int target);
  Status PrepareStatements();

  // Caches of what is stored, (re)loaded at open and after a rollback.
  Status LoadSeries();
  void RememberSeries(int64_t id, SeriesKey key);
  const SeriesKey* FindSeries(int64_t id);
  Status LoadHorizons();

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
      if (!sqlite::UnpackRawValues(sqlite3_column_blob(st, 4), sqlite3_column_bytes(st, 4),
                                   sample)) {
        return CorruptRawRow(sqlite3_column_bytes(st, 4));
      }
      fn(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
         series_id, sample);
    }
    if (rc != SQLITE_DONE) return Error("scan cost_runs");
    return Status::Ok();
  }

  // Rebuilds the open minutes from the runs' seconds not yet rolled up.
  Status LoadPending();

  // Reads the open runs back into the ledger.
  Status LoadLedger();

  // The write path (sqlite_store_append.cc).
  Result<int64_t> InternSeries(const CostSample& s);
  Result<PodEntry> Intern(const CostSample& s);
  Status Upsert(sqlite3_stmt* stmt, int64_t bucket, int64_t series_id, const CostTotals& t);

  // The interned pod (stable address: unordered_map elements survive
  // rehashing) whose series_id is `s`'s series.
  Result<PodEntry*> InternAt(const CostSample& s, size_t position);

  // One past the newest second a closed run covers (INT64_MIN: none).
  Result<int64_t> NewestClosedEnd();

  // The newest second stored at all (closed runs, or open ones up to the
  // watermark); INT64_MIN when nothing is.
  Result<int64_t> NewestStoredSecond();
  Result<sqlite3_stmt*> FreshInsert(int log2_rows);

  // Writes the buffered fresh rows, largest power-of-two statements first.
  Status FlushFresh();

  // Whether a run of the pod already covers `second`.
  Result<bool> Covered(int64_t pod_id, int64_t second);

  // A newly stored sample's share of the rollups.
  void AddToRollups(const CostSample& s, int64_t series_id);
  // Seconds of `minute` newly stored.
  void AddToRollups(int64_t minute, int64_t series_id, const CostTotals& t);

  // Writes the late rollups, and every pending minute before `newest`'s.
  Status CloseMinutes(int64_t newest);
  Status AppendRunsInTransaction(const RunBatch& batch, AppendStats& stats);
  Status AppendInTransaction(std::span<const CostSample> samples, AppendStats& stats);

  // Forget ids a rolled-back transaction may have created.
  void DropCaches();

  // The read path.
  Status RequireLatest() const;
  Status ScanRollup(const internal::Segment& segment, internal::ReportBuilder& builder);
  Status ScanRaw(const internal::Segment& segment, internal::ReportBuilder& builder);
  std::string PodName(int64_t pod_id);
  Result<CostReport> QueryInTransaction(const CostQuery& query);
};

}  // namespace gpu_autoscaler::cost
