// The fake NVML: a shared library (libgpa-fake-nvml.so) exporting the NVML
// calls in node-agent/nvml/nvml_abi.h, answering from the scenario in the
// JSON file named by $GPA_FAKE_NVML_SCENARIO (scenario.h). The agent loads it
// with --nvml-library in tests, the demo and the benchmark. The scenario is
// read at nvmlInit_v2 and again by nvmlDeviceGetCount_v2 when the file's
// modification time changes, so a test can change the GPUs under a running
// agent. A bad scenario makes nvmlInit_v2 fail with NVML_ERROR_UNKNOWN (the
// reason goes to stderr).
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "node-agent/nvml/nvml_abi.h"
#include "support/fake_nvml/scenario.h"

namespace {

using gpu_autoscaler::fake_nvml::AtTick;
using gpu_autoscaler::fake_nvml::FakeGpu;
using gpu_autoscaler::fake_nvml::Scenario;

constexpr uint64_t kMiB = 1024 * 1024;

struct Handle {
  int gpu = 0;
  int mig = -1;  // MIG device slot, or -1 for the GPU itself
};

struct State {
  std::mutex mu;
  int init_count = 0;
  Scenario scenario;
  std::string path;
  timespec mtime{};
  // Handles live as long as the process: a caller may hold one across a reload.
  std::map<std::pair<int, int>, std::unique_ptr<Handle>> handles;
  std::vector<int> fault_calls;
  std::vector<int> fault_fired;
  uint64_t tick = 0;  // polls so far (nvmlDeviceGetCount_v2 calls): the series' index
};

State& S() {
  static State* s = new State();  // never destroyed: a hung call may outlive main
  return *s;
}

bool Load(State& s) {
  const char* path = std::getenv("GPA_FAKE_NVML_SCENARIO");
  if (path == nullptr) {
    std::fprintf(stderr, "fake NVML: GPA_FAKE_NVML_SCENARIO is not set\n");
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fake NVML: cannot read %s\n", path);
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = gpu_autoscaler::fake_nvml::ParseScenario(text.str());
  if (!parsed.ok()) {
    std::fprintf(stderr, "fake NVML: %s: %s\n", path, parsed.error().message().c_str());
    return false;
  }
  struct stat st {};
  if (stat(path, &st) == 0) s.mtime = st.st_mtim;
  s.path = path;
  s.scenario = std::move(parsed).value();
  s.fault_calls.assign(s.scenario.faults.size(), 0);
  s.fault_fired.assign(s.scenario.faults.size(), 0);
  return true;
}

void ReloadIfChanged(State& s) {
  struct stat st {};
  if (s.path.empty() || stat(s.path.c_str(), &st) != 0) return;
  if (st.st_mtim.tv_sec == s.mtime.tv_sec && st.st_mtim.tv_nsec == s.mtime.tv_nsec) return;
  Scenario before = s.scenario;
  if (!Load(s)) s.scenario = std::move(before);
}

// Applies the scenario's faults to `function` about `gpu`. Returns true with
// `*rc` set when the call must fail. May block (a hang) without the lock.
bool Fault(const char* function, int gpu, nvmlReturn_t* rc) {
  State& s = S();
  int hang_ms = -1;
  int error = 0;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    for (size_t i = 0; i < s.scenario.faults.size(); ++i) {
      const auto& f = s.scenario.faults[i];
      if (f.function != function) continue;
      if (f.gpu && *f.gpu != gpu) continue;
      if (++s.fault_calls[i] <= f.after_calls) continue;
      if (f.count >= 0 && s.fault_fired[i] >= f.count) continue;
      ++s.fault_fired[i];
      if (f.hang) hang_ms = f.hang_ms;
      error = f.error;
      break;
    }
  }
  if (hang_ms == 0) {
    while (true)
      std::this_thread::sleep_for(std::chrono::hours(1));
  }
  if (hang_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hang_ms));
  *rc = error;
  return error != NVML_SUCCESS;
}

nvmlDevice_t HandleFor(State& s, int gpu, int mig) {
  auto& slot = s.handles[{gpu, mig}];
  if (!slot) slot = std::make_unique<Handle>(Handle{gpu, mig});
  return reinterpret_cast<nvmlDevice_t>(slot.get());
}

// Resolves a handle against the current scenario (under the lock).
const FakeGpu* GpuOf(State& s, nvmlDevice_t dev, const Handle** h) {
  if (dev == nullptr) return nullptr;
  *h = reinterpret_cast<const Handle*>(dev);
  if ((*h)->gpu < 0 || (*h)->gpu >= static_cast<int>(s.scenario.gpus.size())) return nullptr;
  const FakeGpu& g = s.scenario.gpus[(*h)->gpu];
  if ((*h)->mig >= static_cast<int>(g.mig_devices.size())) return nullptr;
  return &g;
}

