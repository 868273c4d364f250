// File: src/cost/store_internal.h
//
// Backend-independent parts of the cost stores: sample validation, the query
// planner (which rollup tables cover a window) and the report builder that
// groups scanned rows. Used only by sqlite_store.cc and postgres_store.cc.
//
//   GPU_ASSIGN_OR_RETURN(CostReport report, RunQuery(query, horizons, {
//       .series = ..., .pod_names = ..., .scan_seconds = ..., .scan_rollup = ...}));
//
// RunQuery plans the query (PlanQuery), has the backend scan each segment
// into a ReportBuilder (builder.Add / AddRun) and returns builder.Finish().
//
// Thread-safety: value types; a ReportBuilder is used by one thread.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "cost/store.h"

namespace gpu_autoscaler::cost::internal {

// The attribution of one series (every dimension but the pod).
struct SeriesKey {
  std::string ns;
  std::string team;
  std::string project;
  std::string experiment;
  std::string node;
  std::string gpu_model;
  CapacityTier tier = CapacityTier::kOnDemand;
  bool idle = false;  // idle capacity of `node`

  bool Matches(const CostSample& s) const {
    return tier == s.tier && idle == s.idle && ns == s.ns && team == s.team &&
           project == s.project && experiment == s.experiment && node == s.node &&
           gpu_model == s.gpu_model;
  }
  static SeriesKey Of(const CostSample& s);
  // A byte string unique per key (fields joined by NUL), for hash maps.
  std::string Encoded() const;
  const std::string& Get(Dimension d) const;  // not for kTier or kPod
};

Status ValidateSamples(std::span<const CostSample> samples);

// Why a read-only open (reports) refuses a history at `version`: newer than
// this program, or older (reports never migrate; the manager does).
Status SchemaMismatch(const std::string& where, int version);

// The migration loop both stores run inside their own transaction: refuses a
// schema newer than this program, then runs migrations[version..target) with
// `exec` and records each new version with `record`. `where` names the store
// in errors ("sqlite PATH", "postgres HOST/DB").
Status StepSchema(const std::string& where, int version, int target,
                  std::span<const char* const> migrations,
                  const std::function<Status(const char* script)>& exec,
                  const std::function<Status(int version)>& record);

// First second still stored at each resolution (0: everything), and where
// the rollups end: seconds from `rolled_until` on are only in the raw table
// (the SQLite store rolls up whole minutes once they close).
struct Horizons {
  int64_t second = 0;
  int64_t minute = 0;
  int64_t hour = 0;
  int64_t rolled_until = INT64_MAX;
  int64_t Of(Resolution r) const;
};

// The rollup tables' summed columns (cost_1m, cost_1h), in table order.
inline constexpr char kRollupColumns[] =
    "samples, gpu_seconds, idle_gpu_seconds, gpu_cost, cpu_cost, memory_cost, usage_cost, "
    "idle_cost, exclusive_gpu_cost, utilized_gpu_seconds, metered_gpu_seconds";

// "col = <current>col + <excluded>.col, ..." over kRollupColumns: an upsert's
// SET list that adds to the bucket rather than replacing it. `current` is ""
// or "table." (PostgreSQL needs the table to disambiguate).
inline std::string RollupAccumulation(const std::string& current, const std::string& excluded) {
  std::string sql;
  std::string_view columns = kRollupColumns;
  while (!columns.empty()) {
    const size_t comma = columns.find(", ");
    const std::string c(columns.substr(0, comma));
    if (!sql.empty()) sql += ", ";
    sql += c + " = " + current + c + " + " + excluded + "." + c;
    columns = comma == std::string_view::npos ? "" : columns.substr(comma + 2);
  }
  return sql;
}

inline int64_t FloorTo(int64_t t, int64_t unit) {
  return t - (((t % unit) + unit) % unit);
}
inline int64_t CeilTo(int64_t t, int64_t unit) {
  return FloorTo(t + unit - 1, unit);
}

// One range of one table to scan: [from, to) in Unix seconds, aligned to its
// resolution.
struct Segment {
  Resolution resolution = Resolution::kHour;
  int64_t from = 0;
  int64_t to = 0;
};

struct QueryPlan {
  TimeWindow window;  // as answered
  Resolution resolution = Resolution::kMinute;
  std::vector<Segment> segments;
};

Result<QueryPlan> PlanQuery(const CostQuery& query, const Horizons& horizons);

// Retention horizons for `policy` at `now` (aligned down to whole hours).
Horizons RetentionHorizons(const RetentionPolicy& policy, int64_t now, const Horizons& current);

// Groups scanned rows into a CostReport.
class ReportBuilder {
 public:
  // `series(id)` returns the series with that id, or nullptr if unknown.
  using SeriesLookup = std::function<const SeriesKey*(int64_t series_id)>;
  // "namespace/name" of a pod id (the uid for idle rows).
  using PodNameLookup = std::function<std::string(int64_t pod_id)>;

