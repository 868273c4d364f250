// File: scheduler/standalone.h
//
// The standalone scheduler: binds pending pods whose spec.schedulerName is
// ours, one decision at a time over the ClusterCache, with the Bindings sent
// by a pool of workers so that a slow API server does not stall decisions
// (kube-scheduler's assume-then-bind-asynchronously cycle).
//
//   StandaloneScheduler s(cache, hooks, {.scheduler_name = "gpu-autoscaler"}, &metrics);
//   pods->AddEventHandler({.on_add = [&](auto& p) { s.OnPod(p); }, ...});
//   s.Run(stop_token);   // until stopped
//
// Pods are tried highest priority first, in the order they came among
// equals, as kube-scheduler's activeQ with its PrioritySort plugin.
//
// A pod that fits nowhere gets PodScheduled=False (reason Unschedulable, the
// aggregated "0/N nodes are available: ..." message) and a FailedScheduling
// Event, and is retried with per-pod backoff (1 s doubling to 10 s, as
// kube-scheduler's podInitialBackoffSeconds/podMaxBackoffSeconds) and at once
// when a node is added or a pod goes away. The condition is written off the
// loop, by a pool that sends one write per pod at a time and the newest
// message only; a Binding waits for the pod's write under way and drops the
// unsent one, so PodScheduled=False never lands after it. A 409 on bind
// (someone else bound it, or it was recreated) drops the assumption and
// re-reads the pod.
//
// Preemption (StandaloneOptions::preemption): a pod that fits nowhere may
// evict pods of lower priority, as kube-scheduler's DefaultPreemption does
// (preemption.h picks the node and the victims, PodDisruptionBudgets
// respected where possible). Each victim gets DisruptionTarget=True and is
// deleted (up to 16 at once, as kube-scheduler's prepareCandidate; the last
// one only once the others are, and not at all if one of them failed); the
// preemptor is nominated to the node (status.nominatedNodeName),
// whose room the cache keeps for it, and binds there once the victims are
// gone. While a pod it preempted is still terminating it does not preempt
// again. The loop only plans: the API writes (evictions, nominations) run on
// a pool of their own (StandaloneOptions::async_preemption, kube-scheduler's
// asynchronous preemption, KEP-4832), so a slow API server delays the
// preemptor alone, not the pods queued behind it. Until its writes are done
// the preemptor is not tried again; when one fails, the pod's message says
// which, and the next attempt evicts the rest. Pods with preemptionPolicy: Never do not preempt. A
// gang that does not fit preempts as a whole (ClusterCache::PlanGangPreemption): every pending
// member is nominated to the node planned for it, and the victims of all of them are evicted; no
// member preempts on its own.
//
// Gangs: pods with the same gpuautoscaler.io/pod-group (or Volcano's
// scheduling.k8s.io/group-name) in one namespace are placed all or none: the
// scheduler assumes every pending member, and only when all fit does it send
// their Bindings. gpuautoscaler.io/pod-group-min-member sets how many members
// must exist (bound ones count); without it, every member seen must fit.
//
// Thread-safety: OnPod/OnPodDeleted/OnClusterChange are safe from any thread
// (informer handlers); Run is called once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "kube/event_recorder.h"
#include "kube/workqueue.h"
#include "scheduler/binder.h"
#include "scheduler/cluster_cache.h"
#include "scheduler/metrics.h"
#include "scheduler/pod_group.h"

namespace gpu_autoscaler::scheduler {

using PodPtr = std::shared_ptr<const kube::PodView>;

struct StandaloneHooks {
  // The informer's current copy of a pod; null when gone.
  std::function<PodPtr(std::string_view ns, std::string_view name)> get_pod = nullptr;
  // Every pod of a gang (bound or pending) known to the informer.
  std::function<std::vector<PodPtr>(std::string_view ns, std::string_view group)> group_members =
      nullptr;
  std::function<Status(const BindRequest&)> bind = nullptr;
  // Sets PodScheduled=False with this reason and message on the pod.
  std::function<Status(const kube::PodView&, std::string_view reason, std::string_view message)>
      mark_unschedulable = nullptr;
  std::function<void(const kube::PodView&, kube::EventType, std::string reason,
                     std::string message)>
      record_event = nullptr;
  // Preemption. Evicts `victim` to make room for `preemptor` on `node`: the
  // DisruptionTarget condition, then a DELETE that names the victim's UID.
  // A victim already gone is not an error.
  std::function<Status(const kube::PodView& victim, const kube::PodView& preemptor,
                       std::string_view node)>
      evict = nullptr;
  // Sets status.nominatedNodeName ("" clears it).
  std::function<Status(std::string_view ns, std::string_view name, std::string_view node)>
      nominate = nullptr;
  // The PodDisruptionBudgets to respect where possible; none when unset.
  std::function<std::vector<DisruptionBudget>()> disruption_budgets = nullptr;
};

struct StandaloneOptions {
  std::string scheduler_name = "gpu-autoscaler";
  std::string policy_name = "FragLookahead";
  int bind_workers = 16;
  Clock* clock = &RealClock::Instance();
  Clock::Duration initial_backoff = std::chrono::seconds(1);
  Clock::Duration max_backoff = std::chrono::seconds(10);
  bool preemption = true;  // needs hooks.evict and hooks.nominate
  // Preemption's API writes off the scheduling loop (false: the loop waits
  // for them, as kube-scheduler before v1.33).
  bool async_preemption = true;
  int preemption_workers = 4;  // preemptions whose writes run at once
  // PodScheduled=False written off the loop (false: the loop writes it).
  bool async_status_writes = true;
  int status_workers = 8;  // such writes sent at once
};

class StandaloneScheduler {
 public:
  StandaloneScheduler(ClusterCache& cache, StandaloneHooks hooks, StandaloneOptions options,
                      SchedulerMetrics* metrics);
  ~StandaloneScheduler();

