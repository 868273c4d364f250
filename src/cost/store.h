// File: src/cost/store.h
//
// The cost history: where metered CostSamples are kept, rolled up and queried.
// Two backends implement it (SQLite, the embedded default, and PostgreSQL with
// optional TimescaleDB); `OpenCostStore` in store_factory.h picks one from a
// `--db` value.
//
// Semantics shared by every backend:
//  - Raw data is runs: (pod, start second, end second or open, per-second
//    values). `AppendRuns` writes only the runs that change; open runs extend
//    to a store-wide watermark. `Append` stores per-second samples as
//    one-second runs (imports, tests).
//  - `Append` writes one batch in one transaction. It is idempotent per
//    (pod_uid, second): a sample already stored is skipped, and only newly
//    stored samples are added to the 1-minute and 1-hour rollups, in the same
//    transaction. Replaying a batch after a crash therefore neither counts a
//    second twice nor loses one.
//  - Rollups are per (bucket, series), where a series is one combination of
//    namespace, team, project, experiment, node, GPU model and tier. Queries
//    read the coarsest rollup that covers the window exactly (whole hours from
//    the 1-hour table, the edges from the 1-minute table, and the raw seconds
//    only when asked for second precision or a per-pod breakdown), so they
//    never scan raw seconds for ordinary reports.
//  - Retention is per resolution. Samples older than the raw retention horizon
//    are refused by `Append` (counted as `too_old`): their seconds were already
//    rolled up, and re-inserting them would count them twice.
//
//   GPU_ASSIGN_OR_RETURN(std::unique_ptr<CostStore> store, OpenCostStore("cost.db"));
//   GPU_RETURN_IF_ERROR(store->Append(samples).status());
//   CostQuery q{.window = {since, until}, .group_by = {Dimension::kNamespace}};
//   GPU_ASSIGN_OR_RETURN(CostReport report, store->Query(q));
//
// Thread-safety: a CostStore is not thread-safe; use one per thread (several
// stores may open the same database; writes are serialised by the database).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "cost/sample.h"

namespace gpu_autoscaler::cost {

// The newest schema this binary writes. Opening an older database migrates it.
inline constexpr int kLatestCostSchemaVersion = 4;

enum class Resolution { kSecond, kMinute, kHour };

// Width of a Resolution's bucket in seconds: 1, 60, 3600.
int64_t ResolutionSeconds(Resolution r);
std::string_view ResolutionName(Resolution r);  // "second", "minute", "hour"

// What a report can be grouped or filtered by.
enum class Dimension { kNamespace, kTeam, kProject, kExperiment, kNode, kModel, kTier, kPod };

std::string_view DimensionName(Dimension d);  // "namespace", "team", ..., "pod"
// Accepts the names above (and "ns", "gpu-model", "experiment-id").
Result<Dimension> ParseDimension(std::string_view name);

// Half-open interval [since, until) of Unix seconds.
struct TimeWindow {
  int64_t since = 0;
  int64_t until = 0;
  friend bool operator==(const TimeWindow&, const TimeWindow&) = default;
};

struct DimensionFilter {
  Dimension dimension = Dimension::kNamespace;
  std::string value{};  // exact match; "" selects unlabelled spend
};

struct CostQuery {
  TimeWindow window{};
  // The finest precision the window edges need. The window is widened to
  // whole units of it (since floored, until ceiled).
  Resolution resolution = Resolution::kMinute;
  std::vector<Dimension> group_by{};       // empty: one total row
  std::vector<DimensionFilter> filters{};  // all must match
  // When set, one row per group and time bucket of this width (a series);
  // otherwise one row per group for the whole window.
  std::optional<Resolution> bucket{};
};

// Sums over the samples of a row. Costs are in currency units. Idle rows
// (CostSample::idle) count only in `samples`, `idle_gpu_seconds` and
// `idle_cost`; a pod's shared-out idle cost counts in `idle_cost` too.
struct CostTotals {
  int64_t samples = 0;              // (pod or idle node, second) rows
  double gpu_seconds = 0;           // sum of pods' gpu_share: GPU-seconds held
  double idle_gpu_seconds = 0;      // GPU-seconds no pod held
  double gpu_cost = 0;              // allocation cost of the pods' GPUs
  double cpu_cost = 0;              //   ... of their CPU requests
  double memory_cost = 0;           //   ... of their memory requests
  double usage_cost = 0;            // utilisation-weighted GPU cost
  double idle_cost = 0;             // idle capacity, and pods' shares of it
  double exclusive_gpu_cost = 0;    // GPU cost had every pod held whole GPUs (ceil(share))
  double utilized_gpu_seconds = 0;  // sum of gpu_share x utilisation where measured
  double metered_gpu_seconds = 0;   // sum of gpu_share where utilisation was measured

