// The write path of the PostgreSQL cost store: samples staged through COPY,
// then interned, inserted and rolled up in one statement; runs opened, closed
// and rolled up through the ledger.
#include <algorithm>
#include <charconv>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cost/postgres_store_impl.h"

namespace gpu_autoscaler::cost {
namespace {

using internal::kRollupColumns;
using internal::OpenRun;
using postgres::PgResult;

constexpr char kStageTable[] = R"sql(
CREATE TEMP TABLE IF NOT EXISTS cost_stage(
  pod_uid TEXT NOT NULL, pod_name TEXT NOT NULL, ns TEXT NOT NULL, team TEXT NOT NULL,
  project TEXT NOT NULL, experiment TEXT NOT NULL, node TEXT NOT NULL, gpu_model TEXT NOT NULL,
  tier SMALLINT NOT NULL, idle BOOLEAN NOT NULL, second BIGINT NOT NULL,
  gpu_share DOUBLE PRECISION NOT NULL, gpu_cost DOUBLE PRECISION NOT NULL,
  cpu_cost DOUBLE PRECISION NOT NULL, memory_cost DOUBLE PRECISION NOT NULL,
  usage_cost DOUBLE PRECISION NOT NULL, idle_cost DOUBLE PRECISION NOT NULL,
  gpu_utilization DOUBLE PRECISION NOT NULL) ON COMMIT DELETE ROWS
)sql";

// Interns series and pods first (only missing ones, so ids stay dense), then
// inserts the new seconds and rolls up exactly the rows inserted.
constexpr char kInternSql[] = R"sql(
INSERT INTO series(ns, team, project, experiment, node, gpu_model, tier, idle)
SELECT DISTINCT st.ns, st.team, st.project, st.experiment, st.node, st.gpu_model, st.tier, st.idle
FROM cost_stage st
WHERE NOT EXISTS (SELECT 1 FROM series s WHERE s.ns = st.ns AND s.team = st.team AND
  s.project = st.project AND s.experiment = st.experiment AND s.node = st.node AND
  s.gpu_model = st.gpu_model AND s.tier = st.tier AND s.idle = st.idle)
ON CONFLICT DO NOTHING;
INSERT INTO pods(uid, ns, name)
SELECT DISTINCT ON (st.pod_uid) st.pod_uid, st.ns, st.pod_name FROM cost_stage st
WHERE NOT EXISTS (SELECT 1 FROM pods p WHERE p.uid = st.pod_uid)
ORDER BY st.pod_uid
ON CONFLICT DO NOTHING;
)sql";

std::string RollupInsert(const char* cte, const char* table, int width) {
  const std::string w = std::to_string(width);
  std::string sql = std::string(cte) + " AS (INSERT INTO " + table + "(bucket, series_id, " +
                    kRollupColumns + ") SELECT second - second % " + w +
                    ", series_id, count(*), sum(gpu_seconds), sum(idle_gpu_seconds), "
                    "sum(gpu_cost), sum(cpu_cost), sum(memory_cost), sum(usage_cost), "
                    "sum(idle_cost), sum(exclusive_gpu_cost), sum(utilized_gpu_seconds), "
                    "sum(metered_gpu_seconds) FROM v GROUP BY 1, 2 "
                    "ON CONFLICT (bucket, series_id) DO UPDATE SET ";
  sql += internal::RollupAccumulation(std::string(table) + ".", "EXCLUDED");
  return sql + " RETURNING 1)";
}

