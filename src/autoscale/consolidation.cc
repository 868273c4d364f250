// Consolidation: nodes whose pods all fit on the nodes that stay.
#include "autoscale/consolidation.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>
#include <utility>

namespace gpu_autoscaler::autoscale {
namespace {

bool ValidPrice(double p) {
  return std::isfinite(p) && p >= 0;
}

}  // namespace

Result<ConsolidationPlan> PlanConsolidation(const std::vector<PricedNode>& nodes,
                                            const std::vector<BoundPod>& pods,
                                            const std::function<bool(const PodSpec&)>& may_evict) {
  ClusterState cluster;
  std::unordered_map<std::string, int> node_index;
  for (const PricedNode& n : nodes) {
    if (!ValidPrice(n.price_per_hour)) {
      return InvalidArgumentError("node \"" + n.spec.name + "\" has an invalid price");
    }
    GPU_RETURN_IF_ERROR(cluster.AddNode(n.spec));
    node_index.emplace(n.spec.name, cluster.node_count() - 1);
  }
  struct Bound {
    PodRequest req;
    Placement placement;
    BindingId id = -1;
  };
  std::vector<Bound> bound(pods.size());
  std::vector<std::vector<int>> pods_on(nodes.size());
  for (size_t i = 0; i < pods.size(); ++i) {
    auto it = node_index.find(pods[i].node);
    if (it == node_index.end()) {
      return NotFoundError("pod \"" + pods[i].spec.name + "\" is on unknown node \"" +
                           pods[i].node + "\"");
    }
    bound[i].req = cluster.Resolve(pods[i].spec);
    bound[i].placement = {it->second, pods[i].gpus};
    Result<BindingId> id = cluster.Place(bound[i].req, bound[i].placement);
    if (!id.ok()) return id.error().WithContext("pod \"" + pods[i].spec.name + "\"");
    bound[i].id = *id;
    pods_on[it->second].push_back(static_cast<int>(i));
  }

  std::vector<int> order(nodes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return nodes[a].price_per_hour > nodes[b].price_per_hour; });
  std::vector<bool> removed(nodes.size(), false), received(nodes.size(), false);
  ConsolidationPlan plan;
  for (int victim : order) {
    if (received[victim]) continue;
    bool evictable = true;
    for (int pod : pods_on[victim])
      evictable = evictable && may_evict(pods[pod].spec);
    if (!evictable) continue;
    for (int pod : pods_on[victim])
      (void)cluster.Remove(bound[pod].id);
    std::vector<int> moving = pods_on[victim];
    std::stable_sort(moving.begin(), moving.end(), [&](int a, int b) {
      const PodRequest &x = bound[a].req, &y = bound[b].req;
      return std::pair(x.total_gpu_milli(), x.cpu_milli) >
             std::pair(y.total_gpu_milli(), y.cpu_milli);
    });
    NodeRemoval removal{nodes[victim].spec.name, nodes[victim].price_per_hour, {}};
    std::vector<BindingId> new_ids;
    bool all = true;
    for (int pod : moving) {
      // Best fit: the staying node left with the least free GPU, then CPU.
      int target = -1;
      for (int n = 0; n < cluster.node_count(); ++n) {
        if (n == victim || removed[n] || !cluster.Fits(n, bound[pod].req)) continue;
        const NodeState& a = cluster.node(n);
        if (target < 0 ||
            std::pair(a.free_gpu_milli, a.free_cpu) <
                std::pair(cluster.node(target).free_gpu_milli, cluster.node(target).free_cpu)) {
          target = n;
        }
      }
      Result<BindingId> id = InternalError("no target");
      Placement to{target, {}};
      if (target >= 0) {
        to.gpus = cluster.BestGpus(target, bound[pod].req);
        id = cluster.Place(bound[pod].req, to);
      }
      if (!id.ok()) {
        all = false;
        break;
      }
      new_ids.push_back(*id);
      removal.moves.push_back({pod, nodes[target].spec.name, to.gpus});
    }
    if (!all) {
      for (BindingId id : new_ids)
        (void)cluster.Remove(id);
      for (int pod : pods_on[victim]) {
        Result<BindingId> id = cluster.Place(bound[pod].req, bound[pod].placement);
        if (!id.ok()) return InternalError("consolidation could not restore a pod");
        bound[pod].id = *id;
      }
      continue;
    }
    removed[victim] = true;
    for (size_t k = 0; k < removal.moves.size(); ++k) {
      const int pod = removal.moves[k].pod;
      const int target = node_index.at(removal.moves[k].to_node);
      received[target] = true;
      bound[pod].id = new_ids[k];
      bound[pod].placement = {target, removal.moves[k].gpus};
      pods_on[target].push_back(pod);
    }
    pods_on[victim].clear();
    plan.saved_per_hour += removal.saved_per_hour;
    plan.removals.push_back(std::move(removal));
  }
  return plan;
}

}  // namespace gpu_autoscaler::autoscale
