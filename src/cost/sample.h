// File: src/cost/sample.h
//
// One pod's metered cost for one second: what the metering engine produces
// and what the history stores (SQLite/PostgreSQL) persist and roll up. Plain
// data, so controllers, the simulator, storage and reports share it.
//
//   CostSample s;  s.pod_uid = "…";  s.second = 1'700'000'000;
//   s.gpu_cost = 0.000'85;  s.cpu_cost = …;  store.Append(std::span(&s, 1));
//
// Thread-safety: plain value type.
#pragma once

#include <cstdint>
#include <string>

namespace gpu_autoscaler::cost {

// Capacity tier of the node a pod ran on; the price follows it.
enum class CapacityTier { kOnDemand, kSpot, kReserved };

struct CostSample {
  // Identity. Writes are idempotent per (pod_uid, second).
  std::string pod_uid;
  std::string pod_name;
  std::string ns;
  // Attribution label values; "" means unlabelled.
  std::string team;
  std::string project;
  std::string experiment;
  std::string node;
  std::string gpu_model;  // "" for pods without GPUs
  CapacityTier tier = CapacityTier::kOnDemand;

  int64_t second = 0;    // Unix time, start of the metered second
  double gpu_share = 0;  // GPUs held: 1 = one whole GPU, 1/7 for a 1g MIG slice...
  double gpu_cost = 0;   // currency units for this second (allocation)
  double cpu_cost = 0;
  double memory_cost = 0;
  double usage_cost = 0;        // GPU cost weighted by measured utilisation, if known
  double gpu_utilization = -1;  // 0..1; -1 when no metric

  // Idle capacity rows: one per node per second with pod_uid "idle/<node>",
  // ns/pod_name/labels empty, node/gpu_model/tier set, and the idle GPU, CPU
  // and memory cost in gpu_cost/cpu_cost/memory_cost (gpu_share = idle GPUs).
  bool idle = false;
  // Pod rows, when idle cost is shared out: this pod's share of its node's
  // idle cost (then the idle row keeps only what could not be shared).
  // A row's total is gpu_cost + cpu_cost + memory_cost + idle_cost.
  double idle_cost = 0;
};

}  // namespace gpu_autoscaler::cost