  double total_cost() const { return gpu_cost + cpu_cost + memory_cost + idle_cost; }
  void Add(const CostTotals& other);
  // The contribution of one sample.
  static CostTotals FromSample(const CostSample& s);
};

struct CostRow {
  // One per CostQuery::group_by, in order. Idle capacity is its own row when
  // grouping by namespace, team, project, experiment or pod (`idle` set, those
  // keys ""); grouped by node, model or tier it adds to the node's row.
  std::vector<std::string> keys;
  bool idle = false;
  int64_t bucket = 0;  // start of the time bucket; window.since without bucketing
  CostTotals totals;
};

struct CostReport {
  // The window actually answered: aligned to the query's resolution, or to a
  // coarser one when the finer data has passed its retention.
  TimeWindow window;
  Resolution resolution = Resolution::kMinute;
  // Sorted by bucket, idle rows last, then by total cost descending, then by keys.
  std::vector<CostRow> rows;
};

struct AppendStats {
  int64_t inserted = 0;    // newly stored (pod, second)s
  int64_t duplicates = 0;  // (pod_uid, second) already stored: skipped
  int64_t too_old = 0;     // older than the raw retention horizon: skipped
  // AppendRuns only: rows written (a run opened or closed) and runs that went
  // on unchanged (a restart's re-announced pods).
  int64_t runs_opened = 0;
  int64_t runs_closed = 0;
  int64_t runs_continued = 0;
};

// What the meter changed at one second, for AppendRuns. A run is one pod's
// (or idle node's) constant per-second cost from its start second until it
// ends; a run still open extends to the store's "metered through" watermark.
struct RunBatch {
  int64_t from = 0;     // the second the changes take effect
  int64_t through = 0;  // afterwards every open run is metered up to here (exclusive)
  // `started` lists every run open at `from` (a restart's resync): runs the
  // store holds open for other pods end at `from`.
  bool complete = false;
  // Runs starting at `from` (CostSample::second is ignored): each closes the
  // pod's open run, unless that run has exactly these values, when it goes on.
  std::span<const CostSample> started{};
  // Pods (or "idle/<node>") whose open run ends at `from`.
  std::span<const std::string> ended{};
};

// How long each resolution is kept; 0 keeps it forever.
struct RetentionPolicy {
  int64_t raw_seconds = 7 * 86400;
  int64_t minute_seconds = 90 * 86400;
  int64_t hour_seconds = 0;
};

struct RetentionStats {
  int64_t raw_deleted = 0;
  int64_t minute_deleted = 0;
  int64_t hour_deleted = 0;
};

class CostStore {
 public:
  virtual ~CostStore() = default;

  // Validates the whole batch first (pod_uid set, second >= 0, finite
  // non-negative costs); a bad sample rejects the batch with InvalidArgument.
  virtual Result<AppendStats> Append(std::span<const CostSample> samples) = 0;

  // Writes the runs that changed at `batch.from` and moves the watermark to
  // `batch.through`, rolling up every whole minute before it, in one
  // transaction (docs/cost.md "Storage"). Writes follow the churn, not the
  // pod count. Idempotent: seconds before the newest stored one are never
  // metered again (a replayed batch changes nothing), and a gap between the
  // watermark and `from` ends every open run at the watermark. Use either
  // Append or AppendRuns for a pod, not both.
  virtual Result<AppendStats> AppendRuns(const RunBatch& batch) = 0;

  virtual Result<CostReport> Query(const CostQuery& query) = 0;

  // Deletes data older than `now` minus each resolution's retention. Horizons
  // are aligned down to whole hours so no rollup bucket is left partial.
  virtual Result<RetentionStats> ApplyRetention(const RetentionPolicy& policy, int64_t now) = 0;

  virtual Result<int> SchemaVersion() = 0;

  // The newest second any raw sample or run covers (the watermark - 1 when
  // runs are open), or nullopt when nothing is stored. The metering loop resumes from here after a
  // restart or a leader change, so no second is lost (and Append's idempotency makes re-metering
  // the newest one harmless).
  virtual Result<std::optional<int64_t>> NewestSecond() = 0;

  // "sqlite" or "postgres" (or "postgres+timescaledb").
  virtual std::string_view backend() const = 0;
};

}  // namespace gpu_autoscaler::cost
