#include "node-agent/report.h"

#include <nlohmann/json.hpp>

#include "api/annotations.h"

namespace gpu_autoscaler::node_agent {

using nlohmann::json;

std::string ReportObjectApply(const std::string& node_name, const std::string& node_uid) {
  json obj = {
      {"apiVersion", "gpuautoscaler.io/v1alpha1"},
      {"kind", "NodeResourceReport"},
      {"metadata",
       {{"name", node_name},
        {"labels", {{"app.kubernetes.io/managed-by", kFieldManager}}},
        {"ownerReferences", json::array({{{"apiVersion", "v1"},
                                          {"kind", "Node"},
                                          {"name", node_name},
                                          {"uid", node_uid},
                                          {"blockOwnerDeletion", false},
                                          {"controller", false}}})}}},
      {"spec", {{"nodeName", node_name}}},
  };
  return obj.dump();
}

std::string ReportStatusApply(const std::string& node_name, const Inventory& inv,
                              const NvmlReportState& nvml,
                              const std::vector<kube::ObjectCondition>& conditions,
                              int64_t observed_generation) {
  json gpus = json::array();
  int mig_gpus = 0;
  for (const GpuInventory& g : inv.gpus) {
    json gpu = {{"index", g.index},
                {"uuid", g.uuid},
                {"model", g.model},
                {"memoryBytes", g.memory_bytes},
                {"migMode", g.mig_enabled ? "Enabled" : "Disabled"}};
    if (!g.pci_bus_id.empty()) gpu["pciBusId"] = g.pci_bus_id;
    if (g.mig_pending != g.mig_enabled)
      gpu["migPendingMode"] = g.mig_pending ? "Enabled" : "Disabled";
    if (g.numa_node) gpu["numaNode"] = *g.numa_node;
    if (g.nvlink_island >= 0) gpu["nvlinkIsland"] = g.nvlink_island;
    if (g.mig_enabled) {
      ++mig_gpus;
      json devices = json::array();
      for (const MigInstance& m : g.mig_devices) {
        json d = {{"uuid", m.uuid}, {"profile", m.profile}, {"memoryBytes", m.memory_bytes}};
        if (m.gpu_instance_id) d["gpuInstanceId"] = *m.gpu_instance_id;
        if (m.compute_instance_id) d["computeInstanceId"] = *m.compute_instance_id;
        devices.push_back(std::move(d));
      }
      gpu["migDevices"] = std::move(devices);
    }
    gpus.push_back(std::move(gpu));
  }
  json islands = json::array();
  for (const auto& island : inv.nvlink_islands)
    islands.push_back({{"gpus", island}});
  json numa = json::array();
  for (const NumaNode& n : inv.numa) {
    numa.push_back({{"id", n.id},
                    {"cpus", n.cpus},
                    {"cpuCount", n.cpu_count},
                    {"memoryBytes", n.memory_bytes}});
  }
  json sharing = {{"strategy", inv.sharing.strategy}, {"replicas", inv.sharing.replicas}};
  json conds = json::array();
  for (const kube::ObjectCondition& c : conditions) {
    conds.push_back({{"type", c.type},
                     {"status", c.status},
                     {"reason", c.reason},
                     {"message", c.message},
                     {"observedGeneration", observed_generation},
                     {"lastTransitionTime", c.last_transition_time}});
  }
  json status = {{"observedGeneration", observed_generation},
                 {"nvml", {{"state", nvml.state}, {"library", nvml.library}}},
                 {"gpuCount", inv.gpus.size()},
                 {"migEnabledGpus", mig_gpus},
                 {"gpus", std::move(gpus)},
                 {"sharing", std::move(sharing)},
                 {"nvlinkIslands", std::move(islands)},
                 {"numaNodes", std::move(numa)},
                 {"conditions", std::move(conds)}};
  if (!inv.nvlink_label.empty()) status["nvlinkIslandsLabel"] = inv.nvlink_label;
  json obj = {{"apiVersion", "gpuautoscaler.io/v1alpha1"},
              {"kind", "NodeResourceReport"},
              {"metadata", {{"name", node_name}}},
              {"status", std::move(status)}};
  return obj.dump();
}

std::string NodeLabelApply(const std::string& node_name, const std::string& islands) {
  json obj = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", node_name}}}};
  if (!islands.empty()) {
    obj["metadata"]["labels"] = {{std::string(api::kNvlinkIslandsLabel), islands}};
  }
  return obj.dump();
}

}  // namespace gpu_autoscaler::node_agent
