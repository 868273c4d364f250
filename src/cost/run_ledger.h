// File: src/cost/run_ledger.h
//
// The backend-independent half of CostStore::AppendRuns: the open runs (one
// per pod or idle node, kept in memory), the per-series sum of their
// per-second totals, and the rule for applying a RunBatch. The backend does
// the writes through a RunSink inside its transaction and owns the rollups.
//
//   RunLedger ledger;                        // Load() the open runs first
//   GPU_ASSIGN_OR_RETURN(AppendStats stats,
//       ledger.Apply(batch, watermark, newest, intern, sink));
//
// A run covers [start, end); an open run's end is the store's watermark.
// Rolling up, a run adds its per-second totals times the seconds it covers
// in each minute, so every total equals the per-second rows it stands for.
//
// Thread-safety: none; owned by one store.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "cost/store.h"

namespace gpu_autoscaler::cost::internal {

// A run's per-second values: gpu_share, gpu_cost, cpu_cost, memory_cost,
// usage_cost, idle_cost, gpu_utilization (the order the stores pack them).
using RunValues = std::array<double, 7>;
RunValues ValuesOf(const CostSample& s);
// The totals of one second at `values` (idle: an idle-capacity run).
CostTotals SecondTotals(const RunValues& values, bool idle);
// `t` times `seconds`.
CostTotals Scaled(const CostTotals& t, int64_t seconds);

// Calls fn(minute, seconds) for each minute overlapping [lo, hi).
template <typename Fn>
void ForEachMinute(int64_t lo, int64_t hi, Fn fn) {
  while (lo < hi) {
    const int64_t minute = lo - (((lo % 60) + 60) % 60);
    const int64_t next = std::min(hi, minute + 60);
    fn(minute, next - lo);
    lo = next;
  }
}

// A rollup bucket of one series, as a hash-map key.
struct BucketSeries {
  int64_t bucket = 0;
  int64_t series_id = 0;
  friend bool operator==(const BucketSeries&, const BucketSeries&) = default;
};
struct BucketSeriesHash {
  size_t operator()(const BucketSeries& k) const {
    return static_cast<size_t>(static_cast<uint64_t>(k.bucket) * 0x9E3779B97F4A7C15ull ^
                               static_cast<uint64_t>(k.series_id) * 0xC2B2AE3D27D4EB4Full);
  }
};

struct OpenRun {
  int64_t pod_id = 0;
  int64_t start = 0;
  int64_t series_id = 0;
  RunValues values{};
  bool idle = false;
};

// The backend's writes, inside its transaction.
struct RunSink {
  // Stores the open run (an upsert on (pod_id, start)).
  std::function<Status(const OpenRun& run)> open;
  // Ends the run (pod_id, start) at `end`.
  std::function<Status(int64_t pod_id, int64_t start, int64_t end)> close;
  // Adds `seconds` of a series' totals to a minute's rollup.
  std::function<void(int64_t minute, int64_t series_id, const CostTotals& totals)> roll;
};

class RunLedger {
 public:
  // (pod_id, series_id) of a sample, interning them.
  using Intern = std::function<Result<std::pair<int64_t, int64_t>>(const CostSample& s)>;

  void Clear();
  bool loaded() const { return loaded_; }
  void MarkLoaded() { loaded_ = true; }
  // An open run read back from the store.
  void Load(const std::string& uid, const OpenRun& run);
  size_t open_runs() const { return open_.size(); }

  // Applies `batch`. `watermark`: where open runs end now (INT64_MIN: none
  // written yet); `newest_end`: one past the newest second stored at all.
  // `horizon`: the raw retention horizon. The caller writes the new
  // watermark (batch.through) when the result is ok and stats.too_old is 0.
  Result<AppendStats> Apply(const RunBatch& batch, int64_t watermark, int64_t newest_end,
                            int64_t horizon, const Intern& intern, const RunSink& sink);

 private:
  void Remove(std::unordered_map<std::string, OpenRun>::iterator it);
  void Add(const std::string& uid, const OpenRun& run);

  bool loaded_ = false;
  std::unordered_map<std::string, OpenRun> open_;  // by pod uid
  // By series id: the sum of its open runs' per-second totals and how many.
  std::vector<CostTotals> series_rate_;
  std::vector<int64_t> series_runs_;
};

}  // namespace gpu_autoscaler::cost::internal
