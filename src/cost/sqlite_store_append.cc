// SqliteCostStore's write path: samples and runs appended in one
// transaction, pods and series interned, rollups kept and written as their
// minutes close. Opening, migrating and reading are in sqlite_store.cc.
#include <sqlite3.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "common/failpoint.h"
#include "cost/sqlite_store.h"
#include "cost/sqlite_store_impl.h"
#include "cost/store_internal.h"

namespace gpu_autoscaler::cost {
namespace {

using internal::FloorTo;
using internal::OpenRun;
using sqlite::BindText;
using sqlite::PackRawValues;
using sqlite::PackRunValues;
using sqlite::ResetOnExit;

// The series columns ?1..?8, as insert_series and select_series take them.
void BindSeriesKey(sqlite3_stmt* stmt, const internal::SeriesKey& key) {
  BindText(stmt, 1, key.ns);
  BindText(stmt, 2, key.team);
  BindText(stmt, 3, key.project);
  BindText(stmt, 4, key.experiment);
  BindText(stmt, 5, key.node);
  BindText(stmt, 6, key.gpu_model);
  sqlite3_bind_int(stmt, 7, static_cast<int>(key.tier));
  sqlite3_bind_int(stmt, 8, key.idle ? 1 : 0);
}

}  // namespace

Result<int64_t> SqliteCostStore::Impl::InternSeries(const CostSample& s) {
  SeriesKey key = SeriesKey::Of(s);
  std::string encoded = key.Encoded();
  if (auto it = series_ids.find(encoded); it != series_ids.end()) return it->second;
  sqlite3_stmt* ins = insert_series.get();
  {
    ResetOnExit reset(ins);
    BindSeriesKey(ins, key);
    GPU_RETURN_IF_ERROR(StepDone(ins, "insert series"));
  }
  int64_t id = 0;
  if (sqlite3_changes(db) == 1) {
    id = sqlite3_last_insert_rowid(db);
  } else {
    sqlite3_stmt* sel = select_series.get();
    ResetOnExit reset(sel);
    BindSeriesKey(sel, key);
    if (sqlite3_step(sel) != SQLITE_ROW) return Error("select series");
    id = sqlite3_column_int64(sel, 0);
  }
  RememberSeries(id, std::move(key));
  return id;
}

Result<SqliteCostStore::Impl::PodEntry> SqliteCostStore::Impl::Intern(const CostSample& s) {
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

Status SqliteCostStore::Impl::Upsert(sqlite3_stmt* stmt, int64_t bucket, int64_t series_id,
                                     const CostTotals& t) {
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

Result<SqliteCostStore::Impl::PodEntry*> SqliteCostStore::Impl::InternAt(const CostSample& s,
                                                                         size_t position) {
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

Result<sqlite3_stmt*> SqliteCostStore::Impl::FreshInsert(int log2_rows) {
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

Status SqliteCostStore::Impl::FlushFresh() {
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

Result<bool> SqliteCostStore::Impl::Covered(int64_t pod_id, int64_t second) {
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

void SqliteCostStore::Impl::AddToRollups(const CostSample& s, int64_t series_id) {
  AddToRollups(FloorTo(s.second, 60), series_id, CostTotals::FromSample(s));
}

void SqliteCostStore::Impl::AddToRollups(int64_t minute, int64_t series_id, const CostTotals& t) {
  if (minute + 60 > horizons.rolled_until) {
    pending.Add(minute, series_id, t);
  } else {  // a late second of a closed minute: straight into the rollups
    late_minutes[{minute, series_id}].Add(t);
    late_hours[{FloorTo(minute, 3600), series_id}].Add(t);
  }
}

Status SqliteCostStore::Impl::CloseMinutes(int64_t newest) {
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

Status SqliteCostStore::Impl::AppendRunsInTransaction(const RunBatch& batch, AppendStats& stats) {
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
  if (batch.through <= std::max(metered_through, newest_end) || batch.through <= horizons.second) {
    return Status::Ok();
  }
  metered_through = batch.through;
  GPU_RETURN_IF_ERROR(SetMeta("metered_through", batch.through));
  return CloseMinutes(batch.through - 1);
}

Status SqliteCostStore::Impl::AppendInTransaction(std::span<const CostSample> samples,
                                                  AppendStats& stats) {
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

void SqliteCostStore::Impl::DropCaches() {
  ledger.Clear();
  pending.Clear();
  pending_loaded = false;
  batch_memo.clear();
  pods.clear();
  (void)LoadSeries();
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

}  // namespace gpu_autoscaler::cost