std::string InsertAndRollupSql() {
  return std::string(R"sql(
WITH ins AS (
  INSERT INTO cost_runs(start, end_second, pod_id, series_id, gpu_share, gpu_cost, cpu_cost,
                        memory_cost, usage_cost, idle_cost, gpu_utilization)
  SELECT st.second, st.second + 1, p.id, s.id, st.gpu_share, st.gpu_cost, st.cpu_cost,
         st.memory_cost, st.usage_cost, st.idle_cost, st.gpu_utilization
  FROM cost_stage st
  JOIN pods p ON p.uid = st.pod_uid
  JOIN series s ON s.ns = st.ns AND s.team = st.team AND s.project = st.project AND
    s.experiment = st.experiment AND s.node = st.node AND s.gpu_model = st.gpu_model AND
    s.tier = st.tier AND s.idle = st.idle
  WHERE st.second >= $1
  ON CONFLICT (pod_id, start) DO NOTHING
  RETURNING start AS second, series_id, gpu_share, gpu_cost, cpu_cost, memory_cost, usage_cost,
            idle_cost, gpu_utilization),
v AS (
  SELECT i.second, i.series_id,
    CASE WHEN s.idle THEN 0 ELSE i.gpu_share END AS gpu_seconds,
    CASE WHEN s.idle THEN i.gpu_share ELSE 0 END AS idle_gpu_seconds,
    CASE WHEN s.idle THEN 0 ELSE i.gpu_cost END AS gpu_cost,
    CASE WHEN s.idle THEN 0 ELSE i.cpu_cost END AS cpu_cost,
    CASE WHEN s.idle THEN 0 ELSE i.memory_cost END AS memory_cost,
    CASE WHEN s.idle THEN 0 ELSE i.usage_cost END AS usage_cost,
    CASE WHEN s.idle THEN i.gpu_cost + i.cpu_cost + i.memory_cost + i.idle_cost
         ELSE i.idle_cost END AS idle_cost,
    CASE WHEN s.idle THEN 0 WHEN i.gpu_share > 0
         THEN i.gpu_cost * greatest(1, ceil(i.gpu_share - 1e-9)) / i.gpu_share
         ELSE i.gpu_cost END AS exclusive_gpu_cost,
    CASE WHEN s.idle OR i.gpu_utilization < 0 THEN 0
         ELSE i.gpu_share * i.gpu_utilization END AS utilized_gpu_seconds,
    CASE WHEN s.idle OR i.gpu_utilization < 0 THEN 0 ELSE i.gpu_share END AS metered_gpu_seconds
  FROM ins i JOIN series s ON s.id = i.series_id),
)sql") + RollupInsert("m", "cost_1m", 60) +
         ",\n" + RollupInsert("h", "cost_1h", 3600) +
         "\nSELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM m), (SELECT count(*) FROM h)";
}

// COPY text format: backslash escapes for the delimiter, newlines and itself.
void AppendCopyText(std::string& out, const std::string& text) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  out += '\t';
}

template <typename T>
void AppendCopyNumber(std::string& out, T value, char terminator = '\t') {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, ec == std::errc() ? end : buf);
  out += terminator;
}

}  // namespace

Status PostgresCostStore::Impl::CreateStage() {
  return ExecScript(kStageTable);
}

Status PostgresCostStore::Impl::Copy(std::span<const CostSample> samples) {
  PgResult start(PQexec(conn, "COPY cost_stage FROM STDIN"));
  if (PQresultStatus(start.get()) != PGRES_COPY_IN) return Error("COPY", start.get());
  std::string buf;
  buf.reserve(1 << 20);
  Status status;
  for (const CostSample& s : samples) {
    AppendCopyText(buf, s.pod_uid);
    AppendCopyText(buf, s.pod_name);
    AppendCopyText(buf, s.ns);
    AppendCopyText(buf, s.team);
    AppendCopyText(buf, s.project);
    AppendCopyText(buf, s.experiment);
    AppendCopyText(buf, s.node);
    AppendCopyText(buf, s.gpu_model);
    AppendCopyNumber(buf, static_cast<int>(s.tier));
    buf += s.idle ? "t\t" : "f\t";
    AppendCopyNumber(buf, s.second);
    AppendCopyNumber(buf, s.gpu_share);
    AppendCopyNumber(buf, s.gpu_cost);
    AppendCopyNumber(buf, s.cpu_cost);
    AppendCopyNumber(buf, s.memory_cost);
    AppendCopyNumber(buf, s.usage_cost);
    AppendCopyNumber(buf, s.idle_cost);
    AppendCopyNumber(buf, s.gpu_utilization, '\n');
    if (buf.size() > (1 << 20) - 4096) {
      if (PQputCopyData(conn, buf.data(), static_cast<int>(buf.size())) != 1) {
        status = Error("COPY data");
        break;
      }
      buf.clear();
    }
  }
  if (status.ok() && !buf.empty() &&
      PQputCopyData(conn, buf.data(), static_cast<int>(buf.size())) != 1) {
    status = Error("COPY data");
  }
  if (PQputCopyEnd(conn, status.ok() ? nullptr : "aborted") != 1 && status.ok()) {
    status = Error("COPY end");
  }
  while (PGresult* r = PQgetResult(conn)) {
    PgResult owned(r);
    if (status.ok() && PQresultStatus(r) != PGRES_COMMAND_OK) status = Error("COPY", r);
  }
  return status;
}

