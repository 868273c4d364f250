// File: src/cost/postgres_store_impl.h
//
// The state and the operations behind PostgresCostStore (postgres_store.h):
// one libpq connection, the interned series, the retention horizons and the
// open runs' ledger. Internal to src/cost: postgres_store.cc opens, migrates
// and reads; postgres_store_append.cc writes.
//
// Thread-safety: none; PostgresCostStore serialises every call.
#pragma once

#include <libpq-fe.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cost/postgres_store.h"
#include "cost/run_ledger.h"
#include "cost/store_internal.h"

namespace gpu_autoscaler::cost {
namespace postgres {

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

}  // namespace postgres

struct PostgresCostStore::Impl {
  using Horizons = internal::Horizons;
  using PgResult = postgres::PgResult;
  using SeriesKey = internal::SeriesKey;

  PGconn* conn = nullptr;
  std::string where;  // "host:port/db" for messages; never the password
  int version = 0;
  bool timescaledb = false;
  std::vector<std::optional<SeriesKey>> series;
  Horizons horizons;
  // Where open runs end (meta 'metered_through'); INT64_MIN: none written.
  int64_t metered_through = INT64_MIN;
  internal::RunLedger ledger;

  int64_t WatermarkOrZero() const { return metered_through == INT64_MIN ? 0 : metered_through; }

  ~Impl() {
    if (conn != nullptr) PQfinish(conn);
  }

  // Statements (postgres_store.cc). Errors name the server and the statement.
  Status Error(std::string_view what, const PGresult* r = nullptr) const;
  Result<PgResult> Exec(const std::string& sql, std::initializer_list<std::string> params = {});
  // Runs several statements (no parameters).
  Status ExecScript(const std::string& sql);
  void Rollback() { PQclear(PQexec(conn, "ROLLBACK")); }

  // Schema and metadata (postgres_store.cc).
  Result<int> ReadVersion();
  Status SetMeta(const std::string& key, int64_t value);
  Status EnableTimescale();
  Status Migrate(int target);
  Status MigrateInTransaction(int target);
  Status RequireLatest() const;
  Status LoadSeries();
  const SeriesKey* FindSeries(int64_t id);
  Status LoadHorizons();

  // Reads (postgres_store.cc).
  Status ScanRollup(const internal::Segment& segment, internal::ReportBuilder& builder);
  Status ScanRaw(const internal::Segment& segment, internal::ReportBuilder& builder);
  std::string PodName(int64_t pod_id);
  Result<CostReport> QueryInTransaction(const CostQuery& query);

  // Writes (postgres_store_append.cc).
  // Creates the session's staging table, COPY's target (once per connection).
  Status CreateStage();
  // Stages samples in the session's temporary table through COPY.
  Status Copy(std::span<const CostSample> samples);
  Status AppendInTransaction(std::span<const CostSample> samples, AppendStats& stats);
  // Reads the open runs back into the ledger.
  Status LoadLedger();
  Status AppendRunsInTransaction(const RunBatch& batch, AppendStats& stats);
  Status UpsertRollups(const char* table,
                       const std::unordered_map<internal::BucketSeries, CostTotals,
                                                internal::BucketSeriesHash>& rows);
};

}  // namespace gpu_autoscaler::cost
