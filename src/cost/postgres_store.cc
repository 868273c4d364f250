// Opening, migrating and reading the PostgreSQL cost store; the write path is
// postgres_store_append.cc.
#include "cost/postgres_store.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "common/failpoint.h"
#include "cost/postgres_store_impl.h"
#include "cost/store_internal.h"

namespace gpu_autoscaler::cost {
namespace {

using internal::Horizons;
using internal::kRollupColumns;
using internal::SeriesKey;
using postgres::PgResult;

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

constexpr char kSeriesColumns[] = "ns, team, project, experiment, node, gpu_model, tier, idle";

void IgnoreNotice(void*, const char*) {}

}  // namespace

Status PostgresCostStore::Impl::Error(std::string_view what, const PGresult* r) const {
  std::string message = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  const StatusCode code =
      PQstatus(conn) == CONNECTION_OK ? StatusCode::kInternal : StatusCode::kUnavailable;
  return Status(code, "postgres " + where + ": " + std::string(what) + ": " + message);
}

Result<PgResult> PostgresCostStore::Impl::Exec(const std::string& sql,
                                               std::initializer_list<std::string> params) {
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
Status PostgresCostStore::Impl::ExecScript(const std::string& sql) {
  PgResult r(PQexec(conn, sql.c_str()));
  const ExecStatusType status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return Error("script", r.get());
  return Status::Ok();
}

Result<int> PostgresCostStore::Impl::ReadVersion() {
  GPU_ASSIGN_OR_RETURN(PgResult r, Exec("SELECT value FROM meta WHERE key = 'schema_version'"));
  return r.rows() == 0 ? 0 : std::atoi(r.at(0, 0));
}

Status PostgresCostStore::Impl::SetMeta(const std::string& key, int64_t value) {
  Result<PgResult> r = Exec(
      "INSERT INTO meta(key, value) VALUES($1, $2) "
      "ON CONFLICT(key) DO UPDATE SET value = EXCLUDED.value",
      {key, std::to_string(value)});
  return r.ok() ? Status::Ok() : r.error();
}

Status PostgresCostStore::Impl::EnableTimescale() {
  GPU_ASSIGN_OR_RETURN(PgResult available,
                       Exec("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"));
  if (available.rows() == 0) return Status::Ok();
  // Needs shared_preload_libraries; without it the extension is unusable
  // and the plain tables serve the same queries.
  if (!Exec("CREATE EXTENSION IF NOT EXISTS timescaledb").ok()) return Status::Ok();
  timescaledb = true;
  return Status::Ok();
}

Status PostgresCostStore::Impl::Migrate(int target) {
  GPU_RETURN_IF_ERROR(ExecScript("BEGIN"));
  Status status = MigrateInTransaction(target);
  if (status.ok()) status = ExecScript("COMMIT");
  if (!status.ok()) Rollback();
  return status;
}

Status PostgresCostStore::Impl::MigrateInTransaction(int target) {
  // Serialises concurrent first starts.
  if (Result<PgResult> lock = Exec("SELECT pg_advisory_xact_lock(7213560771)"); !lock.ok()) {
    return lock.error();
  }
  GPU_RETURN_IF_ERROR(
      ExecScript("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)"));
  GPU_ASSIGN_OR_RETURN(version, ReadVersion());
  GPU_RETURN_IF_ERROR(internal::StepSchema(
      "postgres " + where, version, target, kMigrations,
      [this](const char* script) { return ExecScript(script); },
      [this](int next) {
        version = next;
        return SetMeta("schema_version", next);
      }));
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

Status PostgresCostStore::Impl::LoadSeries() {
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

const SeriesKey* PostgresCostStore::Impl::FindSeries(int64_t id) {
  auto known = [&] {
    return id >= 0 && static_cast<size_t>(id) < series.size() &&
           series[static_cast<size_t>(id)].has_value();
  };
  if (!known()) (void)LoadSeries();
  return known() ? &*series[static_cast<size_t>(id)] : nullptr;
}

Status PostgresCostStore::Impl::LoadHorizons() {
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

Status PostgresCostStore::Impl::RequireLatest() const {
  if (version == kLatestCostSchemaVersion) return Status::Ok();
  return FailedPreconditionError("postgres " + where + ": opened at schema version " +
                                 std::to_string(version) + ", reopen to migrate to " +
                                 std::to_string(kLatestCostSchemaVersion));
}

Status PostgresCostStore::Impl::ScanRollup(const internal::Segment& segment,
                                           internal::ReportBuilder& builder) {
  const char* table = segment.resolution == Resolution::kMinute ? "cost_1m" : "cost_1h";
  GPU_ASSIGN_OR_RETURN(PgResult r,
                       Exec(std::string("SELECT bucket, series_id, ") + kRollupColumns + " FROM " +
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

Status PostgresCostStore::Impl::ScanRaw(const internal::Segment& segment,
                                        internal::ReportBuilder& builder) {
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

std::string PostgresCostStore::Impl::PodName(int64_t pod_id) {
  Result<PgResult> r =
      Exec("SELECT ns, name, uid FROM pods WHERE id = $1", {std::to_string(pod_id)});
  if (!r.ok() || r->rows() == 0) return "pod#" + std::to_string(pod_id);
  if (r->Text(0, 1).empty()) return r->Text(0, 2);
  return r->Text(0, 0) + "/" + r->Text(0, 1);
}

Result<CostReport> PostgresCostStore::Impl::QueryInTransaction(const CostQuery& query) {
  GPU_RETURN_IF_ERROR(LoadHorizons());
  return internal::RunQuery(
      query, horizons,
      {.series = [this](int64_t id) { return FindSeries(id); },
       .pod_names = [this](int64_t pod_id) { return PodName(pod_id); },
       .scan_seconds = [this](const auto& s, auto& b) { return ScanRaw(s, b); },
       .scan_rollup = [this](const auto& s, auto& b) { return ScanRollup(s, b); }});
}

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
    GPU_RETURN_IF_ERROR(impl->CreateStage());
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