  // Informer feed: queues the pod when it is pending and ours.
  void OnPod(const PodPtr& pod);
  // A node appeared or capacity was freed: retry unschedulable pods now.
  void OnClusterChange();

  // Runs the scheduling loop until `stop`; then drains in-flight bindings.
  void Run(std::stop_token stop);

  // Pods waiting (queued, backing off or unschedulable).
  size_t pending() const;

 private:
  class WorkerPool;
  struct Attempt {
    PodPtr pod{};
    PlacementChoice choice;
  };

  bool Ours(const kube::PodView& pod) const;
  void ScheduleOne(const std::string& key, const PodPtr& pod);
  void ScheduleGroup(const PodGroupRef& group, const PodPtr& trigger);
  void Unschedulable(const std::string& key, const PodPtr& pod, const std::string& message);
  // Writes PodScheduled=False off the loop (kube-scheduler's API dispatcher,
  // KEP-5229): one write per pod at a time, and a newer message replaces one
  // not yet sent.
  void WriteUnschedulable(const std::string& key, PodPtr pod, std::string message);
  void DrainStatusWrites(const std::string& key);
  // Before a Binding: drops the pod's unsent status write and waits for one
  // being sent, so that PodScheduled=False never lands after the Binding.
  void SettleStatusWrites(const std::string& key);
  // Tries preemption for a pod that fits nowhere (`fit_error` says why),
  // nominated to `nominated` ("" when not); returns what happened, to follow
  // the fit error in the pod's message ("" when it does not apply).
  std::string Preempt(const PodPtr& pod, const std::string& nominated,
                      const std::string& fit_error);
  // The same for a pod group whose pending members do not all fit.
  std::string PreemptGroup(const PodGroupRef& group, const std::vector<PodPtr>& pending,
                           const std::string& fit_error);
  // Evicts one victim for `preemptor` on `node`, with the Event.
  Status Evict(const PreemptionVictim& victim, const kube::PodView& preemptor,
               const std::string& node);
  struct Eviction {
    const PreemptionVictim* victim = nullptr;
    const kube::PodView* preemptor = nullptr;
    const std::string* node = nullptr;
  };
  static constexpr size_t kEvictionWorkers = 16;
  // Evicts them all, up to kEvictionWorkers at once, and waits. "" when every
  // one went; else what failed first in their order. `evicted` counts those
  // that went.
  std::string EvictAll(const std::vector<Eviction>& evictions, int* evicted);
  // The API writes of one planned preemption, in this order: the preemptors'
  // nominations written and the nominations they displaced cleared, then the
  // victims evicted.
  struct PreemptionWrites {
    std::shared_ptr<const void> plan{};  // owns what `evictions` points into
    std::vector<Eviction> evictions{};
    std::vector<std::pair<PodPtr, std::string>> nominations{};  // pod, node
    std::vector<std::string> dropped{};                         // "ns/name"
    std::vector<PodPtr> preemptors{};
    std::string fit_error{};  // what the preemptors' message starts with
  };
  // Runs `writes`: at once when synchronous, returning "" or what failed;
  // else on the preemption pool, returning "", with the preemptors held out
  // of the loop until it is done.
  std::string StartPreemption(PreemptionWrites writes);
  // Runs them and counts the outcome; "" or what failed.
  std::string WritePreemption(const PreemptionWrites& writes);
  // Tells the cache the victims are going (or, after a failure, not all).
  void MarkEvicting(const PreemptionWrites& writes, bool evicting);
  // Whether any of these pods' preemption writes are still under way; if
  // so, `key` waits for them to end (they queue it again).
  bool HeldForPreemption(const std::string& key, const std::vector<PodPtr>& pods);
  // Where `pod` goes now: its nominated node ("" when none) first, as
  // kube-scheduler's evaluateNominatedNode, then anywhere.
  Result<PlacementChoice> Choose(const kube::PodView& pod, const std::string& nominated);
  // Drops the nominations `dropped` ("ns/name") from the pods' status.
  void ClearNominations(const std::vector<std::string>& dropped);
  void StartBind(const std::string& key, Attempt attempt);
  // The queue's ranking: the priority the pod had when last seen (0 unknown).
  int64_t QueuedPriority(const std::string& key) const;
  void ForgetPriority(const std::string& key);

  ClusterCache& cache_;
  StandaloneHooks hooks_;
  StandaloneOptions options_;
  SchedulerMetrics* metrics_;
  kube::WorkQueue queue_;
  std::unique_ptr<WorkerPool> binds_{};
  std::unique_ptr<WorkerPool> preemptions_{};
  std::unique_ptr<WorkerPool> status_writes_{};
  struct StatusWrite {
    PodPtr pod{};
    std::string message{};
    bool unsent = false;   // a message waits to be sent
    bool queued = false;   // a worker is to drain this pod's writes
    bool sending = false;  // one is being sent now
  };
  std::mutex status_mu_;
  std::condition_variable status_sent_;
  std::unordered_map<std::string, StatusWrite> status_{};  // by pod key
  mutable std::mutex mu_;
  std::set<std::string> unschedulable_{};                       // keys waiting for a change
  std::unordered_map<std::string, std::string> last_reason_{};  // key -> message last written
  std::set<std::string> preempting_{};  // keys whose preemption writes are under way
  // Taken under the queue's lock: never held while calling the queue.
  mutable std::mutex priority_mu_;
  std::unordered_map<std::string, int32_t> priorities_{};  // key -> spec.priority
};

}  // namespace gpu_autoscaler::scheduler
