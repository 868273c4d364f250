// libFuzzer target for the openb trace CSV loader (src/autoscale/trace.h).
// The first byte picks the parser (bit 0: nodes; else bit 1: pods with
// creation and deletion times; else pods); the rest is the file. Any
// input must give a value or an error with file:line, never a crash, and every
// parsed row must satisfy the loader's documented bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "autoscale/trace.h"

namespace as = gpu_autoscaler::autoscale;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    auto nodes = as::ParseNodeCsv(text, "nodes.csv");
    if (nodes.ok()) {
      for (const as::NodeSpec& n : *nodes) {
        if (n.name.empty() || n.cpu_milli < 0 || n.gpu_count < 0 ||
            n.gpu_count > as::kMaxGpusPerNode || (n.gpu_count > 0 && n.gpu_model.empty())) {
          std::abort();
        }
      }
    } else if (nodes.error().message().rfind("nodes.csv:", 0) != 0) {
      std::abort();
    }
  } else if (data[0] & 2) {
    auto pods = as::ParseTimedPodCsv(text, "timed.csv");
    if (pods.ok()) {
      for (const as::TimedPod& p : *pods) {
        if (p.spec.name.empty() || p.spec.gpu_milli < 0 || p.spec.gpu_milli > 1000 ||
            p.creation_time < 0 || p.deletion_time < p.creation_time) {
          std::abort();
        }
      }
    } else if (pods.error().message().rfind("timed.csv:", 0) != 0) {
      std::abort();
    }
  } else {
    auto pods = as::ParsePodCsv(text, "pods.csv");
    if (pods.ok()) {
      for (const as::PodSpec& p : *pods) {
        if (p.name.empty() || p.cpu_milli < 0 || p.gpu_milli < 0 || p.gpu_milli > 1000 ||
            p.num_gpu < 0) {
          std::abort();
        }
        for (const auto& model : p.gpu_models) {
          if (model.empty()) std::abort();
        }
      }
    } else if (pods.error().message().rfind("pods.csv:", 0) != 0) {
      std::abort();
    }
  }
  return 0;
}