Status PostgresCostStore::Impl::AppendInTransaction(std::span<const CostSample> samples,
                                                    AppendStats& stats) {
  GPU_RETURN_IF_ERROR(LoadHorizons());
  int64_t candidates = 0;
  for (const CostSample& s : samples) {
    if (s.second < horizons.second) {
      ++stats.too_old;
    } else {
      ++candidates;
    }
  }
  GPU_RETURN_IF_ERROR(Copy(samples));
  GPU_RETURN_IF_ERROR(ExecScript(kInternSql));
  // Seconds a longer run of the pod covers are duplicates. Checked before
  // the insert: scanning the index while the same statement fills it would
  // walk every row it inserted so far (invisible to it) for each row.
  Result<PgResult> covered = Exec(R"sql(
DELETE FROM cost_stage st USING pods p WHERE p.uid = st.pod_uid AND EXISTS (
SELECT 1 FROM (SELECT c.end_second FROM cost_runs c WHERE c.pod_id = p.id AND
  c.start <= st.second ORDER BY c.start DESC LIMIT 1) last
WHERE coalesce(last.end_second, $1) > st.second))sql",
                                  {std::to_string(WatermarkOrZero())});
  if (!covered.ok()) return covered.error();
  static const std::string insert_sql = InsertAndRollupSql();
  GPU_ASSIGN_OR_RETURN(PgResult r, Exec(insert_sql, {std::to_string(horizons.second)}));
  stats.inserted = r.Int(0, 0);
  stats.duplicates = candidates - stats.inserted;
  return Status::Ok();
}

// Reads the open runs back into the ledger.
Status PostgresCostStore::Impl::LoadLedger() {
  ledger.Clear();
  GPU_ASSIGN_OR_RETURN(
      PgResult r,
      Exec("SELECT r.pod_id, p.uid, r.start, r.series_id, s.idle, r.gpu_share, r.gpu_cost, "
           "r.cpu_cost, r.memory_cost, r.usage_cost, r.idle_cost, r.gpu_utilization "
           "FROM cost_runs r JOIN pods p ON p.id = r.pod_id JOIN series s ON s.id = "
           "r.series_id WHERE r.end_second IS NULL"));
  for (int i = 0; i < r.rows(); ++i) {
    OpenRun run{r.Int(i, 0), r.Int(i, 2), r.Int(i, 3), {}, r.at(i, 4)[0] == 't'};
    for (int v = 0; v < 7; ++v)
      run.values[static_cast<size_t>(v)] = r.Double(i, 5 + v);
    ledger.Load(r.Text(i, 1), run);
  }
  ledger.MarkLoaded();
  return Status::Ok();
}

