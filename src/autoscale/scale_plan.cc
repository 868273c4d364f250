#include "autoscale/scale_plan.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <utility>

#include "autoscale/scale_plan_bound.h"

namespace gpu_autoscaler::autoscale {

std::string_view CapacityTierName(CapacityTier t) {
  switch (t) {
    case CapacityTier::kReserved:
      return "reserved";
    case CapacityTier::kSpot:
      return "spot";
    case CapacityTier::kOnDemand:
      return "on-demand";
  }
  return "unknown";
}

std::string_view UnplacedReasonName(UnplacedReason r) {
  switch (r) {
    case UnplacedReason::kNoOfferingWithModel:
      return "no offering with an acceptable GPU model";
    case UnplacedReason::kExceedsLargestOffering:
      return "exceeds the largest offering";
    case UnplacedReason::kLimitsExhausted:
      return "pool or tier limits exhausted";
  }
  return "unknown";
}

double ScaleUpPlan::gap() const {
  if (lower_bound > 0) return effective_cost / lower_bound - 1;
  return effective_cost > 0 ? std::numeric_limits<double>::infinity() : 0;
}

namespace {

// Resource dimensions of the bound and of the greedy's value: CPU, memory,
// milli-GPU and pod slots.
constexpr int kDims = kBoundDims;
constexpr int kGpu = kBoundGpu;
using Vec = ResourceVec;

Vec DemandOf(const PodRequest& p) {
  return {static_cast<double>(p.cpu_milli), static_cast<double>(p.memory_mib),
          static_cast<double>(p.total_gpu_milli()), 1.0};
}

Vec CapacityOf(const Offering& o) {
  return {static_cast<double>(o.cpu_milli), static_cast<double>(o.memory_mib),
          static_cast<double>(o.gpu_count) * kMilliPerGpu, static_cast<double>(o.max_pods)};
}

// Capacity a node still has, and capacity in use, in the same dimensions.
Vec FreeOf(const NodeState& n) {
  return {static_cast<double>(std::max<int64_t>(n.free_cpu, 0)),
          static_cast<double>(std::max<int64_t>(n.free_memory, 0)),
          static_cast<double>(std::max(n.free_gpu_milli, 0)),
          static_cast<double>(std::max(n.max_pods - n.pods, 0))};
}

struct PodRequestHash {
  size_t operator()(const PodRequest& p) const {
    uint64_t h = 1469598103934665603ULL;
    for (uint64_t v : {static_cast<uint64_t>(p.cpu_milli), static_cast<uint64_t>(p.memory_mib),
                       static_cast<uint64_t>(p.num_gpu), static_cast<uint64_t>(p.gpu_milli),
                       p.models, static_cast<uint64_t>(p.mig_slices)}) {
      h = (h ^ v) * 1099511628211ULL;
    }
    return static_cast<size_t>(h);
  }
};

bool ValidPrice(double p) {
  return std::isfinite(p) && p >= 0;
}

Status ValidateOfferings(const std::vector<Offering>& offerings, const ScaleUpOptions& options) {
  for (double w : options.tier_weights) {
    if (!std::isfinite(w) || w <= 0) return InvalidArgumentError("tier weights must be > 0");
  }
  std::unordered_map<std::string, int> seen;
  for (const Offering& o : offerings) {
    if (o.instance_type.empty()) return InvalidArgumentError("offering has no instance type");
    if (!seen.emplace(o.instance_type, 0).second) {
      return InvalidArgumentError("duplicate offering \"" + o.instance_type + "\"");
    }
    if (o.max_nodes < kUnlimitedNodes) {
      return InvalidArgumentError("offering \"" + o.instance_type + "\" has a negative max_nodes");
    }
    for (const TierOffer& t : o.tiers) {
      if (t.price_per_hour && !ValidPrice(*t.price_per_hour)) {
        return InvalidArgumentError("offering \"" + o.instance_type + "\" has an invalid price");
      }
      if (t.max_nodes < kUnlimitedNodes) {
        return InvalidArgumentError("offering \"" + o.instance_type +
                                    "\" has a negative tier max_nodes");
      }
    }
  }
  return Status::Ok();
}

NodeSpec NodeSpecOf(const Offering& o, std::string name) {
  NodeSpec spec;
  spec.name = std::move(name);
  spec.cpu_milli = o.cpu_milli;
  spec.memory_mib = o.memory_mib;
  spec.max_pods = o.max_pods;
  spec.gpu_model = o.gpu_model;
  spec.gpu_count = o.gpu_count;
  return spec;
}

// Node limits hold kUnlimitedNodes or the count left.
bool HasRoom(int limit) {
  return limit == kUnlimitedNodes || limit > 0;
}
void Consume(int& limit, int n) {
  if (limit != kUnlimitedNodes) limit -= n;
}
int CapBy(int want, int limit) {
  return limit == kUnlimitedNodes ? want : std::min(want, limit);
}

class ScaleUpPlanner {
 public:
  ScaleUpPlanner(const ClusterState& existing, const std::vector<PodSpec>& pending,
                 const std::vector<Offering>& offerings, const ScaleUpOptions& options)
      : existing_(existing), pending_(pending), offerings_(offerings), options_(options) {}

