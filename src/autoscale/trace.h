// File: src/autoscale/trace.h
//
// Loader for the Alibaba "openb" GPU trace (cluster-trace-gpu-v2023) CSV
// files: the node list (`sn,cpu_milli,memory_mib,gpu,model`) and the pod lists
// (`name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]`). Columns are
// found by header name, so extra or reordered columns are fine. Every bad row
// is reported as "<file>:<line>: <what is wrong>".
//
//   GPU_ASSIGN_OR_RETURN(std::vector<NodeSpec> nodes, LoadNodeCsv("openb_node_list_gpu_node.csv"));
//   GPU_ASSIGN_OR_RETURN(std::vector<PodSpec> pods, ParsePodCsv(text, "pods.csv"));
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "autoscale/cluster.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

// `file_name` only labels error messages.
Result<std::vector<NodeSpec>> ParseNodeCsv(std::string_view text, std::string_view file_name);
Result<std::vector<PodSpec>> ParsePodCsv(std::string_view text, std::string_view file_name);

// Read the file at `path`, then parse it.
Result<std::vector<NodeSpec>> LoadNodeCsv(const std::string& path);
Result<std::vector<PodSpec>> LoadPodCsv(const std::string& path);

}  // namespace gpu_autoscaler::autoscale