Status PostgresCostStore::Impl::AppendRunsInTransaction(const RunBatch& batch, AppendStats& stats) {
  GPU_RETURN_IF_ERROR(LoadHorizons());
  if (!ledger.loaded()) GPU_RETURN_IF_ERROR(LoadLedger());
  // Intern the started runs' pods and series in one go, through the stage.
  std::unordered_map<std::string, std::pair<int64_t, int64_t>> ids;
  if (!batch.started.empty()) {
    GPU_RETURN_IF_ERROR(Copy(batch.started));
    GPU_RETURN_IF_ERROR(ExecScript(kInternSql));
    GPU_ASSIGN_OR_RETURN(
        PgResult r,
        Exec("SELECT st.pod_uid, p.id, s.id FROM cost_stage st JOIN pods p ON p.uid = "
             "st.pod_uid JOIN series s ON s.ns = st.ns AND s.team = st.team AND s.project = "
             "st.project AND s.experiment = st.experiment AND s.node = st.node AND "
             "s.gpu_model = st.gpu_model AND s.tier = st.tier AND s.idle = st.idle"));
    for (int i = 0; i < r.rows(); ++i)
      ids[r.Text(i, 0)] = {r.Int(i, 1), r.Int(i, 2)};
    GPU_RETURN_IF_ERROR(ExecScript("TRUNCATE cost_stage"));
  }
  GPU_ASSIGN_OR_RETURN(PgResult newest, Exec("SELECT max(end_second) FROM cost_runs"));
  const int64_t newest_end = PQgetisnull(newest.get(), 0, 0) ? INT64_MIN : newest.Int(0, 0);
  std::unordered_map<internal::BucketSeries, CostTotals, internal::BucketSeriesHash> minutes;
  internal::RunSink sink;
  sink.open = [&](const OpenRun& run) -> Status {
    std::vector<std::string> params = {std::to_string(run.pod_id), std::to_string(run.start),
                                       std::to_string(run.series_id)};
    std::string sql =
        "INSERT INTO cost_runs(pod_id, start, end_second, series_id, gpu_share, gpu_cost, "
        "cpu_cost, memory_cost, usage_cost, idle_cost, gpu_utilization) VALUES($1, $2, NULL, "
        "$3";
    for (size_t v = 0; v < run.values.size(); ++v) {
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), run.values[v]);
      sql += ", " + std::string(buf, ec == std::errc() ? end : buf);
    }
    sql +=
        ") ON CONFLICT (pod_id, start) DO UPDATE SET end_second = NULL, series_id = "
        "EXCLUDED.series_id, gpu_share = EXCLUDED.gpu_share, gpu_cost = EXCLUDED.gpu_cost, "
        "cpu_cost = EXCLUDED.cpu_cost, memory_cost = EXCLUDED.memory_cost, usage_cost = "
        "EXCLUDED.usage_cost, idle_cost = EXCLUDED.idle_cost, gpu_utilization = "
        "EXCLUDED.gpu_utilization";
    Result<PgResult> r = Exec(sql, {params[0], params[1], params[2]});
    return r.ok() ? Status::Ok() : r.error();
  };
  sink.close = [&](int64_t pod_id, int64_t start, int64_t end) -> Status {
    Result<PgResult> r =
        Exec("UPDATE cost_runs SET end_second = $3 WHERE pod_id = $1 AND start = $2",
             {std::to_string(pod_id), std::to_string(start), std::to_string(end)});
    return r.ok() ? Status::Ok() : r.error();
  };
  sink.roll = [&](int64_t minute, int64_t series_id, const CostTotals& t) {
    minutes[{minute, series_id}].Add(t);
  };
  auto intern = [&](const CostSample& s) -> Result<std::pair<int64_t, int64_t>> {
    auto it = ids.find(s.pod_uid);
    if (it == ids.end()) return InternalError("postgres " + where + ": pod not interned");
    return it->second;
  };
  GPU_ASSIGN_OR_RETURN(
      stats, ledger.Apply(batch, metered_through, newest_end, horizons.second, intern, sink));
  if (batch.through <= std::max(metered_through, newest_end) || batch.through <= horizons.second) {
    return Status::Ok();
  }
  // Rolled up at once (this store has no open minutes): one upsert per
  // table of every (minute, series) the batch touched.
  std::unordered_map<internal::BucketSeries, CostTotals, internal::BucketSeriesHash> hours;
  for (const auto& [key, t] : minutes)
    hours[{key.bucket - key.bucket % 3600, key.series_id}].Add(t);
  GPU_RETURN_IF_ERROR(UpsertRollups("cost_1m", minutes));
  GPU_RETURN_IF_ERROR(UpsertRollups("cost_1h", hours));
  metered_through = batch.through;
  return SetMeta("metered_through", batch.through);
}

Status PostgresCostStore::Impl::UpsertRollups(
    const char* table,
    const std::unordered_map<internal::BucketSeries, CostTotals, internal::BucketSeriesHash>&
        rows) {
  if (rows.empty()) return Status::Ok();
  std::string sql =
      std::string("INSERT INTO ") + table + "(bucket, series_id, " + kRollupColumns + ") VALUES ";
  bool first = true;
  for (const auto& [key, t] : rows) {
    sql += first ? "(" : ",(";
    first = false;
    AppendCopyNumber(sql, key.bucket, ',');
    AppendCopyNumber(sql, key.series_id, ',');
    AppendCopyNumber(sql, t.samples, ',');
    const double values[] = {t.gpu_seconds,        t.idle_gpu_seconds,   t.gpu_cost,
                             t.cpu_cost,           t.memory_cost,        t.usage_cost,
                             t.idle_cost,          t.exclusive_gpu_cost, t.utilized_gpu_seconds,
                             t.metered_gpu_seconds};
    for (size_t v = 0; v < 10; ++v)
      AppendCopyNumber(sql, values[v], v + 1 == 10 ? ')' : ',');
  }
  sql += " ON CONFLICT (bucket, series_id) DO UPDATE SET ";
  sql += internal::RollupAccumulation(std::string(table) + ".", "EXCLUDED");
  return ExecScript(sql);
}

}  // namespace gpu_autoscaler::cost