  Result<ScaleUpPlan> Run() {
    GPU_RETURN_IF_ERROR(ValidateOfferings(offerings_, options_));
    InitLimits();
    GPU_RETURN_IF_ERROR(BuildTemplates());
    ComputeUnitPrices();
    PlaceOnExisting();
    GroupShapes();
    OpenGreedily();
    FillSlack();
    if (options_.improve) {
      EmptyOpenedNodes();
      DownsizeOpenedNodes();
    }
    return Finish();
  }

 private:
  struct Opened {
    int node = -1;  // index in plan_
    int offering = -1;
    int tier = -1;
    bool live = true;
    std::vector<int> pods;
  };
  struct PlanBinding {
    int node = -1;  // index in plan_
    BindingId id = -1;
    std::vector<int> gpus;
  };
  struct Fill {
    bool valid = false;
    std::vector<std::pair<int, int>> used;  // (shape, count)
    double value = 0;
  };

  double EffectivePrice(int o, int t) const {
    return *offerings_[o].tiers[t].price_per_hour * options_.tier_weights[t];
  }

  void InitLimits() {
    pool_left_.resize(offerings_.size());
    tier_left_.resize(offerings_.size());
    for (size_t o = 0; o < offerings_.size(); ++o) {
      pool_left_[o] = offerings_[o].max_nodes;
      for (int t = 0; t < kTierCount; ++t)
        tier_left_[o][t] = offerings_[o].tiers[t].max_nodes;
    }
  }

  // The cheapest tier of `o` with room left, by effective price then tier order; -1 if none.
  int CheapestTier(int o) const {
    if (!HasRoom(pool_left_[o])) return -1;
    int best = -1;
    for (int t = 0; t < kTierCount; ++t) {
      if (!offerings_[o].tiers[t].price_per_hour || !HasRoom(tier_left_[o][t])) continue;
      if (best < 0 || EffectivePrice(o, t) < EffectivePrice(o, best)) best = t;
    }
    return best;
  }

  // One empty node per offering; fills are simulated on it and undone.
  Status BuildTemplates() {
    for (size_t o = 0; o < offerings_.size(); ++o) {
      Status s = plan_.AddNode(NodeSpecOf(offerings_[o], "template/" + std::to_string(o)));
      if (!s.ok()) return s.WithContext("offering \"" + offerings_[o].instance_type + "\"");
    }
    templates_ = static_cast<int>(offerings_.size());
    return Status::Ok();
  }

