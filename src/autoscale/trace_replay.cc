#include "autoscale/trace_replay.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <set>

#include "autoscale/node_pool_decide.h"
#include "autoscale/predictive_floor.h"

namespace gpu_autoscaler::autoscale {

std::string_view ScalingStrategyName(ScalingStrategy s) {
  switch (s) {
    case ScalingStrategy::kReactive:
      return "reactive";
    case ScalingStrategy::kPredictive:
      return "predictive";
    case ScalingStrategy::kOracle:
      return "oracle";
  }
  return "unknown";
}

namespace {

constexpr int kMilli = 1000;

// At one instant: the step boundary first (its bucket ends before the
// instant's changes), then departures free capacity for the arrivals.
enum class EventKind : uint8_t {
  kTick,
  kDeparture,
  kNodeReady,
  kArrival,
  kForesee,
  kScaleDown,
  kReconcile
};

struct Event {
  int64_t time;
  EventKind kind;
  int64_t seq;
  int id;
  bool operator>(const Event& o) const {
    if (time != o.time) return time > o.time;
    if (kind != o.kind) return kind > o.kind;
    return seq > o.seq;
  }
};

struct Node {
  int64_t requested = 0;
  int64_t removed_at = -1;  // -1: alive
  bool ready = false;
  int pods = 0;
  int64_t empty_since = 0;
  std::vector<int> free;  // milli-GPU free per GPU
};

enum class PodPhase : uint8_t { kFuture, kForeseen, kPending, kRunning, kDone };

struct PodState {
  PodPhase phase = PodPhase::kFuture;
  int node = -1;
  int64_t bound_at = -1;
  int64_t left_at = -1;
  bool cancelled = false;
  std::vector<int> gpus;
};

// Picks the `num_gpu` GPUs with the least free capacity that still hold
// `milli` each (best fit keeps whole GPUs for whole-GPU pods). False if the
// node lacks them.
bool PickGpus(const std::vector<int>& free, int num_gpu, int milli, std::vector<int>* out) {
  out->clear();
  for (int k = 0; k < num_gpu; ++k) {
    int best = -1;
    for (int g = 0; g < static_cast<int>(free.size()); ++g) {
      if (free[g] < milli || std::find(out->begin(), out->end(), g) != out->end()) continue;
      if (best < 0 || free[g] < free[best]) best = g;
    }
    if (best < 0) return false;
    out->push_back(best);
  }
  return true;
}

class Replayer {
 public:
  Replayer(const ReplayWorkload& w, ScalingStrategy s, const ReplayOptions& o)
      : w_(w),
        s_(s),
        o_(o),
        forecaster_(o.forecast),
        pods_(w.pods.size()),
        memory_(std::chrono::seconds(o.batch_idle), std::chrono::seconds(o.batch_max)) {
    horizon_steps_ = PredictiveHorizonSteps(o);
    if (o.through_controller) spec_ = ControllerPool(o, s);
  }

  // The pool the controller sees: one on-demand offering of the replay's
  // node; CPU and memory are not modelled, so they never bind.
  static NodePoolSpec ControllerPool(const ReplayOptions& o, ScalingStrategy s) {
    NodePoolSpec spec;
    spec.name = "replay";
    PoolInstanceType it{.name = "replay-node",
                        .gpu_model = "replay-gpu",
                        .gpu_count = o.gpus_per_node,
                        .cpu_milli = int64_t{1} << 40,
                        .memory_mib = int64_t{1} << 40,
                        .max_pods = 1 << 20};
    it.price[TierIndex(CapacityTier::kOnDemand)] = o.price_per_gpu_hour * o.gpus_per_node;
    spec.instance_types.push_back(it);
    spec.tiers[TierIndex(CapacityTier::kOnDemand)].enabled = true;
    spec.min_nodes = o.min_nodes;
    spec.max_nodes = o.max_nodes >= 0 ? o.max_nodes : 1 << 20;
    spec.policy = ConsolidationPolicy::kWhenEmpty;
    const int64_t delay = s == ScalingStrategy::kOracle       ? 0
                          : s == ScalingStrategy::kPredictive ? o.predictive_scale_down_delay
                                                              : o.scale_down_delay;
    spec.consolidate_after = std::chrono::seconds(delay);
    spec.budgets = {DisruptionBudget{.nodes = 100, .percent = true}};
    return spec;
  }

