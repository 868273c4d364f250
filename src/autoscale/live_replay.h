// File: src/autoscale/live_replay.h
//
// The pure half of `gpu-autoscaler replay`, which plays part of an openb trace
// against a real API server (tools/replay_cli.cc): which pods arrive and depart
// by trace time t, how trace time follows the wall clock, what fake Node each
// openb node becomes, and what each openb pod asks for in Kubernetes terms.
//
//   GPU_ASSIGN_OR_RETURN(LiveReplayPlan plan, PlanLiveReplay(pods, {.start = 12815361,
//                                                                   .window = 14400}));
//   ReplayClock clock(plan.start, /*speed=*/300);
//   ReplayCursor cursor(plan);
//   for (const ReplayEvent& e : cursor.Due(clock.TraceTime(elapsed_seconds))) ...
//
// Nothing here reads a clock or the network. Thread-safety: pure functions;
// a ReplayCursor or ReplayTally belongs to one thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "autoscale/cluster.h"
#include "autoscale/trace.h"
#include "common/status.h"

namespace gpu_autoscaler::autoscale {

// Which part of the trace to play.
struct ReplaySelection {
  int64_t start = -1;  // trace seconds; -1: the first creation_time
  int64_t window = 0;  // trace seconds after start; 0: until the last selected pod departs
  int limit = 0;       // at most this many pods (earliest arrivals first); 0: all
};

// A selected pod: `arrive` is max(creation_time, start) (pods alive at the
// start arrive at once), `depart` is min(deletion_time, end).
struct LiveReplayPod {
  TimedPod pod;
  int64_t arrive = 0;
  int64_t depart = 0;
};

struct ReplayEvent {
  enum class Kind : uint8_t { kDepart, kArrive };  // departures first at one instant
  int64_t time = 0;                                // trace seconds
  Kind kind = Kind::kArrive;
  int pod = 0;  // index into LiveReplayPlan::pods
  bool operator==(const ReplayEvent&) const = default;
};

struct LiveReplayPlan {
  int64_t start = 0;
  int64_t end = 0;                  // the last event's time
  std::vector<LiveReplayPod> pods;  // in arrival order
  std::vector<ReplayEvent> events;  // by time, departures before arrivals, then pod
};

// InvalidArgument when the selection leaves no pod, or for a negative window
// or limit.
Result<LiveReplayPlan> PlanLiveReplay(std::span<const TimedPod> pods, const ReplaySelection& sel);

// Trace time as wall time passes: start + elapsed * speed (trace seconds per
// wall second).
class ReplayClock {
 public:
  ReplayClock(int64_t start, double speed) : start_(start), speed_(speed) {}
  double TraceTime(double elapsed_wall_seconds) const {
    return static_cast<double>(start_) + elapsed_wall_seconds * speed_;
  }
  // Wall seconds after the start at which trace time `t` comes.
  double WallOffset(int64_t t) const { return static_cast<double>(t - start_) / speed_; }

 private:
  int64_t start_;
  double speed_;
};

// Hands out each event once, when its time has come.
class ReplayCursor {
 public:
  explicit ReplayCursor(const LiveReplayPlan& plan) : events_(plan.events) {}
  // Events with time <= t not yet handed out, in plan order.
  std::span<const ReplayEvent> Due(double t);
  bool done() const { return next_ == events_.size(); }
  // The next event's time; only when !done().
  int64_t next_time() const { return events_[next_].time; }

 private:
  std::span<const ReplayEvent> events_;
  size_t next_ = 0;
};

// The fake Node an openb node becomes: the GPU product label and instance type
// of the pricing catalogue where the openb model has one (V100M16 ->
// Tesla-V100-SXM2-16GB on p3.*, T4 -> Tesla-T4 on g4dn.*); the anonymised
// models (G2, G3, P100, A10) keep their openb name and have no instance type.
// A shared node time-slices every GPU `replicas` ways (nvidia.com/gpu.shared).
struct FakeNodeShape {
  std::string name;
  std::string gpu_product;
  std::string instance_type;  // "" when the catalogue has none for this shape
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int gpus = 0;
  bool shared = false;
  int replicas = 1;  // > 1 when shared
};
// Node `index` of `count` is shared when floor((index + 1) * fraction) >
// floor(index * fraction): a fraction 0.5 shares every other node.
FakeNodeShape FakeNodeShapeOf(const NodeSpec& node, int index, double shared_fraction,
                              int replicas);
// The nvidia.com/gpu.product label FakeNodeShapeOf gives nodes of an openb
// model: a replayed pod whose gpu_spec names models is held to these products
// by required node affinity.
std::string FakeGpuProduct(std::string_view openb_model);

// Up to `limit` nodes spread evenly over the list (every len/limit-th), so a
// small fleet keeps the trace's mix of models; all when limit <= 0.
std::vector<NodeSpec> SampleNodes(std::span<const NodeSpec> nodes, int limit);

// What an openb pod asks for: whole GPUs (nvidia.com/gpu), or one time-sliced
// share (nvidia.com/gpu.shared: 1 with gpuautoscaler.io/gpu-compute percent),
// or no GPU.
struct FakePodRequest {
  enum class Kind : uint8_t { kNone, kWhole, kShared };
  Kind kind = Kind::kNone;
  int whole_gpus = 0;
  int compute_percent = 0;  // 1..99 when shared
  double gpus() const {
    return kind == Kind::kWhole ? whole_gpus : kind == Kind::kShared ? compute_percent / 100.0 : 0;
  }
};
FakePodRequest FakePodRequestOf(const PodSpec& pod);

// The team a pod is billed to: a stable hash of its name over `teams`.
std::string TeamOf(std::string_view pod_name, std::span<const std::string> teams);

// Counts for the progress view and the summary, fed with what the API says.
struct ReplayCounts {
  int arrived = 0;
  int bound = 0;  // bound now
  int pending = 0;
  int departed = 0;
  int placed = 0;  // ever bound
  double gpus_allocated = 0;
  double peak_gpus_allocated = 0;
};
class ReplayTally {
 public:
  explicit ReplayTally(int pods) : state_(pods, State::kNotYet), gpus_(pods, 0) {}
  void Arrived(int pod, double gpus);
  void Bound(int pod);  // idempotent
  void Departed(int pod);
  const ReplayCounts& counts() const { return counts_; }
  // Pods that arrived and were never bound.
  int never_placed() const { return counts_.arrived - counts_.placed; }

 private:
  enum class State : uint8_t { kNotYet, kPending, kBound, kGone };
  std::vector<State> state_;
  std::vector<double> gpus_;
  std::vector<bool> ever_bound_ = std::vector<bool>(state_.size(), false);
  ReplayCounts counts_;
};

}  // namespace gpu_autoscaler::autoscale
