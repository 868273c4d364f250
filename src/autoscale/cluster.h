// File: src/autoscale/cluster.h
//
// The placement engine's cluster model: node and pod specifications, the
// mutable per-node state (free CPU, memory, pod slots, per-GPU free milli-GPU,
// MIG slices) and the three operations every policy, the simulator and the
// autoscaler share: Fits, Place and Remove. A placement names the node and the
// exact GPU indices. Updates are incremental: a placement touches one node and
// bumps that node's version, so callers cache per-node results by version.
//
//   ClusterState cluster;
//   GPU_RETURN_IF_ERROR(cluster.AddNode({.name = "n0", .cpu_milli = 64000,
//                                        .memory_mib = 262144, .gpu_model = "T4",
//                                        .gpu_count = 2}));
//   PodRequest pod = cluster.Resolve(spec);
//   if (cluster.Fits(0, pod)) {
//     GPU_ASSIGN_OR_RETURN(BindingId id, cluster.Place(pod, {.node = 0, .gpus = {1}}));
//     GPU_RETURN_IF_ERROR(cluster.Remove(id));
//   }
//
// Thread-safety: none. A ClusterState is owned by one thread at a time; const
// methods may be called concurrently when nobody mutates.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace gpu_autoscaler::autoscale {

inline constexpr int kMilliPerGpu = 1000;
inline constexpr int kMaxGpusPerNode = 16;
inline constexpr int kMaxGpuModels = 64;
inline constexpr int kDefaultMaxPods = 1001;

// One MIG (multi-instance GPU) profile. Compute slices are out of 7 on every
// MIG-capable GPU (A100, A30 use a subset, H100); memory is per instance.
struct MigProfile {
  std::string_view name;  // "1g.10gb"
  int compute_slices;
  int memory_gib;
};
// The MIG catalogue (A100/H100 80 GB naming). The GPU-sharing code uses the same table.
const std::vector<MigProfile>& MigCatalogue();
// nullptr when `name` is not a known profile.
const MigProfile* FindMigProfile(std::string_view name);
inline constexpr int kMigSlicesPerGpu = 7;

struct NodeSpec {
  std::string name;
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int max_pods = kDefaultMaxPods;
  std::string gpu_model;  // empty when gpu_count == 0
  int gpu_count = 0;
  // Per-GPU: true when the GPU is partitioned with MIG. MIG GPUs only take MIG
  // pods. Empty means no GPU uses MIG.
  std::vector<bool> mig_enabled;
  // Per-GPU NVLink peer group id (GPUs with the same id are NVLink peers).
  // Empty means no NVLink topology is known.
  std::vector<int> nvlink_group;

  bool operator==(const NodeSpec&) const = default;
};

// What a pod asks for, as written in a trace or a PodSpec.
struct PodSpec {
  std::string name;
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int num_gpu = 0;
  int gpu_milli = 0;                    // per GPU, 0..1000
  std::vector<std::string> gpu_models;  // acceptable models; empty = any
  std::string mig_profile;              // one MIG instance of this profile; empty = none
};

enum class PodClass : uint8_t { kCpuOnly = 0, kSharing, kWholeGpu, kMultiGpu };
inline constexpr int kPodClassCount = 4;
std::string_view PodClassName(PodClass c);

using ModelMask = uint64_t;
inline constexpr ModelMask kAnyModel = ~ModelMask{0};

// A PodSpec resolved against one cluster's model registry; what the hot path uses.
struct PodRequest {
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int num_gpu = 0;    // 0 for CPU-only and MIG pods
  int gpu_milli = 0;  // per GPU, clamped to 0..1000; 0 when num_gpu == 0
  ModelMask models = kAnyModel;
  int mig_slices = 0;  // > 0 for a MIG pod
  PodClass pod_class = PodClass::kCpuOnly;

  bool uses_gpu() const { return num_gpu > 0; }
  int64_t total_gpu_milli() const { return int64_t{num_gpu} * gpu_milli; }
  bool operator==(const PodRequest&) const = default;
};

// Where a pod goes: the node index and the exact GPU indices on it.
struct Placement {
  int node = -1;
  std::vector<int> gpus;
  bool operator==(const Placement&) const = default;
};

