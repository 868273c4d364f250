// File: node-agent/report.h
//
// The NodeResourceReport documents the agent applies (crds/noderesourcereport.yaml):
// the object itself (named after the Node, owned by it) and its status (GPUs,
// MIG layout, sharing mode, NVLink islands, NUMA nodes, conditions). Both
// are server-side apply bodies; the agent compares them with what it last
// applied and writes only when they differ. JSON stays inside report.cc.
//
//   std::string obj = ReportObjectApply("gpu-node-1", node_uid);
//   std::string status = ReportStatusApply("gpu-node-1", inventory, nvml, conditions, 1);
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kube/conditions.h"
#include "node-agent/inventory.h"

namespace gpu_autoscaler::node_agent {

inline constexpr const char* kFieldManager = "gpu-autoscaler-node-agent";
inline constexpr const char* kNvmlCondition = "NVMLAvailable";

// What the report says about NVML itself.
struct NvmlReportState {
  std::string state{};    // nvml::NvmlStateName: "Up", "NoLibrary", "Hung"...
  std::string library{};  // the path the agent loads
};

// apiVersion/kind/metadata (ownerReference to the Node, so the report goes
// with it) and spec.nodeName.
std::string ReportObjectApply(const std::string& node_name, const std::string& node_uid);

// The status subresource body.
std::string ReportStatusApply(const std::string& node_name, const Inventory& inventory,
                              const NvmlReportState& nvml,
                              const std::vector<kube::ObjectCondition>& conditions,
                              int64_t observed_generation);

// The Node body that sets gpuautoscaler.io/nvlink-islands to `islands`, or
// gives the label up when `islands` is empty.
std::string NodeLabelApply(const std::string& node_name, const std::string& islands);

}  // namespace gpu_autoscaler::node_agent