  // λ_r: the lowest effective price per unit of dimension r over the offerings
  // that can be opened at all. Any node costs at least λ_r × its capacity in r.
  void ComputeUnitPrices() {
    unit_price_.fill(std::numeric_limits<double>::infinity());
    for (size_t o = 0; o < offerings_.size(); ++o) {
      if (!HasRoom(pool_left_[o])) continue;
      const Vec cap = CapacityOf(offerings_[o]);
      for (int t = 0; t < kTierCount; ++t) {
        if (!offerings_[o].tiers[t].price_per_hour || !HasRoom(tier_left_[o][t])) continue;
        for (int r = 0; r < kDims; ++r) {
          if (cap[r] > 0) unit_price_[r] = std::min(unit_price_[r], EffectivePrice(o, t) / cap[r]);
        }
      }
    }
    for (double& u : unit_price_) {
      if (!std::isfinite(u)) u = 0;
    }
    // μ_m: the same per milli-GPU of model m (plan_ registry, offered models only).
    model_unit_price_.assign(plan_.models().size(), std::numeric_limits<double>::infinity());
    for (int o = 0; o < templates_; ++o) {
      const int m = plan_.node(o).model;
      if (m < 0 || !HasRoom(pool_left_[o])) continue;
      for (int t = 0; t < kTierCount; ++t) {
        if (!offerings_[o].tiers[t].price_per_hour || !HasRoom(tier_left_[o][t])) continue;
        model_unit_price_[m] = std::min(
            model_unit_price_[m],
            EffectivePrice(o, t) / (static_cast<double>(offerings_[o].gpu_count) * kMilliPerGpu));
      }
    }
    // A model no offering can add costs nothing new; 0 keeps the bound valid.
    for (double& u : model_unit_price_) {
      if (!std::isfinite(u)) u = 0;
    }
    for (const std::string& model : existing_.models()) {
      unoffered_existing_models_ = unoffered_existing_models_ || plan_.ModelIndex(model) < 0;
    }
  }

  bool AcceptsUnofferedModel(const PodSpec& spec) const {
    if (spec.gpu_models.empty()) return unoffered_existing_models_;
    return std::any_of(spec.gpu_models.begin(), spec.gpu_models.end(),
                       [&](const std::string& m) { return plan_.ModelIndex(m) < 0; });
  }

  // min μ_m over the models a pod accepts. 0 when it accepts a model no offering
  // has but an existing node may (that capacity is not priced).
  double GpuUnitPrice(const PodSpec& spec, const PodRequest& req) const {
    if (AcceptsUnofferedModel(spec)) return 0;
    double best = std::numeric_limits<double>::infinity();
    for (size_t m = 0; m < model_unit_price_.size(); ++m) {
      if ((req.models >> m) & 1) best = std::min(best, model_unit_price_[m]);
    }
    return std::isfinite(best) ? best : 0;  // accepts no offered model
  }

  // What a pod is worth in money: the bound's price for its dominant dimension.
  double ValueOf(const PodSpec& spec, const PodRequest& p) const {
    const Vec d = DemandOf(p);
    double v = d[kGpu] * GpuUnitPrice(spec, p);
    for (int r = 0; r < kDims; ++r)
      v = std::max(v, d[r] * unit_price_[r]);
    return v;
  }

  void PlaceOnExisting() {
    work_ = existing_;
    const int n = static_cast<int>(pending_.size());
    std::vector<PodRequest> reqs(n);
    std::vector<double> values(n);
    for (int i = 0; i < n; ++i) {
      reqs[i] = work_.Resolve(pending_[i]);
      values[i] = ValueOf(pending_[i], plan_.Resolve(pending_[i]));
    }
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return values[a] > values[b]; });
    on_existing_.assign(n, std::nullopt);
    std::unordered_map<PodRequest, bool, PodRequestHash> no_room;  // shapes that fit nowhere
    for (int i : order) {
      if (no_room.count(reqs[i])) continue;
      bool placed = false;
      for (int node = 0; node < work_.node_count() && !placed; ++node) {
        if (!work_.Fits(node, reqs[i])) continue;
        Placement p{node, work_.BestGpus(node, reqs[i])};
        placed = work_.Place(reqs[i], p).ok();
        if (placed) on_existing_[i] = std::move(p);
      }
      if (!placed && reqs[i].memory_mib == 0) no_room.emplace(reqs[i], true);
    }
  }

  void GroupShapes() {
    std::unordered_map<PodRequest, int, PodRequestHash> ids;
    for (int i = 0; i < static_cast<int>(pending_.size()); ++i) {
      if (on_existing_[i]) continue;
      const PodRequest req = plan_.Resolve(pending_[i]);
      auto [it, inserted] = ids.emplace(req, static_cast<int>(shapes_.size()));
      if (inserted) {
        shapes_.push_back(req);
        shape_pods_.emplace_back();
      }
      shape_pods_[it->second].push_back(i);
    }
    const int s_count = static_cast<int>(shapes_.size());
    // Pods are handed out from the back; keep the lowest pod index last so output is stable.
    for (auto& pods : shape_pods_)
      std::reverse(pods.begin(), pods.end());
    IndexShapesOfPods();
    shape_value_.resize(s_count);
    fits_alone_.assign(s_count, std::vector<bool>(offerings_.size()));
    for (int s = 0; s < s_count; ++s) {
      shape_value_[s] = ValueOf(pending_[shape_pods_[s].front()], shapes_[s]);
      for (int o = 0; o < templates_; ++o)
        fits_alone_[s][o] = plan_.Fits(o, shapes_[s]);
    }
    shape_order_.resize(s_count);
    std::iota(shape_order_.begin(), shape_order_.end(), 0);
    std::stable_sort(shape_order_.begin(), shape_order_.end(),
                     [&](int a, int b) { return shape_value_[a] > shape_value_[b]; });
  }