  Status error() const { return error_; }

  ReplayResult Run() {
    for (size_t i = 0; i < w_.pods.size(); ++i) {
      const ReplayPod& p = w_.pods[i];
      if (p.num_gpu > o_.gpus_per_node) {
        unplaceable_.push_back(static_cast<int>(i));
        continue;
      }
      Push(p.arrival, EventKind::kArrival, static_cast<int>(i));
      if (!p.runs_for_duration) Push(p.departure, EventKind::kDeparture, static_cast<int>(i));
      if (s_ == ScalingStrategy::kOracle) {
        // Through the controller it also sees past the batching window.
        Push(p.arrival - o_.provisioning_delay - (o_.through_controller ? o_.batch_idle : 0),
             EventKind::kForesee, static_cast<int>(i));
      }
      ++live_pods_;
    }
    const int64_t total = live_pods_;
    for (int i = 0; i < o_.min_nodes; ++i)
      RequestNode(std::min<int64_t>(0, queue_.empty() ? 0 : queue_.top().time));
    if (!queue_.empty()) Push(0, EventKind::kTick, -1);
    int64_t processed = 0;
    // The replay ends when the last pod leaves; node time after that is not counted.
    while (!queue_.empty() && live_pods_ > 0) {
      const int64_t now = queue_.top().time;
      while (!queue_.empty() && queue_.top().time == now) {
        const Event e = queue_.top();
        queue_.pop();
        Handle(e, now);
      }
      Bind(now);
      if (o_.through_controller) {
        if (changed_) ControllerPass(now);
        changed_ = false;
        if (!error_.ok()) break;
      } else {
        // After binding: a node a pending pod just took is not empty any more.
        if (scale_down_due_) ScaleDown(now);
        scale_down_due_ = false;
        Decide(now);
      }
      if (o_.progress && (++processed & 4095) == 0 && total > 0) {
        o_.progress(1.0 - static_cast<double>(live_pods_) / total);
      }
    }
    end_time_ = std::max(end_time_, last_departure_);
    for (Node& n : nodes_) {
      if (n.removed_at < 0 || n.removed_at > end_time_)
        n.removed_at = std::max(end_time_, n.requested);
    }
    return Report();
  }

 private:
  void Push(int64_t time, EventKind kind, int id) { queue_.push({time, kind, seq_++, id}); }

  int LiveNodes() const { return static_cast<int>(live_.size()); }

  bool RequestNode(int64_t now) {
    if (o_.max_nodes >= 0 && LiveNodes() >= o_.max_nodes) return false;
    Node n;
    n.requested = now;
    n.free.assign(o_.gpus_per_node, kMilli);
    nodes_.push_back(std::move(n));
    const int id = static_cast<int>(nodes_.size()) - 1;
    live_.push_back(id);
    Push(now + o_.provisioning_delay, EventKind::kNodeReady, id);
    provisioned_gpus_ += o_.gpus_per_node;
    peak_nodes_ = std::max(peak_nodes_, LiveNodes());
    return true;
  }

  void RemoveNode(int id, int64_t now) {
    Node& n = nodes_[id];
    n.removed_at = now;
    std::erase(live_, id);
    provisioned_gpus_ -= o_.gpus_per_node;
    if (n.ready) ready_gpus_ -= o_.gpus_per_node;
  }

  void ChangeDemand(int i, int sign) {
    const ReplayPod& p = w_.pods[i];
    demand_milli_ += sign * static_cast<int64_t>(p.num_gpu) * p.gpu_milli;
    bucket_peak_milli_ = std::max(bucket_peak_milli_, demand_milli_);
  }

