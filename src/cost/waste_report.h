// File: src/cost/waste_report.h
//
// Idle-GPU waste per pod from the cost history, for `gpu-autoscaler waste`:
// the per-pod, per-bucket rows of a CostQuery grouped by pod and bucketed
// (each row's GPU-seconds, GPU cost and utilisation sums) fed through the
// same IdleGpuDetector the manager runs live, so the report and the
// manager's idle-GPU Events and metrics agree on what "idle" means.
//
//   CostQuery q{.window = w, .group_by = {Dimension::kPod}, .bucket = Resolution::kMinute};
//   GPU_ASSIGN_OR_RETURN(CostReport report, store->Query(q));
//   WasteReport waste = WasteFromHistory(report.rows, 60, {.threshold = 0.05});
//
// Each bucket is one sample covering the bucket: its utilisation is utilized /
// metered GPU-seconds (none when nothing was measured), its allocation the
// bucket's GPU-seconds spread over the bucket. A missing bucket (the pod did
// not run, or nothing was stored) is unmeasured and ends a low run.
//
// Thread-safety: a pure function.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cost/store.h"
#include "cost/waste.h"

namespace gpu_autoscaler::cost {

struct WasteReport {
  std::vector<PodWaste> pods;  // every pod that held a GPU, by idle cost, then name
  WasteTotals totals;
};

// `rows`: CostRow keys[0] = the pod ("namespace/name"); idle-capacity rows
// are skipped. `bucket_seconds`: the query's bucket width.
WasteReport WasteFromHistory(std::span<const CostRow> rows, int64_t bucket_seconds,
                             const WasteOptions& options);

}  // namespace gpu_autoscaler::cost
