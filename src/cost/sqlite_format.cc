#include "cost/sqlite_format.h"

#include <bit>
#include <cstdint>
#include <tuple>

namespace gpu_autoscaler::cost::sqlite {

const std::array<const char*, kLatestCostSchemaVersion> kMigrations = {
    // v1: raw seconds and 1-minute rollups.
    R"sql(
CREATE TABLE pods(
  id INTEGER PRIMARY KEY,
  uid TEXT NOT NULL UNIQUE,
  ns TEXT NOT NULL,
  name TEXT NOT NULL);
CREATE TABLE series(
  id INTEGER PRIMARY KEY,
  ns TEXT NOT NULL, team TEXT NOT NULL, project TEXT NOT NULL, experiment TEXT NOT NULL,
  node TEXT NOT NULL, gpu_model TEXT NOT NULL, tier INTEGER NOT NULL, idle INTEGER NOT NULL,
  UNIQUE(ns, team, project, experiment, node, gpu_model, tier, idle));
CREATE TABLE cost_raw(
  second INTEGER NOT NULL, pod_id INTEGER NOT NULL, series_id INTEGER NOT NULL,
  gpu_share REAL NOT NULL, gpu_cost REAL NOT NULL, cpu_cost REAL NOT NULL,
  memory_cost REAL NOT NULL, usage_cost REAL NOT NULL, idle_cost REAL NOT NULL,
  gpu_utilization REAL NOT NULL,
  PRIMARY KEY(second, pod_id)) WITHOUT ROWID;
CREATE TABLE cost_1m(
  bucket INTEGER NOT NULL, series_id INTEGER NOT NULL, samples INTEGER NOT NULL,
  gpu_seconds REAL NOT NULL, idle_gpu_seconds REAL NOT NULL, gpu_cost REAL NOT NULL,
  cpu_cost REAL NOT NULL, memory_cost REAL NOT NULL, usage_cost REAL NOT NULL,
  idle_cost REAL NOT NULL,
  PRIMARY KEY(bucket, series_id)) WITHOUT ROWID;
)sql",
    // v2: sharing and utilisation sums (recomputed from the raw seconds still
    // kept; older minutes claim no sharing savings), and 1-hour rollups.
    R"sql(
ALTER TABLE cost_1m ADD COLUMN exclusive_gpu_cost REAL NOT NULL DEFAULT 0;
ALTER TABLE cost_1m ADD COLUMN utilized_gpu_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE cost_1m ADD COLUMN metered_gpu_seconds REAL NOT NULL DEFAULT 0;
UPDATE cost_1m SET exclusive_gpu_cost = gpu_cost;
UPDATE cost_1m SET exclusive_gpu_cost = r.x, utilized_gpu_seconds = r.u, metered_gpu_seconds = r.m
FROM (
  SELECT c.second - c.second % 60 AS b, c.series_id AS s,
    sum(CASE WHEN s.idle THEN 0 WHEN c.gpu_share > 0 THEN c.gpu_cost * max(1,
      CAST(c.gpu_share - 1e-9 AS INTEGER) + (c.gpu_share - 1e-9 > CAST(c.gpu_share - 1e-9 AS INTEGER)))
      / c.gpu_share ELSE c.gpu_cost END) AS x,
    sum(CASE WHEN s.idle OR c.gpu_utilization < 0 THEN 0 ELSE c.gpu_share * c.gpu_utilization END) AS u,
    sum(CASE WHEN s.idle OR c.gpu_utilization < 0 THEN 0 ELSE c.gpu_share END) AS m
  FROM cost_raw c JOIN series s ON s.id = c.series_id GROUP BY 1, 2) AS r
WHERE cost_1m.bucket = r.b AND cost_1m.series_id = r.s;
CREATE TABLE cost_1h(
  bucket INTEGER NOT NULL, series_id INTEGER NOT NULL, samples INTEGER NOT NULL,
  gpu_seconds REAL NOT NULL, idle_gpu_seconds REAL NOT NULL, gpu_cost REAL NOT NULL,
  cpu_cost REAL NOT NULL, memory_cost REAL NOT NULL, usage_cost REAL NOT NULL,
  idle_cost REAL NOT NULL, exclusive_gpu_cost REAL NOT NULL, utilized_gpu_seconds REAL NOT NULL,
  metered_gpu_seconds REAL NOT NULL,
  PRIMARY KEY(bucket, series_id)) WITHOUT ROWID;
INSERT INTO cost_1h SELECT bucket - bucket % 3600, series_id, sum(samples), sum(gpu_seconds),
  sum(idle_gpu_seconds), sum(gpu_cost), sum(cpu_cost), sum(memory_cost), sum(usage_cost),
  sum(idle_cost), sum(exclusive_gpu_cost), sum(utilized_gpu_seconds), sum(metered_gpu_seconds)
FROM cost_1m GROUP BY 1, 2;
INSERT INTO meta(key, value) SELECT 'rolled_until', CAST(max(
  coalesce((SELECT max(second) + 1 FROM cost_raw), 0),
  coalesce((SELECT max(bucket) + 60 FROM cost_1m), 0)) AS TEXT);
)sql",
    // v3: a raw row's seven values packed into one blob (see PackRawValues):
    // a third of the insert work of seven REAL columns.
    R"sql(
