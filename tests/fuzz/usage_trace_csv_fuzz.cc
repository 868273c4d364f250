// libFuzzer target for the GPU usage trace CSV reader (src/cost/usage_trace.h).
// Any input must give a trace or an error with file:line, never a crash, and
// every parsed sample must satisfy the reader's documented bounds.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cost/usage_trace.h"

namespace cost = gpu_autoscaler::cost;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto trace = cost::ParseUsageTraceCsv(text, "trace.csv");
  if (!trace.ok()) {
    if (trace.error().message().rfind("trace.csv:", 0) != 0) std::abort();
    return 0;
  }
  for (const std::string& pod : trace->pods) {
    if (pod.empty()) std::abort();
  }
  for (const cost::UsageTraceSample& s : trace->samples) {
    if (s.pod >= trace->pods.size() || !std::isfinite(s.value) || s.value < 0 || s.value > 100) {
      std::abort();
    }
  }
  return 0;
}
