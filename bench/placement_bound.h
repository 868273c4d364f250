// File: bench/placement_bound.h
//
// An upper bound on the GPU allocation that any placement policy, online or
// offline, can reach on one arrival sequence of the simulator (simulator.h).
// For each arrived column k it solves a linear relaxation of "place the most
// GPU milli out of the pods that have arrived so far": nodes are grouped into
// types (CPU, memory, GPU count, model), pods into shapes, and x[s][t] is how
// many pods of shape s go to nodes of type t, subject to each type's total
// CPU, memory and GPU milli, the model constraints, and no more pods of a
// shape than have arrived. What one GPU can hold is a configuration LP
// (Gilmore–Gomory): y[p][t] GPUs of type t packed with pattern p, p ranging
// over the maximal multisets of sharing requests that fit 1000 milli; the
// sharing pods of each request on type t are at most the slots its patterns
// offer, and patterns plus whole-GPU pods' GPUs at most the type's GPUs.
// Every real placement is a feasible point, so the LP optimum bounds every
// policy. Solved with GLPK; tooling only, never on the scheduler's path.
//
//   GPU_ASSIGN_OR_RETURN(BoundCurve curve, AllocationBound(trace, /*seed=*/42));
//   double at100 = curve.alloc_pct[100];
//
// Thread-safety: reentrant (one GLPK problem per call); GLPK's terminal
// output is switched off process-wide.
#pragma once

#include <array>
#include <cstdint>

#include "autoscale/simulator.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale::bench {

struct BoundCurve {
  // Column k: the LP bound (% of capacity) at the last event whose arrived
  // demand rounds to k%, which bounds the mean allocation over column k's
  // events since allocation never falls. NaN where no event rounds to k.
  std::array<double, kArrivedColumns> alloc_pct{};
  int node_types = 0;
  int pod_shapes = 0;
  int gpu_patterns = 0;  // maximal sets of sharing requests one GPU holds
  int lp_rows = 0;
  int lp_columns = 0;
};

Result<BoundCurve> AllocationBound(const PreparedTrace& trace, uint64_t seed,
                                   const SimulationOptions& options = {});

// A tighter bound for policies that place every pod that fits somewhere, as
// the simulator's do, at one arrived column. There are no departures, so free
// resources only shrink: once a pod of an *anchor* shape a is refused, every
// later pod that needs at least as much of everything (CPU, memory, milli on
// one GPU, a subset of a's GPU models) is refused too, or it would have left
// room for a. For each anchor (the most frequent shapes above half a GPU, up
// to `anchors`) and each of `blocks` equal blocks of the column's arrivals
// where a's first refusal may fall (or none), the LP above also gets "a's pods
// before the block all placed, the pods that dominate a after it none"; the
// anchor's bound is the largest over the blocks, the result the smallest over
// the anchors. Not a bound on policies that may leave a pod pending.
struct MustPlaceBound {
  double alloc_pct = 0;  // the bound at `column`, % of capacity
  double plain_pct = 0;  // the LP without the must-place rows, same events
  int anchor_pods = 0;   // arrived pods of the anchor that gave the bound
  int anchor_milli = 0;  // its GPU milli
};

Result<MustPlaceBound> MustPlaceAllocationBound(const PreparedTrace& trace, uint64_t seed,
                                                int column, int blocks = 100, int anchors = 3,
                                                const SimulationOptions& options = {});

}  // namespace gpu_autoscaler::autoscale::bench