  // First-fit-decreasing fill of an empty node of offering `o` with the pods left.
  Fill SimulateFill(int o) {
    Fill fill;
    fill.valid = true;
    std::vector<BindingId> ids;
    for (int s : shape_order_) {
      const int left = static_cast<int>(shape_pods_[s].size());
      if (left == 0 || !fits_alone_[s][o]) continue;
      int n = 0;
      while (n < left && plan_.Fits(o, shapes_[s])) {
        Result<BindingId> id = plan_.Place(shapes_[s], {o, plan_.BestGpus(o, shapes_[s])});
        if (!id.ok()) break;
        ids.push_back(*id);
        ++n;
      }
      if (n > 0) {
        fill.used.emplace_back(s, n);
        fill.value += n * shape_value_[s];
      }
    }
    for (BindingId id : ids)
      (void)plan_.Remove(id);
    return fill;
  }

  int OpenNode(int o, int t) {
    const std::string name = offerings_[o].instance_type + "-" +
                             std::string(CapacityTierName(static_cast<CapacityTier>(t))) + "-" +
                             std::to_string(next_name_++);
    // The template already validated this shape, so only a name clash can fail.
    if (!plan_.AddNode(NodeSpecOf(offerings_[o], name)).ok()) return -1;
    Consume(pool_left_[o], 1);
    Consume(tier_left_[o][t], 1);
    opened_.push_back({plan_.node_count() - 1, o, t, true, {}});
    return static_cast<int>(opened_.size()) - 1;
  }

  bool BindOnPlan(int pod, const PodRequest& req, int opened_index) {
    Opened& on = opened_[opened_index];
    if (!plan_.Fits(on.node, req)) return false;
    Placement p{on.node, plan_.BestGpus(on.node, req)};
    Result<BindingId> id = plan_.Place(req, p);
    if (!id.ok()) return false;
    bound_[pod] = {on.node, *id, std::move(p.gpus)};
    opened_of_pod_[pod] = opened_index;
    on.pods.push_back(pod);
    return true;
  }

  void OpenGreedily() {
    std::vector<Fill> fills(offerings_.size());
    while (true) {
      int best_o = -1, best_t = -1;
      double best_ratio = 0;
      for (int o = 0; o < templates_; ++o) {
        const int t = CheapestTier(o);
        if (t < 0) continue;
        if (!fills[o].valid) fills[o] = SimulateFill(o);
        if (fills[o].used.empty()) continue;
        const double ratio = EffectivePrice(o, t) / std::max(fills[o].value, 1e-300);
        if (best_o < 0 || ratio < best_ratio) {
          best_o = o;
          best_t = t;
          best_ratio = ratio;
        }
      }
      if (best_o < 0) return;
      const Fill fill = fills[best_o];
      // The same fill repeats while every shape it uses has enough pods left.
      int repeat = std::numeric_limits<int>::max();
      for (auto [s, n] : fill.used) {
        repeat = std::min(repeat, static_cast<int>(shape_pods_[s].size()) / n);
      }
      repeat = CapBy(CapBy(repeat, pool_left_[best_o]), tier_left_[best_o][best_t]);
      for (int k = 0; k < repeat; ++k) {
        const int index = OpenNode(best_o, best_t);
        if (index < 0) return;
        for (auto [s, n] : fill.used) {
          for (int j = 0; j < n; ++j) {
            const int pod = shape_pods_[s].back();
            if (!BindOnPlan(pod, shapes_[s], index)) break;
            shape_pods_[s].pop_back();
          }
        }
      }
      // A cached fill stays exact while each shape it used still has that many pods.
      for (Fill& f : fills) {
        if (!f.valid) continue;
        for (auto [s, n] : f.used) {
          if (static_cast<int>(shape_pods_[s].size()) < n) {
            f.valid = false;
            break;
          }
        }
      }
    }
  }