  ReportBuilder(const CostQuery& query, const QueryPlan& plan, SeriesLookup series);

  // `pod_id` matters only when the query groups or filters by pod.
  void Add(int64_t time, int64_t series_id, int64_t pod_id, const CostTotals& totals);
  // A run's seconds [lo, hi) at `per_second` each, split at bucket edges.
  void AddRun(int64_t lo, int64_t hi, int64_t series_id, int64_t pod_id,
              const CostTotals& per_second);

  // Pod names are needed when the query groups or filters by pod.
  bool needs_pods() const { return by_pod_ || pod_filter_ != nullptr; }
  // Call before Add when needs_pods(): the name of every pod that may appear.
  void SetPodNames(PodNameLookup pod_names) { pod_names_ = std::move(pod_names); }

  CostReport Finish();

 private:
  struct RowKey {
    int64_t bucket;
    int32_t group;
    int64_t pod_id;
    friend bool operator==(const RowKey&, const RowKey&) = default;
  };
  struct RowKeyHash {
    size_t operator()(const RowKey& k) const;
  };

  int32_t GroupOf(int64_t series_id);
  const std::string& PodName(int64_t pod_id);

  const CostQuery& query_;
  QueryPlan plan_;
  SeriesLookup series_;
  PodNameLookup pod_names_;
  bool by_pod_ = false;
  size_t pod_slot_ = 0;
  const DimensionFilter* pod_filter_ = nullptr;
  int64_t bucket_width_ = 0;              // 0: no bucketing
  std::vector<int32_t> group_of_series_;  // -2 unknown, -1 filtered out
  std::unordered_map<std::string, int32_t> group_ids_;
  std::vector<std::vector<std::string>> group_keys_;
  std::vector<bool> group_idle_;
  std::unordered_map<int64_t, std::string> pod_name_cache_;
  std::unordered_map<std::string, int64_t> pod_key_ids_;
  std::vector<std::string> pod_keys_;
  std::unordered_map<RowKey, CostTotals, RowKeyHash> rows_;
  std::vector<CostTotals> dense_;  // by group, when neither bucketing nor by pod
};

// What a backend supplies to answer a query.
struct QueryBackend {
  ReportBuilder::SeriesLookup series;
  ReportBuilder::PodNameLookup pod_names;  // consulted only when the query needs pods
  // Scans one segment into the builder: the per-second runs, or a rollup table.
  std::function<Status(const Segment&, ReportBuilder&)> scan_seconds;
  std::function<Status(const Segment&, ReportBuilder&)> scan_rollup;
};

// Plans `query` over `horizons`, scans each segment at its resolution and
// builds the report. The caller holds the backend's read transaction.
Result<CostReport> RunQuery(const CostQuery& query, const Horizons& horizons,
                            const QueryBackend& backend);

}  // namespace gpu_autoscaler::cost::internal