  void Handle(const Event& e, int64_t now) {
    if (e.kind != EventKind::kTick) changed_ = true;
    switch (e.kind) {
      case EventKind::kReconcile:
        break;
      case EventKind::kTick:
        Tick(now);
        break;
      case EventKind::kArrival: {
        PodState& st = pods_[e.id];
        if (st.phase == PodPhase::kDone) break;  // left before it arrived
        st.phase = PodPhase::kPending;
        pending_.push_back(e.id);
        ChangeDemand(e.id, +1);
        break;
      }
      case EventKind::kForesee:
        if (pods_[e.id].phase == PodPhase::kFuture) {
          pods_[e.id].phase = PodPhase::kForeseen;
          foreseen_.push_back(e.id);
        }
        break;
      case EventKind::kDeparture:
        Depart(e.id, now);
        break;
      case EventKind::kNodeReady: {
        Node& n = nodes_[e.id];
        if (n.removed_at >= 0) break;
        n.ready = true;
        n.empty_since = now;
        ready_gpus_ += o_.gpus_per_node;
        ScheduleScaleDown(e.id, now);
        break;
      }
      case EventKind::kScaleDown:
        scale_down_due_ = true;
        break;
    }
  }

  void Depart(int i, int64_t now) {
    PodState& st = pods_[i];
    if (st.phase == PodPhase::kDone) return;
    if (st.phase == PodPhase::kFuture || st.phase == PodPhase::kForeseen) {
      // Left at the instant it arrives (zero lifetime): it never asks for a GPU.
      st.phase = PodPhase::kDone;
      st.left_at = now;
      --live_pods_;
      return;
    }
    if (st.phase == PodPhase::kRunning) {
      running_.erase(i);
      Node& n = nodes_[st.node];
      for (int g : st.gpus)
        n.free[g] += w_.pods[i].gpu_milli;
      if (--n.pods == 0) {
        n.empty_since = now;
        ScheduleScaleDown(st.node, now);
      }
    } else {
      st.cancelled = true;  // left while pending
      std::erase(pending_, i);
    }
    st.phase = PodPhase::kDone;
    st.left_at = now;
    ChangeDemand(i, -1);
    --live_pods_;
    last_departure_ = std::max(last_departure_, now);
  }

  void ScheduleScaleDown(int node, int64_t now) {
    // The oracle decides in Decide() at once; the others wait their delay.
    // Through the controller, consolidateAfter does it.
    if (s_ == ScalingStrategy::kOracle || o_.through_controller) return;
    Push(now + (s_ == ScalingStrategy::kPredictive ? o_.predictive_scale_down_delay
                                                   : o_.scale_down_delay),
         EventKind::kScaleDown, node);
  }

  void Tick(int64_t now) {
    if (ticks_ > 0) {
      // The bucket [now - step, now) ended.
      forecaster_.Observe(static_cast<double>(bucket_peak_milli_) / kMilli);
    }
    ++ticks_;
    bucket_peak_milli_ = demand_milli_;
    if (s_ == ScalingStrategy::kPredictive) {
      const double peak = forecaster_.PeakOver(horizon_steps_);
      // Through the controller, the floor as the controller computes it
      // (predictive_floor.h: headroom, the cheapest offering, the limits).
      const int nodes =
          o_.through_controller
              ? FloorForForecast(peak, 0, {.headroom_gpus = o_.headroom_gpus}, spec_).floor_nodes
              : static_cast<int>(std::ceil((peak + o_.headroom_gpus) / o_.gpus_per_node - 1e-9));
      // Through the controller a step only matters when it moves the floor.
      if (nodes != target_nodes_) changed_ = true;
      target_nodes_ = nodes;
      scale_down_due_ = true;
    }
    if (o_.record_series) {
      series_.push_back({.time = now,
                         .demand_gpus = static_cast<double>(demand_milli_) / kMilli,
                         .ready_gpus = ready_gpus_,
                         .provisioned_gpus = provisioned_gpus_});
    }
    if (!queue_.empty()) Push(now + o_.step, EventKind::kTick, -1);
  }

