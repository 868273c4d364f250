#include "node-agent/nvml/nvml_library.h"

#include <dlfcn.h>

#include <cstring>

#include "node-agent/nvml/nvml_errors.h"

namespace gpu_autoscaler::node_agent::nvml {

struct NvmlLibrary::CallScope {
  CallScope(NvmlLibrary& lib, const char* call) : lib_(lib) { lib_.current_call_.store(call); }
  ~CallScope() { lib_.current_call_.store(nullptr); }
  NvmlLibrary& lib_;
};

namespace {

template <typename Fn>
bool Lookup(void* handle, const char* name, Fn* out) {
  *out = reinterpret_cast<Fn>(dlsym(handle, name));
  return *out != nullptr;
}

std::string FromBuffer(const char* buf, size_t size) {
  return std::string(buf, strnlen(buf, size));
}

}  // namespace

Result<std::unique_ptr<NvmlLibrary>> NvmlLibrary::Load(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return NotFoundError("loading NVML from " + path + ": " + (why ? why : "dlopen failed"));
  }
  std::unique_ptr<NvmlLibrary> lib(new NvmlLibrary());
  lib->path_ = path;
  lib->handle_ = handle;
  std::string missing;
  auto need = [&](bool found, const char* name) {
    if (!found) missing += (missing.empty() ? "" : ", ") + std::string(name);
  };
  need(Lookup(handle, "nvmlInit_v2", &lib->init_), "nvmlInit_v2");
  need(Lookup(handle, "nvmlShutdown", &lib->shutdown_), "nvmlShutdown");
  need(Lookup(handle, "nvmlErrorString", &lib->error_string_), "nvmlErrorString");
  need(Lookup(handle, "nvmlDeviceGetCount_v2", &lib->count_), "nvmlDeviceGetCount_v2");
  need(Lookup(handle, "nvmlDeviceGetHandleByIndex_v2", &lib->handle_by_index_),
       "nvmlDeviceGetHandleByIndex_v2");
  need(Lookup(handle, "nvmlDeviceGetName", &lib->name_), "nvmlDeviceGetName");
  need(Lookup(handle, "nvmlDeviceGetUUID", &lib->uuid_), "nvmlDeviceGetUUID");
  need(Lookup(handle, "nvmlDeviceGetMemoryInfo", &lib->memory_), "nvmlDeviceGetMemoryInfo");
  need(Lookup(handle, "nvmlDeviceGetUtilizationRates", &lib->utilization_),
       "nvmlDeviceGetUtilizationRates");
  if (!missing.empty()) {
    return FailedPreconditionError(path + " is not a usable NVML: it lacks " + missing);
  }
  // Optional: older drivers, or GPUs without MIG or NVLink.
  Lookup(handle, "nvmlDeviceGetPciInfo_v3", &lib->pci_);
  Lookup(handle, "nvmlDeviceGetMigMode", &lib->mig_mode_);
  Lookup(handle, "nvmlDeviceGetMaxMigDeviceCount", &lib->max_mig_);
  Lookup(handle, "nvmlDeviceGetMigDeviceHandleByIndex", &lib->mig_handle_);
  Lookup(handle, "nvmlDeviceGetGpuInstanceId", &lib->gi_id_);
  Lookup(handle, "nvmlDeviceGetComputeInstanceId", &lib->ci_id_);
  Lookup(handle, "nvmlDeviceGetNvLinkState", &lib->nvlink_state_);
  Lookup(handle, "nvmlDeviceGetNvLinkRemotePciInfo_v2", &lib->nvlink_remote_);
  Lookup(handle, "nvmlDeviceGetComputeRunningProcesses_v3", &lib->processes_);
  Lookup(handle, "nvmlDeviceGetProcessUtilization", &lib->process_util_);
  return lib;
}

NvmlLibrary::~NvmlLibrary() {
  if (handle_ != nullptr && !leaked_) dlclose(handle_);
}

std::string NvmlLibrary::CurrentCall() const {
  const char* call = current_call_.load();
  return call ? call : "";
}

