#include "controllers/node_pool_providers.h"

#include "api/annotations.h"
#include "cloud/simulated_provider.h"

namespace gpu_autoscaler::controllers {
namespace {

cloud::Lifecycle LifecycleOf(autoscale::CapacityTier tier) {
  switch (tier) {
    case autoscale::CapacityTier::kSpot:
      return cloud::Lifecycle::kSpot;
    case autoscale::CapacityTier::kReserved:
      return cloud::Lifecycle::kReserved;
    case autoscale::CapacityTier::kOnDemand:
      return cloud::Lifecycle::kOnDemand;
  }
  return cloud::Lifecycle::kUnknown;
}

std::shared_ptr<cloud::NodeGroupProvider> BuildSimulated(const ParsedNodePool& pool,
                                                         const ProviderContext& context) {
  auto cloud = std::make_shared<cloud::SimulatedCloud>(
      context.client, *context.clock,
      cloud::SimulatedCloudOptions{
          .zone = pool.provider.zone.empty() ? "sim-a" : pool.provider.zone,
          .provisioning_delay = pool.provider.provisioning_delay});
  for (size_t i = 0; i < pool.spec.instance_types.size(); ++i) {
    const autoscale::PoolInstanceType& it = pool.spec.instance_types[i];
    for (int t = 0; t < autoscale::kTierCount; ++t) {
      const auto tier = static_cast<autoscale::CapacityTier>(t);
      const std::string& group = pool.provider.Group(static_cast<int>(i), tier);
      if (group.empty()) continue;
      cloud->AddGroup({.name = group,
                       .instance_type = it.name,
                       .gpu_model = it.gpu_model,
                       .gpu_count = it.gpu_count,
                       .cpu_milli = it.cpu_milli,
                       .memory_mib = it.memory_mib,
                       .max_pods = it.max_pods,
                       .lifecycle = LifecycleOf(tier),
                       .min = 0,
                       .max = std::max(pool.spec.max_nodes, 0),
                       .labels = {{std::string(api::kNodePoolLabel), pool.spec.name}}});
    }
  }
  for (const std::string& group : pool.provider.simulated_capacity_errors)
    cloud->SetCapacityError(group, true);
  return cloud;
}

}  // namespace

Result<std::shared_ptr<cloud::NodeGroupProvider>> BuildNodeGroupProvider(
    const ParsedNodePool& pool, const ProviderContext& context) {
  const std::string& type = pool.provider.type;
  if (type == "simulated") {
    if (context.clock == nullptr) return InvalidArgumentError("the simulated cloud needs a clock");
    return BuildSimulated(pool, context);
  }
  // aws-asg, gcp-mig, azure-vmss, cluster-api: construct them here from
  // pool.provider (region, zone, project, resourceGroup, groups) and
  // context.secret.
  return UnimplementedError("provider type \"" + type +
                            "\" is not built into this manager yet (only \"simulated\")");
}

}  // namespace gpu_autoscaler::controllers
