#include "node-agent/nvml/nvml_reader.h"

#include <algorithm>

namespace gpu_autoscaler::node_agent::nvml {
namespace {

// Not supported here, or not present in this driver: the field stays empty.
bool Unsupported(const Status& s) {
  return s.code() == StatusCode::kUnimplemented || s.code() == StatusCode::kNotFound;
}

template <typename T>
bool Keep(const Result<T>& r, GpuSample* gpu) {
  if (r.ok()) return true;
  if (!Unsupported(r.error())) gpu->errors.push_back(r.error().message());
  return false;
}

}  // namespace

std::string MigProfileFromName(std::string_view name) {
  const size_t mig = name.rfind(" MIG ");
  if (mig == std::string_view::npos) return "";
  std::string_view profile = name.substr(mig + 5);
  const size_t space = profile.find(' ');
  if (space != std::string_view::npos) profile = profile.substr(0, space);
  // "1c.2g.20gb": a compute-instance profile inside a GPU instance; keep the GI part.
  if (profile.size() > 3 && profile[1] == 'c' && profile[2] == '.') profile = profile.substr(3);
  return std::string(profile);
}

Result<GpuSnapshot> NvmlReader::Read() {
  GPU_ASSIGN_OR_RETURN(unsigned count, lib_.DeviceCount());
  GpuSnapshot snap;
  snap.gpus.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    GpuSample& gpu = snap.gpus.emplace_back();
    gpu.index = static_cast<int>(i);
    const std::string subject = "gpu " + std::to_string(i);
    auto dev = lib_.DeviceHandle(i);
    if (!dev.ok()) {
      gpu.errors.push_back(dev.error().message());
      continue;
    }
    if (auto uuid = lib_.Uuid(*dev, subject); Keep(uuid, &gpu)) gpu.uuid = *uuid;
    if (auto name = lib_.Name(*dev, subject); Keep(name, &gpu)) gpu.name = *name;
    if (auto bus = lib_.PciBusId(*dev, subject); Keep(bus, &gpu)) gpu.pci_bus_id = *bus;
    if (auto mem = lib_.Memory(*dev, subject); Keep(mem, &gpu)) {
      gpu.memory_total_bytes = mem->total;
      gpu.memory_used_bytes = mem->used;
      gpu.memory_free_bytes = mem->free;
    }
    if (auto util = lib_.Utilization(*dev, subject); Keep(util, &gpu)) {
      gpu.util_gpu = util->gpu;
      gpu.util_memory = util->memory;
    }
    ReadMig(*dev, subject, &gpu);
    ReadNvLinks(*dev, subject, &gpu);
    ReadProcesses(*dev, subject, &gpu);
  }
  return snap;
}

void NvmlReader::ReadMig(nvmlDevice_t dev, const std::string& subject, GpuSample* gpu) {
  auto mode = lib_.MigMode(dev, subject);
  if (!Keep(mode, gpu)) return;
  gpu->mig_enabled = mode->first == NVML_DEVICE_MIG_ENABLE;
  gpu->mig_pending = mode->second == NVML_DEVICE_MIG_ENABLE;
  if (!gpu->mig_enabled) return;
  auto slots = lib_.MaxMigDeviceCount(dev, subject);
  if (!Keep(slots, gpu)) return;
  for (unsigned slot = 0; slot < *slots; ++slot) {
    auto mig = lib_.MigDeviceHandle(dev, slot, subject);
    if (!mig.ok()) {
      if (mig.error().code() != StatusCode::kNotFound) gpu->errors.push_back(mig.error().message());
      continue;  // an empty slot
    }
    const std::string mig_subject = subject + " mig " + std::to_string(slot);
    MigDeviceSample m;
    m.slot = static_cast<int>(slot);
    if (auto uuid = lib_.Uuid(*mig, mig_subject); Keep(uuid, gpu)) m.uuid = *uuid;
    if (auto name = lib_.Name(*mig, mig_subject); Keep(name, gpu)) {
      m.profile = MigProfileFromName(*name);
    }
    if (auto gi = lib_.GpuInstanceId(*mig, mig_subject); Keep(gi, gpu)) m.gpu_instance_id = *gi;
    if (auto ci = lib_.ComputeInstanceId(*mig, mig_subject); Keep(ci, gpu)) {
      m.compute_instance_id = *ci;
    }
    if (auto mem = lib_.Memory(*mig, mig_subject); Keep(mem, gpu)) {
      m.memory_total_bytes = mem->total;
      m.memory_used_bytes = mem->used;
      m.memory_free_bytes = mem->free;
    }
    gpu->mig_devices.push_back(std::move(m));
  }
}

