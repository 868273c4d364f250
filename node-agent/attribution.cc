#include "node-agent/attribution.h"

#include <charconv>
#include <set>

namespace gpu_autoscaler::node_agent {
namespace {

std::optional<unsigned> ParseUnsigned(std::string_view s) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

const nvml::GpuSample* GpuByIndex(const nvml::GpuSnapshot& snapshot, unsigned index) {
  for (const auto& g : snapshot.gpus)
    if (g.index == static_cast<int>(index)) return &g;
  return nullptr;
}

std::string MigUuid(const nvml::GpuSample& gpu, unsigned gpu_instance_id) {
  for (const auto& m : gpu.mig_devices)
    if (m.gpu_instance_id == gpu_instance_id) return m.uuid;
  return "";
}

// The device a process runs on: its MIG device when the GPU is in MIG mode
// and NVML says which instance, else the GPU.
std::string ProcessDevice(const nvml::GpuSample& gpu, const nvml::ProcessSample& p) {
  if (gpu.mig_enabled && p.gpu_instance_id) {
    std::string mig = MigUuid(gpu, *p.gpu_instance_id);
    if (!mig.empty()) return mig;
  }
  return gpu.uuid;
}

}  // namespace

std::string_view AttributedByName(AttributedBy by) {
  switch (by) {
    case AttributedBy::kExclusiveDevice:
      return "device";
    case AttributedBy::kCgroup:
      return "cgroup";
    case AttributedBy::kNone:
      break;
  }
  return "none";
}

bool IsGpuResource(std::string_view resource_name) {
  return resource_name.substr(0, 11) == "nvidia.com/";
}

std::string DeviceUuidForId(std::string_view id, const nvml::GpuSnapshot& snapshot) {
  // Time-slicing and MPS replicas: "<id>::<replica>".
  if (size_t r = id.find("::"); r != std::string_view::npos) id = id.substr(0, r);
  if (id.substr(0, 8) == "MIG-GPU-") {  // legacy "MIG-GPU-<uuid>/<gi>/<ci>"
    std::string_view rest = id.substr(4);
    const size_t a = rest.find('/');
    if (a == std::string_view::npos) return "";
    std::string_view parent = rest.substr(0, a);
    std::string_view gi_text = rest.substr(a + 1);
    gi_text = gi_text.substr(0, gi_text.find('/'));
    auto gi = ParseUnsigned(gi_text);
    if (!gi) return "";
    for (const auto& g : snapshot.gpus)
      if (g.uuid == parent) return MigUuid(g, *gi);
    return "";
  }
  if (id.substr(0, 4) == "GPU-" || id.substr(0, 4) == "MIG-") {
    for (const auto& g : snapshot.gpus) {
      if (g.uuid == id) return g.uuid;
      for (const auto& m : g.mig_devices)
        if (m.uuid == id) return m.uuid;
    }
    return "";
  }
  // deviceIDStrategy=index ("2") or GKE ("nvidia2", "nvidia2/vgpu1", "nvidia2/gi3").
  if (id.substr(0, 6) == "nvidia") id.remove_prefix(6);
  std::string_view index_text = id.substr(0, id.find('/'));
  auto index = ParseUnsigned(index_text);
  if (!index) return "";
  const nvml::GpuSample* gpu = GpuByIndex(snapshot, *index);
  if (gpu == nullptr) return "";
  if (size_t slash = id.find('/'); slash != std::string_view::npos) {
    std::string_view sub = id.substr(slash + 1);
    if (sub.substr(0, 2) == "gi") {
      auto gi = ParseUnsigned(sub.substr(2));
      return gi ? MigUuid(*gpu, *gi) : "";
    }
  }
  return gpu->uuid;
}

Attribution Attribute(const nvml::GpuSnapshot& snapshot,
                      const std::vector<podresources::PodDevices>& pods,
                      const CgroupLookup& lookup_cgroup, const PodResolver& resolve) {
  Attribution out;
  // Who holds each device, and which containers of each pod hold GPUs at all.
  std::map<std::string, std::set<ContainerRef>> holders;
  std::map<std::pair<std::string, std::string>, std::set<std::string>> gpu_containers;
  for (const auto& pod : pods) {
    for (const auto& c : pod.containers) {
      ContainerRef ref{.namespace_name = pod.namespace_name, .pod = pod.name, .container = c.name};
      for (const auto& d : c.devices) {
        if (!IsGpuResource(d.resource_name)) continue;
        for (const auto& id : d.device_ids) {
          std::string uuid = DeviceUuidForId(id, snapshot);
          if (uuid.empty()) continue;
          holders[uuid].insert(ref);
          gpu_containers[{pod.namespace_name, pod.name}].insert(c.name);
        }
      }
    }
  }
  for (const auto& [uuid, set] : holders) {
    out.device_holders[uuid] = static_cast<int>(set.size());
    if (set.size() == 1) out.device_owner[uuid] = *set.begin();
  }

  for (const auto& gpu : snapshot.gpus) {
    for (const auto& p : gpu.processes) {
      ProcessAttribution pa{.gpu_index = gpu.index, .pid = p.pid};
      pa.device_uuid = ProcessDevice(gpu, p);
      if (auto owner = out.device_owner.find(pa.device_uuid); owner != out.device_owner.end()) {
        pa.owner = owner->second;
        pa.by = AttributedBy::kExclusiveDevice;
      } else if (auto cg = lookup_cgroup ? lookup_cgroup(p.pid) : std::nullopt) {
        if (auto pod = resolve ? resolve(cg->pod_uid) : std::nullopt) {
          pa.owner.namespace_name = pod->namespace_name;
          pa.owner.pod = pod->name;
          pa.by = AttributedBy::kCgroup;
          if (auto n = pod->container_names.find(cg->container_id);
              !cg->container_id.empty() && n != pod->container_names.end()) {
            pa.owner.container = n->second;
          } else {
            // The one container of this pod holding the device, or holding any GPU.
            std::set<std::string> here;
            if (auto h = holders.find(pa.device_uuid); h != holders.end()) {
              for (const auto& ref : h->second)
                if (ref.namespace_name == pod->namespace_name && ref.pod == pod->name)
                  here.insert(ref.container);
            }
            if (here.empty()) {
              if (auto g = gpu_containers.find({pod->namespace_name, pod->name});
                  g != gpu_containers.end()) {
                here = g->second;
              }
            }
            if (here.size() == 1) pa.owner.container = *here.begin();
          }
        }
      }
      if (pa.by == AttributedBy::kNone) {
        ++out.unattributed;
      } else {
        PodGpuUsage& u = out.pods[{pa.owner.namespace_name, pa.owner.pod}];
        u.sm_util_percent += p.sm_util.value_or(0);
        u.memory_bytes += p.used_memory_bytes.value_or(0);
        ++u.processes;
      }
      out.processes.push_back(std::move(pa));
    }
  }
  return out;
}

}  // namespace gpu_autoscaler::node_agent
