// File: src/cost/postgres_store.h
//
// The cost history on PostgreSQL (libpq), for clusters that already run one
// or want the history outside the controller's volume. Same tables and
// semantics as the SQLite store (store.h). When the server offers the
// TimescaleDB extension, the raw and rollup tables become hypertables
// (chunked by time); otherwise they are plain tables with the same keys.
//
//   GPU_ASSIGN_OR_RETURN(auto store,
//       PostgresCostStore::Open("postgresql://cost@db.internal:5432/gpu_cost"));
//   GPU_ASSIGN_OR_RETURN(AppendStats stats, store->Append(samples));
//
// A batch is one transaction: COPY into a temporary staging table, then one
// statement that inserts the new seconds (ON CONFLICT DO NOTHING) and adds
// exactly the inserted rows to the 1-minute and 1-hour rollups. If the writer
// dies mid-batch the server rolls the transaction back.
//
// Thread-safety: not thread-safe (one connection); one store per thread.
#pragma once

#include <memory>
#include <string>

#include "cost/store.h"

namespace gpu_autoscaler::cost {

struct PostgresStoreOptions {
  // Migrate no further than this version (tests build old databases this way).
  int schema_version = kLatestCostSchemaVersion;
  // Use TimescaleDB hypertables when the server has the extension.
  bool use_timescaledb = true;
  // For reports: a read-only session that never migrates. An older schema is
  // a FailedPrecondition saying to upgrade it through the manager.
  bool read_only = false;
};

class PostgresCostStore final : public CostStore {
 public:
  // `url`: "postgresql://user[:password]@host[:port]/db[?param=value]" (or any
  // libpq connection string).
  static Result<std::unique_ptr<PostgresCostStore>> Open(const std::string& url,
                                                         const PostgresStoreOptions& options = {});
  ~PostgresCostStore() override;

  Result<AppendStats> Append(std::span<const CostSample> samples) override;
  Result<AppendStats> AppendRuns(const RunBatch& batch) override;
  Result<CostReport> Query(const CostQuery& query) override;
  Result<RetentionStats> ApplyRetention(const RetentionPolicy& policy, int64_t now) override;
  Result<int> SchemaVersion() override;
  Result<std::optional<int64_t>> NewestSecond() override;
  std::string_view backend() const override;

  bool uses_timescaledb() const;

 private:
  struct Impl;
  explicit PostgresCostStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpu_autoscaler::cost
