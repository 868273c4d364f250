#include "cost/postgres_store.h"

#include <libpq-fe.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/failpoint.h"
#include "cost/run_ledger.h"
#include "cost/store_internal.h"

namespace gpu_autoscaler::cost {
namespace {

using internal::Horizons;
using internal::kRollupColumns;
using internal::OpenRun;
using internal::SeriesKey;

// Schema history; entry i upgrades version i to i + 1 (see sqlite_store.cc).
constexpr std::array<const char*, kLatestCostSchemaVersion> kMigrations = {
    // v1: raw seconds and 1-minute rollups.
    R"sql(
CREATE TABLE pods(
  id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE, ns TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE series(
  id BIGSERIAL PRIMARY KEY,
  ns TEXT NOT NULL, team TEXT NOT NULL, project TEXT NOT NULL, experiment TEXT NOT NULL,
  node TEXT NOT NULL, gpu_model TEXT NOT NULL, tier SMALLINT NOT NULL, idle BOOLEAN NOT NULL,
  UNIQUE(ns, team, project, experiment, node, gpu_model, tier, idle));
CREATE TABLE cost_raw(
  second BIGINT NOT NULL, pod_id BIGINT NOT NULL, series_id BIGINT NOT NULL,
  gpu_share DOUBLE PRECISION NOT NULL, gpu_cost DOUBLE PRECISION NOT NULL,
  cpu_cost DOUBLE PRECISION NOT NULL, memory_cost DOUBLE PRECISION NOT NULL,
  usage_cost DOUBLE PRECISION NOT NULL, idle_cost DOUBLE PRECISION NOT NULL,
  gpu_utilization DOUBLE PRECISION NOT NULL,
  PRIMARY KEY(second, pod_id));
CREATE TABLE cost_1m(
  bucket BIGINT NOT NULL, series_id BIGINT NOT NULL, samples BIGINT NOT NULL,
  gpu_seconds DOUBLE PRECISION NOT NULL, idle_gpu_seconds DOUBLE PRECISION NOT NULL,
  gpu_cost DOUBLE PRECISION NOT NULL, cpu_cost DOUBLE PRECISION NOT NULL,
  memory_cost DOUBLE PRECISION NOT NULL, usage_cost DOUBLE PRECISION NOT NULL,
  idle_cost DOUBLE PRECISION NOT NULL,
  PRIMARY KEY(bucket, series_id));
)sql",
    // v2: sharing and utilisation sums, and 1-hour rollups.
    R"sql(
ALTER TABLE cost_1m
  ADD COLUMN exclusive_gpu_cost DOUBLE PRECISION NOT NULL DEFAULT 0,
  ADD COLUMN utilized_gpu_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
  ADD COLUMN metered_gpu_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE cost_1m SET exclusive_gpu_cost = gpu_cost;
UPDATE cost_1m SET exclusive_gpu_cost = r.x, utilized_gpu_seconds = r.u, metered_gpu_seconds = r.m
FROM (
  SELECT c.second - c.second % 60 AS b, c.series_id AS s,
    sum(CASE WHEN s.idle THEN 0 WHEN c.gpu_share > 0
             THEN c.gpu_cost * greatest(1, ceil(c.gpu_share - 1e-9)) / c.gpu_share
             ELSE c.gpu_cost END) AS x,
    sum(CASE WHEN s.idle OR c.gpu_utilization < 0 THEN 0 ELSE c.gpu_share * c.gpu_utilization END) AS u,
    sum(CASE WHEN s.idle OR c.gpu_utilization < 0 THEN 0 ELSE c.gpu_share END) AS m
  FROM cost_raw c JOIN series s ON s.id = c.series_id GROUP BY 1, 2) AS r
WHERE cost_1m.bucket = r.b AND cost_1m.series_id = r.s;
CREATE TABLE cost_1h(
  bucket BIGINT NOT NULL, series_id BIGINT NOT NULL, samples BIGINT NOT NULL,
  gpu_seconds DOUBLE PRECISION NOT NULL, idle_gpu_seconds DOUBLE PRECISION NOT NULL,
  gpu_cost DOUBLE PRECISION NOT NULL, cpu_cost DOUBLE PRECISION NOT NULL,
  memory_cost DOUBLE PRECISION NOT NULL, usage_cost DOUBLE PRECISION NOT NULL,
  idle_cost DOUBLE PRECISION NOT NULL, exclusive_gpu_cost DOUBLE PRECISION NOT NULL,
  utilized_gpu_seconds DOUBLE PRECISION NOT NULL, metered_gpu_seconds DOUBLE PRECISION NOT NULL,
  PRIMARY KEY(bucket, series_id));
INSERT INTO cost_1h SELECT bucket - bucket % 3600, series_id, sum(samples), sum(gpu_seconds),
  sum(idle_gpu_seconds), sum(gpu_cost), sum(cpu_cost), sum(memory_cost), sum(usage_cost),
  sum(idle_cost), sum(exclusive_gpu_cost), sum(utilized_gpu_seconds), sum(metered_gpu_seconds)
FROM cost_1m GROUP BY 1, 2;
)sql",
    // v3: SQLite packed its raw rows; this schema is unchanged.
    "SELECT 1",
    // v4: raw data as runs (docs/cost.md "Storage"): one row per pod per run
    // of seconds at constant values; open runs (end_second NULL) extend to
    // meta 'metered_through'. Each stored second becomes a one-second run.
    R"sql(
CREATE TABLE cost_runs(
  pod_id BIGINT NOT NULL, start BIGINT NOT NULL, end_second BIGINT, series_id BIGINT NOT NULL,
  gpu_share DOUBLE PRECISION NOT NULL, gpu_cost DOUBLE PRECISION NOT NULL,
  cpu_cost DOUBLE PRECISION NOT NULL, memory_cost DOUBLE PRECISION NOT NULL,
  usage_cost DOUBLE PRECISION NOT NULL, idle_cost DOUBLE PRECISION NOT NULL,
  gpu_utilization DOUBLE PRECISION NOT NULL,
  PRIMARY KEY(pod_id, start));
INSERT INTO cost_runs SELECT pod_id, second, second + 1, series_id, gpu_share, gpu_cost, cpu_cost,
  memory_cost, usage_cost, idle_cost, gpu_utilization FROM cost_raw;
DROP TABLE cost_raw;
CREATE INDEX cost_runs_end ON cost_runs(end_second);
)sql",
};

