// Fuzzes the pricing catalogue loader, as a base catalogue and as a user
// override on top of the built-in one: any bytes must give a catalogue or an
// InvalidArgument naming the file, never a crash, an exception or a hang. A
// catalogue that loads must price its lookups consistently (parts sum to the
// total, no negative prices) or answer Unpriced.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "cost/pricing.h"

namespace {

using gpu_autoscaler::StatusCode;
using gpu_autoscaler::cost::CapacityTier;
using gpu_autoscaler::cost::CatalogPricingSource;

void CheckPrices(const CatalogPricingSource& src) {
  for (const char* type : {"p4d.24xlarge", "g5.xlarge", "big.8x", "unknown"}) {
    for (CapacityTier tier :
         {CapacityTier::kOnDemand, CapacityTier::kSpot, CapacityTier::kReserved}) {
      auto p = src.Price({.instance_type = type,
                          .tier = tier,
                          .gpu_model = "T4",
                          .gpu_count = 1,
                          .vcpus = 4,
                          .memory_gib = 16});
      if (!p.ok()) continue;
      if (!(p->hourly >= 0) || p->gpu_hourly < 0 || p->cpu_hourly < 0 || p->memory_hourly < 0) {
        std::abort();
      }
      double parts = p->gpu_hourly + p->cpu_hourly + p->memory_hourly;
      if (std::fabs(parts - p->hourly) > 1e-6 * std::max(1.0, p->hourly)) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto base = CatalogPricingSource::FromYaml(yaml, "fuzz.yaml");
  if (base.ok()) {
    CheckPrices(**base);
  } else if (base.error().code() != StatusCode::kInvalidArgument ||
             base.error().message().rfind("fuzz.yaml", 0) != 0) {
    std::abort();
  }
  static std::unique_ptr<CatalogPricingSource> builtin = [] {
    auto b = CatalogPricingSource::Builtin();
    if (!b.ok()) std::abort();
    return std::move(b).value();
  }();
  auto copy = CatalogPricingSource::Builtin();  // overrides mutate: use a fresh one
  if (!copy.ok()) std::abort();
  auto status = (*copy)->ApplyOverride(yaml, "override.yaml");
  if (!status.ok() && status.code() != StatusCode::kInvalidArgument) std::abort();
  CheckPrices(**copy);
  (void)builtin;
  return 0;
}
