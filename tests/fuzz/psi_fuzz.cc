// Fuzzes the PSI parser (node-agent/psi.h) and the cgroup counter parsers
// (cpu.stat, io.stat) the PSI evictor reads: any bytes must give a value or
// an InvalidArgument error, never a crash; a parsed file's averages are
// percentages.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "node-agent/cgroup_usage.h"
#include "node-agent/psi.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler;
  using namespace gpu_autoscaler::node_agent;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto psi = ParsePsi(text);
  if (!psi.ok() && psi.error().code() != StatusCode::kInvalidArgument) std::abort();
  if (psi.ok()) {
    for (const PsiLine* line : {&psi->some, psi->full ? &*psi->full : nullptr}) {
      if (line && (line->avg10 < 0 || line->avg10 > 100 || line->avg60 < 0 || line->avg60 > 100 ||
                   line->avg300 < 0 || line->avg300 > 100)) {
        std::abort();
      }
    }
  }
  auto cpu = ParseCpuStatUsage(text);
  if (!cpu.ok() && cpu.error().code() != StatusCode::kInvalidArgument) std::abort();
  auto io = ParseIoStatBytes(text);
  if (!io.ok() && io.error().code() != StatusCode::kInvalidArgument) std::abort();
  return 0;
}