  // Removes the nodes empty for at least the scale-down delay, oldest empty
  // first, keeping min_nodes and (predictive) the forecast target.
  void ScaleDown(int64_t now) {
    std::vector<int> idle;
    const int64_t delay =
        s_ == ScalingStrategy::kPredictive ? o_.predictive_scale_down_delay : o_.scale_down_delay;
    for (int id : live_) {
      const Node& n = nodes_[id];
      if (n.ready && n.pods == 0 && n.empty_since + delay <= now) idle.push_back(id);
    }
    std::sort(idle.begin(), idle.end(),
              [&](int a, int b) { return nodes_[a].empty_since < nodes_[b].empty_since; });
    const int keep = std::max(o_.min_nodes, s_ == ScalingStrategy::kPredictive ? target_nodes_ : 0);
    for (int id : idle) {
      if (LiveNodes() <= keep) break;
      RemoveNode(id, now);
    }
  }

  // Binds pending pods in arrival order, each onto the first ready node it fits.
  void Bind(int64_t now) {
    if (pending_.empty()) return;
    std::vector<int> still;
    for (int i : pending_) {
      const ReplayPod& p = w_.pods[i];
      PodState& st = pods_[i];
      bool bound = false;
      for (size_t k = 0; k < live_.size() && !bound; ++k) {
        const int id = live_[k];
        Node& n = nodes_[id];
        if (!n.ready) continue;
        if (!PickGpus(n.free, p.num_gpu, p.gpu_milli, &st.gpus)) continue;
        for (int g : st.gpus)
          n.free[g] -= p.gpu_milli;
        ++n.pods;
        st.node = id;
        st.bound_at = now;
        st.phase = PodPhase::kRunning;
        running_.insert(i);
        if (p.runs_for_duration) Push(now + (p.departure - p.arrival), EventKind::kDeparture, i);
        bound = true;
      }
      if (!bound) still.push_back(i);
    }
    pending_.swap(still);
  }

  // Plans pending (and, for the oracle, foreseen) pods onto the free capacity
  // of `nodes` and requests a node for each that fits nowhere. Returns which
  // of `nodes` received a planned pod.
  std::vector<bool> PlanAndRequest(const std::vector<int>& plan_nodes, int64_t now) {
    std::vector<std::vector<int>> free;
    free.reserve(plan_nodes.size());
    for (int id : plan_nodes)
      free.push_back(nodes_[id].free);
    std::vector<bool> used(plan_nodes.size(), false);
    std::vector<std::vector<int>> fresh;  // nodes to request
    std::vector<int> gpus;
    auto plan = [&](int i) {
      const ReplayPod& p = w_.pods[i];
      for (size_t k = 0; k < free.size(); ++k) {
        if (!PickGpus(free[k], p.num_gpu, p.gpu_milli, &gpus)) continue;
        for (int g : gpus)
          free[k][g] -= p.gpu_milli;
        used[k] = true;
        return;
      }
      for (auto& f : fresh) {
        if (!PickGpus(f, p.num_gpu, p.gpu_milli, &gpus)) continue;
        for (int g : gpus)
          f[g] -= p.gpu_milli;
        return;
      }
      fresh.emplace_back(o_.gpus_per_node, kMilli);
      PickGpus(fresh.back(), p.num_gpu, p.gpu_milli, &gpus);
      for (int g : gpus)
        fresh.back()[g] -= p.gpu_milli;
    };
    for (int i : pending_)
      plan(i);
    if (s_ == ScalingStrategy::kOracle) {
      std::erase_if(foreseen_, [&](int i) { return pods_[i].phase != PodPhase::kForeseen; });
      for (int i : foreseen_)
        plan(i);
    }
    for (size_t k = 0; k < fresh.size(); ++k) {
      if (!RequestNode(now)) break;
    }
    return used;
  }

