// File: src/profiling/evaluation.h
//
// Offline evaluation of the recommender on per-pod usage series (the Alibaba
// GenTD26 layout): for each pod, learn from the first `train_fraction` of its
// timeline, recommend, then score the rest of the timeline against the
// recommendation. Three methods side by side on the same split:
//   ours   OurConfig(): GPU memory and memory from the per-minute peak plus a
//          margin tuned on the training part alone, and a GPU share (whole,
//          MIG, MPS, time-slicing) from GPU memory and utilisation;
//   vpa    VpaConfig(): VPA's algorithm with its published constants on GPU
//          memory and memory, and the naive share (time-slicing sized by the
//          GPU-memory target alone);
//   whole  one whole GPU per pod, the usual request.
//
//   EvaluationOptions options;                      // train on the first half
//   GPU_ASSIGN_OR_RETURN(EvaluationReport report, Evaluate(pods, options));
//   report.methods[0].gpu_memory_exceed_minutes_pct;  // ours
//
// Scores, pooled over pods (each sample is one minute of usage):
//   gpu_memory_exceed_minutes_pct  test samples whose GPU memory exceeds the
//                                  pod's GPU-memory limit (the MIG slice's
//                                  memory, the MPS / time-slicing limit, or the
//                                  whole GPU), over all GPU-memory test samples;
//   memory_exceed_minutes_pct      the same for memory against the memory target;
//   gpu_utilization_exceed_minutes_pct  utilisation above the compute share
//                                  (throttling, not a failure);
//   gpus_saved_pct                 100 × (1 − Σ GPU fraction / pods with GPU usage).
//
// Tuning (no peeking): the GPU-memory and memory margins are chosen from
// `margin_grid` by a nested split of each pod's training part (learn from
// its first `train_fraction`, score the rest of the training part) as the
// smallest margin whose pooled exceedance is at most `tuning_target_pct`.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "gpu/mig.h"
#include "profiling/recommender.h"

namespace gpu_autoscaler::profiling {

struct TimedValue {
  int64_t timestamp = 0;  // seconds
  double value = 0;
};

// One pod's usage series, each in time order.
struct PodUsage {
  std::string name{};
  std::vector<TimedValue> gpu_utilization{};  // fraction of the GPU's time, 0..1
  std::vector<TimedValue> gpu_memory{};       // bytes
  std::vector<TimedValue> memory{};           // the trace's unit (GenTD26: fraction of the limit)
};

struct EvaluationOptions {
  double train_fraction = 0.5;  // in (0, 1)
  gpu::GpuModel gpu_model = gpu::GpuModel::kA100_80GB;
  // A fixed GPU-memory and memory margin for ours; unset: tuned on the training part.
  std::optional<double> margin;
  std::vector<double> margin_grid = {0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50, 0.75, 1.0};
  double tuning_target_pct = 0.5;
  // Memory as a fraction of the container's limit (GenTD26); false for bytes.
  bool memory_is_fraction = true;
};

enum class Method { kOurs = 0, kVpa, kWholeGpu };
inline constexpr int kMethodCount = 3;
std::string_view MethodName(Method m);  // "ours", "vpa", "whole-gpu"

struct Exceedance {
  int64_t test_minutes = 0;
  int64_t exceeded_minutes = 0;
  double pct() const {
    return test_minutes > 0
               ? 100.0 * static_cast<double>(exceeded_minutes) / static_cast<double>(test_minutes)
               : 0.0;
  }
};

struct PodMethodResult {
  Recommendation recommendation;
  Exceedance gpu_memory;
  Exceedance memory;
  Exceedance gpu_utilization;
};

struct PodResult {
  std::string name;
  bool uses_gpu = false;  // has GPU memory or utilisation samples
  int64_t train_seconds = 0;
  int64_t test_seconds = 0;
  double train_gpu_memory_peak = 0;  // bytes
  PodMethodResult methods[kMethodCount];
};

struct MethodSummary {
  Method method = Method::kOurs;
  Exceedance gpu_memory;
  Exceedance memory;
  Exceedance gpu_utilization;
  double gpu_fraction_sum = 0;
  double gpus_saved_pct = 0;
  int share_counts[4] = {0, 0, 0, 0};  // by GpuShareKind
};

struct EvaluationReport {
  std::string gpu_model;
  double train_fraction = 0.5;
  int pods = 0;                  // all pods in the input
  int gpu_pods = 0;              // pods with GPU usage: the denominator of gpus_saved_pct
  double gpu_memory_margin = 0;  // chosen for ours (tuned or fixed)
  bool margins_tuned = false;
  double memory_margin = 0;
  std::vector<PodResult> pod_results;  // input order
  MethodSummary methods[kMethodCount];
};

// The configurations the evaluation uses, in the trace's units.
RecommenderConfig EvaluationConfig(Method m, const EvaluationOptions& options);

Result<EvaluationReport> Evaluate(const std::vector<PodUsage>& pods,
                                  const EvaluationOptions& options);

}  // namespace gpu_autoscaler::profiling
