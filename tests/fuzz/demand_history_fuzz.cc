// Fuzzes the demand history checkpoint decoder (autoscale/demand_history.h),
// which reads a ConfigMap anyone may edit: any bytes must decode or fail with
// an error, never crash; what decodes must re-encode and decode to the same
// points, and must drive the predictive floor without failing.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "autoscale/demand_history.h"
#include "autoscale/predictive_floor.h"

using namespace gpu_autoscaler::autoscale;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto decoded = DecodeDemandHistory(text);
  if (!decoded.ok()) return 0;
  auto again = DecodeDemandHistory(EncodeDemandHistory(*decoded));
  if (!again.ok() || again->gpus.size() != decoded->gpus.size() || again->start != decoded->start ||
      again->step_seconds != decoded->step_seconds) {
    std::abort();
  }
  for (size_t i = 0; i < decoded->gpus.size(); ++i) {
    const double a = decoded->gpus[i], b = again->gpus[i];
    if (std::isnan(a) != std::isnan(b)) std::abort();
    if (!std::isnan(a) && std::abs(a - b) > 0.0005 + 1e-9) std::abort();  // kept to 1/1000
  }
  NodePoolSpec pool;
  PoolInstanceType it{.name = "x", .gpu_model = "g", .gpu_count = 4};
  it.price[TierIndex(CapacityTier::kOnDemand)] = 1.0;
  pool.instance_types.push_back(it);
  pool.tiers[TierIndex(CapacityTier::kOnDemand)].enabled = true;
  pool.max_nodes = 10;
  const int64_t step = decoded->step_seconds;
  PredictiveOptions o{.step_seconds = step,
                      .season_seconds = step * 4,
                      .horizon_seconds = step,
                      .method = DemandForecastOptions{.method = ForecastMethod::kHoltWinters},
                      .min_history_seconds = 0};
  PredictiveFloor f = DecidePredictiveFloor(*decoded, o, pool, decoded->end());
  if (f.floor_nodes < 0 || f.floor_nodes > pool.max_nodes) std::abort();
  DemandHistory h = *decoded;
  (void)h.Append(h.end() + step, 1.5, MaxHistoryPoints(step, step * 4));
  return 0;
}