  void Decide(int64_t now) {
    // Nodes in planning order: ready with pods, ready and empty, in flight.
    std::vector<int> plan_nodes;
    if (s_ == ScalingStrategy::kOracle) {
      for (int pass = 0; pass < 2; ++pass) {
        for (int id : live_) {
          const Node& n = nodes_[id];
          if (n.ready && (pass == 0) == (n.pods > 0)) plan_nodes.push_back(id);
        }
      }
    }
    const size_t first_in_flight = plan_nodes.size();
    for (int id : live_) {
      if (!nodes_[id].ready) plan_nodes.push_back(id);
    }
    const bool anything =
        !pending_.empty() || (s_ == ScalingStrategy::kOracle && !foreseen_.empty());
    std::vector<bool> used(plan_nodes.size(), false);
    if (anything) used = PlanAndRequest(plan_nodes, now);
    if (s_ == ScalingStrategy::kOracle) {
      // Empty ready nodes no pending or foreseen pod needs go now.
      for (size_t k = 0; k < first_in_flight; ++k) {
        const int id = plan_nodes[k];
        if (nodes_[id].pods == 0 && !used[k] && LiveNodes() > o_.min_nodes) RemoveNode(id, now);
      }
    }
    if (s_ == ScalingStrategy::kPredictive) {
      while (LiveNodes() < target_nodes_) {
        if (!RequestNode(now)) break;
      }
    }
  }

  PodSpec SpecOf(int i) const {
    const ReplayPod& p = w_.pods[i];
    PodSpec spec;
    spec.name = std::to_string(i);
    spec.num_gpu = p.num_gpu;
    spec.gpu_milli = p.gpu_milli;
    return spec;
  }

  // One pass of the GPUNodePool controller's decision over the replay's
  // cloud: its increases are requested, the nodes it would cordon (empty
  // ones: WhenEmpty) removed, and it is called again when it asks to be.
  void ControllerPass(int64_t now) {
    const auto at = [](int64_t t) { return Clock::TimePoint(std::chrono::seconds(t)); };
    PoolSnapshot snap{.pool = &spec_, .now = at(now), .now_unix = now};
    snap.groups.push_back({.instance_type = 0,
                           .tier = CapacityTier::kOnDemand,
                           .group = "replay",
                           .desired = LiveNodes()});
    for (int id : live_) {
      snap.groups[0].instance_ids.push_back(std::to_string(id));
      if (nodes_[id].ready) {
        snap.nodes.push_back(
            {.name = std::to_string(id), .group = 0, .instance_id = std::to_string(id)});
      }
    }
    for (int i : running_) {
      snap.pods.push_back({.key = std::to_string(i),
                           .node = std::to_string(pods_[i].node),
                           .demand = SpecOf(i),
                           .gpus = pods_[i].gpus});
    }
    for (int i : pending_)
      snap.pending.push_back({std::to_string(i), SpecOf(i)});
    if (s_ == ScalingStrategy::kOracle) {
      std::erase_if(foreseen_, [&](int i) { return pods_[i].phase != PodPhase::kForeseen; });
      for (int i : foreseen_)
        snap.pending.push_back({std::to_string(i), SpecOf(i)});
    }
    if (s_ == ScalingStrategy::kPredictive) snap.floor_nodes = target_nodes_;
    auto plan = DecidePool(snap, &memory_, {});
    if (!plan.ok()) {
      error_ = plan.error();
      return;
    }
    for (const GroupIncrease& inc : plan->increases) {
      for (int k = 0; k < inc.count; ++k)
        if (!RequestNode(now)) break;
    }
    for (const NodeCordon& c : plan->cordons) {
      const int id = std::stoi(c.node);
      if (nodes_[id].removed_at < 0 && nodes_[id].pods == 0) RemoveNode(id, now);
    }
    // Every change is an event here, so no resync is needed, and no launch
    // fails: only the decision's own wake (the batching window, a node
    // settling past consolidateAfter), and a resync while pods wait on a limit.
    if (plan->wake) {
      SchedulePass(now,
                   now + std::chrono::ceil<std::chrono::seconds>(*plan->wake - at(now)).count());
    } else if (!snap.pending.empty()) {
      SchedulePass(now, now + 15);
    }
  }

  void SchedulePass(int64_t now, int64_t t) {
    t = std::max(t, now + 1);
    if (next_pass_ > now && next_pass_ <= t) return;  // one already comes sooner
    next_pass_ = t;
    Push(t, EventKind::kReconcile, -1);
  }