Status NvmlLibrary::Check(int code, const char* call, const std::string& subject) {
  if (code == NVML_SUCCESS) return Status::Ok();
  const char* text = error_string_ ? error_string_(code) : nullptr;
  return NvmlStatus(code, call, subject, text ? text : "");
}

#define GPA_NVML_CALL(fn, call, subject, ...)                                             \
  [&]() -> Status {                                                                       \
    if ((fn) == nullptr) return NvmlStatus(NVML_ERROR_FUNCTION_NOT_FOUND, call, subject); \
    CallScope scope(*this, call);                                                         \
    return Check((fn)(__VA_ARGS__), call, subject);                                       \
  }()

Status NvmlLibrary::Init() {
  CallScope scope(*this, "nvmlInit_v2");
  return Check(init_(), "nvmlInit_v2", "");
}

Status NvmlLibrary::Shutdown() {
  CallScope scope(*this, "nvmlShutdown");
  return Check(shutdown_(), "nvmlShutdown", "");
}

Result<unsigned> NvmlLibrary::DeviceCount() {
  unsigned n = 0;
  GPU_RETURN_IF_ERROR(GPA_NVML_CALL(count_, "nvmlDeviceGetCount_v2", "", &n));
  return n;
}

Result<nvmlDevice_t> NvmlLibrary::DeviceHandle(unsigned index) {
  nvmlDevice_t dev = nullptr;
  GPU_RETURN_IF_ERROR(GPA_NVML_CALL(handle_by_index_, "nvmlDeviceGetHandleByIndex_v2",
                                    "gpu " + std::to_string(index), index, &dev));
  return dev;
}

Result<std::string> NvmlLibrary::Name(nvmlDevice_t dev, const std::string& subject) {
  char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
  GPU_RETURN_IF_ERROR(GPA_NVML_CALL(name_, "nvmlDeviceGetName", subject, dev, buf, sizeof(buf)));
  return FromBuffer(buf, sizeof(buf));
}

Result<std::string> NvmlLibrary::Uuid(nvmlDevice_t dev, const std::string& subject) {
  char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
  GPU_RETURN_IF_ERROR(GPA_NVML_CALL(uuid_, "nvmlDeviceGetUUID", subject, dev, buf, sizeof(buf)));
  return FromBuffer(buf, sizeof(buf));
}

Result<std::string> NvmlLibrary::PciBusId(nvmlDevice_t dev, const std::string& subject) {
  nvmlPciInfo_t pci{};
  GPU_RETURN_IF_ERROR(GPA_NVML_CALL(pci_, "nvmlDeviceGetPciInfo_v3", subject, dev, &pci));
  return FromBuffer(pci.busId, sizeof(pci.busId));
}

Result<nvmlMemory_t> NvmlLibrary::Memory(nvmlDevice_t dev, const std::string& subject) {
  nvmlMemory_t mem{};
  GPU_RETURN_IF_ERROR(GPA_NVML_CALL(memory_, "nvmlDeviceGetMemoryInfo", subject, dev, &mem));
  return mem;
}

Result<nvmlUtilization_t> NvmlLibrary::Utilization(nvmlDevice_t dev, const std::string& subject) {
  nvmlUtilization_t util{};
  GPU_RETURN_IF_ERROR(
      GPA_NVML_CALL(utilization_, "nvmlDeviceGetUtilizationRates", subject, dev, &util));
  return util;
}

Result<std::pair<unsigned, unsigned>> NvmlLibrary::MigMode(nvmlDevice_t dev,
                                                           const std::string& subject) {
  unsigned current = 0;
  unsigned pending = 0;
  GPU_RETURN_IF_ERROR(
      GPA_NVML_CALL(mig_mode_, "nvmlDeviceGetMigMode", subject, dev, &current, &pending));
  return std::make_pair(current, pending);
}

Result<unsigned> NvmlLibrary::MaxMigDeviceCount(nvmlDevice_t dev, const std::string& subject) {
  unsigned n = 0;
  GPU_RETURN_IF_ERROR(GPA_NVML_CALL(max_mig_, "nvmlDeviceGetMaxMigDeviceCount", subject, dev, &n));
  return n;
}

