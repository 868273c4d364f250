// File: src/autoscale/trace.h
//
// Loader for the Alibaba "openb" GPU trace (cluster-trace-gpu-v2023) CSV
// files: the node list (`sn,cpu_milli,memory_mib,gpu,model`) and the pod lists
// (`name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]`). Columns are
// found by header name, so extra or reordered columns are fine; a UTF-8 byte
// order mark before the header is skipped. Every bad row is reported as
// "<file>:<line>: <what is wrong>", and so is a file with a header but no rows.
// A negative gpu_milli is an error; above 1000 it is clamped to a whole GPU.
//
//   GPU_ASSIGN_OR_RETURN(std::vector<NodeSpec> nodes, LoadNodeCsv("openb_node_list_gpu_node.csv"));
//   GPU_ASSIGN_OR_RETURN(std::vector<PodSpec> pods, ParsePodCsv(text, "pods.csv"));
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "autoscale/cluster.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

// `file_name` only labels error messages.
Result<std::vector<NodeSpec>> ParseNodeCsv(std::string_view text, std::string_view file_name);
Result<std::vector<PodSpec>> ParsePodCsv(std::string_view text, std::string_view file_name);

// A pod with its lifetime, from the pod lists' creation_time and deletion_time
// columns (seconds from the trace start); for the autoscaling trace replay.
struct TimedPod {
  PodSpec spec;
  int64_t creation_time = 0;
  int64_t deletion_time = 0;  // >= creation_time
};
Result<std::vector<TimedPod>> ParseTimedPodCsv(std::string_view text, std::string_view file_name);

// Read the file at `path`, then parse it. A directory is InvalidArgument
// ("<path> is a directory"); a missing file NotFound.
Result<std::vector<NodeSpec>> LoadNodeCsv(const std::string& path);
Result<std::vector<PodSpec>> LoadPodCsv(const std::string& path);
Result<std::vector<TimedPod>> LoadTimedPodCsv(const std::string& path);

// A GPU model that pods name in gpu_spec but no GPU node has.
struct UnknownGpuModel {
  std::string model;
  int pods = 0;              // pods whose gpu_spec names it
  int unplaceable_pods = 0;  // of those, pods whose gpu_spec names no model any node has
};
// Every such model, sorted by name: worth a warning (a typo, or a node list
// from another cluster), not an error.
std::vector<UnknownGpuModel> UnknownGpuModels(std::span<const NodeSpec> nodes,
                                              std::span<const PodSpec> pods);

}  // namespace gpu_autoscaler::autoscale
