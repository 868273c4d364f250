// File: node-agent/nvml/nvml_library.h
//
// libnvidia-ml loaded with dlopen at run time, never linked: the agent runs
// on nodes without a driver. Only the calls in nvml_abi.h are looked up. The
// lifecycle and identity calls are required (a library without them is
// refused); MIG, NVLink, PCI and process calls are optional and answer
// kUnimplemented (NVML_ERROR_FUNCTION_NOT_FOUND) when the driver lacks them.
// Every call returns a Status built by NvmlStatus, with nvmlErrorString's text.
//
//   GPU_ASSIGN_OR_RETURN(auto lib, NvmlLibrary::Load("libnvidia-ml.so.1"));
//   GPU_RETURN_IF_ERROR(lib->Init());
//   GPU_ASSIGN_OR_RETURN(unsigned n, lib->DeviceCount());
//
// The library is not unloaded while an object exists; Leak() keeps it loaded
// for good (used when a call never returned and a thread may still be inside).
//
// Thread-safety: NVML itself is thread-safe, but the agent calls one
// NvmlLibrary from one worker thread at a time (nvml_session.h).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "node-agent/nvml/nvml_abi.h"

namespace gpu_autoscaler::node_agent::nvml {

class NvmlLibrary {
 public:
  // kNotFound when the file cannot be loaded (the dlerror text is in the
  // message); kFailedPrecondition when a required symbol is missing.
  static Result<std::unique_ptr<NvmlLibrary>> Load(const std::string& path);
  ~NvmlLibrary();
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  const std::string& path() const { return path_; }
  void Leak() { leaked_ = true; }

  // The name of the NVML call in progress, or "" (read from other threads
  // to say which call hung).
  std::string CurrentCall() const;

  Status Init();
  Status Shutdown();
  Result<unsigned> DeviceCount();
  Result<nvmlDevice_t> DeviceHandle(unsigned index);
  Result<std::string> Name(nvmlDevice_t dev, const std::string& subject);
  Result<std::string> Uuid(nvmlDevice_t dev, const std::string& subject);
  Result<std::string> PciBusId(nvmlDevice_t dev, const std::string& subject);
  Result<nvmlMemory_t> Memory(nvmlDevice_t dev, const std::string& subject);
  Result<nvmlUtilization_t> Utilization(nvmlDevice_t dev, const std::string& subject);
  // {current, pending}; kUnimplemented on GPUs without MIG.
  Result<std::pair<unsigned, unsigned>> MigMode(nvmlDevice_t dev, const std::string& subject);
  Result<unsigned> MaxMigDeviceCount(nvmlDevice_t dev, const std::string& subject);
  // kNotFound for an empty slot.
  Result<nvmlDevice_t> MigDeviceHandle(nvmlDevice_t dev, unsigned slot, const std::string& subject);
  Result<unsigned> GpuInstanceId(nvmlDevice_t mig, const std::string& subject);
  Result<unsigned> ComputeInstanceId(nvmlDevice_t mig, const std::string& subject);
  Result<bool> NvLinkActive(nvmlDevice_t dev, unsigned link, const std::string& subject);
  Result<std::string> NvLinkRemoteBusId(nvmlDevice_t dev, unsigned link,
                                        const std::string& subject);
  // Grows the buffer while NVML answers NVML_ERROR_INSUFFICIENT_SIZE.
  Result<std::vector<nvmlProcessInfo_t>> ComputeProcesses(nvmlDevice_t dev,
                                                          const std::string& subject);
  // Samples newer than `since_us`; empty when NVML has none (NVML_ERROR_NOT_FOUND).
  Result<std::vector<nvmlProcessUtilizationSample_t>> ProcessUtilization(
      nvmlDevice_t dev, unsigned long long since_us, const std::string& subject);

 private:
  NvmlLibrary() = default;
  Status Check(int code, const char* call, const std::string& subject);
  // Records `call` as in progress until the returned guard is destroyed.
  struct CallScope;

  std::string path_;
  void* handle_ = nullptr;
  bool leaked_ = false;
  std::atomic<const char*> current_call_{nullptr};

  nvmlInit_v2_fn init_ = nullptr;
  nvmlShutdown_fn shutdown_ = nullptr;
  nvmlErrorString_fn error_string_ = nullptr;
  nvmlDeviceGetCount_v2_fn count_ = nullptr;
  nvmlDeviceGetHandleByIndex_v2_fn handle_by_index_ = nullptr;
  nvmlDeviceGetName_fn name_ = nullptr;
  nvmlDeviceGetUUID_fn uuid_ = nullptr;
  nvmlDeviceGetMemoryInfo_fn memory_ = nullptr;
  nvmlDeviceGetUtilizationRates_fn utilization_ = nullptr;
  nvmlDeviceGetPciInfo_v3_fn pci_ = nullptr;
  nvmlDeviceGetMigMode_fn mig_mode_ = nullptr;
  nvmlDeviceGetMaxMigDeviceCount_fn max_mig_ = nullptr;
  nvmlDeviceGetMigDeviceHandleByIndex_fn mig_handle_ = nullptr;
  nvmlDeviceGetGpuInstanceId_fn gi_id_ = nullptr;
  nvmlDeviceGetComputeInstanceId_fn ci_id_ = nullptr;
  nvmlDeviceGetNvLinkState_fn nvlink_state_ = nullptr;
  nvmlDeviceGetNvLinkRemotePciInfo_v2_fn nvlink_remote_ = nullptr;
  nvmlDeviceGetComputeRunningProcesses_v3_fn processes_ = nullptr;
  nvmlDeviceGetProcessUtilization_fn process_util_ = nullptr;
};

}  // namespace gpu_autoscaler::node_agent::nvml