// The mutable state of one node. Exposed read-only to policies.
struct NodeState {
  int64_t free_cpu = 0;
  int64_t free_memory = 0;
  int pods = 0;
  int max_pods = kDefaultMaxPods;
  int model = -1;  // index into ClusterState::models(); -1 when no GPU
  int gpu_count = 0;
  std::array<int16_t, kMaxGpusPerNode> free_milli{};      // per GPU; 0 for MIG GPUs
  std::array<int8_t, kMaxGpusPerNode> free_mig_slices{};  // per MIG GPU
  uint32_t mig_mask = 0;                                  // bit i: GPU i is MIG-partitioned
  int free_gpu_milli = 0;                                 // R: sum of free_milli
  int fully_free_gpus = 0;                                // F: GPUs with free_milli == 1000
  // Per GPU-pod tag (see GpuTag) the number of pods on this node with it.
  std::array<int16_t, kMaxGpusPerNode + 1> tag_counts{};
  uint64_t version = 0;  // changes on every mutation; unique across the cluster

  // How many non-MIG GPUs have at least `milli` free.
  int GpusWithAtLeast(int milli) const;
};

// A small set of GPU indices on one node (no allocation on the hot path).
struct GpuSet {
  std::array<int8_t, kMaxGpusPerNode> index{};
  int count = 0;
};
// The GPUs `pod` would use on `node` under the protocol's "best" rule: for
// whole-GPU pods the lowest-index fully free GPUs; for sharing pods the GPUs
// with the least free milli that fit (lowest index on ties), in index order;
// for MIG pods the MIG GPU with the fewest free slices that fits. Empty for
// CPU-only pods or when nothing fits.
GpuSet ChooseBestGpus(const NodeState& node, const PodRequest& pod);

// Tag used by GpuClustering: 0 for a sharing pod, k for a whole-GPU pod with k GPUs.
int GpuTag(const PodRequest& pod);

using BindingId = int;

class ClusterState {
 public:
  ClusterState() = default;

  // Adds a node. Fails on a duplicate name, negative capacities, more than
  // kMaxGpusPerNode GPUs, more than kMaxGpuModels models, or mismatched
  // per-GPU vectors.
  Status AddNode(const NodeSpec& spec);

  // Resolves model names to a mask over this cluster's models and classifies
  // the pod. Models the cluster has never seen match no node.
  PodRequest Resolve(const PodSpec& spec) const;

  // Feasibility filter (protocol §3.2 plus MIG): resources, slots, model, GPUs.
  bool Fits(int node, const PodRequest& pod) const;

  // ChooseBestGpus on node `node`, as a vector.
  std::vector<int> BestGpus(int node, const PodRequest& pod) const;

  // Binds `pod` at `placement` after checking it is valid.
  Result<BindingId> Place(const PodRequest& pod, const Placement& placement);
  // Releases a binding made by Place.
  Status Remove(BindingId id);

  int node_count() const { return static_cast<int>(nodes_.size()); }
  const NodeState& node(int i) const { return nodes_[i]; }
  const NodeSpec& spec(int i) const { return specs_[i]; }
  const std::vector<std::string>& models() const { return models_; }
  // Index of a model name, or -1.
  int ModelIndex(std::string_view model) const;

  int64_t total_gpu_milli() const { return total_gpu_milli_; }
  int64_t allocated_gpu_milli() const { return allocated_gpu_milli_; }
  int64_t idle_gpu_milli() const { return total_gpu_milli_ - allocated_gpu_milli_; }
  int total_gpus() const { return total_gpus_; }
  int bound_pods() const { return bound_pods_; }
  // Changes whenever capacity can grow (AddNode, Remove). Between two equal
  // values resources only shrink, so a pod that fit nowhere still fits nowhere.
  uint64_t release_epoch() const { return release_epoch_; }

 private:
  struct Binding {
    PodRequest pod;
    Placement placement;
    bool live = false;
  };
  void Apply(const PodRequest& pod, const Placement& placement, int sign);
  Status ValidatePlacement(const PodRequest& pod, const Placement& placement) const;

  std::vector<NodeSpec> specs_;
  std::vector<NodeState> nodes_;
  std::vector<std::string> models_;
  std::unordered_map<std::string, int> node_index_;
  std::vector<Binding> bindings_;
  std::vector<BindingId> free_bindings_;
  int64_t total_gpu_milli_ = 0;
  int64_t allocated_gpu_milli_ = 0;
  int total_gpus_ = 0;
  int bound_pods_ = 0;
  uint64_t next_version_ = 1;
  uint64_t release_epoch_ = 0;
};

}  // namespace gpu_autoscaler::autoscale