  // Pods left over (limits ran out) may still fit in the slack of opened nodes.
  void FillSlack() {
    for (int s : shape_order_) {
      for (size_t i = 0; i < opened_.size() && !shape_pods_[s].empty(); ++i) {
        while (!shape_pods_[s].empty() &&
               BindOnPlan(shape_pods_[s].back(), shapes_[s], static_cast<int>(i))) {
          shape_pods_[s].pop_back();
        }
      }
    }
  }

  const PodRequest& ShapeOfPod(int pod) const { return shapes_[shape_of_pod_.at(pod)]; }

  void IndexShapesOfPods() {
    for (size_t s = 0; s < shape_pods_.size(); ++s) {
      for (int pod : shape_pods_[s])
        shape_of_pod_[pod] = static_cast<int>(s);
    }
  }

  // Unbinds every pod of opened node `index`; returns them biggest first.
  std::vector<int> Unbind(int index) {
    std::vector<int> pods = opened_[index].pods;
    for (int pod : pods)
      (void)plan_.Remove(bound_[pod].id);
    opened_[index].pods.clear();
    std::stable_sort(pods.begin(), pods.end(), [&](int a, int b) {
      return shape_value_[shape_of_pod_.at(a)] > shape_value_[shape_of_pod_.at(b)];
    });
    return pods;
  }

  void Rebind(int index, const std::vector<int>& pods) {
    for (int pod : pods) {
      PlanBinding& b = bound_[pod];
      Result<BindingId> id = plan_.Place(ShapeOfPod(pod), {b.node, b.gpus});
      b.id = id.ok() ? *id : -1;
      opened_of_pod_[pod] = index;
      opened_[index].pods.push_back(pod);
    }
  }

  void Close(int index) {
    Opened& on = opened_[index];
    on.live = false;
    if (pool_left_[on.offering] != kUnlimitedNodes) ++pool_left_[on.offering];
    if (tier_left_[on.offering][on.tier] != kUnlimitedNodes) ++tier_left_[on.offering][on.tier];
  }

