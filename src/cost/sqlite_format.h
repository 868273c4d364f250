// File: src/cost/sqlite_format.h
//
// The SQLite cost store's on-disk format: the schema migrations and the
// packed values of a raw row or run (seven doubles in one blob). Used only by
// sqlite_store.cc; kept apart so the format can be read (and reviewed for a
// change of version) without the store's logic.
//
//   Exec(db, sqlite::kMigrations[version]);            // version -> version + 1
//   const PackedRawValues v = sqlite::PackRawValues(sample);
//   sqlite::UnpackRawValues(blob, size, sample);        // false: not a packed row
//
// Thread-safety: constants and pure functions.
#pragma once

#include <sqlite3.h>

#include <array>

#include "cost/run_ledger.h"
#include "cost/store.h"

namespace gpu_autoscaler::cost::sqlite {

// Schema history. Entry i upgrades version i to i + 1; never edit a shipped
// entry, append a new one (and bump kLatestCostSchemaVersion). The v3 entry
// calls gpa_pack_raw_values, which the store registers (PackRawValuesSql).
extern const std::array<const char*, kLatestCostSchemaVersion> kMigrations;

// cost_runs.v: gpu_share, gpu_cost, cpu_cost, memory_cost, usage_cost,
// idle_cost and gpu_utilization as little-endian IEEE-754 doubles. One blob
// binds and encodes far faster than seven REAL columns.
inline constexpr int kRawValues = 7;
using PackedRawValues = std::array<unsigned char, 8 * kRawValues>;

PackedRawValues PackRawValues(const CostSample& s);
PackedRawValues PackRunValues(const internal::RunValues& v);

// Fills `s`'s seven values; false when `blob` is not a packed row.
bool UnpackRawValues(const void* blob, int size, CostSample& s);

// SQL gpa_pack_raw_values(seven reals): the v3 migration's packer.
void PackRawValuesSql(sqlite3_context* context, int argc, sqlite3_value** argv);

}  // namespace gpu_autoscaler::cost::sqlite
