// File: src/autoscale/scale_plan_bound.h
//
// The lower bound that PlanScaleUp's plan carries (ScaleUpPlan::lower_bound):
// the least effective cost of any set of new nodes that, with the existing
// free capacity, could hold the placed pods. It is the optimum of a
// relaxation of the integer problem, per dimension r (CPU, memory, milli-GPU,
// pod slots):
//  * nodes become divisible: offering o in tier t supplies up to
//    n(o,t) · cap_r(o) units at eff(o,t) / cap_r(o) each, n(o,t) being the
//    tier's availability capped by the pool limit (applying the pool limit per
//    tier only adds supply); existing free capacity costs nothing;
//  * a pod needs only its demand in r, not a fit on one node.
// Any real plan is feasible in the relaxation and costs at least as much
// there, because a node pays eff(o,t) once for all its dimensions. The
// cheapest cover of a demand is greedy, cheapest units first. For GPUs, pods
// pinned to one model are covered from that model first and every other GPU
// pod is relaxed to "any model"; greedy stays optimal for this nested
// structure because each model's cover cost is convex in the amount. Each
// dimension's optimum is a valid bound, so their maximum is too.
//
// Internal to the scale planner (scale_plan.cc); pure, no I/O.
#pragma once

#include <array>
#include <vector>

namespace gpu_autoscaler::autoscale {

// CPU (milli), memory (MiB), milli-GPU and pod slots.
inline constexpr int kBoundDims = 4;
inline constexpr int kBoundGpu = 2;
using ResourceVec = std::array<double, kBoundDims>;

struct CostBoundInput {
  ResourceVec demand{};        // of the placed pods
  std::vector<double> pinned;  // milli-GPU demand pinned to one offered model, by model index
  double any_gpu = 0;          // milli-GPU demand any offered model may serve
  // What one offering can add in one tier.
  struct NewNodes {
    ResourceVec capacity{};  // of one node
    double effective_price = 0;
    double nodes = 0;  // how many may open (infinity: no limit)
    int model = 0;     // index into `pinned`
  };
  std::vector<NewNodes> new_nodes;
  // Free capacity of one existing node; model -1 when no offering has its model.
  struct Free {
    ResourceVec free{};
    int model = -1;
  };
  std::vector<Free> existing;
};

double CostLowerBound(const CostBoundInput& in);

}  // namespace gpu_autoscaler::autoscale
