// File: src/cost/sqlite_store.h
//
// The embedded cost history: one SQLite file in WAL mode. Raw seconds are keyed
// by (second, pod) so a tick's batch appends at the end of the B-tree; each
// batch is one transaction that inserts the new seconds and adds exactly those
// to the 1-minute and 1-hour rollup tables. See store.h for the semantics and
// docs/cost.md ("Storage") for the schema.
//
//   GPU_ASSIGN_OR_RETURN(auto store, SqliteCostStore::Open("/var/lib/gpu-autoscaler/cost.db"));
//   GPU_ASSIGN_OR_RETURN(AppendStats stats, store->Append(samples));
//
// Durability: synchronous=NORMAL by default, which survives a crash of the
// process (the crash test kills the writer mid-batch) but may lose the last
// transactions on power loss; set `synchronous_full` to survive that too.
//
// Thread-safety: not thread-safe; one store per thread. Several processes may
// open the same file: SQLite serialises the writers.
#pragma once

#include <memory>
#include <string>

#include "cost/store.h"

namespace gpu_autoscaler::cost {

struct SqliteStoreOptions {
  // Migrate no further than this version. Only the latest version can append
  // and query; older ones exist so tests can build an old database.
  int schema_version = kLatestCostSchemaVersion;
  bool synchronous_full = false;
  // SQLite's page cache for this connection. A long-running writer with a
  // small working set (the manager) wants less than a report scanning months.
  int cache_mib = 64;
  // For reports: never creates, writes or migrates. An older schema is a
  // FailedPrecondition saying to upgrade it through the manager.
  bool read_only = false;
};

class SqliteCostStore final : public CostStore {
 public:
  // Creates the file if needed and migrates it to `options.schema_version`.
  // ":memory:" opens a private in-memory database.
  static Result<std::unique_ptr<SqliteCostStore>> Open(const std::string& path,
                                                       const SqliteStoreOptions& options = {});
  ~SqliteCostStore() override;

  Result<AppendStats> Append(std::span<const CostSample> samples) override;
  Result<AppendStats> AppendRuns(const RunBatch& batch) override;
  Result<CostReport> Query(const CostQuery& query) override;
  Result<RetentionStats> ApplyRetention(const RetentionPolicy& policy, int64_t now) override;
  Result<int> SchemaVersion() override;
  Result<std::optional<int64_t>> NewestSecond() override;
  std::string_view backend() const override { return "sqlite"; }

 private:
  struct Impl;
  explicit SqliteCostStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpu_autoscaler::cost
