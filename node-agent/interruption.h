// File: node-agent/interruption.h
//
// Spot interruption handling on the node: poll the cloud's notice (an
// InterruptionSource from src/cloud) and, on a notice that the instance goes,
// drain the node before it does:
//   1. taint it gpu-autoscaler.io/interruption:NoSchedule, cordon it, and
//      annotate the notice (the GPUNodePool controller orders replacement
//      capacity from that annotation at once);
//   2. evict its pods through the Eviction API (PodDisruptionBudgets are the
//      API server's to enforce; a blocked eviction is retried until the
//      deadline) in Karpenter's four waves, each started when every eviction
//      of the one before was accepted (pods then terminate with their grace
//      period; waiting for them to be gone would let the notice run out
//      before the critical pods' turn): non-critical pods, non-critical DaemonSet pods, critical
//      pods, critical DaemonSet pods ("critical": priority class system-cluster-critical or
//      system-node-critical). Within a wave the highest priority goes first, so with GCP's and
//      Azure's ~30 s notices the pods that matter most get out;
//   3. record an Event and metrics with what was drained in time.
// Mirror (static) pods, finished pods and pods that tolerate the taint stay.
// A rebalance recommendation only records an Event (Karpenter: NoAction).
//
//   InterruptionHandler handler(client, recorder, {.node_name = "gpu-1"});
//   handler.Run(source, stop);  // polls every options.poll_interval
//
// Thread-safety: PlanDrainWaves is pure. One thread calls Run or Drain;
// counters may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "cloud/node_group.h"
#include "common/clock.h"
#include "common/status.h"

namespace gpu_autoscaler::kube {
class EventRecorder;
class RestClient;
}  // namespace gpu_autoscaler::kube

namespace gpu_autoscaler::node_agent {

struct DrainCandidate {
  std::string ns;
  std::string name;
  int32_t priority = 0;
  bool critical = false;   // system-cluster-critical / system-node-critical
  bool daemonset = false;  // owned by a DaemonSet
  bool skip = false;       // mirror pod, finished, or tolerates the taint
};

// Indices into `pods`, wave by wave (empty waves are dropped).
std::vector<std::vector<size_t>> PlanDrainWaves(const std::vector<DrainCandidate>& pods);

// Reads a pod object into a candidate.
DrainCandidate DrainCandidateOf(const nlohmann::json& pod);

struct DrainReport {
  int pods = 0;         // pods to evict (not skipped)
  int evicted = 0;      // evictions accepted (or the pod was already gone)
  int blocked_pdb = 0;  // still refused by a PodDisruptionBudget at the deadline
  int failed = 0;       // other errors
  std::chrono::milliseconds took{0};
  bool in_time = false;  // everything evicted before the notice's deadline
};

struct InterruptionOptions {
  std::string node_name;
  std::chrono::milliseconds poll_interval{5000};
  // Used when the notice names no time (GCP's preempted flag): the cloud's
  // usual warning.
  std::chrono::seconds default_notice{30};
  int eviction_parallelism = 16;
  std::chrono::milliseconds pdb_retry{1000};
  Clock* clock = &RealClock::Instance();
};

class InterruptionHandler {
 public:
  // `client` and `recorder` (may be null) must outlive the handler.
  InterruptionHandler(kube::RestClient& client, kube::EventRecorder* recorder,
                      InterruptionOptions options);

  // Polls `source` until `stop`; drains once on the first notice that the
  // instance goes. Poll errors are logged and retried.
  void Run(cloud::InterruptionSource& source, std::stop_token stop);

  // Taints, cordons and evicts now. Errors only when the node cannot be read
  // or marked; eviction outcomes are in the report.
  Result<DrainReport> Drain(const cloud::InterruptionNotice& notice, std::stop_token stop = {});

  int64_t notices() const { return notices_.load(); }
  int64_t drains() const { return drains_.load(); }

 private:
  Status MarkNode(const cloud::InterruptionNotice& notice);

  kube::RestClient& client_;
  kube::EventRecorder* recorder_;
  InterruptionOptions options_;
  std::atomic<int64_t> notices_{0};
  std::atomic<int64_t> drains_{0};
};

}  // namespace gpu_autoscaler::node_agent