Result<nvmlDevice_t> NvmlLibrary::MigDeviceHandle(nvmlDevice_t dev, unsigned slot,
                                                  const std::string& subject) {
  nvmlDevice_t mig = nullptr;
  GPU_RETURN_IF_ERROR(
      GPA_NVML_CALL(mig_handle_, "nvmlDeviceGetMigDeviceHandleByIndex", subject, dev, slot, &mig));
  return mig;
}

Result<unsigned> NvmlLibrary::GpuInstanceId(nvmlDevice_t mig, const std::string& subject) {
  unsigned id = 0;
  GPU_RETURN_IF_ERROR(GPA_NVML_CALL(gi_id_, "nvmlDeviceGetGpuInstanceId", subject, mig, &id));
  return id;
}

Result<unsigned> NvmlLibrary::ComputeInstanceId(nvmlDevice_t mig, const std::string& subject) {
  unsigned id = 0;
  GPU_RETURN_IF_ERROR(GPA_NVML_CALL(ci_id_, "nvmlDeviceGetComputeInstanceId", subject, mig, &id));
  return id;
}

Result<bool> NvmlLibrary::NvLinkActive(nvmlDevice_t dev, unsigned link,
                                       const std::string& subject) {
  nvmlEnableState_t state = NVML_FEATURE_DISABLED;
  GPU_RETURN_IF_ERROR(
      GPA_NVML_CALL(nvlink_state_, "nvmlDeviceGetNvLinkState", subject, dev, link, &state));
  return state == NVML_FEATURE_ENABLED;
}

Result<std::string> NvmlLibrary::NvLinkRemoteBusId(nvmlDevice_t dev, unsigned link,
                                                   const std::string& subject) {
  nvmlPciInfo_t pci{};
  GPU_RETURN_IF_ERROR(GPA_NVML_CALL(nvlink_remote_, "nvmlDeviceGetNvLinkRemotePciInfo_v2", subject,
                                    dev, link, &pci));
  return FromBuffer(pci.busId, sizeof(pci.busId));
}

Result<std::vector<nvmlProcessInfo_t>> NvmlLibrary::ComputeProcesses(nvmlDevice_t dev,
                                                                     const std::string& subject) {
  std::vector<nvmlProcessInfo_t> procs(16);
  for (int attempt = 0; attempt < 4; ++attempt) {
    unsigned count = static_cast<unsigned>(procs.size());
    Status s = GPA_NVML_CALL(processes_, "nvmlDeviceGetComputeRunningProcesses_v3", subject, dev,
                             &count, procs.data());
    if (s.ok()) {
      procs.resize(count);
      return procs;
    }
    if (s.code() != StatusCode::kOutOfRange) return s;  // not INSUFFICIENT_SIZE
    procs.resize(count + 8);                            // processes may start between the two calls
  }
  return ResourceExhaustedError("nvmlDeviceGetComputeRunningProcesses_v3(" + subject +
                                "): the process list kept growing");
}

Result<std::vector<nvmlProcessUtilizationSample_t>> NvmlLibrary::ProcessUtilization(
    nvmlDevice_t dev, unsigned long long since_us, const std::string& subject) {
  std::vector<nvmlProcessUtilizationSample_t> samples;
  for (int attempt = 0; attempt < 4; ++attempt) {
    unsigned count = static_cast<unsigned>(samples.size());
    Status s = GPA_NVML_CALL(process_util_, "nvmlDeviceGetProcessUtilization", subject, dev,
                             samples.empty() ? nullptr : samples.data(), &count, since_us);
    if (s.ok()) {
      samples.resize(count);
      return samples;
    }
    if (s.code() == StatusCode::kNotFound) return std::vector<nvmlProcessUtilizationSample_t>{};
    if (s.code() != StatusCode::kOutOfRange) return s;
    samples.resize(count + 8);
  }
  return ResourceExhaustedError("nvmlDeviceGetProcessUtilization(" + subject +
                                "): the sample list kept growing");
}

#undef GPA_NVML_CALL

}  // namespace gpu_autoscaler::node_agent::nvml
