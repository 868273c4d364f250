// File: src/autoscale/policy_internal.h
//
// Constructors of policies implemented outside policy.cc. Internal to
// src/autoscale; use MakePolicy.
//
// Thread-safety: see policy.h.
#pragma once

#include <memory>

#include "autoscale/policy.h"

namespace gpu_autoscaler::autoscale::internal {

// FragLookahead's weights (frag_lookahead.cc). The defaults are the policy
// MakePolicy("FragLookahead") builds; tuning tools try others.
struct FragLookaheadParams {
  // Weight of the filled-node view against FGD's one-pod test, sharing shapes.
  double lookahead_weight = 0.5;
  // Milli-GPU of penalty per milli-GPU placed, per unit of model scarcity.
  double scarcity_weight = 1.0;
  // Weight of the idle milli that no sum of typical sharing requests can fill.
  double unfillable_weight = 1.0;
  // Weight of the free CPU that typical CPU-only pods cannot use (free CPU
  // modulo their request), converted to milli-GPU at the cluster's ratio.
  double cpu_fragment_weight = 0.5;
  // When > 0, cpu_fragment_weight is scaled by max(0, ρ − ref) / (1 − ref),
  // ρ being the target workload's CPU per GPU milli over the cluster's, and
  // by 0 from ρ = 1 on: the CPU term acts where CPU is tight but sufficient.
  double cpu_pressure_reference = 0.8;
  // Weight of the idle GPU milli that a node's free CPU cannot feed: idle
  // milli minus free CPU / κ, κ being the CPU per GPU milli of the target
  // workload's GPU shapes. It keeps CPU beside idle GPUs for the GPU pods
  // that would use them.
  double cpu_shortfall_weight = 0.5;
  // The shortfall weight applies in full while ρ (above) is at most the first,
  // falls linearly to 0 at the second and stays 0 beyond: near ρ = 1 the CPU it
  // keeps for GPU pods is what CPU-only pods need.
  double cpu_shortfall_full_below = 0.8;
  double cpu_shortfall_off_from = 0.9;
  // Weight of the free CPU that typical CPU-only pods cannot use because the
  // node's free memory runs out first (free CPU − ⌊free memory / their
  // memory⌋ × their CPU), in milli-GPU at the cluster's ratio. It keeps each
  // node's CPU and memory in the proportion the pods that use them come in.
  double memory_strand_weight = 2.5;
  // The memory-strand weight is scaled by min(1, max(0, ρ − ref) / (1 − ref)):
  // stranded CPU matters once CPU is scarce, and most once it is oversubscribed.
  double memory_strand_reference = 0.8;
  // From ρ = 1 on, CPU is oversubscribed and GPU pods and CPU-only pods trade
  // against each other; ties between nodes then sort the two classes apart.
  // A CPU-only pod prefers the node with the most memory to spare (free
  // memory after it, less what the idle GPUs' pods would take at the GPU
  // shapes' memory per GPU milli); a whole-GPU or multi-GPU pod the node
  // whose spare memory, in CPU at the workload's memory per CPU, falls
  // furthest short of the CPU it leaves free.
  bool oversubscribed_cpu_tiebreaks = true;
};

std::unique_ptr<Policy> MakeFragLookahead(const TargetWorkload* workload,
                                          FragLookaheadParams params = {});

}  // namespace gpu_autoscaler::autoscale::internal
