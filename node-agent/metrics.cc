#include "node-agent/metrics.h"

#include <map>
#include <set>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "node-agent/attribution.h"
#include "node-agent/pod_attributor.h"

namespace gpu_autoscaler::node_agent {

using Labels = std::map<std::string, std::string>;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// A gauge family whose series are replaced wholesale at each render.
class GaugeSet {
 public:
  explicit GaugeSet(prometheus::Family<prometheus::Gauge>& family) : family_(family) {}
  void Begin() { seen_.clear(); }
  void Set(const Labels& labels, double value) {
    auto [it, inserted] = series_.emplace(labels, nullptr);
    if (inserted) it->second = &family_.Add(labels);
    it->second->Set(value);
    seen_.insert(labels);
  }
  void End() {
    for (auto it = series_.begin(); it != series_.end();) {
      if (seen_.count(it->first)) {
        ++it;
        continue;
      }
      family_.Remove(it->second);
      it = series_.erase(it);
    }
  }

 private:
  prometheus::Family<prometheus::Gauge>& family_;
  std::map<Labels, prometheus::Gauge*> series_;
  std::set<Labels> seen_;
};

prometheus::Family<prometheus::Gauge>& Gauge(prometheus::Registry& r, const std::string& name,
                                             const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

}  // namespace

struct AgentMetrics::Impl {
  std::string hostname;
  GaugeSet gpu_util;
  GaugeSet fb_used;
  GaugeSet fb_free;
  GaugeSet proc_sm;
  GaugeSet proc_mem;
  GaugeSet mig_enabled;
  GaugeSet pod_sm;
  GaugeSet pod_mem;
  GaugeSet pod_procs;
  GaugeSet holders;
  GaugeSet podres_devices;
  prometheus::Gauge& unattributed;
  prometheus::Gauge& podres_up;
  prometheus::Family<prometheus::Gauge>& podres_state;
  prometheus::Gauge& nvml_up;
  prometheus::Family<prometheus::Gauge>& nvml_state;
  prometheus::Histogram& poll_duration;
  prometheus::Counter& poll_timeouts;
  prometheus::Counter& call_errors;
  prometheus::Family<prometheus::Counter>& writes;
};

AgentMetrics::AgentMetrics(prometheus::Registry& r, std::string hostname) {
  auto& up = Gauge(r, "gpu_autoscaler_node_nvml_up",
                   "1 while NVML answers the agent's polls; 0 without a driver, after a failed "
                   "init, or while a call is hung");
  impl_ = std::unique_ptr<Impl>(new Impl{
      .hostname = std::move(hostname),
      .gpu_util = GaugeSet(Gauge(r, "DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).")),
      .fb_used = GaugeSet(Gauge(r, "DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).")),
      .fb_free = GaugeSet(Gauge(r, "DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).")),
      .proc_sm = GaugeSet(Gauge(r, "gpu_autoscaler_node_gpu_process_sm_utilization",
                                "A process's share of the GPU's SMs over NVML's last sample "
                                "period (in %), from nvmlDeviceGetProcessUtilization")),
      .proc_mem = GaugeSet(Gauge(r, "gpu_autoscaler_node_gpu_process_memory_used_bytes",
                                 "GPU memory a process holds, from "
                                 "nvmlDeviceGetComputeRunningProcesses")),
      .mig_enabled =
          GaugeSet(Gauge(r, "gpu_autoscaler_node_gpu_mig_enabled", "1 when MIG mode is on")),
      .pod_sm = GaugeSet(Gauge(r, "gpu_autoscaler_node_pod_gpu_sm_utilization",
                               "A pod's GPU processes' SM shares summed (in %; 100 is one GPU's "
                               "SMs), from nvmlDeviceGetProcessUtilization")),
      .pod_mem = GaugeSet(Gauge(r, "gpu_autoscaler_node_pod_gpu_memory_used_bytes",
                                "GPU memory held by a pod's processes, summed")),
      .pod_procs = GaugeSet(
          Gauge(r, "gpu_autoscaler_node_pod_gpu_processes", "GPU processes attributed to a pod")),
      .holders = GaugeSet(Gauge(r, "gpu_autoscaler_node_gpu_device_holders",
                                "Containers the kubelet assigned a GPU or MIG device to "
                                "(more than 1: time-slicing or MPS replicas)")),
      .podres_devices = GaugeSet(Gauge(r, "gpu_autoscaler_node_pod_resources_devices",
                                       "GPU device ids per resource the kubelet can assign "
                                       "(kind=allocatable) and has assigned (kind=assigned)")),
      .unattributed = Gauge(r, "gpu_autoscaler_node_gpu_processes_unattributed",
                            "GPU processes the agent could not map to a pod")
                          .Add({}),
      .podres_up = Gauge(r, "gpu_autoscaler_node_pod_resources_up",
                         "1 while the kubelet's PodResources API answers; 0 when the socket is "
                         "absent, the kubelet hangs or errs, or attribution is disabled")
                       .Add({}),
      .podres_state = Gauge(r, "gpu_autoscaler_node_pod_resources_state",
                            "1 for the PodResources client's state: Disabled, Pending, Up, "
                            "NoSocket, TimedOut or Failed"),
      .nvml_up = up.Add({}),
      .nvml_state = Gauge(r, "gpu_autoscaler_node_nvml_state",
                          "1 for the agent's current view of NVML: Up, NoLibrary, InitFailed, "
                          "Failed or Hung"),
      .poll_duration =
          prometheus::BuildHistogram()
              .Name("gpu_autoscaler_node_nvml_poll_duration_seconds")
              .Help("Time one NVML poll of every GPU took")
              .Register(r)
              .Add({},
                   prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                           0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}),
      .poll_timeouts = prometheus::BuildCounter()
                           .Name("gpu_autoscaler_node_nvml_poll_timeouts_total")
                           .Help("Polls in which an NVML call did not return in time")
                           .Register(r)
                           .Add({}),
      .call_errors = prometheus::BuildCounter()
                         .Name("gpu_autoscaler_node_nvml_call_errors_total")
                         .Help("Per-GPU NVML calls that failed (other than not supported)")
                         .Register(r)
                         .Add({}),
      .writes = prometheus::BuildCounter()
                    .Name("gpu_autoscaler_node_report_syncs_total")
                    .Help("NodeResourceReport syncs by result")
                    .Register(r),
  });
}

