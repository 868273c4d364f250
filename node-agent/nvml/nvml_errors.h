// File: node-agent/nvml/nvml_errors.h
//
// NVML return codes as names and as Status values. Every NVML call the agent
// makes goes through NvmlStatus, so a failure reads like
// "nvmlDeviceGetUtilizationRates(gpu 3): NVML_ERROR_GPU_IS_LOST: GPU is lost".
//
//   GPU_RETURN_IF_ERROR(NvmlStatus(fn(dev, &mem), "nvmlDeviceGetMemoryInfo", "gpu 0", text));
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace gpu_autoscaler::node_agent::nvml {

// "NVML_SUCCESS", "NVML_ERROR_NOT_SUPPORTED"... or "NVML_ERROR_<code>" for a
// code this build does not know.
std::string NvmlErrorName(int code);

// The canonical code a return code maps to (kOk for NVML_SUCCESS).
StatusCode NvmlStatusCode(int code);

// OK for NVML_SUCCESS; otherwise an error whose message is
// "<call>(<subject>): <NAME>[: <description>]". `description` is what
// nvmlErrorString said (may be empty); `subject` may be empty.
Status NvmlStatus(int code, std::string_view call, std::string_view subject = {},
                  std::string_view description = {});

}  // namespace gpu_autoscaler::node_agent::nvml
