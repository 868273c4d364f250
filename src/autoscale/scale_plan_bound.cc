#include "autoscale/scale_plan_bound.h"

#include <algorithm>
#include <utility>

namespace gpu_autoscaler::autoscale {
namespace {

struct Supply {
  double unit_price;
  double units;
};

// Cheapest-first cover of `demand`; consumes `supply` (sorted by price).
double Cover(std::vector<Supply>& supply, double demand) {
  double cost = 0;
  for (Supply& s : supply) {
    if (demand <= 0) break;
    const double take = std::min(demand, s.units);
    cost += take * s.unit_price;
    s.units -= take;
    demand -= take;
  }
  return cost;
}

void SortByPrice(std::vector<Supply>& supply) {
  std::stable_sort(supply.begin(), supply.end(),
                   [](const Supply& a, const Supply& b) { return a.unit_price < b.unit_price; });
}

}  // namespace

double CostLowerBound(const CostBoundInput& in) {
  std::array<std::vector<Supply>, kBoundDims> supply;
  std::vector<std::vector<Supply>> gpu_supply(in.pinned.size());
  for (const CostBoundInput::NewNodes& n : in.new_nodes) {
    for (int r = 0; r < kBoundDims; ++r) {
      if (n.capacity[r] <= 0) continue;
      const Supply s{n.effective_price / n.capacity[r], n.nodes * n.capacity[r]};
      supply[r].push_back(s);
      if (r == kBoundGpu) gpu_supply[n.model].push_back(s);
    }
  }
  std::vector<Supply> unoffered_free;
  for (const CostBoundInput::Free& f : in.existing) {
    for (int r = 0; r < kBoundDims; ++r)
      supply[r].push_back({0, f.free[r]});
    (f.model >= 0 ? gpu_supply[f.model] : unoffered_free).push_back({0, f.free[kBoundGpu]});
  }
  double bound = 0;
  for (int r = 0; r < kBoundDims; ++r) {
    if (r == kBoundGpu) continue;
    SortByPrice(supply[r]);
    bound = std::max(bound, Cover(supply[r], in.demand[r]));
  }
  double gpu_cost = 0;
  std::vector<Supply> rest = std::move(unoffered_free);
  for (size_t m = 0; m < in.pinned.size(); ++m) {
    SortByPrice(gpu_supply[m]);
    gpu_cost += Cover(gpu_supply[m], in.pinned[m]);
    rest.insert(rest.end(), gpu_supply[m].begin(), gpu_supply[m].end());
  }
  SortByPrice(rest);
  gpu_cost += Cover(rest, in.any_gpu);
  return std::max(bound, gpu_cost);
}

}  // namespace gpu_autoscaler::autoscale