AgentMetrics::~AgentMetrics() = default;

void AgentMetrics::Render(const nvml::GpuSnapshot* snapshot, nvml::NvmlState state,
                          const Attribution* attribution, const PodResourcesStatus* pod_resources) {
  std::lock_guard<std::mutex> lock(mu_);
  Impl& m = *impl_;
  m.nvml_up.Set(state == nvml::NvmlState::kUp ? 1 : 0);
  for (auto s : {nvml::NvmlState::kNoLibrary, nvml::NvmlState::kInitFailed, nvml::NvmlState::kUp,
                 nvml::NvmlState::kFailed, nvml::NvmlState::kHung}) {
    m.nvml_state.Add({{"state", std::string(nvml::NvmlStateName(s))}}).Set(s == state ? 1 : 0);
  }
  const std::initializer_list<GaugeSet*> sets = {
      &m.gpu_util, &m.fb_used, &m.fb_free, &m.proc_sm,   &m.proc_mem,      &m.mig_enabled,
      &m.pod_sm,   &m.pod_mem, &m.holders, &m.pod_procs, &m.podres_devices};
  for (GaugeSet* g : sets)
    g->Begin();
  // dcgm-exporter's pod labels, on a device one container holds.
  auto add_owner = [&](Labels& l, const std::string& uuid) {
    if (attribution == nullptr) return;
    auto it = attribution->device_owner.find(uuid);
    if (it == attribution->device_owner.end()) return;
    l["pod"] = it->second.pod;
    l["namespace"] = it->second.namespace_name;
    l["container"] = it->second.container;
  };
  size_t process_at = 0;  // attribution->processes follows the snapshot's order
  if (snapshot != nullptr) {
    for (const nvml::GpuSample& gpu : snapshot->gpus) {
      const std::string index = std::to_string(gpu.index);
      Labels base = {{"gpu", index},
                     {"UUID", gpu.uuid},
                     {"device", "nvidia" + index},
                     {"modelName", gpu.name},
                     {"Hostname", m.hostname}};
      if (!gpu.pci_bus_id.empty()) base["pci_bus_id"] = gpu.pci_bus_id;
      m.mig_enabled.Set(base, gpu.mig_enabled ? 1 : 0);
      Labels owned = base;
      if (!gpu.mig_enabled) add_owner(owned, gpu.uuid);
      if (gpu.util_gpu) m.gpu_util.Set(owned, *gpu.util_gpu);
      if (!gpu.mig_enabled) {
        m.fb_used.Set(owned, static_cast<double>(gpu.memory_used_bytes) / kMiB);
        m.fb_free.Set(owned, static_cast<double>(gpu.memory_free_bytes) / kMiB);
      }
      auto set_holders = [&](const std::string& uuid, Labels l) {
        if (attribution == nullptr) return;
        auto it = attribution->device_holders.find(uuid);
        l["UUID"] = uuid;
        m.holders.Set(l, it == attribution->device_holders.end() ? 0 : it->second);
      };
      if (!gpu.mig_enabled) set_holders(gpu.uuid, {{"gpu", index}, {"Hostname", m.hostname}});
      for (const nvml::MigDeviceSample& mig : gpu.mig_devices) {
        Labels l = base;
        l["GPU_I_PROFILE"] = mig.profile;
        l["GPU_I_ID"] = mig.gpu_instance_id ? std::to_string(*mig.gpu_instance_id) : "";
        add_owner(l, mig.uuid);
        m.fb_used.Set(l, static_cast<double>(mig.memory_used_bytes) / kMiB);
        m.fb_free.Set(l, static_cast<double>(mig.memory_free_bytes) / kMiB);
        set_holders(mig.uuid,
                    {{"gpu", index}, {"GPU_I_ID", l["GPU_I_ID"]}, {"Hostname", m.hostname}});
      }
      for (const nvml::ProcessSample& p : gpu.processes) {
        Labels l = {{"gpu", index},
                    {"UUID", gpu.uuid},
                    {"pid", std::to_string(p.pid)},
                    {"Hostname", m.hostname}};
        if (p.gpu_instance_id) l["GPU_I_ID"] = std::to_string(*p.gpu_instance_id);
        if (attribution != nullptr && process_at < attribution->processes.size()) {
          const ProcessAttribution& pa = attribution->processes[process_at++];
          if (pa.pid == p.pid && !pa.owner.pod.empty()) {
            l["pod"] = pa.owner.pod;
            l["namespace"] = pa.owner.namespace_name;
            l["container"] = pa.owner.container;
          }
        }
        if (p.sm_util) m.proc_sm.Set(l, *p.sm_util);
        if (p.used_memory_bytes) m.proc_mem.Set(l, static_cast<double>(*p.used_memory_bytes));
      }
    }
  }
  if (snapshot != nullptr && attribution != nullptr) {
    for (const auto& [key, usage] : attribution->pods) {
      Labels l = {{"namespace", key.first}, {"pod", key.second}, {"Hostname", m.hostname}};
      m.pod_sm.Set(l, usage.sm_util_percent);
      m.pod_mem.Set(l, static_cast<double>(usage.memory_bytes));
      m.pod_procs.Set(l, usage.processes);
    }
  }
  m.unattributed.Set(snapshot != nullptr && attribution != nullptr ? attribution->unattributed : 0);
  if (pod_resources != nullptr) {
    m.podres_up.Set(pod_resources->state == PodResourcesState::kUp ? 1 : 0);
    for (auto s :
         {PodResourcesState::kDisabled, PodResourcesState::kPending, PodResourcesState::kUp,
          PodResourcesState::kNoSocket, PodResourcesState::kTimedOut, PodResourcesState::kFailed}) {
      m.podres_state.Add({{"state", std::string(PodResourcesStateName(s))}})
          .Set(s == pod_resources->state ? 1 : 0);
    }
    for (const auto& [resource, n] : pod_resources->allocatable)
      m.podres_devices.Set({{"resource", resource}, {"kind", "allocatable"}}, n);
    for (const auto& [resource, n] : pod_resources->assigned)
      m.podres_devices.Set({{"resource", resource}, {"kind", "assigned"}}, n);
  }
  for (GaugeSet* g : sets)
    g->End();
}

void AgentMetrics::ObservePoll(double seconds, bool timed_out, size_t call_errors) {
  std::lock_guard<std::mutex> lock(mu_);
  if (timed_out) {
    impl_->poll_timeouts.Increment();
  } else {
    impl_->poll_duration.Observe(seconds);
  }
  impl_->call_errors.Increment(static_cast<double>(call_errors));
}

void AgentMetrics::ReportWrite(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  impl_->writes.Add({{"result", ok ? "ok" : "error"}}).Increment();
}

}  // namespace gpu_autoscaler::node_agent
