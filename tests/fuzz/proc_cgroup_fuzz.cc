// Fuzzes the node agent's /proc/<pid>/cgroup parser (the file is written by
// the kernel, its paths by the kubelet and the container runtime) and the
// PodResources device-id reader (ids come from device plugins): any bytes
// give a pod reference that keeps its invariants, or none, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "node-agent/attribution.h"
#include "node-agent/proc_cgroup.h"

namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

void CheckUid(const std::string& uid) {
  if (uid.size() != 32 && uid.size() != 36) std::abort();
  for (size_t i = 0; i < uid.size(); ++i) {
    const bool dash = uid.size() == 36 && (i == 8 || i == 13 || i == 18 || i == 23);
    if (dash ? uid[i] != '-' : !IsHex(uid[i])) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler::node_agent;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ref = ParseProcCgroup(text)) {
    CheckUid(ref->pod_uid);
    if (!ref->container_id.empty()) {
      if (ref->container_id.size() < 12 || ref->container_id.size() > 128) std::abort();
      for (char c : ref->container_id)
        if (!IsHex(c)) std::abort();
    }
    if (ref->qos != "guaranteed" && ref->qos != "burstable" && ref->qos != "besteffort") {
      std::abort();
    }
  }
  nvml::GpuSnapshot snapshot;
  nvml::GpuSample gpu;
  gpu.index = 0;
  gpu.uuid = "GPU-a";
  gpu.mig_enabled = true;
  gpu.mig_devices = {{.slot = 0, .uuid = "MIG-b", .gpu_instance_id = 1}};
  snapshot.gpus.push_back(gpu);
  const std::string uuid = DeviceUuidForId(text, snapshot);
  if (!uuid.empty() && uuid != "GPU-a" && uuid != "MIG-b") std::abort();
  return 0;
}
