#include <algorithm>
#include <cmath>
#include <string>

#include "cost/pricing.h"
#include "cost/run_ledger.h"
#include "cost/store.h"
#include "cost/store_internal.h"

namespace gpu_autoscaler::cost {

int64_t ResolutionSeconds(Resolution r) {
  switch (r) {
    case Resolution::kSecond:
      return 1;
    case Resolution::kMinute:
      return 60;
    case Resolution::kHour:
      return 3600;
  }
  return 1;
}

std::string_view ResolutionName(Resolution r) {
  switch (r) {
    case Resolution::kSecond:
      return "second";
    case Resolution::kMinute:
      return "minute";
    case Resolution::kHour:
      return "hour";
  }
  return "?";
}

std::string_view DimensionName(Dimension d) {
  switch (d) {
    case Dimension::kNamespace:
      return "namespace";
    case Dimension::kTeam:
      return "team";
    case Dimension::kProject:
      return "project";
    case Dimension::kExperiment:
      return "experiment";
    case Dimension::kNode:
      return "node";
    case Dimension::kModel:
      return "model";
    case Dimension::kTier:
      return "tier";
    case Dimension::kPod:
      return "pod";
  }
  return "?";
}

Result<Dimension> ParseDimension(std::string_view name) {
  if (name == "namespace" || name == "ns") return Dimension::kNamespace;
  if (name == "team") return Dimension::kTeam;
  if (name == "project") return Dimension::kProject;
  if (name == "experiment" || name == "experiment-id") return Dimension::kExperiment;
  if (name == "node") return Dimension::kNode;
  if (name == "model" || name == "gpu-model") return Dimension::kModel;
  if (name == "tier") return Dimension::kTier;
  if (name == "pod") return Dimension::kPod;
  return InvalidArgumentError("unknown dimension \"" + std::string(name) +
                              "\": want namespace, team, project, experiment, node, model, "
                              "tier or pod");
}

void CostTotals::Add(const CostTotals& o) {
  samples += o.samples;
  gpu_seconds += o.gpu_seconds;
  idle_gpu_seconds += o.idle_gpu_seconds;
  gpu_cost += o.gpu_cost;
  cpu_cost += o.cpu_cost;
  memory_cost += o.memory_cost;
  usage_cost += o.usage_cost;
  idle_cost += o.idle_cost;
  exclusive_gpu_cost += o.exclusive_gpu_cost;
  utilized_gpu_seconds += o.utilized_gpu_seconds;
  metered_gpu_seconds += o.metered_gpu_seconds;
}

CostTotals CostTotals::FromSample(const CostSample& s) {
  CostTotals t;
  t.samples = 1;
  if (s.idle) {
    t.idle_gpu_seconds = s.gpu_share;
    t.idle_cost = s.gpu_cost + s.cpu_cost + s.memory_cost + s.idle_cost;
    return t;
  }
  t.gpu_seconds = s.gpu_share;
  t.gpu_cost = s.gpu_cost;
  t.cpu_cost = s.cpu_cost;
  t.memory_cost = s.memory_cost;
  t.usage_cost = s.usage_cost;
  t.idle_cost = s.idle_cost;
  // A fraction of a GPU would have been a whole one without sharing; whole
  // multi-GPU requests stay as they are.
  t.exclusive_gpu_cost =
      s.gpu_share > 0 ? s.gpu_cost * std::max(1.0, std::ceil(s.gpu_share - 1e-9)) / s.gpu_share
                      : s.gpu_cost;
  if (s.gpu_utilization >= 0) {
    t.utilized_gpu_seconds = s.gpu_share * s.gpu_utilization;
    t.metered_gpu_seconds = s.gpu_share;
  }
  return t;
}

namespace internal {

Status SchemaMismatch(const std::string& where, int version) {
  if (version > kLatestCostSchemaVersion) {
    return FailedPreconditionError(where + ": schema version " + std::to_string(version) +
                                   " is newer than this program reads (" +
                                   std::to_string(kLatestCostSchemaVersion) +
                                   "): use a newer gpu-autoscaler");
  }
  return FailedPreconditionError(
      where + ": schema version " + std::to_string(version) +
      " is older than this program reads (" + std::to_string(kLatestCostSchemaVersion) +
      "); reports never migrate a history: upgrade it by running gpu-autoscaler-manager on it");
}

Status StepSchema(const std::string& where, int version, int target,
                  std::span<const char* const> migrations,
                  const std::function<Status(const char* script)>& exec,
                  const std::function<Status(int version)>& record) {
  if (version > kLatestCostSchemaVersion) {
    return FailedPreconditionError(where + ": schema version " + std::to_string(version) +
                                   " is newer than this program supports (" +
                                   std::to_string(kLatestCostSchemaVersion) + ")");
  }
  for (; version < target && version < static_cast<int>(migrations.size()); ++version) {
    if (Status step = exec(migrations[static_cast<size_t>(version)]); !step.ok()) {
      return step.WithContext("migrating to schema version " + std::to_string(version + 1));
    }
    GPU_RETURN_IF_ERROR(record(version + 1));
  }
  return Status::Ok();
}

SeriesKey SeriesKey::Of(const CostSample& s) {
  return SeriesKey{s.ns, s.team, s.project, s.experiment, s.node, s.gpu_model, s.tier, s.idle};
}

std::string SeriesKey::Encoded() const {
  std::string out;
  out.reserve(ns.size() + team.size() + project.size() + experiment.size() + node.size() +
              gpu_model.size() + 10);
  for (const std::string* part : {&ns, &team, &project, &experiment, &node, &gpu_model}) {
    out += *part;
    out += '\0';
  }
  out += static_cast<char>('0' + static_cast<int>(tier));
  out += idle ? 'i' : 'p';
  return out;
}

const std::string& SeriesKey::Get(Dimension d) const {
  switch (d) {
    case Dimension::kNamespace:
      return ns;
    case Dimension::kTeam:
      return team;
    case Dimension::kProject:
      return project;
    case Dimension::kExperiment:
      return experiment;
    case Dimension::kNode:
      return node;
    case Dimension::kModel:
      return gpu_model;
    case Dimension::kTier:
    case Dimension::kPod:
      break;
  }
  static const std::string kEmpty;
  return kEmpty;
}

namespace {

bool BadCost(double v) {
  return !std::isfinite(v) || v < 0;
}

}  // namespace

Status ValidateSamples(std::span<const CostSample> samples) {
  for (size_t i = 0; i < samples.size(); ++i) {
    const CostSample& s = samples[i];
    const char* problem = nullptr;
    if (s.pod_uid.empty()) {
      problem = "pod_uid is empty";
    } else if (s.second < 0) {
      problem = "second is negative";
    } else if (BadCost(s.gpu_share) || BadCost(s.gpu_cost) || BadCost(s.cpu_cost) ||
               BadCost(s.memory_cost) || BadCost(s.usage_cost) || BadCost(s.idle_cost)) {
      problem = "a cost or gpu_share is negative or not finite";
    } else if (!std::isfinite(s.gpu_utilization) || s.gpu_utilization > 1.0 + 1e-9) {
      problem = "gpu_utilization is not in 0..1 (or -1)";
    }
    if (problem != nullptr) {
      return InvalidArgumentError("cost sample " + std::to_string(i) + " (pod " + s.pod_uid +
                                  ", second " + std::to_string(s.second) + "): " + problem);
    }
  }
  return Status::Ok();
}

int64_t Horizons::Of(Resolution r) const {
  switch (r) {
    case Resolution::kSecond:
      return second;
    case Resolution::kMinute:
      return minute;
    case Resolution::kHour:
      return hour;
  }
  return 0;
}

namespace {

bool NeedsPods(const CostQuery& q) {
  if (std::find(q.group_by.begin(), q.group_by.end(), Dimension::kPod) != q.group_by.end()) {
    return true;
  }
  return std::any_of(q.filters.begin(), q.filters.end(),
                     [](const DimensionFilter& f) { return f.dimension == Dimension::kPod; });
}

// Covers [lo, hi) with the coarsest tables first: levels[i] is used for the
// whole units inside, the edges go to finer levels.
void Cover(int64_t lo, int64_t hi, std::span<const Resolution> levels, std::vector<Segment>& out) {
  if (lo >= hi) return;
  const Resolution r = levels.front();
  if (levels.size() == 1) {
    out.push_back({r, lo, hi});
    return;
  }
  const int64_t unit = ResolutionSeconds(r);
  const int64_t a = CeilTo(lo, unit);
  const int64_t b = FloorTo(hi, unit);
  if (a >= b) {
    Cover(lo, hi, levels.subspan(1), out);
    return;
  }
  Cover(lo, a, levels.subspan(1), out);
  out.push_back({r, a, b});
  Cover(b, hi, levels.subspan(1), out);
}

}  // namespace

Result<QueryPlan> PlanQuery(const CostQuery& query, const Horizons& horizons) {
  const TimeWindow& w = query.window;
  if (w.since < 0 || w.until <= w.since) {
    return InvalidArgumentError("bad time window [" + std::to_string(w.since) + ", " +
                                std::to_string(w.until) + "): want 0 <= since < until");
  }
  const bool pods = NeedsPods(query);
  // Per-pod data exists only in the raw seconds.
  Resolution finest = pods ? Resolution::kSecond : query.resolution;
  Resolution coarsest = pods ? Resolution::kSecond : query.bucket.value_or(Resolution::kHour);
  // Finer data that has passed its retention is answered from coarser buckets.
  while (!pods && finest != Resolution::kHour &&
         horizons.Of(finest) > FloorTo(w.since, ResolutionSeconds(finest))) {
    finest = static_cast<Resolution>(static_cast<int>(finest) + 1);
  }
  if (coarsest < finest) coarsest = finest;

  QueryPlan plan;
  plan.resolution = finest;
  const int64_t unit = ResolutionSeconds(finest);
  plan.window = {FloorTo(w.since, unit), CeilTo(w.until, unit)};
  plan.window.since = std::max(plan.window.since, horizons.Of(finest));
  if (plan.window.since >= plan.window.until) return plan;  // everything expired

  std::vector<Resolution> levels;
  for (int r = static_cast<int>(coarsest); r >= static_cast<int>(finest); --r) {
    levels.push_back(static_cast<Resolution>(r));
  }
  // Rollup buckets hold exactly the seconds before rolled_until (the bucket
  // containing it partially); later seconds are read raw.
  const int64_t split =
      pods ? plan.window.until
           : std::clamp(horizons.rolled_until, plan.window.since, plan.window.until);
  Cover(plan.window.since, split, levels, plan.segments);
  if (split < plan.window.until) {
    plan.segments.push_back({Resolution::kSecond, split, plan.window.until});
  }
  return plan;
}

Horizons RetentionHorizons(const RetentionPolicy& policy, int64_t now, const Horizons& current) {
  auto horizon = [now](int64_t keep, int64_t old) {
    if (keep <= 0) return old;
    return std::max(old, FloorTo(now - keep, 3600));
  };
  Horizons next = current;
  // Raw seconds not yet rolled up are kept whatever the policy.
  next.second = std::min(horizon(policy.raw_seconds, current.second),
                         std::max(current.second, current.rolled_until));
  next.minute = horizon(policy.minute_seconds, current.minute);
  next.hour = horizon(policy.hour_seconds, current.hour);
  return next;
}

size_t ReportBuilder::RowKeyHash::operator()(const RowKey& k) const {
  uint64_t h = static_cast<uint64_t>(k.bucket) * 0x9E3779B97F4A7C15ull;
  h ^= (static_cast<uint64_t>(static_cast<uint32_t>(k.group)) + 0x632BE59BD9B4E019ull) + (h << 6) +
       (h >> 2);
  h ^= (static_cast<uint64_t>(k.pod_id) * 0xC2B2AE3D27D4EB4Full) + (h << 6) + (h >> 2);
  return static_cast<size_t>(h);
}

ReportBuilder::ReportBuilder(const CostQuery& query, const QueryPlan& plan, SeriesLookup series)
    : query_(query), plan_(plan), series_(std::move(series)) {
  for (size_t i = 0; i < query_.group_by.size(); ++i) {
    if (query_.group_by[i] == Dimension::kPod) {
      by_pod_ = true;
      pod_slot_ = i;
    }
  }
  for (const DimensionFilter& f : query_.filters) {
    if (f.dimension == Dimension::kPod) pod_filter_ = &f;
  }
  if (query_.bucket) bucket_width_ = ResolutionSeconds(*query_.bucket);
}

int32_t ReportBuilder::GroupOf(int64_t series_id) {
  if (series_id < 0) return -1;
  const size_t index = static_cast<size_t>(series_id);
  if (index < group_of_series_.size() && group_of_series_[index] != -2) {
    return group_of_series_[index];
  }
  if (index >= group_of_series_.size()) group_of_series_.resize(index + 1, -2);
  int32_t group = -1;
  if (const SeriesKey* key = series_(series_id); key != nullptr) {
    bool passes = true;
    for (const DimensionFilter& f : query_.filters) {
      if (f.dimension == Dimension::kPod) continue;
      const std::string_view value =
          f.dimension == Dimension::kTier ? CapacityTierName(key->tier) : key->Get(f.dimension);
      if (value != f.value) passes = false;
    }
    if (passes) {
      // Idle capacity stays apart from the pods when grouping by who spent.
      bool separate_idle = false;
      std::vector<std::string> keys;
      for (Dimension d : query_.group_by) {
        if (d == Dimension::kTier) {
          keys.emplace_back(CapacityTierName(key->tier));
        } else {
          keys.push_back(key->Get(d));
          separate_idle |= d != Dimension::kNode && d != Dimension::kModel;
        }
      }
      const bool idle_row = separate_idle && key->idle;
      std::string encoded;
      for (const std::string& k : keys) {
        encoded += k;
        encoded += '\0';
      }
      encoded += idle_row ? 'i' : 'p';
      auto [it, inserted] =
          group_ids_.try_emplace(encoded, static_cast<int32_t>(group_keys_.size()));
      if (inserted) {
        group_keys_.push_back(std::move(keys));
        group_idle_.push_back(idle_row);
      }
      group = it->second;
    }
  }
  group_of_series_[index] = group;
  return group;
}

const std::string& ReportBuilder::PodName(int64_t pod_id) {
  auto it = pod_name_cache_.find(pod_id);
  if (it == pod_name_cache_.end()) {
    it = pod_name_cache_.emplace(pod_id, pod_names_ ? pod_names_(pod_id) : std::string()).first;
  }
  return it->second;
}

void ReportBuilder::Add(int64_t time, int64_t series_id, int64_t pod_id, const CostTotals& totals) {
  const int32_t group = GroupOf(series_id);
  if (group < 0) return;
  if (pod_filter_ != nullptr && PodName(pod_id) != pod_filter_->value) return;
  if (!by_pod_ && bucket_width_ == 0) {  // one row per group: no hashing
    if (static_cast<size_t>(group) >= dense_.size()) dense_.resize(static_cast<size_t>(group) + 1);
    dense_[static_cast<size_t>(group)].Add(totals);
    return;
  }
  RowKey key{bucket_width_ > 0 ? FloorTo(time, bucket_width_) : plan_.window.since, group, 0};
  if (by_pod_) {
    // Pods are reported by "namespace/name": a pod re-created under the same
    // name (new uid) is the same row.
    const std::string& name = PodName(pod_id);
    auto [it, inserted] = pod_key_ids_.try_emplace(name, static_cast<int64_t>(pod_keys_.size()));
    if (inserted) pod_keys_.push_back(name);
    key.pod_id = it->second;
  }
  rows_[key].Add(totals);
}

void ReportBuilder::AddRun(int64_t lo, int64_t hi, int64_t series_id, int64_t pod_id,
                           const CostTotals& per_second) {
  if (lo >= hi) return;
  if (bucket_width_ == 0) {
    Add(lo, series_id, pod_id, Scaled(per_second, hi - lo));
    return;
  }
  while (lo < hi) {
    const int64_t next = std::min(hi, FloorTo(lo, bucket_width_) + bucket_width_);
    Add(lo, series_id, pod_id, Scaled(per_second, next - lo));
    lo = next;
  }
}

CostReport ReportBuilder::Finish() {
  CostReport report;
  report.window = plan_.window;
  report.resolution = plan_.resolution;
  for (size_t group = 0; group < dense_.size(); ++group) {
    if (dense_[group].samples == 0) continue;
    rows_[{plan_.window.since, static_cast<int32_t>(group), 0}] = dense_[group];
  }
  report.rows.reserve(rows_.size());
  for (const auto& [key, totals] : rows_) {
    CostRow row;
    row.keys = group_keys_[static_cast<size_t>(key.group)];
    row.idle = group_idle_[static_cast<size_t>(key.group)];
    if (by_pod_) row.keys[pod_slot_] = pod_keys_[static_cast<size_t>(key.pod_id)];
    row.bucket = key.bucket;
    row.totals = totals;
    report.rows.push_back(std::move(row));
  }
  std::sort(report.rows.begin(), report.rows.end(), [](const CostRow& a, const CostRow& b) {
    if (a.bucket != b.bucket) return a.bucket < b.bucket;
    if (a.idle != b.idle) return b.idle;  // idle capacity after the owners
    const double ta = a.totals.total_cost();
    const double tb = b.totals.total_cost();
    if (ta != tb) return ta > tb;
    return a.keys < b.keys;
  });
  return report;
}

Result<CostReport> RunQuery(const CostQuery& query, const Horizons& horizons,
                            const QueryBackend& backend) {
  GPU_ASSIGN_OR_RETURN(QueryPlan plan, PlanQuery(query, horizons));
  ReportBuilder builder(query, plan, backend.series);
  if (builder.needs_pods()) builder.SetPodNames(backend.pod_names);
  for (const Segment& segment : plan.segments) {
    GPU_RETURN_IF_ERROR(segment.resolution == Resolution::kSecond
                            ? backend.scan_seconds(segment, builder)
                            : backend.scan_rollup(segment, builder));
  }
  return builder.Finish();
}

}  // namespace internal
}  // namespace gpu_autoscaler::cost