void NvmlReader::ReadNvLinks(nvmlDevice_t dev, const std::string& subject, GpuSample* gpu) {
  for (unsigned link = 0; link < NVML_NVLINK_MAX_LINKS; ++link) {
    auto active = lib_.NvLinkActive(dev, link, subject);
    // NOT_SUPPORTED / INVALID_ARGUMENT past the GPU's last link: no more links.
    if (!active.ok()) {
      const StatusCode c = active.error().code();
      if (c == StatusCode::kUnimplemented || c == StatusCode::kInvalidArgument ||
          c == StatusCode::kNotFound) {
        break;
      }
      gpu->errors.push_back(active.error().message());
      break;
    }
    if (!*active) continue;
    auto remote = lib_.NvLinkRemoteBusId(dev, link, subject);
    if (!Keep(remote, gpu)) continue;
    if (std::find(gpu->nvlink_remote_bus_ids.begin(), gpu->nvlink_remote_bus_ids.end(), *remote) ==
        gpu->nvlink_remote_bus_ids.end()) {
      gpu->nvlink_remote_bus_ids.push_back(*remote);
    }
  }
}

void NvmlReader::ReadProcesses(nvmlDevice_t dev, const std::string& subject, GpuSample* gpu) {
  auto procs = lib_.ComputeProcesses(dev, subject);
  if (Keep(procs, gpu)) {
    for (const nvmlProcessInfo_t& p : *procs) {
      ProcessSample s;
      s.pid = p.pid;
      if (p.usedGpuMemory != ~0ULL) s.used_memory_bytes = p.usedGpuMemory;
      if (p.gpuInstanceId != 0xFFFFFFFFu && gpu->mig_enabled) s.gpu_instance_id = p.gpuInstanceId;
      gpu->processes.push_back(s);
    }
  }
  unsigned long long& since = last_sample_us_[gpu->uuid];
  auto samples = lib_.ProcessUtilization(dev, since, subject);
  if (!Keep(samples, gpu)) return;
  // The newest sample per pid.
  std::map<uint32_t, const nvmlProcessUtilizationSample_t*> newest;
  for (const auto& s : *samples) {
    since = std::max(since, s.timeStamp);
    auto& slot = newest[s.pid];
    if (slot == nullptr || slot->timeStamp < s.timeStamp) slot = &s;
  }
  for (ProcessSample& p : gpu->processes) {
    auto it = newest.find(p.pid);
    // A running process without a sample in the period used no SM time.
    p.sm_util = it == newest.end() ? 0u : it->second->smUtil;
    p.mem_util = it == newest.end() ? 0u : it->second->memUtil;
    if (it != newest.end()) newest.erase(it);
  }
  for (const auto& [pid, s] : newest) {  // graphics or exited processes with samples
    ProcessSample p;
    p.pid = pid;
    p.sm_util = s->smUtil;
    p.mem_util = s->memUtil;
    gpu->processes.push_back(p);
  }
  std::sort(gpu->processes.begin(), gpu->processes.end(),
            [](const ProcessSample& a, const ProcessSample& b) { return a.pid < b.pid; });
}

}  // namespace gpu_autoscaler::node_agent::nvml
