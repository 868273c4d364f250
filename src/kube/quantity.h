// File: src/kube/quantity.h
//
// Kubernetes resource quantities ("500m", "1.5Gi", "2e3", "100") parsed to
// integers with the API server's grammar (k8s.io/apimachinery resource.Quantity):
//
//   <quantity> ::= <sign>? <digits>[.<digits>] <suffix>
//   <suffix>   ::= Ki|Mi|Gi|Ti|Pi|Ei | n|u|m|""|k|M|G|T|P|E | (e|E)<sign>?<digits>
//
//   ParseQuantity("1Gi")          -> 1073741824
//   ParseQuantityMilli("250m")    -> 250
//   ResourceAmount("cpu", "1.5")  -> 1500 (cpu is kept in millicores)
//
// Results are rounded up (away from zero), as Quantity.Value() and
// Quantity.MilliValue() do, so "1n" CPU is 1 millicore. Values that do not fit
// an int64 are an OutOfRange error; malformed text is InvalidArgument.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace gpu_autoscaler::kube {

// The quantity multiplied by 10^scale (0 <= scale <= 18), rounded away from zero.
gpu_autoscaler::Result<int64_t> ParseQuantityScaled(std::string_view text, int scale);

// Whole units (bytes, devices), rounded up.
inline gpu_autoscaler::Result<int64_t> ParseQuantity(std::string_view text) {
  return ParseQuantityScaled(text, 0);
}

// Thousandths of a unit (millicores), rounded up.
inline gpu_autoscaler::Result<int64_t> ParseQuantityMilli(std::string_view text) {
  return ParseQuantityScaled(text, 3);
}

// True for resources measured in thousandths: "cpu" (millicores).
bool IsMilliResource(std::string_view resource_name);

// The amount a controller compares for `resource_name`: millicores for cpu,
// whole units (bytes, devices) for everything else.
gpu_autoscaler::Result<int64_t> ResourceAmount(std::string_view resource_name,
                                               std::string_view quantity);

}  // namespace gpu_autoscaler::kube
