// File: src/cost/pending_rollups.h
//
// Rollup totals the SQLite cost store holds in memory until it writes them:
// the seconds of minutes that are still open, keyed densely by series id, and
// the key of a late (minute or hour, series) bucket.
//
//   PendingRollups pending;
//   pending.Add(minute, series_id, totals);        // per stored sample or run
//   pending.TakeBefore(newest_minute, write_fn);   // closed minutes, then forgotten
//
// Thread-safety: none; owned by one store.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "cost/store.h"

namespace gpu_autoscaler::cost::sqlite {

struct BucketKey {
  int64_t bucket;
  int64_t series_id;
  friend bool operator==(const BucketKey&, const BucketKey&) = default;
};
struct BucketKeyHash {
  size_t operator()(const BucketKey& k) const {
    return static_cast<size_t>(static_cast<uint64_t>(k.bucket) * 0x9E3779B97F4A7C15ull ^
                               static_cast<uint64_t>(k.series_id) * 0xC2B2AE3D27D4EB4Full);
  }
};

// New seconds of minutes that are still open, per (minute, series). Each
// open minute keeps a dense slot per series id, so adding a sample is an
// index, not a hash; a metering tick has one or two open minutes.
class PendingRollups {
 public:
  void Add(int64_t minute, int64_t series_id, const CostTotals& t) {
    if (minute != last_minute_ || last_ == nullptr) {
      auto [it, inserted] = minutes_.try_emplace(minute);
      if (inserted && !spare_.empty()) {
        it->second = std::move(spare_.back());
        spare_.pop_back();
      }
      last_minute_ = minute;
      last_ = &it->second;
    }
    const size_t index = static_cast<size_t>(series_id);
    if (index >= last_->by_series.size()) last_->by_series.resize(index + 1);
    CostTotals& slot = last_->by_series[index];
    if (slot.samples == 0) last_->touched.push_back(series_id);
    slot.Add(t);
  }

  // Calls fn(minute, series_id, totals) for every minute before `before`,
  // then forgets those minutes.
  template <typename Fn>
  Status TakeBefore(int64_t before, Fn fn) {
    while (!minutes_.empty() && minutes_.begin()->first < before) {
      auto node = minutes_.extract(minutes_.begin());
      Minute& m = node.mapped();
      Status status;
      for (int64_t id : m.touched) {
        CostTotals& slot = m.by_series[static_cast<size_t>(id)];
        if (status.ok()) status = fn(node.key(), id, slot);
        slot = CostTotals();
      }
      m.touched.clear();
      spare_.push_back(std::move(m));
      last_ = nullptr;
      GPU_RETURN_IF_ERROR(status);
    }
    return Status::Ok();
  }

  void Clear() {
    minutes_.clear();
    last_ = nullptr;
  }

 private:
  struct Minute {
    std::vector<CostTotals> by_series;
    std::vector<int64_t> touched;
  };
  std::map<int64_t, Minute> minutes_;
  std::vector<Minute> spare_;  // cleared slot vectors, reused
  int64_t last_minute_ = INT64_MIN;
  Minute* last_ = nullptr;
};

}  // namespace gpu_autoscaler::cost::sqlite
