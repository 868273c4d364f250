// Fuzzes the parsers of the GPU labels and annotations that anyone who can
// write a pod or a node sets: the scheduler's gpu-indices annotation and
// NVLink-islands node label (scheduler/gpu_demand.h), and the sharing
// annotations the cost meter reads (cost/metering.h). The first byte picks
// the parser (and, for islands, the node's GPU count). Any bytes must give a
// value or an InvalidArgument error, never a crash, and what parses is sound:
//   - GPU indices are distinct, in range and sorted, and print back to text
//     that parses to the same list;
//   - every GPU gets one island: its part of the label, or one of its own;
//   - sharing replicas and MPS percentages are in range, and mig has a profile.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "autoscale/cluster.h"
#include "cost/metering.h"
#include "scheduler/gpu_demand.h"

namespace {

using namespace gpu_autoscaler;

template <typename T>
void ExpectInvalidArgument(const T& result) {
  if (!result.ok() && result.error().code() != StatusCode::kInvalidArgument) std::abort();
}

void GpuIndices(std::string_view text) {
  auto gpus = scheduler::ParseGpuIndices(text);
  ExpectInvalidArgument(gpus);
  if (!gpus.ok()) return;
  if (gpus->empty() || !std::is_sorted(gpus->begin(), gpus->end()) ||
      std::adjacent_find(gpus->begin(), gpus->end()) != gpus->end() || gpus->front() < 0 ||
      gpus->back() >= autoscale::kMaxGpusPerNode) {
    std::abort();
  }
  auto again = scheduler::ParseGpuIndices(scheduler::FormatGpuIndices(*gpus));
  if (!again.ok() || *again != *gpus) std::abort();
}

void NvlinkIslands(std::string_view label, int gpu_count) {
  auto groups = scheduler::ParseNvlinkIslands(label, gpu_count);
  ExpectInvalidArgument(groups);
  if (!groups.ok()) return;
  if (static_cast<int>(groups->size()) != gpu_count) std::abort();
  // An island named in the label is numbered by its place there; each GPU the
  // label leaves out is an island of its own, numbered after them.
  const int parts = static_cast<int>(std::count(label.begin(), label.end(), '_')) + 1;
  for (int g : *groups) {
    if (g < 0 || g >= parts + gpu_count) std::abort();
    if (g >= parts && std::count(groups->begin(), groups->end(), g) != 1) std::abort();
  }
}

// "key=value" lines, as annotations.
void SharingAnnotations(std::string_view text) {
  std::map<std::string, std::string> annotations;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(line.substr(0, eq));
    if (key.find('/') == std::string::npos) key = "gpuautoscaler.io/" + key;
    annotations[key] = std::string(line.substr(eq + 1));
  }
  auto sharing = cost::ParseSharingAnnotations(annotations);
  ExpectInvalidArgument(sharing);
  if (!sharing.ok()) return;
  if (sharing->replicas < 0 || sharing->replicas > 1024 ||
      !std::isfinite(sharing->mps_thread_percentage) || sharing->mps_thread_percentage < 0 ||
      sharing->mps_thread_percentage > 100 ||
      (sharing->mode == cost::SharingMode::kMig && sharing->mig_profile.empty())) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      GpuIndices(text);
      break;
    case 1:
      NvlinkIslands(text, (data[0] / 3) % (gpu_autoscaler::autoscale::kMaxGpusPerNode + 1));
      break;
    default:
      SharingAnnotations(text);
      break;
  }
  return 0;
}
