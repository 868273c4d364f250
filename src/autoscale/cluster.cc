#include "autoscale/cluster.h"

#include <algorithm>
#include <string>

namespace gpu_autoscaler::autoscale {

const std::vector<MigProfile>& MigCatalogue() {
  static const std::vector<MigProfile> kCatalogue = {
      {"1g.10gb", 1, 10}, {"1g.20gb", 1, 20}, {"2g.20gb", 2, 20},
      {"3g.40gb", 3, 40}, {"4g.40gb", 4, 40}, {"7g.80gb", 7, 80},
  };
  return kCatalogue;
}

const MigProfile* FindMigProfile(std::string_view name) {
  for (const MigProfile& p : MigCatalogue()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string_view PodClassName(PodClass c) {
  switch (c) {
    case PodClass::kCpuOnly:
      return "cpu-only";
    case PodClass::kSharing:
      return "sharing";
    case PodClass::kWholeGpu:
      return "whole-gpu";
    case PodClass::kMultiGpu:
      return "multi-gpu";
  }
  return "unknown";
}

int NodeState::GpusWithAtLeast(int milli) const {
  int n = 0;
  for (int i = 0; i < gpu_count; ++i)
    n += free_milli[i] >= milli;
  return n;
}

int GpuTag(const PodRequest& pod) {
  if (pod.num_gpu == 1 && pod.gpu_milli < kMilliPerGpu) return 0;
  return std::min(pod.num_gpu, kMaxGpusPerNode);
}

int ClusterState::ModelIndex(std::string_view model) const {
  for (size_t i = 0; i < models_.size(); ++i) {
    if (models_[i] == model) return static_cast<int>(i);
  }
  return -1;
}

Status ClusterState::AddNode(const NodeSpec& spec) {
  if (spec.name.empty()) return InvalidArgumentError("node name is empty");
  if (node_index_.count(spec.name)) {
    return AlreadyExistsError("duplicate node \"" + spec.name + "\"");
  }
  if (spec.cpu_milli < 0 || spec.memory_mib < 0 || spec.max_pods < 0) {
    return InvalidArgumentError("node \"" + spec.name + "\" has a negative capacity");
  }
  if (spec.gpu_count < 0 || spec.gpu_count > kMaxGpusPerNode) {
    return InvalidArgumentError("node \"" + spec.name + "\" has " + std::to_string(spec.gpu_count) +
                                " GPUs; the limit is " + std::to_string(kMaxGpusPerNode));
  }
  if (!spec.mig_enabled.empty() && static_cast<int>(spec.mig_enabled.size()) != spec.gpu_count) {
    return InvalidArgumentError("node \"" + spec.name + "\": mig_enabled needs one entry per GPU");
  }
  if (!spec.nvlink_group.empty() && static_cast<int>(spec.nvlink_group.size()) != spec.gpu_count) {
    return InvalidArgumentError("node \"" + spec.name + "\": nvlink_group needs one entry per GPU");
  }
  NodeState state;
  state.free_cpu = spec.cpu_milli;
  state.free_memory = spec.memory_mib;
  state.max_pods = spec.max_pods;
  state.gpu_count = spec.gpu_count;
  if (spec.gpu_count > 0) {
    if (spec.gpu_model.empty()) {
      return InvalidArgumentError("node \"" + spec.name + "\" has GPUs but no GPU model");
    }
    int model = ModelIndex(spec.gpu_model);
    if (model < 0) {
      if (static_cast<int>(models_.size()) >= kMaxGpuModels) {
        return ResourceExhaustedError("more than " + std::to_string(kMaxGpuModels) + " GPU models");
      }
      model = static_cast<int>(models_.size());
      models_.push_back(spec.gpu_model);
    }
    state.model = model;
  }
  for (int i = 0; i < spec.gpu_count; ++i) {
    const bool mig = !spec.mig_enabled.empty() && spec.mig_enabled[i];
    if (mig) {
      state.mig_mask |= 1u << i;
      state.free_mig_slices[i] = kMigSlicesPerGpu;
    } else {
      state.free_milli[i] = kMilliPerGpu;
      state.free_gpu_milli += kMilliPerGpu;
      ++state.fully_free_gpus;
      total_gpu_milli_ += kMilliPerGpu;
    }
  }
  state.version = next_version_++;
  ++release_epoch_;
  total_gpus_ += spec.gpu_count;
  node_index_.emplace(spec.name, static_cast<int>(nodes_.size()));
  nodes_.push_back(state);
  specs_.push_back(spec);
  return Status::Ok();
}

PodRequest ClusterState::Resolve(const PodSpec& spec) const {
  PodRequest pod;
  pod.cpu_milli = std::max<int64_t>(spec.cpu_milli, 0);
  pod.memory_mib = std::max<int64_t>(spec.memory_mib, 0);
  if (!spec.gpu_models.empty()) {
    pod.models = 0;
    for (const std::string& m : spec.gpu_models) {
      const int i = ModelIndex(m);
      if (i >= 0) pod.models |= ModelMask{1} << i;
    }
  }
  if (const MigProfile* mig =
          spec.mig_profile.empty() ? nullptr : FindMigProfile(spec.mig_profile)) {
    pod.mig_slices = mig->compute_slices;
    pod.pod_class = PodClass::kSharing;
    return pod;
  }
  const int milli = std::clamp(spec.gpu_milli, 0, kMilliPerGpu);
  if (spec.num_gpu > 0 && milli > 0) {
    pod.num_gpu = spec.num_gpu;
    pod.gpu_milli = milli;
    if (spec.num_gpu > 1) {
      pod.pod_class = PodClass::kMultiGpu;
    } else {
      pod.pod_class = milli < kMilliPerGpu ? PodClass::kSharing : PodClass::kWholeGpu;
    }
  }
  return pod;
}

bool ClusterState::Fits(int node, const PodRequest& pod) const {
  const NodeState& n = nodes_[node];
  if (pod.cpu_milli > n.free_cpu || pod.memory_mib > n.free_memory || n.pods >= n.max_pods) {
    return false;
  }
  if (pod.mig_slices > 0) {
    if (n.model < 0 || !((pod.models >> n.model) & 1)) return false;
    for (int i = 0; i < n.gpu_count; ++i) {
      if (((n.mig_mask >> i) & 1) && n.free_mig_slices[i] >= pod.mig_slices) return true;
    }
    return false;
  }
  if (!pod.uses_gpu()) return true;
  if (n.model < 0 || !((pod.models >> n.model) & 1)) return false;
  if (pod.gpu_milli == kMilliPerGpu) return n.fully_free_gpus >= pod.num_gpu;
  return n.GpusWithAtLeast(pod.gpu_milli) >= pod.num_gpu;
}

GpuSet ChooseBestGpus(const NodeState& n, const PodRequest& pod) {
  GpuSet set;
  if (pod.mig_slices > 0) {
    int best = -1;
    for (int i = 0; i < n.gpu_count; ++i) {
      if (!((n.mig_mask >> i) & 1) || n.free_mig_slices[i] < pod.mig_slices) continue;
      if (best < 0 || n.free_mig_slices[i] < n.free_mig_slices[best]) best = i;
    }
    if (best >= 0) set.index[set.count++] = static_cast<int8_t>(best);
    return set;
  }
  if (!pod.uses_gpu()) return set;
  if (pod.gpu_milli == kMilliPerGpu) {
    for (int i = 0; i < n.gpu_count && set.count < pod.num_gpu; ++i) {
      if (n.free_milli[i] == kMilliPerGpu) set.index[set.count++] = static_cast<int8_t>(i);
    }
    if (set.count < pod.num_gpu) set.count = 0;
    return set;
  }
  // Tightest GPUs first, stable by index.
  std::array<int8_t, kMaxGpusPerNode> order{};
  int fitting = 0;
  for (int i = 0; i < n.gpu_count; ++i) {
    if (n.free_milli[i] >= pod.gpu_milli) order[fitting++] = static_cast<int8_t>(i);
  }
  if (fitting < pod.num_gpu) return set;
  std::stable_sort(order.begin(), order.begin() + fitting,
                   [&n](int a, int b) { return n.free_milli[a] < n.free_milli[b]; });
  for (int i = 0; i < pod.num_gpu; ++i)
    set.index[set.count++] = order[i];
  std::sort(set.index.begin(), set.index.begin() + set.count);
  return set;
}

std::vector<int> ClusterState::BestGpus(int node, const PodRequest& pod) const {
  const GpuSet set = ChooseBestGpus(nodes_[node], pod);
  return std::vector<int>(set.index.begin(), set.index.begin() + set.count);
}

Status ClusterState::ValidatePlacement(const PodRequest& pod, const Placement& placement) const {
  if (placement.node < 0 || placement.node >= node_count()) {
    return InvalidArgumentError("placement names node " + std::to_string(placement.node) + " of " +
                                std::to_string(node_count()));
  }
  if (!Fits(placement.node, pod)) {
    return FailedPreconditionError("pod does not fit on node \"" + specs_[placement.node].name +
                                   "\"");
  }
  const NodeState& n = nodes_[placement.node];
  const int want = pod.mig_slices > 0 ? 1 : pod.num_gpu;
  if (static_cast<int>(placement.gpus.size()) != want) {
    return InvalidArgumentError("placement names " + std::to_string(placement.gpus.size()) +
                                " GPUs; the pod needs " + std::to_string(want));
  }
  uint32_t seen = 0;
  for (int g : placement.gpus) {
    if (g < 0 || g >= n.gpu_count || ((seen >> g) & 1)) {
      return InvalidArgumentError("placement names an invalid or repeated GPU index " +
                                  std::to_string(g));
    }
    seen |= 1u << g;
    const bool mig = (n.mig_mask >> g) & 1;
    if (pod.mig_slices > 0 ? (!mig || n.free_mig_slices[g] < pod.mig_slices)
                           : (mig || n.free_milli[g] < pod.gpu_milli)) {
      return FailedPreconditionError("GPU " + std::to_string(g) + " on node \"" +
                                     specs_[placement.node].name + "\" lacks room for the pod");
    }
  }
  return Status::Ok();
}

void ClusterState::Apply(const PodRequest& pod, const Placement& placement, int sign) {
  NodeState& n = nodes_[placement.node];
  n.free_cpu -= sign * pod.cpu_milli;
  n.free_memory -= sign * pod.memory_mib;
  n.pods += sign;
  for (int g : placement.gpus) {
    if (pod.mig_slices > 0) {
      n.free_mig_slices[g] = static_cast<int8_t>(n.free_mig_slices[g] - sign * pod.mig_slices);
      continue;
    }
    if (n.free_milli[g] == kMilliPerGpu) --n.fully_free_gpus;
    n.free_milli[g] = static_cast<int16_t>(n.free_milli[g] - sign * pod.gpu_milli);
    if (n.free_milli[g] == kMilliPerGpu) ++n.fully_free_gpus;
    n.free_gpu_milli -= sign * pod.gpu_milli;
    allocated_gpu_milli_ += sign * pod.gpu_milli;
  }
  if (pod.uses_gpu()) n.tag_counts[GpuTag(pod)] += static_cast<int16_t>(sign);
  n.version = next_version_++;
  bound_pods_ += sign;
}

Result<BindingId> ClusterState::Place(const PodRequest& pod, const Placement& placement) {
  GPU_RETURN_IF_ERROR(ValidatePlacement(pod, placement));
  Apply(pod, placement, +1);
  BindingId id;
  if (!free_bindings_.empty()) {
    id = free_bindings_.back();
    free_bindings_.pop_back();
  } else {
    id = static_cast<BindingId>(bindings_.size());
    bindings_.emplace_back();
  }
  bindings_[id] = Binding{pod, placement, true};
  return id;
}

Status ClusterState::Remove(BindingId id) {
  if (id < 0 || id >= static_cast<int>(bindings_.size()) || !bindings_[id].live) {
    return NotFoundError("no binding " + std::to_string(id));
  }
  Binding& b = bindings_[id];
  Apply(b.pod, b.placement, -1);
  ++release_epoch_;
  b.live = false;
  free_bindings_.push_back(id);
  return Status::Ok();
}

}  // namespace gpu_autoscaler::autoscale
