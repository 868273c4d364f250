#include "tools/cluster_meter.h"

#include "cost/pricing.h"
#include "kube/object_codec.h"
#include "tools/cluster_list.h"

namespace gpu_autoscaler::cli {

Result<ClusterSecond> MeterClusterAt(kube::RestClient& client, int64_t now) {
  GPU_ASSIGN_OR_RETURN(auto nodes, ListViews<kube::NodeView>(
                                       client, kube::resources::kNodes,
                                       [](std::string_view b) { return kube::DecodeNodeList(b); }));
  GPU_ASSIGN_OR_RETURN(
      auto pods, ListViews<kube::PodView>(client, kube::resources::kPods, [](std::string_view b) {
        return kube::DecodePodList(b);
      }));
  GPU_ASSIGN_OR_RETURN(auto pricing, cost::CatalogPricingSource::Builtin());
  ClusterSecond second;
  second.inventory = controllers::BuildMeterInventory(nodes, pods, now);
  cost::Meter meter(*pricing);
  second.report = meter.SetInventory(second.inventory.nodes, second.inventory.pods);
  meter.Tick(now, second.tick);
  return second;
}

}  // namespace gpu_autoscaler::cli
