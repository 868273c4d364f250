#include "cost/store_factory.h"

#include "cost/postgres_store.h"
#include "cost/sqlite_store.h"

namespace gpu_autoscaler::cost {

bool IsPostgresUrl(std::string_view db) {
  return db.starts_with("postgres://") || db.starts_with("postgresql://");
}

Result<std::unique_ptr<CostStore>> OpenCostStore(const std::string& db, int sqlite_cache_mib) {
  if (db.empty()) return InvalidArgumentError("no database given: want a SQLite path or a URL");
  if (IsPostgresUrl(db)) {
    GPU_ASSIGN_OR_RETURN(std::unique_ptr<PostgresCostStore> store, PostgresCostStore::Open(db));
    return std::unique_ptr<CostStore>(std::move(store));
  }
  GPU_ASSIGN_OR_RETURN(std::unique_ptr<SqliteCostStore> store,
                       SqliteCostStore::Open(db, {.cache_mib = sqlite_cache_mib}));
  return std::unique_ptr<CostStore>(std::move(store));
}

Result<std::unique_ptr<CostStore>> OpenCostStoreForReading(const std::string& db) {
  if (db.empty()) return InvalidArgumentError("no database given: want a SQLite path or a URL");
  if (IsPostgresUrl(db)) {
    GPU_ASSIGN_OR_RETURN(std::unique_ptr<PostgresCostStore> store,
                         PostgresCostStore::Open(db, {.read_only = true}));
    return std::unique_ptr<CostStore>(std::move(store));
  }
  GPU_ASSIGN_OR_RETURN(std::unique_ptr<SqliteCostStore> store,
                       SqliteCostStore::Open(db, {.read_only = true}));
  return std::unique_ptr<CostStore>(std::move(store));
}

}  // namespace gpu_autoscaler::cost