nvmlReturn_t CopyString(const std::string& value, char* buf, unsigned len) {
  if (buf == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (value.size() + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(buf, value.c_str(), value.size() + 1);
  return NVML_SUCCESS;
}

int GpuIndexOf(nvmlDevice_t dev) {
  return dev == nullptr ? -1 : reinterpret_cast<const Handle*>(dev)->gpu;
}

#define FAKE_PROLOGUE(name, gpu)                    \
  nvmlReturn_t fault_rc = NVML_SUCCESS;             \
  if (Fault(name, gpu, &fault_rc)) return fault_rc; \
  State& s = S();                                   \
  std::lock_guard<std::mutex> lock(s.mu);           \
  if (s.init_count == 0) return NVML_ERROR_UNINITIALIZED;

#define FAKE_DEVICE(name, dev)          \
  FAKE_PROLOGUE(name, GpuIndexOf(dev))  \
  const Handle* h = nullptr;            \
  const FakeGpu* g = GpuOf(s, dev, &h); \
  if (g == nullptr) return NVML_ERROR_INVALID_ARGUMENT;

}  // namespace

extern "C" {

__attribute__((visibility("default"))) nvmlReturn_t nvmlInit_v2(void) {
  nvmlReturn_t fault_rc = NVML_SUCCESS;
  if (Fault("nvmlInit_v2", -1, &fault_rc)) return fault_rc;
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  // A fresh init, or a process that points the fake at another scenario.
  const char* path = std::getenv("GPA_FAKE_NVML_SCENARIO");
  if ((s.init_count == 0 || path == nullptr || s.path != path) && !Load(s)) {
    return NVML_ERROR_UNKNOWN;
  }
  ++s.init_count;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlShutdown(void) {
  FAKE_PROLOGUE("nvmlShutdown", -1);
  --s.init_count;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) const char* nvmlErrorString(nvmlReturn_t rc) {
  switch (rc) {
    case NVML_SUCCESS:
      return "Success";
    case NVML_ERROR_UNINITIALIZED:
      return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
      return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
      return "Not Supported";
    case NVML_ERROR_NOT_FOUND:
      return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE:
      return "Insufficient Size";
    case NVML_ERROR_GPU_IS_LOST:
      return "GPU is lost";
    case NVML_ERROR_TIMEOUT:
      return "Timeout";
    default:
      return "Unknown Error";
  }
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  FAKE_PROLOGUE("nvmlDeviceGetCount_v2", -1);
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  ReloadIfChanged(s);
  ++s.tick;
  *count = static_cast<unsigned>(s.scenario.gpus.size());
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(
    unsigned int index, nvmlDevice_t* dev) {
  FAKE_PROLOGUE("nvmlDeviceGetHandleByIndex_v2", static_cast<int>(index));
  if (dev == nullptr || index >= s.scenario.gpus.size()) return NVML_ERROR_INVALID_ARGUMENT;
  *dev = HandleFor(s, static_cast<int>(index), -1);
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char* buf,
                                                                      unsigned int len) {
  FAKE_DEVICE("nvmlDeviceGetName", dev);
  if (h->mig < 0) return CopyString(g->name, buf, len);
  return CopyString(g->name + " MIG " + g->mig_devices[h->mig].profile, buf, len);
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char* buf,
                                                                      unsigned int len) {
  FAKE_DEVICE("nvmlDeviceGetUUID", dev);
  return CopyString(h->mig < 0 ? g->uuid : g->mig_devices[h->mig].uuid, buf, len);
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t dev,
                                                                            nvmlPciInfo_t* pci) {
  FAKE_DEVICE("nvmlDeviceGetPciInfo_v3", dev);
  if (pci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *pci = nvmlPciInfo_t{};
  std::snprintf(pci->busId, sizeof(pci->busId), "%s", g->pci_bus_id.c_str());
  std::snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%s", g->pci_bus_id.c_str());
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev,
                                                                            nvmlMemory_t* mem) {
  FAKE_DEVICE("nvmlDeviceGetMemoryInfo", dev);
  if (mem == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  uint64_t total = g->memory_mib;
  uint64_t used = AtTick(g->used_mib_series, g->used_mib, s.tick);
  if (h->mig >= 0) {
    total = g->mig_devices[h->mig].memory_mib;
    used = g->mig_devices[h->mig].used_mib;
  }
  mem->total = total * kMiB;
  mem->used = used * kMiB;
  mem->free = (total - used) * kMiB;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetUtilizationRates(
    nvmlDevice_t dev, nvmlUtilization_t* util) {
  FAKE_DEVICE("nvmlDeviceGetUtilizationRates", dev);
  if (util == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (h->mig >= 0 || g->mig_enabled) return NVML_ERROR_NOT_SUPPORTED;  // as on real MIG GPUs
  util->gpu = AtTick(g->util_series, g->util, s.tick);
  util->memory = g->mem_util;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t dev,
                                                                         unsigned int* current,
                                                                         unsigned int* pending) {
  FAKE_DEVICE("nvmlDeviceGetMigMode", dev);
  if (current == nullptr || pending == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (h->mig >= 0) return NVML_ERROR_NOT_SUPPORTED;
  *current = *pending = g->mig_enabled ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(
    nvmlDevice_t dev, unsigned int* count) {
  FAKE_DEVICE("nvmlDeviceGetMaxMigDeviceCount", dev);
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *count = g->mig_enabled ? g->max_mig_devices : 0;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(
    nvmlDevice_t dev, unsigned int index, nvmlDevice_t* mig) {
  FAKE_DEVICE("nvmlDeviceGetMigDeviceHandleByIndex", dev);
  if (mig == nullptr || !g->mig_enabled || index >= g->max_mig_devices) {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  if (index >= g->mig_devices.size()) return NVML_ERROR_NOT_FOUND;
  *mig = HandleFor(s, h->gpu, static_cast<int>(index));
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t dev,
                                                                               unsigned int* id) {
  FAKE_DEVICE("nvmlDeviceGetGpuInstanceId", dev);
  if (id == nullptr || h->mig < 0) return NVML_ERROR_INVALID_ARGUMENT;
  *id = g->mig_devices[h->mig].gpu_instance_id;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetComputeInstanceId(
    nvmlDevice_t dev, unsigned int* id) {
  FAKE_DEVICE("nvmlDeviceGetComputeInstanceId", dev);
  if (id == nullptr || h->mig < 0) return NVML_ERROR_INVALID_ARGUMENT;
  *id = g->mig_devices[h->mig].compute_instance_id;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetNvLinkState(
    nvmlDevice_t dev, unsigned int link, nvmlEnableState_t* active) {
  FAKE_DEVICE("nvmlDeviceGetNvLinkState", dev);
  if (active == nullptr || h->mig >= 0 || link >= NVML_NVLINK_MAX_LINKS) {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  const size_t links = g->nvlink_peers.size() + g->nvswitch_bus_ids.size();
  if (links == 0) return NVML_ERROR_NOT_SUPPORTED;
  *active = link < links ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(
    nvmlDevice_t dev, unsigned int link, nvmlPciInfo_t* pci) {
  FAKE_DEVICE("nvmlDeviceGetNvLinkRemotePciInfo_v2", dev);
  if (pci == nullptr || h->mig >= 0) return NVML_ERROR_INVALID_ARGUMENT;
  std::string bus;
  if (link < g->nvlink_peers.size()) {
    const int peer = g->nvlink_peers[link];
    if (peer >= static_cast<int>(s.scenario.gpus.size())) return NVML_ERROR_INVALID_ARGUMENT;
    bus = s.scenario.gpus[peer].pci_bus_id;
  } else if (link - g->nvlink_peers.size() < g->nvswitch_bus_ids.size()) {
    bus = g->nvswitch_bus_ids[link - g->nvlink_peers.size()];
  } else {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  *pci = nvmlPciInfo_t{};
  std::snprintf(pci->busId, sizeof(pci->busId), "%s", bus.c_str());
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(
    nvmlDevice_t dev, unsigned int* count, nvmlProcessInfo_t* infos) {
  FAKE_DEVICE("nvmlDeviceGetComputeRunningProcesses_v3", dev);
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const auto& procs = g->processes;
  if (*count < procs.size() || (infos == nullptr && !procs.empty())) {
    *count = static_cast<unsigned>(procs.size());
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (size_t i = 0; i < procs.size(); ++i) {
    infos[i].pid = procs[i].pid;
    infos[i].usedGpuMemory = AtTick(procs[i].used_mib_series, procs[i].used_mib, s.tick) * kMiB;
    infos[i].gpuInstanceId = procs[i].gpu_instance_id.value_or(0xFFFFFFFFu);
    infos[i].computeInstanceId = procs[i].gpu_instance_id ? 0 : 0xFFFFFFFFu;
  }
  *count = static_cast<unsigned>(procs.size());
  return NVML_SUCCESS;
}

__attribute__((visibility("default"))) nvmlReturn_t nvmlDeviceGetProcessUtilization(
    nvmlDevice_t dev, nvmlProcessUtilizationSample_t* samples, unsigned int* count,
    unsigned long long last_seen) {
  FAKE_DEVICE("nvmlDeviceGetProcessUtilization", dev);
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const auto& procs = g->processes;
  const unsigned long long now =
      static_cast<unsigned long long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  if (procs.empty() || now <= last_seen) return NVML_ERROR_NOT_FOUND;
  if (samples == nullptr || *count < procs.size()) {
    *count = static_cast<unsigned>(procs.size());
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (size_t i = 0; i < procs.size(); ++i) {
    samples[i] = nvmlProcessUtilizationSample_t{};
    samples[i].pid = procs[i].pid;
    samples[i].timeStamp = now;
    samples[i].smUtil = AtTick(procs[i].sm_util_series, procs[i].sm_util, s.tick);
    samples[i].memUtil = procs[i].mem_util;
  }
  *count = static_cast<unsigned>(procs.size());
  return NVML_SUCCESS;
}

}  // extern "C"