  // Improvement 1: close an opened node whose pods fit in the other opened nodes.
  void EmptyOpenedNodes() {
    std::vector<int> order(opened_.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return EffectivePrice(opened_[a].offering, opened_[a].tier) >
             EffectivePrice(opened_[b].offering, opened_[b].tier);
    });
    for (int victim : order) {
      if (!opened_[victim].live) continue;
      const std::vector<PlanBinding> before = [&] {
        std::vector<PlanBinding> v;
        for (int pod : opened_[victim].pods)
          v.push_back(bound_[pod]);
        return v;
      }();
      const std::vector<int> original = opened_[victim].pods;
      const std::vector<int> pods = Unbind(victim);
      std::vector<int> moved;
      bool all = true;
      for (int pod : pods) {
        bool placed = false;
        for (size_t i = 0; i < opened_.size() && !placed; ++i) {
          if (static_cast<int>(i) == victim || !opened_[i].live) continue;
          placed = BindOnPlan(pod, ShapeOfPod(pod), static_cast<int>(i));
        }
        if (!placed) {
          all = false;
          break;
        }
        moved.push_back(pod);
      }
      if (all) {
        Close(victim);
        continue;
      }
      for (int pod : moved) {  // undo
        Opened& host = opened_[opened_of_pod_[pod]];
        (void)plan_.Remove(bound_[pod].id);
        host.pods.erase(std::find(host.pods.begin(), host.pods.end(), pod));
      }
      for (size_t i = 0; i < original.size(); ++i)
        bound_[original[i]] = before[i];
      Rebind(victim, original);
    }
  }

  // Improvement 2: replace an opened node by the cheapest type that holds its pods.
  void DownsizeOpenedNodes() {
    const size_t count = opened_.size();
    for (size_t index = 0; index < count; ++index) {
      if (!opened_[index].live) continue;
      const Opened current = opened_[index];
      const double price = EffectivePrice(current.offering, current.tier);
      const NodeState& state = plan_.node(current.node);
      const NodeSpec& spec = plan_.spec(current.node);
      const Vec used = {static_cast<double>(spec.cpu_milli - state.free_cpu),
                        static_cast<double>(spec.memory_mib - state.free_memory),
                        static_cast<double>(spec.gpu_count * kMilliPerGpu - state.free_gpu_milli),
                        static_cast<double>(state.pods)};
      int best_o = -1, best_t = -1;
      double best_price = price;
      for (int o = 0; o < templates_; ++o) {
        const int t = CheapestTier(o);
        if (t < 0 || EffectivePrice(o, t) >= best_price) continue;
        const Vec cap = CapacityOf(offerings_[o]);
        bool enough = true;
        for (int r = 0; r < kDims; ++r)
          enough = enough && cap[r] >= used[r];
        if (!enough || !HoldsAll(o, current.pods)) continue;
        best_o = o;
        best_t = t;
        best_price = EffectivePrice(o, t);
      }
      if (best_o < 0) continue;
      const std::vector<int> pods = Unbind(static_cast<int>(index));
      Close(static_cast<int>(index));
      const int replacement = OpenNode(best_o, best_t);
      for (int pod : pods) {
        if (replacement < 0 || !BindOnPlan(pod, ShapeOfPod(pod), replacement)) {
          shape_pods_[shape_of_pod_.at(pod)].push_back(pod);  // should not happen: reported
        }
      }
    }
  }

  // Whether an empty node of offering `o` holds all `pods` (biggest first).
  bool HoldsAll(int o, std::vector<int> pods) {
    std::stable_sort(pods.begin(), pods.end(), [&](int a, int b) {
      return shape_value_[shape_of_pod_.at(a)] > shape_value_[shape_of_pod_.at(b)];
    });
    std::vector<BindingId> ids;
    bool all = true;
    for (int pod : pods) {
      const PodRequest& req = ShapeOfPod(pod);
      if (!plan_.Fits(o, req)) {
        all = false;
        break;
      }
      Result<BindingId> id = plan_.Place(req, {o, plan_.BestGpus(o, req)});
      if (!id.ok()) {
        all = false;
        break;
      }
      ids.push_back(*id);
    }
    for (BindingId id : ids)
      (void)plan_.Remove(id);
    return all;
  }

  UnplacedReason ReasonFor(int shape) const {
    const PodRequest& req = shapes_[shape];
    bool model = false, fits = false;
    for (int o = 0; o < templates_; ++o) {
      const NodeState& n = plan_.node(o);
      const bool needs_model = req.uses_gpu() || req.mig_slices > 0;
      const bool model_ok = !needs_model || (n.model >= 0 && ((req.models >> n.model) & 1));
      const bool mig_ok = req.mig_slices == 0 || n.mig_mask != 0;
      model = model || (model_ok && mig_ok);
      fits = fits || fits_alone_[shape][o];
    }
    if (fits) return UnplacedReason::kLimitsExhausted;
    return model ? UnplacedReason::kExceedsLargestOffering : UnplacedReason::kNoOfferingWithModel;
  }

  double InitialNodeLimit(int o, int t) const {
    const int tier = offerings_[o].tiers[t].max_nodes, pool = offerings_[o].max_nodes;
    if (tier == kUnlimitedNodes && pool == kUnlimitedNodes) {
      return std::numeric_limits<double>::infinity();
    }
    if (tier == kUnlimitedNodes) return pool;
    return pool == kUnlimitedNodes ? tier : std::min(tier, pool);
  }

  // scale_plan_bound.h's relaxation over the placed pods. A pod that accepts a
  // model no offering has is left out of the GPU demand.
  double LowerBound(const std::vector<bool>& placed) const {
    CostBoundInput in;
    in.pinned.assign(plan_.models().size(), 0);
    const ModelMask offered_models =
        in.pinned.size() >= 64 ? kAnyModel : (ModelMask{1} << in.pinned.size()) - 1;
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (!placed[i]) continue;
      const PodRequest req = plan_.Resolve(pending_[i]);
      const Vec d = DemandOf(req);
      for (int r = 0; r < kDims; ++r)
        in.demand[r] += d[r];
      if (d[kGpu] <= 0 || AcceptsUnofferedModel(pending_[i])) continue;
      const ModelMask offered = req.models & offered_models;
      if (std::popcount(offered) == 1) {
        in.pinned[std::countr_zero(offered)] += d[kGpu];
      } else {
        in.any_gpu += d[kGpu];
      }
    }
    for (int o = 0; o < templates_; ++o) {
      for (int t = 0; t < kTierCount; ++t) {
        const double nodes = InitialNodeLimit(o, t);
        if (!offerings_[o].tiers[t].price_per_hour || nodes <= 0) continue;
        in.new_nodes.push_back({.capacity = CapacityOf(offerings_[o]),
                                .effective_price = EffectivePrice(o, t),
                                .nodes = nodes,
                                .model = plan_.node(o).model});
      }
    }
    for (int node = 0; node < existing_.node_count(); ++node) {
      const int model = existing_.node(node).model;
      in.existing.push_back(
          {.free = FreeOf(existing_.node(node)),
           .model = model < 0 ? -1 : plan_.ModelIndex(existing_.models()[model])});
    }
    return CostLowerBound(in);
  }

  ScaleUpPlan Finish() {
    ScaleUpPlan plan;
    std::vector<int> new_index(opened_.size(), -1);
    for (size_t i = 0; i < opened_.size(); ++i) {
      const Opened& on = opened_[i];
      if (!on.live) continue;
      new_index[i] = static_cast<int>(plan.new_nodes.size());
      const double price = *offerings_[on.offering].tiers[on.tier].price_per_hour;
      plan.new_nodes.push_back(
          {plan_.spec(on.node).name, on.offering, static_cast<CapacityTier>(on.tier), price});
      plan.hourly_cost += price;
      plan.effective_cost += EffectivePrice(on.offering, on.tier);
    }
    std::vector<bool> placed(pending_.size(), false);
    std::vector<int> unplaced_shape(pending_.size(), -1);
    for (size_t s = 0; s < shape_pods_.size(); ++s) {
      for (int pod : shape_pods_[s])
        unplaced_shape[pod] = static_cast<int>(s);
    }
    for (int i = 0; i < static_cast<int>(pending_.size()); ++i) {
      if (on_existing_[i]) {
        plan.assignments.push_back({i, false, on_existing_[i]->node, on_existing_[i]->gpus});
        placed[i] = true;
      } else if (unplaced_shape[i] >= 0) {
        plan.unplaced.push_back({i, ReasonFor(unplaced_shape[i])});
      } else if (auto it = opened_of_pod_.find(i); it != opened_of_pod_.end()) {
        plan.assignments.push_back({i, true, new_index[it->second], bound_.at(i).gpus});
        placed[i] = true;
      }
    }
    plan.lower_bound = LowerBound(placed);
    return plan;
  }

  const ClusterState& existing_;
  const std::vector<PodSpec>& pending_;
  const std::vector<Offering>& offerings_;
  const ScaleUpOptions& options_;

  ClusterState work_;  // existing + pods placed on its free capacity
  ClusterState plan_;  // template nodes [0, templates_) then opened nodes
  int templates_ = 0;
  std::vector<int> pool_left_;
  std::vector<std::array<int, kTierCount>> tier_left_;
  Vec unit_price_{};
  std::vector<double> model_unit_price_;  // μ_m, by plan_ model index
  bool unoffered_existing_models_ = false;
  std::vector<std::optional<Placement>> on_existing_;
  std::vector<PodRequest> shapes_;
  std::vector<std::vector<int>> shape_pods_;  // unplaced pods per shape
  std::vector<double> shape_value_;
  std::vector<std::vector<bool>> fits_alone_;  // [shape][offering]
  std::vector<int> shape_order_;
  std::unordered_map<int, int> shape_of_pod_;
  std::vector<Opened> opened_;
  std::unordered_map<int, PlanBinding> bound_;
  std::unordered_map<int, int> opened_of_pod_;
  int next_name_ = 0;
};

}  // namespace

Result<ScaleUpPlan> PlanScaleUp(const ClusterState& existing, const std::vector<PodSpec>& pending,
                                const std::vector<Offering>& offerings,
                                const ScaleUpOptions& options) {
  ScaleUpPlanner planner(existing, pending, offerings, options);
  return planner.Run();
}

}  // namespace gpu_autoscaler::autoscale
