#include "controllers/node_pool_selection.h"

#include <optional>
#include <string_view>

#include "api/annotations.h"
#include "api/nvidia.h"
#include "autoscale/cluster.h"
#include "gpu/mig.h"
#include "kube/selector_values.h"
#include "scheduler/gpu_demand.h"

namespace gpu_autoscaler::controllers {
namespace {

// The label operators of a node selector requirement over a known value.
bool Matches(const kube::NodeSelectorRequirement& r, std::string_view value) {
  const std::string_view op = r.op.view();
  if (op == "In") return kube::SelectorValuesContain(r.values.view(), value);
  if (op == "NotIn") return !kube::SelectorValuesContain(r.values.view(), value);
  if (op == "Exists") return true;
  return false;  // DoesNotExist, Gt/Lt on a name or model, unknown operators
}

// Whether the pod's nodeSelector and required node affinity allow a node of
// `pool` with GPUs of `model`, judged on the two labels known before launch.
bool PlacementAllowed(const kube::PodView& pod, std::string_view pool, std::string_view model) {
  auto known = [&](std::string_view key) -> std::optional<std::string_view> {
    if (key == api::kNodePoolLabel) return pool;
    if (key == api::kGpuProductLabel) return model;
    return std::nullopt;
  };
  for (const kube::Label& l : pod.node_selector()) {
    auto have = known(l.key.view());
    if (have && *have != l.value.view()) return false;
  }
  const int terms = pod.required_node_affinity_terms();
  if (terms == 0) return true;
  for (int term = 0; term < terms; ++term) {
    bool any = false;
    bool all = true;
    for (const kube::NodeSelectorRequirement& r : pod.required_node_affinity()) {
      if (r.term != term) continue;
      any = true;
      auto have = r.field ? std::nullopt : known(r.key.view());
      if (have && !Matches(r, *have)) {
        all = false;
        break;
      }
    }
    if (any && all) return true;  // an empty term matches nothing, as in kube-scheduler
  }
  return false;
}

bool GpusHold(const scheduler::GpuDemand& d, const autoscale::PoolInstanceType& it) {
  switch (d.kind) {
    case scheduler::GpuKind::kWhole:
      return d.spec.num_gpu <= it.gpu_count;
    case scheduler::GpuKind::kShared:
      return it.gpu_count >= 1;
    case scheduler::GpuKind::kMig: {
      auto model = gpu::ParseGpuModel(it.gpu_model);
      if (!model.ok()) return false;  // not a MIG-capable GPU
      const std::string_view profile =
          std::string_view(d.mig_resource).substr(api::kMigResourcePrefix.size());
      return gpu::FindProfile(gpu::GetGpu(*model), profile) != nullptr;
    }
    case scheduler::GpuKind::kNone:
      break;
  }
  return false;
}

std::vector<int> Serving(const kube::PodView& pod, const scheduler::GpuDemand& d,
                         const std::string& pool_name, const ParsedNodePool& pool) {
  std::vector<int> out;
  if (!d.wants_gpu() || !d.error.empty()) return out;
  const auto& types = pool.spec.instance_types;
  for (size_t i = 0; i < types.size(); ++i) {
    const autoscale::PoolInstanceType& it = types[i];
    if (!PlacementAllowed(pod, pool_name, it.gpu_model) || !GpusHold(d, it)) continue;
    if (d.spec.cpu_milli > it.cpu_milli || d.spec.memory_mib > it.memory_mib) continue;
    out.push_back(static_cast<int>(i));
  }
  return out;
}

std::string DescribeRequest(const scheduler::GpuDemand& d) {
  switch (d.kind) {
    case scheduler::GpuKind::kWhole:
      return std::to_string(d.spec.num_gpu) + " " + std::string(api::kGpuResource);
    case scheduler::GpuKind::kShared:
      return "a " + std::string(api::kSharedGpuResource) + " replica";
    case scheduler::GpuKind::kMig:
      return "1 " + d.mig_resource;
    case scheduler::GpuKind::kNone:
      break;
  }
  return "no GPU";
}

}  // namespace

std::vector<int> ServingInstanceTypes(const kube::PodView& pod, const std::string& pool_name,
                                      const ParsedNodePool& pool) {
  return Serving(pod, scheduler::GpuDemandOf(pod, autoscale::kMilliPerGpu), pool_name, pool);
}

PoolChoice ChoosePoolForPod(const kube::PodView& pod, const NamedPools& pools) {
  const scheduler::GpuDemand d = scheduler::GpuDemandOf(pod, autoscale::kMilliPerGpu);
  if (!d.wants_gpu()) return {"", "the pod requests no GPU"};
  if (!d.error.empty()) return {"", d.error};
  const std::pair<std::string, const ParsedNodePool*>* best = nullptr;
  for (const auto& candidate : pools) {
    if (Serving(pod, d, candidate.first, *candidate.second).empty()) continue;
    if (best == nullptr || candidate.second->weight > best->second->weight ||
        (candidate.second->weight == best->second->weight && candidate.first < best->first)) {
      best = &candidate;
    }
  }
  if (best != nullptr) return {best->first, ""};
  std::string reason = "no GPUNodePool has an instance type for " + DescribeRequest(d);
  if (!d.spec.gpu_models.empty() || kube::FindLabel(pod.node_selector(), api::kGpuProductLabel) ||
      pod.required_node_affinity_terms() > 0) {
    reason += " that its node selector and affinity allow";
  }
  if (d.spec.cpu_milli > 0 || d.spec.memory_mib > 0) {
    reason += " with " + std::to_string(d.spec.cpu_milli) + "m CPU and " +
              std::to_string(d.spec.memory_mib) + "Mi memory";
  }
  reason += " (" + std::to_string(pools.size()) + " pools considered)";
  return {"", reason};
}

std::string PoolForPod(const kube::PodView& pod, const NamedPools& pools) {
  return ChoosePoolForPod(pod, pools).pool;
}

}  // namespace gpu_autoscaler::controllers