  ReplayResult Report() const {
    ReplayResult r;
    r.strategy = s_;
    r.end_time = end_time_;
    const int64_t from = o_.report_from;
    for (const Node& n : nodes_) {
      const int64_t a = std::max(n.requested, from);
      const int64_t b = n.removed_at;
      if (b > a) r.gpu_hours += static_cast<double>(b - a) * o_.gpus_per_node / 3600;
    }
    r.nodes_requested = static_cast<int64_t>(nodes_.size());
    r.peak_nodes = peak_nodes_;
    r.cost = r.gpu_hours * o_.price_per_gpu_hour;
    std::vector<double> waits;
    double wait_sum = 0;
    for (size_t i = 0; i < w_.pods.size(); ++i) {
      const ReplayPod& p = w_.pods[i];
      const PodState& st = pods_[i];
      if (st.bound_at >= 0) {
        const int64_t a = std::max(st.bound_at, from);
        const int64_t b = st.left_at >= 0 ? st.left_at : end_time_;
        if (b > a)
          r.demand_gpu_hours +=
              static_cast<double>(b - a) * p.num_gpu * p.gpu_milli / kMilli / 3600;
      }
      if (p.arrival < from) continue;
      if (p.num_gpu > o_.gpus_per_node) {
        ++r.pods_unplaceable;
        continue;
      }
      ++r.pods;
      int64_t waited = 0;
      if (st.bound_at >= 0) {
        waited = st.bound_at - p.arrival;
      } else {
        waited = (st.left_at >= 0 ? st.left_at : end_time_) - p.arrival;
        if (st.cancelled) ++r.pods_cancelled;
      }
      if (waited > 0) ++r.pods_delayed;
      if (p.num_gpu > 1) {
        ++r.pods_multi_gpu;
        if (waited > 0) ++r.pods_multi_gpu_delayed;
      }
      waits.push_back(static_cast<double>(waited));
      wait_sum += static_cast<double>(waited);
    }
    if (!waits.empty()) {
      r.pending_mean = wait_sum / static_cast<double>(waits.size());
      r.pending_max = *std::max_element(waits.begin(), waits.end());
      r.pending_p50 = NearestRankQuantile(waits, 0.5);
      r.pending_p99 = NearestRankQuantile(std::move(waits), 0.99);
    }
    r.series = series_;
    return r;
  }