// Tables that become hypertables under TimescaleDB, with their chunk widths.
constexpr std::pair<const char*, int64_t> kHypertables[] = {
    {"cost_runs", 86400}, {"cost_1m", 7 * 86400}, {"cost_1h", 30 * 86400}};

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

constexpr char kSeriesColumns[] = "ns, team, project, experiment, node, gpu_model, tier, idle";

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

// Owns a PGresult.
class PgResult {
 public:
  explicit PgResult(PGresult* r = nullptr) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  PgResult& operator=(PgResult&& o) noexcept {
    if (this != &o) {
      PQclear(r_);
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  ~PgResult() { PQclear(r_); }
  PGresult* get() const { return r_; }
  int rows() const { return PQntuples(r_); }
  const char* at(int row, int col) const { return PQgetvalue(r_, row, col); }
  int64_t Int(int row, int col) const { return std::strtoll(at(row, col), nullptr, 10); }
  double Double(int row, int col) const { return std::strtod(at(row, col), nullptr); }
  std::string Text(int row, int col) const {
    return std::string(at(row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
  }

 private:
  PGresult* r_;
};

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

void IgnoreNotice(void*, const char*) {}

}  // namespace

struct PostgresCostStore::Impl {
  PGconn* conn = nullptr;
  std::string where;  // "host:port/db" for messages; never the password
  int version = 0;
  bool timescaledb = false;
  std::string insert_sql = InsertAndRollupSql();
  std::vector<std::optional<SeriesKey>> series;
  Horizons horizons;
  // Where open runs end (meta 'metered_through'); INT64_MIN: none written.
  int64_t metered_through = INT64_MIN;
  internal::RunLedger ledger;

  int64_t WatermarkOrZero() const { return metered_through == INT64_MIN ? 0 : metered_through; }

  ~Impl() {
    if (conn != nullptr) PQfinish(conn);
  }

  Status Error(std::string_view what, const PGresult* r = nullptr) const {
    std::string message = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    const StatusCode code =
        PQstatus(conn) == CONNECTION_OK ? StatusCode::kInternal : StatusCode::kUnavailable;
    return Status(code, "postgres " + where + ": " + std::string(what) + ": " + message);
  }

  Result<PgResult> Exec(const std::string& sql, std::initializer_list<std::string> params = {}) {
    std::vector<const char*> values;
    for (const std::string& p : params)
      values.push_back(p.c_str());
    PgResult r(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0));
    const ExecStatusType status = PQresultStatus(r.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return Error(sql.substr(0, sql.find_first_not_of(" \n") + 40), r.get());
    }
    return r;
  }

  // Runs several statements (no parameters).
  Status ExecScript(const std::string& sql) {
    PgResult r(PQexec(conn, sql.c_str()));
    const ExecStatusType status = PQresultStatus(r.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return Error("script", r.get());
    return Status::Ok();
  }

  void Rollback() { PQclear(PQexec(conn, "ROLLBACK")); }

  Result<int> ReadVersion() {
    GPU_ASSIGN_OR_RETURN(PgResult r, Exec("SELECT value FROM meta WHERE key = 'schema_version'"));
    return r.rows() == 0 ? 0 : std::atoi(r.at(0, 0));
  }

  Status SetMeta(const std::string& key, int64_t value) {
    Result<PgResult> r = Exec(
        "INSERT INTO meta(key, value) VALUES($1, $2) "
        "ON CONFLICT(key) DO UPDATE SET value = EXCLUDED.value",
        {key, std::to_string(value)});
    return r.ok() ? Status::Ok() : r.error();
  }

  Status EnableTimescale() {
    GPU_ASSIGN_OR_RETURN(PgResult available,
                         Exec("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"));
    if (available.rows() == 0) return Status::Ok();
    // Needs shared_preload_libraries; without it the extension is unusable
    // and the plain tables serve the same queries.
    if (!Exec("CREATE EXTENSION IF NOT EXISTS timescaledb").ok()) return Status::Ok();
    timescaledb = true;
    return Status::Ok();
  }

  Status Migrate(int target) {
    GPU_RETURN_IF_ERROR(ExecScript("BEGIN"));
    Status status = MigrateInTransaction(target);
    if (status.ok()) status = ExecScript("COMMIT");
    if (!status.ok()) Rollback();
    return status;
  }

  Status MigrateInTransaction(int target) {
    // Serialises concurrent first starts.
    if (Result<PgResult> lock = Exec("SELECT pg_advisory_xact_lock(7213560771)"); !lock.ok()) {
      return lock.error();
    }
    GPU_RETURN_IF_ERROR(
        ExecScript("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"));
    GPU_ASSIGN_OR_RETURN(version, ReadVersion());
    if (version > kLatestCostSchemaVersion) {
      return FailedPreconditionError("postgres " + where + ": schema version " +
                                     std::to_string(version) +
                                     " is newer than this program supports (" +
                                     std::to_string(kLatestCostSchemaVersion) + ")");
    }
    while (version < target) {
      Status step = ExecScript(kMigrations[static_cast<size_t>(version)]);
      if (!step.ok()) {
        return step.WithContext("migrating to schema version " + std::to_string(version + 1));
      }
      ++version;
      GPU_RETURN_IF_ERROR(SetMeta("schema_version", version));
    }
    if (timescaledb && version == kLatestCostSchemaVersion) {
      for (const auto& [table, chunk] : kHypertables) {
        const std::string time_column = std::string_view(table) == "cost_runs" ? "start" : "bucket";
        Result<PgResult> r = Exec(
            "SELECT create_hypertable($1::regclass, $2::name, chunk_time_interval => $3::bigint, "
            "if_not_exists => TRUE, migrate_data => TRUE)",
            {table, time_column, std::to_string(chunk)});
        if (!r.ok()) return r.error();
      }
    }
    return Status::Ok();
  }

  Status LoadSeries() {
    series.clear();
    GPU_ASSIGN_OR_RETURN(PgResult r,
                         Exec(std::string("SELECT id, ") + kSeriesColumns + " FROM series"));
    for (int i = 0; i < r.rows(); ++i) {
      const int64_t id = r.Int(i, 0);
      if (id < 0) continue;
      if (static_cast<size_t>(id) >= series.size()) series.resize(static_cast<size_t>(id) + 1);
      series[static_cast<size_t>(id)] = SeriesKey{r.Text(i, 1),
                                                  r.Text(i, 2),
                                                  r.Text(i, 3),
                                                  r.Text(i, 4),
                                                  r.Text(i, 5),
                                                  r.Text(i, 6),
                                                  static_cast<CapacityTier>(r.Int(i, 7)),
                                                  r.at(i, 8)[0] == 't'};
    }
    return Status::Ok();
  }

  const SeriesKey* FindSeries(int64_t id) {
    auto known = [&] {
      return id >= 0 && static_cast<size_t>(id) < series.size() &&
             series[static_cast<size_t>(id)].has_value();
    };
    if (!known()) (void)LoadSeries();
    return known() ? &*series[static_cast<size_t>(id)] : nullptr;
  }

  Status LoadHorizons() {
    GPU_ASSIGN_OR_RETURN(PgResult r, Exec("SELECT key, value FROM meta WHERE key LIKE "
                                          "'horizon_%' OR key = 'metered_through'"));
    horizons = {};
    metered_through = INT64_MIN;
    for (int i = 0; i < r.rows(); ++i) {
      const std::string key = r.Text(i, 0);
      const int64_t value = r.Int(i, 1);
      if (key == "horizon_second") horizons.second = value;
      if (key == "horizon_minute") horizons.minute = value;
      if (key == "horizon_hour") horizons.hour = value;
      if (key == "metered_through") metered_through = value;
    }
    return Status::Ok();
  }

  Status RequireLatest() const {
    if (version == kLatestCostSchemaVersion) return Status::Ok();
    return FailedPreconditionError("postgres " + where + ": opened at schema version " +
                                   std::to_string(version) + ", reopen to migrate to " +
                                   std::to_string(kLatestCostSchemaVersion));
  }

  Status Copy(std::span<const CostSample> samples) {
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

  Status AppendInTransaction(std::span<const CostSample> samples, AppendStats& stats) {
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
    GPU_ASSIGN_OR_RETURN(PgResult r, Exec(insert_sql, {std::to_string(horizons.second)}));
    stats.inserted = r.Int(0, 0);
    stats.duplicates = candidates - stats.inserted;
    return Status::Ok();
  }

  Status ScanRollup(const internal::Segment& segment, internal::ReportBuilder& builder) {
    const char* table = segment.resolution == Resolution::kMinute ? "cost_1m" : "cost_1h";
    GPU_ASSIGN_OR_RETURN(
        PgResult r, Exec(std::string("SELECT bucket, series_id, ") + kRollupColumns + " FROM " +
                             table + " WHERE bucket >= $1 AND bucket < $2",
                         {std::to_string(segment.from), std::to_string(segment.to)}));
    for (int i = 0; i < r.rows(); ++i) {
      CostTotals t;
      t.samples = r.Int(i, 2);
      t.gpu_seconds = r.Double(i, 3);
      t.idle_gpu_seconds = r.Double(i, 4);
      t.gpu_cost = r.Double(i, 5);
      t.cpu_cost = r.Double(i, 6);
      t.memory_cost = r.Double(i, 7);
      t.usage_cost = r.Double(i, 8);
      t.idle_cost = r.Double(i, 9);
      t.exclusive_gpu_cost = r.Double(i, 10);
      t.utilized_gpu_seconds = r.Double(i, 11);
      t.metered_gpu_seconds = r.Double(i, 12);
      builder.Add(r.Int(i, 0), r.Int(i, 1), 0, t);
    }
    return Status::Ok();
  }

  Status ScanRaw(const internal::Segment& segment, internal::ReportBuilder& builder) {
    GPU_ASSIGN_OR_RETURN(
        PgResult r,
        Exec("SELECT start, coalesce(end_second, $3), series_id, pod_id, gpu_share, gpu_cost, "
             "cpu_cost, memory_cost, usage_cost, idle_cost, gpu_utilization FROM cost_runs "
             "WHERE start < $2 AND coalesce(end_second, $3) > $1 AND "
             "(end_second IS NULL OR end_second > $1)",
             {std::to_string(segment.from), std::to_string(segment.to),
              std::to_string(WatermarkOrZero())}));
    CostSample sample;
    for (int i = 0; i < r.rows(); ++i) {
      const int64_t series_id = r.Int(i, 2);
      const SeriesKey* key = FindSeries(series_id);
      sample.idle = key != nullptr && key->idle;
      sample.gpu_share = r.Double(i, 4);
      sample.gpu_cost = r.Double(i, 5);
      sample.cpu_cost = r.Double(i, 6);
      sample.memory_cost = r.Double(i, 7);
      sample.usage_cost = r.Double(i, 8);
      sample.idle_cost = r.Double(i, 9);
      sample.gpu_utilization = r.Double(i, 10);
      builder.AddRun(std::max(r.Int(i, 0), segment.from), std::min(r.Int(i, 1), segment.to),
                     series_id, r.Int(i, 3), CostTotals::FromSample(sample));
    }
    return Status::Ok();
  }

  // Reads the open runs back into the ledger.
  Status LoadLedger() {
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

  Status AppendRunsInTransaction(const RunBatch& batch, AppendStats& stats) {
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
    if (batch.through <= std::max(metered_through, newest_end) ||
        batch.through <= horizons.second) {
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

  Status UpsertRollups(const char* table,
                       const std::unordered_map<internal::BucketSeries, CostTotals,
                                                internal::BucketSeriesHash>& rows) {
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

  std::string PodName(int64_t pod_id) {
    Result<PgResult> r =
        Exec("SELECT ns, name, uid FROM pods WHERE id = $1", {std::to_string(pod_id)});
    if (!r.ok() || r->rows() == 0) return "pod#" + std::to_string(pod_id);
    if (r->Text(0, 1).empty()) return r->Text(0, 2);
    return r->Text(0, 0) + "/" + r->Text(0, 1);
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

PostgresCostStore::PostgresCostStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresCostStore::~PostgresCostStore() = default;

Result<std::unique_ptr<PostgresCostStore>> PostgresCostStore::Open(
    const std::string& url, const PostgresStoreOptions& options) {
  if (options.schema_version < 1 || options.schema_version > kLatestCostSchemaVersion) {
    return InvalidArgumentError("schema_version must be 1.." +
                                std::to_string(kLatestCostSchemaVersion));
  }
  auto impl = std::make_unique<Impl>();
  impl->conn = PQconnectdb(url.c_str());
  if (impl->conn == nullptr) return InternalError("postgres: out of memory");
  impl->where = std::string(PQhost(impl->conn) ? PQhost(impl->conn) : "?") + ":" +
                (PQport(impl->conn) ? PQport(impl->conn) : "?") + "/" +
                (PQdb(impl->conn) ? PQdb(impl->conn) : "?");
  if (PQstatus(impl->conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(impl->conn);
    while (!message.empty() && message.back() == '\n')
      message.pop_back();
    return UnavailableError("postgres " + impl->where + ": cannot connect: " + message);
  }
  PQsetNoticeProcessor(impl->conn, IgnoreNotice, nullptr);
  if (options.read_only) {
    GPU_RETURN_IF_ERROR(impl->ExecScript("SET default_transaction_read_only = on"));
    auto version = impl->ReadVersion();
    if (!version.ok()) {
      return FailedPreconditionError("postgres " + impl->where +
                                     ": not a gpu-autoscaler cost history (" +
                                     version.error().message() + ")");
    }
    impl->version = *version;
    if (impl->version != kLatestCostSchemaVersion)
      return internal::SchemaMismatch("postgres " + impl->where, impl->version);
    GPU_RETURN_IF_ERROR(impl->LoadSeries());
    GPU_RETURN_IF_ERROR(impl->LoadHorizons());
    return std::unique_ptr<PostgresCostStore>(new PostgresCostStore(std::move(impl)));
  }
  if (options.use_timescaledb) GPU_RETURN_IF_ERROR(impl->EnableTimescale());
  GPU_RETURN_IF_ERROR(impl->Migrate(options.schema_version));
  if (impl->version == kLatestCostSchemaVersion) {
    GPU_RETURN_IF_ERROR(impl->ExecScript(kStageTable));
    GPU_RETURN_IF_ERROR(impl->LoadSeries());
    GPU_RETURN_IF_ERROR(impl->LoadHorizons());
  }
  return std::unique_ptr<PostgresCostStore>(new PostgresCostStore(std::move(impl)));
}

Result<AppendStats> PostgresCostStore::Append(std::span<const CostSample> samples) {
  GPU_RETURN_IF_ERROR(impl_->RequireLatest());
  GPU_RETURN_IF_ERROR(internal::ValidateSamples(samples));
  AppendStats stats;
  if (samples.empty()) return stats;
  GPU_RETURN_IF_ERROR(impl_->ExecScript("BEGIN"));
  Status status = impl_->AppendInTransaction(samples, stats);
  // Crash tests stop the writer here, with the rows written and not committed.
  if (status.ok()) status = failpoint::Evaluate("cost_store.append.before_commit");
  if (status.ok()) status = impl_->ExecScript("COMMIT");
  if (!status.ok()) {
    impl_->Rollback();
    return status;
  }
  return stats;
}

Result<AppendStats> PostgresCostStore::AppendRuns(const RunBatch& batch) {
  GPU_RETURN_IF_ERROR(impl_->RequireLatest());
  AppendStats stats;
  GPU_RETURN_IF_ERROR(impl_->ExecScript("BEGIN"));
  Status status = impl_->AppendRunsInTransaction(batch, stats);
  if (status.ok()) status = failpoint::Evaluate("cost_store.append.before_commit");
  if (status.ok()) status = impl_->ExecScript("COMMIT");
  if (!status.ok()) {
    impl_->Rollback();
    impl_->ledger.Clear();
    return status;
  }
  return stats;
}

Result<CostReport> PostgresCostStore::Query(const CostQuery& query) {
  GPU_RETURN_IF_ERROR(impl_->RequireLatest());
  GPU_RETURN_IF_ERROR(impl_->ExecScript("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  Result<CostReport> report = impl_->QueryInTransaction(query);
  impl_->Rollback();  // read-only: nothing to keep
  return report;
}

Result<RetentionStats> PostgresCostStore::ApplyRetention(const RetentionPolicy& policy,
                                                         int64_t now) {
  GPU_RETURN_IF_ERROR(impl_->RequireLatest());
  GPU_RETURN_IF_ERROR(impl_->ExecScript("BEGIN"));
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
        {"DELETE FROM cost_runs WHERE end_second <= $1", next.second, &stats.raw_deleted,
         "horizon_second"},
        {"DELETE FROM cost_1m WHERE bucket < $1", next.minute, &stats.minute_deleted,
         "horizon_minute"},
        {"DELETE FROM cost_1h WHERE bucket < $1", next.hour, &stats.hour_deleted, "horizon_hour"},
    };
    for (const Step& step : steps) {
      GPU_ASSIGN_OR_RETURN(PgResult r, impl_->Exec(step.sql, {std::to_string(step.horizon)}));
      *step.deleted = std::strtoll(PQcmdTuples(r.get()), nullptr, 10);
      GPU_RETURN_IF_ERROR(impl_->SetMeta(step.meta, step.horizon));
    }
    impl_->horizons = next;
    return Status::Ok();
  };
  Status status = run();
  if (status.ok()) status = impl_->ExecScript("COMMIT");
  if (!status.ok()) {
    impl_->Rollback();
    return status;
  }
  return stats;
}

Result<int> PostgresCostStore::SchemaVersion() {
  return impl_->ReadVersion();
}

Result<std::optional<int64_t>> PostgresCostStore::NewestSecond() {
  GPU_RETURN_IF_ERROR(impl_->LoadHorizons());
  GPU_ASSIGN_OR_RETURN(PgResult r, impl_->Exec("SELECT max(end_second) FROM cost_runs"));
  int64_t end = impl_->metered_through;
  if (r.rows() > 0 && !PQgetisnull(r.get(), 0, 0)) end = std::max(end, r.Int(0, 0));
  if (end == INT64_MIN) return std::optional<int64_t>();
  return std::optional<int64_t>(end - 1);
}

std::string_view PostgresCostStore::backend() const {
  return impl_->timescaledb ? "postgres+timescaledb" : "postgres";
}

bool PostgresCostStore::uses_timescaledb() const {
  return impl_->timescaledb;
}

}  // namespace gpu_autoscaler::cost