CREATE TABLE cost_raw_v3(
  second INTEGER NOT NULL, pod_id INTEGER NOT NULL, series_id INTEGER NOT NULL,
  v BLOB NOT NULL,
  PRIMARY KEY(second, pod_id)) WITHOUT ROWID;
INSERT INTO cost_raw_v3 SELECT second, pod_id, series_id, gpa_pack_raw_values(gpu_share, gpu_cost,
  cpu_cost, memory_cost, usage_cost, idle_cost, gpu_utilization) FROM cost_raw;
DROP TABLE cost_raw;
ALTER TABLE cost_raw_v3 RENAME TO cost_raw;
)sql",
    // v4: raw data as runs (docs/cost.md "Storage"): one row per pod per run
    // of seconds at constant values; open runs (end_second NULL) extend to
    // meta 'metered_through'. Each stored second becomes a one-second run.
    R"sql(
CREATE TABLE cost_runs(
  pod_id INTEGER NOT NULL, start INTEGER NOT NULL, end_second INTEGER,
  series_id INTEGER NOT NULL, v BLOB NOT NULL,
  PRIMARY KEY(pod_id, start)) WITHOUT ROWID;
INSERT INTO cost_runs SELECT pod_id, second, second + 1, series_id, v FROM cost_raw;
DROP TABLE cost_raw;
CREATE INDEX cost_runs_end ON cost_runs(end_second);
)sql",
};

PackedRawValues PackRunValues(const internal::RunValues& values) {
  static_assert(std::tuple_size_v<internal::RunValues> == kRawValues);
  PackedRawValues out;
  for (int i = 0; i < kRawValues; ++i) {
    const uint64_t bits = std::bit_cast<uint64_t>(values[static_cast<size_t>(i)]);
    for (int b = 0; b < 8; ++b)
      out[static_cast<size_t>(8 * i + b)] = static_cast<unsigned char>(bits >> (8 * b));
  }
  return out;
}

PackedRawValues PackRawValues(const CostSample& s) {
  return PackRunValues(internal::ValuesOf(s));
}

bool UnpackRawValues(const void* blob, int size, CostSample& s) {
  if (blob == nullptr || size != static_cast<int>(sizeof(PackedRawValues))) return false;
  const auto* bytes = static_cast<const unsigned char*>(blob);
  double* fields[kRawValues] = {&s.gpu_share,  &s.gpu_cost,  &s.cpu_cost,       &s.memory_cost,
                                &s.usage_cost, &s.idle_cost, &s.gpu_utilization};
  for (int i = 0; i < kRawValues; ++i) {
    uint64_t bits = 0;
    for (int b = 0; b < 8; ++b)
      bits |= static_cast<uint64_t>(bytes[8 * i + b]) << (8 * b);
    *fields[i] = std::bit_cast<double>(bits);
  }
  return true;
}

void PackRawValuesSql(sqlite3_context* context, int argc, sqlite3_value** argv) {
  internal::RunValues values{};
  for (int i = 0; i < kRawValues; ++i)
    values[static_cast<size_t>(i)] = i < argc ? sqlite3_value_double(argv[i]) : 0;
  const PackedRawValues out = PackRunValues(values);
  sqlite3_result_blob(context, out.data(), static_cast<int>(out.size()), SQLITE_TRANSIENT);
}

}  // namespace gpu_autoscaler::cost::sqlite
