// File: src/cost/waste.h
//
// Idle-GPU (waste) detection: a GPU is idle when a pod holds it but uses less
// than a threshold (default 5 %) for at least a window (default 30 min).
// Pure: the caller feeds allocations and (time, utilisation) samples; no
// clock is read, every timestamp is passed in.
//
//   IdleGpuDetector detector({.threshold = 0.05, .window_seconds = 1800});
//   detector.SetAllocation("ml/trainer-0", /*gpu_share=*/1.0, /*cost_per_second=*/0.001);
//   std::vector<IdleEvent> events;
//   detector.Observe("ml/trainer-0", now, utilization, events);  // every sample
//   for (const IdleEvent& e : events) { /* a Kubernetes Event: became idle / busy again */ }
//   PodWaste w = *detector.Waste("ml/trainer-0");   // idle GPU-seconds and their cost
//
// Time model. A sample (t, u) covers the interval since the pod's previous
// sample (dcgm-exporter and the GenTD26 trace report an average over the
// last period), charged at the pod's allocation when the sample arrives. A
// pod's first sample, a sample after a gap longer than `max_gap_seconds`,
// and a sample without a figure (u < 0) cover nothing and end any low run:
// a GPU is never called idle for time nobody measured.
//
// A low run starts at the start of the first interval below the threshold.
// When it has lasted `window_seconds` the pod becomes idle (an event with
// `since` = run start) and the WHOLE run so far, not just the part after the
// window, is counted as idle GPU-seconds and cost: the GPU was wasted from
// the start of the run; the window only guards against calling short pauses
// waste. Later low intervals are added as they come. A sample at or above the
// threshold ends the run (an event if the pod was idle). Runs that end before
// the window count nothing.
//
// Pods are keyed by any string the caller picks ("ns/name" or the UID).
// Thread-safety: not thread-safe; one owner calls everything.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gpu_autoscaler::cost {

struct WasteOptions {
  double threshold = 0.05;           // utilisation (0..1) below which a GPU is unused
  int64_t window_seconds = 30 * 60;  // how long before an unused GPU is idle
  int64_t max_gap_seconds = 5 * 60;  // longer gaps between samples are not measured
};

struct IdleEvent {
  enum class Kind { kBecameIdle, kBecameBusy, kStoppedMeasuring };
  std::string pod{};
  Kind kind = Kind::kBecameIdle;
  int64_t at = 0;           // the sample's time
  int64_t since = 0;        // start of the low run (kBecameIdle) / of the idle state
  double utilization = -1;  // the sample that caused it
};
std::string_view IdleEventKindName(IdleEvent::Kind kind);  // "BecameIdle", ...

struct PodWaste {
  std::string pod{};
  double gpu_share = 0;
  bool idle = false;                // idle now
  int64_t idle_since = 0;           // start of the current low run, when idle
  double measured_gpu_seconds = 0;  // GPU-seconds covered by samples
  double measured_cost = 0;         // their cost
  double idle_gpu_seconds = 0;      // GPU-seconds in low runs that reached the window
  double idle_cost = 0;
  int idle_periods = 0;  // how many times the pod became idle
};

struct WasteTotals {
  size_t pods = 0;
  size_t idle_pods = 0;  // idle now
  double measured_gpu_seconds = 0;
  double measured_cost = 0;
  double idle_gpu_seconds = 0;
  double idle_cost = 0;
};

class IdleGpuDetector {
 public:
  explicit IdleGpuDetector(WasteOptions options = {});

  // Creates or updates a pod's allocation: GPUs held (fractional for shared
  // GPUs) and the cost per second of those GPUs. Takes effect for samples
  // that arrive later. A pod with gpu_share <= 0 is tracked but never idle.
  void SetAllocation(std::string_view pod, double gpu_share, double cost_per_second);
  // Feeds one sample (utilisation 0..1 of the pod's share, -1 for none).
  // Unknown pods are added with a one-GPU, zero-cost allocation. Samples not
  // later than the pod's previous one are ignored. Appends edge events.
  void Observe(std::string_view pod, int64_t t, double utilization, std::vector<IdleEvent>& events);
  // Forgets a pod (deleted); appends kStoppedMeasuring if it was idle.
  // Its totals are returned and no longer counted.
  std::optional<PodWaste> Remove(std::string_view pod, int64_t t, std::vector<IdleEvent>& events);

  std::optional<PodWaste> Waste(std::string_view pod) const;
  std::vector<PodWaste> AllWaste() const;  // sorted by pod
  WasteTotals Totals() const;
  const WasteOptions& options() const { return options_; }

 private:
  struct PodState {
    PodWaste waste{};
    double cost_per_second = 0;
    bool has_sample = false;
    int64_t last_t = 0;
    bool in_run = false;  // inside a low run
    int64_t run_start = 0;
    double run_gpu_seconds = 0;  // low run not yet counted (before the window)
    double run_cost = 0;
  };
  void EndRun(PodState& s, const std::string& pod, int64_t t, double u, IdleEvent::Kind kind,
              std::vector<IdleEvent>& events);

  WasteOptions options_;
  std::map<std::string, PodState, std::less<>> pods_;
};

}  // namespace gpu_autoscaler::cost
