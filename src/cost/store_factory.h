// File: src/cost/store_factory.h
//
// Opens the cost history named by a `--db` value: a PostgreSQL URL
// ("postgres://..." or "postgresql://...") or else a SQLite file path.
//
//   GPU_ASSIGN_OR_RETURN(std::unique_ptr<CostStore> store, OpenCostStore(flags.db));
//
// Thread-safety: pure functions; the returned store is not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "cost/store.h"

namespace gpu_autoscaler::cost {

bool IsPostgresUrl(std::string_view db);

// Creates a SQLite file if it does not exist; migrates either backend to the
// latest schema.
// `sqlite_cache_mib`: the SQLite page cache (PostgreSQL caches server-side).
Result<std::unique_ptr<CostStore>> OpenCostStore(const std::string& db, int sqlite_cache_mib = 64);

// For reports (`gpu-autoscaler cost`, `roi`, `budget status`): reads a history
// that must already exist at the latest schema, never creating, writing or
// migrating it, so a read-only user and a running manager's live file are fine.
Result<std::unique_ptr<CostStore>> OpenCostStoreForReading(const std::string& db);

}  // namespace gpu_autoscaler::cost
