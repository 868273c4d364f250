// File: controllers/checkpoint_configmap.h
//
// State a controller keeps across manager restarts and leader changes in a
// ConfigMap of its own ("checkpoint"): one data key holding text the
// controller encodes, labelled managed-by gpu-autoscaler and owned by the
// object it belongs to, so it goes with it. The ServiceProfile controller
// keeps its histograms this way, the GPUNodePool controller its demand
// history. Why a ConfigMap: see service_profile_controller.h.
//
//   auto text = ReadCheckpoint(client, "default", "gpunodepool-a-demand", "history.json");
//   if (text.ok() && *text) ... decode **text ...
//   Status s = WriteCheckpoint(client, {.ns = "default", .name = "gpunodepool-a-demand",
//                                       .key = "history.json", .owner = {...}}, encoded);
//
// Thread-safety: as the RestClient passed in.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"

namespace gpu_autoscaler::kube {
class RestClient;
}

namespace gpu_autoscaler::controllers {

struct CheckpointOwner {
  std::string api_version{};  // "gpuautoscaler.io/v1alpha1"
  std::string kind{};
  std::string name{};
  std::string uid{};
};

struct CheckpointRef {
  std::string ns{};
  std::string name{};
  std::string key{};
  CheckpointOwner owner{};
};

// data[key] of the ConfigMap; nullopt when the ConfigMap or the key is
// missing. An error when the API server cannot be read.
Result<std::optional<std::string>> ReadCheckpoint(kube::RestClient& client, const std::string& ns,
                                                  const std::string& name, const std::string& key);

// Creates or replaces the ConfigMap with data {key: text} (replacing at the
// resourceVersion just read, so two writers conflict rather than interleave).
Status WriteCheckpoint(kube::RestClient& client, const CheckpointRef& ref, const std::string& text);

}  // namespace gpu_autoscaler::controllers
