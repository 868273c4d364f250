// File: node-agent/metrics.h
//
// The agent's /metrics, rendered from the last NVML snapshot at each scrape.
// Where a metric means what a dcgm-exporter metric means, it has that name
// and those labels (gpu, UUID, device, modelName, Hostname; GPU_I_PROFILE
// and GPU_I_ID on MIG series), so dashboards and the manager's cost metering
// read either:
//   DCGM_FI_DEV_GPU_UTIL  gauge, %      (GPUs without MIG; NVML has no MIG utilisation)
//   DCGM_FI_DEV_FB_USED   gauge, MiB    (per GPU and per MIG device)
//   DCGM_FI_DEV_FB_FREE   gauge, MiB
// and the agent's own:
//   gpu_autoscaler_node_gpu_process_sm_utilization{gpu,UUID,pid,Hostname}  %
//   gpu_autoscaler_node_gpu_process_memory_used_bytes{gpu,UUID,pid,Hostname}
//   gpu_autoscaler_node_gpu_mig_enabled{gpu,UUID,modelName,Hostname}       0/1
//   gpu_autoscaler_node_nvml_up                                            0/1
//   gpu_autoscaler_node_nvml_state{state}                                  1 for the current
//   gpu_autoscaler_node_nvml_poll_duration_seconds                         histogram
//   gpu_autoscaler_node_nvml_poll_timeouts_total, gpu_autoscaler_node_nvml_call_errors_total
//   gpu_autoscaler_node_report_syncs_total{result}
// With pod attribution (attribution.h), process series gain pod, namespace
// and container (dcgm-exporter's label names), and GPU and MIG series gain
// them when one container holds that device, as dcgm-exporter does with
// --kubernetes. The agent's per-pod and PodResources series:
//   gpu_autoscaler_node_pod_gpu_sm_utilization{namespace,pod,Hostname}      % (sum over processes)
//   gpu_autoscaler_node_pod_gpu_memory_used_bytes{namespace,pod,Hostname}
//   gpu_autoscaler_node_pod_gpu_processes{namespace,pod,Hostname}
//   gpu_autoscaler_node_gpu_device_holders{gpu,UUID,Hostname}   containers holding a GPU/MIG device
//   gpu_autoscaler_node_gpu_processes_unattributed
//   gpu_autoscaler_node_pod_resources_up, gpu_autoscaler_node_pod_resources_state{state}
//   gpu_autoscaler_node_pod_resources_devices{resource,kind="allocatable"|"assigned"}
// Series of GPUs, MIG devices, processes and pods that are gone are removed.
//
//   AgentMetrics metrics(registry, "gpu-node-1");
//   manager.AddMetricsHook([&] {
//     Attribution a = attributor.Attribute(*snap);
//     PodResourcesStatus st = attributor.status();
//     metrics.Render(snap.get(), nvml->state(), &a, &st);
//   });
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "node-agent/nvml/nvml_session.h"
#include "node-agent/nvml/snapshot.h"

namespace prometheus {
class Registry;
}

namespace gpu_autoscaler::node_agent {

struct Attribution;
struct PodResourcesStatus;

class AgentMetrics {
 public:
  AgentMetrics(prometheus::Registry& registry, std::string hostname);
  ~AgentMetrics();

  // Replaces the GPU series with those of `snapshot` (none when null) and
  // sets the NVML state gauges. `attribution` (of this snapshot) adds the pod
  // labels and per-pod series; `pod_resources` the PodResources gauges.
  void Render(const nvml::GpuSnapshot* snapshot, nvml::NvmlState state,
              const Attribution* attribution = nullptr,
              const PodResourcesStatus* pod_resources = nullptr);
  void ObservePoll(double seconds, bool timed_out, size_t call_errors);
  void ReportWrite(bool ok);

 private:
  struct Impl;
  std::mutex mu_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpu_autoscaler::node_agent
