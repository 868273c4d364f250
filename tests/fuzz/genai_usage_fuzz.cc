// libFuzzer target for the profiling evaluation's input path
// (src/profiling/genai_usage.h, evaluation.h): the input is up to three CSV
// files separated by a form feed (\f): GPU utilisation, GPU memory, memory.
// Any input must give pods or an error with file:line, and an evaluation of
// parsed pods must give bounded scores, never a crash.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "profiling/evaluation.h"
#include "profiling/genai_usage.h"

namespace prof = gpu_autoscaler::profiling;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string_view parts[3];
  int n = 0;
  while (n < 2) {
    const size_t ff = text.find('\f');
    if (ff == std::string_view::npos) break;
    parts[n++] = text.substr(0, ff);
    text.remove_prefix(ff + 1);
  }
  parts[n++] = text;
  prof::GenAiUsageText input{.gpu_utilization = parts[0],
                             .gpu_utilization_name = "util.csv",
                             .gpu_memory = n > 1 ? parts[1] : std::string_view(),
                             .gpu_memory_name = "gpumem.csv"};
  if (n > 2) input.memory = parts[2];
  auto pods = prof::ParseGenAiUsage(input);
  if (!pods.ok()) {
    const std::string& m = pods.error().message();
    if (m.rfind("util.csv:", 0) != 0 && m.rfind("gpumem.csv:", 0) != 0 &&
        m.rfind("memory.csv:", 0) != 0) {
      std::abort();
    }
    return 0;
  }
  auto report = prof::Evaluate(*pods, prof::EvaluationOptions{});
  if (!report.ok()) return 0;
  for (const prof::MethodSummary& m : report->methods) {
    for (const prof::Exceedance* e : {&m.gpu_memory, &m.memory, &m.gpu_utilization}) {
      if (e->pct() < 0 || e->pct() > 100 || e->exceeded_minutes > e->test_minutes) std::abort();
    }
    if (!std::isfinite(m.gpus_saved_pct) || m.gpus_saved_pct < 0 || m.gpus_saved_pct >= 100) {
      std::abort();
    }
  }
  for (const prof::PodResult& p : report->pod_results) {
    for (const prof::PodMethodResult& r : p.methods) {
      const double f = r.recommendation.gpu.gpu_fraction;
      if (!(f > 0 && f <= 1)) std::abort();
    }
  }
  return 0;
}
