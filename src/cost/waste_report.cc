#include "cost/waste_report.h"

#include <algorithm>
#include <map>
#include <string>

namespace gpu_autoscaler::cost {

WasteReport WasteFromHistory(std::span<const CostRow> rows, int64_t bucket_seconds,
                             const WasteOptions& options) {
  std::map<std::string, std::vector<const CostRow*>> by_pod;
  for (const CostRow& row : rows) {
    if (row.idle || row.keys.empty() || row.totals.gpu_seconds <= 0) continue;
    by_pod[row.keys[0]].push_back(&row);
  }
  IdleGpuDetector detector(options);
  std::vector<IdleEvent> events;  // the report needs the totals only
  const double width = static_cast<double>(bucket_seconds);
  for (auto& [pod, buckets] : by_pod) {
    std::sort(buckets.begin(), buckets.end(),
              [](const CostRow* a, const CostRow* b) { return a->bucket < b->bucket; });
    int64_t next = 0;
    bool first = true;
    for (const CostRow* row : buckets) {
      const CostTotals& t = row->totals;
      const double utilization =
          t.metered_gpu_seconds > 0 ? t.utilized_gpu_seconds / t.metered_gpu_seconds : -1;
      detector.SetAllocation(pod, t.gpu_seconds / width, t.gpu_cost / width);
      if (first) {
        detector.Observe(pod, row->bucket, utilization, events);  // starts measuring
      } else if (row->bucket != next) {
        detector.Observe(pod, row->bucket, -1, events);  // a gap: measured nothing
      }
      detector.Observe(pod, row->bucket + bucket_seconds, utilization, events);
      next = row->bucket + bucket_seconds;
      first = false;
    }
  }
  WasteReport report;
  report.pods = detector.AllWaste();
  std::stable_sort(report.pods.begin(), report.pods.end(),
                   [](const PodWaste& a, const PodWaste& b) { return a.idle_cost > b.idle_cost; });
  report.totals = detector.Totals();
  return report;
}

}  // namespace gpu_autoscaler::cost
