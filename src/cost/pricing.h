// File: src/cost/pricing.h
//
// What a node costs per hour. A `PricingSource` answers "instance type X in
// tier T" with a `NodePrice`: the hourly total after the tier discount, split
// into GPU, CPU and memory parts, plus the GPU model and count. The shipped
// source is `CatalogPricingSource`, built from the YAML catalogue compiled
// into the library (src/cost/catalog/pricing.yaml) with an optional user
// override file merged on top. A live cloud-pricing source can implement the
// same interface later.
//
//   auto pricing = CatalogPricingSource::Builtin();
//   GPU_RETURN_IF_ERROR(pricing.value()->ApplyOverrideFile("my-prices.yaml"));
//   auto price = (*pricing)->Price({.instance_type = "p4d.24xlarge",
//                                   .tier = CapacityTier::kSpot});
//   if (!price.ok()) log(price.error().reason);  // explicitly unpriced, never $0
//
// An unknown instance type falls back to the per-GPU-model rate when the
// query names a known GPU model and count; otherwise the result is `Unpriced`.
//
// Thread-safety: Price() is const and may be called from many threads; so
// may Builtin() and Clone().
// ApplyOverride*() mutate and must not race with Price(): configure a source
// before sharing it (a ConfigMap reload builds a new source and swaps it in).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "cost/sample.h"

namespace gpu_autoscaler::cost {

std::string_view CapacityTierName(CapacityTier tier);  // "on-demand", "spot", "reserved"
Result<CapacityTier> ParseCapacityTier(std::string_view name);

struct PriceQuery {
  std::string instance_type{};
  CapacityTier tier = CapacityTier::kOnDemand;
  // Used only when the instance type is not in the catalogue: the node's GPU
  // model (e.g. from the nvidia.com/gpu.product label) and its resources.
  std::string gpu_model = "";
  int gpu_count = 0;
  double vcpus = 0;
  double memory_gib = 0;
};

struct NodePrice {
  std::string instance_type{};
  std::string family{};  // "p4d"; "" for a fallback price
  std::string gpu_model{};
  int gpu_count = 0;
  double vcpus = 0;
  double memory_gib = 0;
  CapacityTier tier = CapacityTier::kOnDemand;
  std::string currency{};  // ISO 4217, e.g. "USD"

  double on_demand_hourly = 0;  // list price before the tier discount
  double hourly = 0;            // after the tier discount; = gpu + cpu + memory
  double gpu_hourly = 0;        // all GPUs of the node together
  double cpu_hourly = 0;
  double memory_hourly = 0;
  bool from_fallback = false;  // priced by GPU model, instance type unknown

  std::string source{};  // where the list price came from
  std::string date{};    // when it was read (YYYY-MM-DD)
};

// The explicit "no price" answer. Metering reports these instead of charging 0.
struct Unpriced {
  std::string instance_type{};
  std::string reason{};
};

using PriceResult = Result<NodePrice, Unpriced>;

class PricingSource {
 public:
  virtual ~PricingSource() = default;
  virtual PriceResult Price(const PriceQuery& query) const = 0;
  virtual std::string_view currency() const = 0;
};

// The YAML text of the catalogue compiled into the library.
std::string_view BuiltinCatalogYaml();

class CatalogPricingSource final : public PricingSource {
 public:
  // `file_name` only labels error messages ("pricing.yaml: families[2].instances[0].hourly: ...").
  static Result<std::unique_ptr<CatalogPricingSource>> FromYaml(std::string_view yaml,
                                                                std::string_view file_name);
  // The catalogue compiled in: parsed on the first call, a copy each call.
  static Result<std::unique_ptr<CatalogPricingSource>> Builtin();
  // An independent copy (ApplyOverride on it leaves this one as it is).
  std::unique_ptr<CatalogPricingSource> Clone() const;

  // Merges a user catalogue on top: instance types, GPU-model fallback rates
  // and family discounts it names replace ours; the rest are kept. Same schema
  // as the catalogue, every section optional. On error nothing changes.
  Status ApplyOverride(std::string_view yaml, std::string_view file_name);
  Status ApplyOverrideFile(const std::string& path);

  PriceResult Price(const PriceQuery& query) const override;
  std::string_view currency() const override;

  // Introspection for reports and tests.
  size_t instance_count() const;
  // Per-GPU on-demand fallback rate of a model; 0 if the model is unknown.
  double GpuModelRate(std::string_view gpu_model) const;

  struct Catalog;  // parsed form, defined in pricing.cc
  ~CatalogPricingSource() override;

 private:
  explicit CatalogPricingSource(std::unique_ptr<Catalog> catalog);
  std::unique_ptr<Catalog> catalog_;
};

}  // namespace gpu_autoscaler::cost
