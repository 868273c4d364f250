// Fuzzes the custom-metrics API's request handling: the input is split on
// newlines into the request path, `labelSelector` and `metricLabelSelector`
// (as the server decodes them), parsed, and answered over a fixed set of pods
// and figures. Invariants: a parsed metric request names a served metric; an
// answer is valid JSON; an error maps to a Status with a 4xx/5xx code; the
// Quantity formatter's output parses back to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube/quantity.h"
#include "profiling/custom_metrics.h"

using namespace gpu_autoscaler;
using namespace gpu_autoscaler::profiling;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string_view fields[3];
  for (int i = 0; i < 3; ++i) {
    const size_t nl = text.find('\n');
    fields[i] = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  auto request = ParseCustomMetricsRequest(
      {.path = fields[0], .label_selector = fields[1], .metric_label_selector = fields[2]});
  if (!request.ok()) {
    const CustomMetricsError e = CustomMetricsStatus(request.error());
    if (e.http_status < 400 || !nlohmann::json::accept(e.body)) std::abort();
  } else {
    using Kind = CustomMetricsRequest::Kind;
    if (request->kind == Kind::kPod || request->kind == Kind::kPodsBySelector) {
      bool known = false;
      for (std::string_view name : CustomMetricNames())
        known = known || name == request->metric;
      if (!known) std::abort();
    }
    const std::vector<MetricsPod> pods = {{request->ns, "web-0", {{"app", "web"}}},
                                          {request->ns, "web-1", {{"app", "web"}}}};
    const std::vector<cost::PodGpuUsage> usage = {{.ns = request->ns,
                                                   .pod = "web-0",
                                                   .gpu_utilization = 0.5,
                                                   .gpu_memory_bytes = 1e9,
                                                   .gpus = 1,
                                                   .devices = 1}};
    auto body = BuildCustomMetricsAnswer(*request, pods, usage, 1'796'000'000);
    if (body.ok() ? !nlohmann::json::accept(*body)
                  : CustomMetricsStatus(body.error()).http_status < 400) {
      std::abort();
    }
  }
  if (size >= 8) {
    int64_t milli = 0;
    std::memcpy(&milli, data, sizeof(milli));
    auto parsed = kube::ParseQuantityMilli(FormatDecimalQuantityMilli(milli));
    if (parsed.ok() && *parsed != milli) std::abort();
  }
  return 0;
}
