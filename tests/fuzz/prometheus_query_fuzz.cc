// libFuzzer target for the Prometheus query-response decoder and the
// dcgm-exporter attribution behind it (src/cost/utilization.h). Any body must
// give samples or an InvalidArgument error, never a crash or an exception;
// attributed figures must stay within their documented ranges.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cost/utilization.h"

namespace cost = gpu_autoscaler::cost;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto samples = cost::DecodePrometheusVector(body);
  if (!samples.ok()) {
    if (samples.error().code() != gpu_autoscaler::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  for (const cost::PodGpuUsage& u : cost::AttributeDcgmSamples(*samples)) {
    if (u.pod.empty()) std::abort();
    if (u.gpu_utilization != -1 && !(u.gpu_utilization >= 0 && u.gpu_utilization <= 1)) {
      std::abort();
    }
    if (u.gpu_memory_bytes != -1 && !(u.gpu_memory_bytes >= 0)) std::abort();
    if (u.devices > 0 && !(u.gpus > 0 && u.gpus <= u.devices + 1e-9)) std::abort();
    const double share = u.ShareUtilization();
    if (share != -1 && !(share >= 0 && share <= 1)) std::abort();
  }
  return 0;
}
