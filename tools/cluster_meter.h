// File: tools/cluster_meter.h
//
// The cost meter's view of the cluster at one second, as `status` and `report`
// show it: every Node and Pod listed, priced with the built-in catalogue and
// metered for the second `now` (each pod's GPU share and sharing mode).
//
//   GPU_ASSIGN_OR_RETURN(ClusterSecond second, MeterClusterAt(client, now));
//   for (const cost::PodSecondCost& c : second.tick.pods) ... second.inventory.pods[c.pod_index]
//
// Thread-safety: as the RestClient.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "controllers/cost_metering.h"
#include "cost/metering.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::cli {

struct ClusterSecond {
  controllers::MeterInventory inventory{};
  cost::InventoryReport report{};  // nodes the catalogue could not price
  cost::TickResult tick{};
};

Result<ClusterSecond> MeterClusterAt(kube::RestClient& client, int64_t now);

}  // namespace gpu_autoscaler::cli