  const ReplayWorkload& w_;
  const ScalingStrategy s_;
  const ReplayOptions& o_;
  DemandForecaster forecaster_;
  int horizon_steps_ = 1;
  std::vector<PodState> pods_;
  std::vector<Node> nodes_;
  std::vector<int> live_;  // ids of the nodes not removed, in request order
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  int64_t seq_ = 0;
  std::vector<int> pending_;
  std::vector<int> foreseen_;
  std::vector<int> unplaceable_;
  int64_t live_pods_ = 0;
  int64_t demand_milli_ = 0;
  int64_t bucket_peak_milli_ = 0;
  int64_t ticks_ = 0;
  int target_nodes_ = 0;
  bool scale_down_due_ = false;
  int ready_gpus_ = 0;
  int provisioned_gpus_ = 0;
  int peak_nodes_ = 0;
  int64_t last_departure_ = 0;
  int64_t end_time_ = 0;
  std::vector<ReplayPoint> series_;
  // Through the controller.
  NodePoolSpec spec_;
  PoolMemory memory_;
  std::set<int> running_;
  bool changed_ = true;
  int64_t next_pass_ = std::numeric_limits<int64_t>::min();
  Status error_;
};

}  // namespace

Result<ReplayResult> ReplayTrace(const ReplayWorkload& workload, ScalingStrategy strategy,
                                 const ReplayOptions& options) {
  if (options.gpus_per_node < 1) return InvalidArgumentError("gpus_per_node must be at least 1");
  if (options.provisioning_delay < 0 || options.scale_down_delay < 0) {
    return InvalidArgumentError("provisioning and scale-down delays must not be negative");
  }
  if (options.step < 1) return InvalidArgumentError("step must be at least 1 second");
  if (options.through_controller &&
      (options.gpus_per_node > kMaxGpusPerNode || options.batch_idle < 0 ||
       options.batch_max < options.batch_idle)) {
    return InvalidArgumentError(
        "through the controller: want gpus_per_node <= " + std::to_string(kMaxGpusPerNode) +
        " and 0 <= batch_idle <= batch_max");
  }
  if (options.min_nodes < 0 || (options.max_nodes >= 0 && options.max_nodes < options.min_nodes)) {
    return InvalidArgumentError("want 0 <= min_nodes <= max_nodes");
  }
  for (size_t i = 0; i < workload.pods.size(); ++i) {
    const ReplayPod& p = workload.pods[i];
    if (p.departure < p.arrival || p.num_gpu < 1 || p.gpu_milli < 1 || p.gpu_milli > kMilli) {
      return InvalidArgumentError("pod " + std::to_string(i) +
                                  ": want departure >= arrival, num_gpu >= 1, gpu_milli 1..1000");
    }
  }
  Replayer replayer(workload, strategy, options);
  ReplayResult result = replayer.Run();
  if (!replayer.error().ok()) return replayer.error().WithContext("the controller's decision");
  return result;
}

int PredictiveHorizonSteps(const ReplayOptions& options) {
  if (options.step < 1) return 1;
  return static_cast<int>((options.provisioning_delay + 2 * options.step - 1) / options.step);
}

Result<ReplayTraining> TrainPredictive(const ReplayWorkload& workload, const ReplayOptions& options,
                                       double train_fraction, double coverage) {
  constexpr int64_t kDay = 86400;
  if (options.step < 1 || kDay % options.step != 0) {
    return InvalidArgumentError("the step must divide a day (86400 s) into whole steps");
  }
  if (workload.pods.empty())
    return InvalidArgumentError("workload " + workload.name + " has no pods");
  if (!(train_fraction > 0 && train_fraction < 1)) {
    return InvalidArgumentError("the training fraction must be in (0, 1)");
  }
  ReplayTraining t;
  const size_t split = static_cast<size_t>(train_fraction * workload.pods.size());
  // The split falls on a step boundary so the training peaks are whole steps.
  const int64_t at = workload.pods[std::min(split, workload.pods.size() - 1)].arrival;
  t.split_time = (at / options.step) * options.step;
  const std::vector<double> train = DemandPeaks(workload, 0, t.split_time, options.step);
  t.training_steps = static_cast<int64_t>(train.size());
  t.tuned = TuneDemandForecast(train, PredictiveHorizonSteps(options),
                               static_cast<int>(kDay / options.step), coverage);
  return t;
}

std::vector<double> DemandPeaks(const ReplayWorkload& workload, int64_t start, int64_t end,
                                int64_t step) {
  if (step < 1 || end <= start) return {};
  std::vector<std::pair<int64_t, int64_t>> changes;  // (time, Δ milli)
  changes.reserve(workload.pods.size() * 2);
  for (const ReplayPod& p : workload.pods) {
    const int64_t d = static_cast<int64_t>(p.num_gpu) * p.gpu_milli;
    changes.emplace_back(p.arrival, d);
    changes.emplace_back(p.departure, -d);
  }
  std::sort(changes.begin(), changes.end());
  const size_t buckets = static_cast<size_t>((end - start + step - 1) / step);
  std::vector<double> peaks(buckets, 0);
  int64_t current = 0;
  size_t c = 0;
  for (size_t b = 0; b < buckets; ++b) {
    const int64_t lo = start + static_cast<int64_t>(b) * step;
    // Everything before the bucket sets its starting level.
    while (c < changes.size() && changes[c].first < lo)
      current += changes[c++].second;
    int64_t peak = current;
    while (c < changes.size() && changes[c].first < lo + step) {
      const int64_t t = changes[c].first;
      while (c < changes.size() && changes[c].first == t)
        current += changes[c++].second;
      peak = std::max(peak, current);
    }
    peaks[b] = static_cast<double>(peak) / kMilli;
  }
  return peaks;
}

}  // namespace gpu_autoscaler::autoscale
