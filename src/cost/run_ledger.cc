#include "cost/run_ledger.h"

#include <algorithm>
#include <climits>
#include <string_view>
#include <unordered_set>

#include "cost/store_internal.h"

namespace gpu_autoscaler::cost::internal {

RunValues ValuesOf(const CostSample& s) {
  return {s.gpu_share,  s.gpu_cost,  s.cpu_cost,       s.memory_cost,
          s.usage_cost, s.idle_cost, s.gpu_utilization};
}

CostTotals SecondTotals(const RunValues& v, bool idle) {
  CostSample s;
  s.gpu_share = v[0];
  s.gpu_cost = v[1];
  s.cpu_cost = v[2];
  s.memory_cost = v[3];
  s.usage_cost = v[4];
  s.idle_cost = v[5];
  s.gpu_utilization = v[6];
  s.idle = idle;
  return CostTotals::FromSample(s);
}

CostTotals Scaled(const CostTotals& t, int64_t n) {
  const double k = static_cast<double>(n);
  CostTotals out;
  out.samples = t.samples * n;
  out.gpu_seconds = t.gpu_seconds * k;
  out.idle_gpu_seconds = t.idle_gpu_seconds * k;
  out.gpu_cost = t.gpu_cost * k;
  out.cpu_cost = t.cpu_cost * k;
  out.memory_cost = t.memory_cost * k;
  out.usage_cost = t.usage_cost * k;
  out.idle_cost = t.idle_cost * k;
  out.exclusive_gpu_cost = t.exclusive_gpu_cost * k;
  out.utilized_gpu_seconds = t.utilized_gpu_seconds * k;
  out.metered_gpu_seconds = t.metered_gpu_seconds * k;
  return out;
}

void RunLedger::Clear() {
  loaded_ = false;
  open_.clear();
  series_rate_.clear();
  series_runs_.clear();
}

void RunLedger::Load(const std::string& uid, const OpenRun& run) {
  Add(uid, run);
}

void RunLedger::Add(const std::string& uid, const OpenRun& run) {
  const size_t id = static_cast<size_t>(run.series_id);
  if (id >= series_rate_.size()) {
    series_rate_.resize(id + 1);
    series_runs_.resize(id + 1, 0);
  }
  series_rate_[id].Add(SecondTotals(run.values, run.idle));
  ++series_runs_[id];
  open_[uid] = run;
}

void RunLedger::Remove(std::unordered_map<std::string, OpenRun>::iterator it) {
  const size_t id = static_cast<size_t>(it->second.series_id);
  if (--series_runs_[id] == 0) {
    series_rate_[id] = CostTotals();  // exactly zero, not a rounding residue
  } else {
    series_rate_[id].Add(Scaled(SecondTotals(it->second.values, it->second.idle), -1));
  }
  open_.erase(it);
}

Result<AppendStats> RunLedger::Apply(const RunBatch& batch, int64_t watermark, int64_t newest_end,
                                     int64_t horizon, const Intern& intern, const RunSink& sink) {
  if (batch.from < 0 || batch.through <= batch.from) {
    return InvalidArgumentError("run batch [" + std::to_string(batch.from) + ", " +
                                std::to_string(batch.through) + "): want 0 <= from < through");
  }
  GPU_RETURN_IF_ERROR(ValidateSamples(batch.started));
  for (const std::string& uid : batch.ended) {
    if (uid.empty()) return InvalidArgumentError("run batch: an ended pod uid is empty");
  }
  AppendStats stats;
  const int64_t stored_end = std::max(watermark, newest_end);
  if (stored_end != INT64_MIN && batch.through <= stored_end) {
    // Replayed after it was committed: every second is stored already.
    stats.duplicates = (batch.through - batch.from) * static_cast<int64_t>(open_.size());
    return stats;
  }
  if (batch.through <= horizon) {
    stats.too_old = (batch.through - batch.from) * static_cast<int64_t>(batch.started.size());
    return stats;
  }
  // Seconds already stored are not metered again: changes apply from the
  // first new second.
  int64_t from = std::max(batch.from, horizon);
  if (stored_end != INT64_MIN && from < stored_end) {
    stats.duplicates = (stored_end - from) * static_cast<int64_t>(open_.size());
    from = stored_end;
  }
  auto close = [&](const OpenRun& run, int64_t end) -> Status {
    ++stats.runs_closed;
    return sink.close(run.pod_id, run.start, std::max(run.start, end));
  };
  if (watermark != INT64_MIN && from > watermark && !open_.empty()) {
    // Nobody metered [watermark, from): every open run ended at the watermark.
    for (const auto& [uid, run] : open_)
      GPU_RETURN_IF_ERROR(close(run, watermark));
    open_.clear();
    series_rate_.assign(series_rate_.size(), CostTotals());
    series_runs_.assign(series_runs_.size(), 0);
  }
  for (const std::string& uid : batch.ended) {
    auto it = open_.find(uid);
    if (it == open_.end()) continue;
    GPU_RETURN_IF_ERROR(close(it->second, from));
    Remove(it);
  }
  if (batch.complete) {
    std::unordered_set<std::string_view> listed;
    listed.reserve(batch.started.size());
    for (const CostSample& s : batch.started)
      listed.insert(s.pod_uid);
    std::vector<std::string> gone;
    for (const auto& [uid, run] : open_)
      if (listed.count(uid) == 0) gone.push_back(uid);
    for (const std::string& uid : gone) {
      auto it = open_.find(uid);
      GPU_RETURN_IF_ERROR(close(it->second, from));
      Remove(it);
    }
  }
  for (const CostSample& s : batch.started) {
    GPU_ASSIGN_OR_RETURN(const auto ids, intern(s));
    OpenRun run{ids.first, from, ids.second, ValuesOf(s), s.idle};
    if (auto it = open_.find(s.pod_uid); it != open_.end()) {
      const OpenRun& old = it->second;
      if (old.series_id == run.series_id && old.values == run.values && old.idle == run.idle) {
        ++stats.runs_continued;  // the same run goes on (a restart's resync)
        continue;
      }
      if (old.start < from) GPU_RETURN_IF_ERROR(close(old, from));
      Remove(it);
    }
    GPU_RETURN_IF_ERROR(sink.open(run));
    ++stats.runs_opened;
    Add(s.pod_uid, run);
  }
  // Every open run covers [from, through): roll it up per series.
  for (size_t id = 0; id < series_rate_.size(); ++id) {
    if (series_runs_[id] == 0) continue;
    ForEachMinute(from, batch.through, [&](int64_t minute, int64_t seconds) {
      sink.roll(minute, static_cast<int64_t>(id), Scaled(series_rate_[id], seconds));
    });
  }
  stats.inserted = (batch.through - from) * static_cast<int64_t>(open_.size());
  return stats;
}

}  // namespace gpu_autoscaler::cost::internal
