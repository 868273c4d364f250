// File: node-agent/nvml/nvml_reader.h
//
// One full NVML pass over the node: every GPU's identity, memory,
// utilisation, MIG devices, NVLink peers and processes, into a GpuSnapshot.
// Calls a GPU does not support (NVML_ERROR_NOT_SUPPORTED, a symbol the
// driver lacks) leave the field empty; any other failure of a per-GPU call
// is kept in GpuSample::errors and the pass goes on. Only a failure to count
// the GPUs fails the whole pass.
//
//   NvmlReader reader(*lib);
//   GPU_ASSIGN_OR_RETURN(GpuSnapshot snap, reader.Read());
//
// It remembers the newest process-utilisation timestamp per GPU, so each
// pass asks NVML only for samples since the previous one.
//
// Thread-safety: not thread-safe; one thread calls Read.
#pragma once

#include <map>
#include <string>

#include "common/status.h"
#include "node-agent/nvml/nvml_library.h"
#include "node-agent/nvml/snapshot.h"

namespace gpu_autoscaler::node_agent::nvml {

// "1g.10gb" from a MIG device name such as "NVIDIA A100-SXM4-80GB MIG 1g.10gb"
// (also "... MIG 1c.2g.20gb"); "" when the name has no profile.
std::string MigProfileFromName(std::string_view name);

class NvmlReader {
 public:
  explicit NvmlReader(NvmlLibrary& lib) : lib_(lib) {}
  Result<GpuSnapshot> Read();

 private:
  void ReadMig(nvmlDevice_t dev, const std::string& subject, GpuSample* gpu);
  void ReadNvLinks(nvmlDevice_t dev, const std::string& subject, GpuSample* gpu);
  void ReadProcesses(nvmlDevice_t dev, const std::string& subject, GpuSample* gpu);

  NvmlLibrary& lib_;
  std::map<std::string, unsigned long long> last_sample_us_;  // by GPU UUID
};

}  // namespace gpu_autoscaler::node_agent::nvml
