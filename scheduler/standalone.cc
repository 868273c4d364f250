#include "scheduler/standalone.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <thread>

#include "kube/queue_rate_limiter.h"

namespace gpu_autoscaler::scheduler {
namespace {

std::string PodKey(const kube::PodView& pod) {
  return std::string(pod.ns()) + "/" + std::string(pod.name());
}

double Seconds(Clock::Duration d) {
  return std::chrono::duration<double>(d).count();
}

// ", all of pod group(s) a, b: they cannot run without a member evicted"
// for the groups whose victims go whole; "" when none does.
std::string WholeGroups(const std::set<std::string>& groups) {
  if (groups.empty()) return "";
  std::string text;
  for (const std::string& g : groups)
    text += (text.empty() ? "" : ", ") + g;
  return ", all of pod group(s) " + text + ": they cannot run without a member evicted";
}

SchedulerMetrics* NoMetrics() {
  static SchedulerMetrics none(nullptr);
  return &none;
}

}  // namespace

// A fixed pool of threads that run queued work: Bindings, or preemptions'
// API writes.
class StandaloneScheduler::WorkerPool {
 public:
  explicit WorkerPool(int workers) {
    for (int i = 0; i < std::max(workers, 1); ++i)
      threads_.emplace_back([this] { Work(); });
  }
  ~WorkerPool() { Drain(); }

  void Submit(std::function<void()> work) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(work));
    }
    cv_.notify_one();
  }

  // Finishes queued work, then joins the threads.
  void Drain() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    threads_.clear();  // joins
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> work;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
        if (queue_.empty()) return;
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      work();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool closing_ = false;
  std::vector<std::jthread> threads_;
};

StandaloneScheduler::StandaloneScheduler(ClusterCache& cache, StandaloneHooks hooks,
                                         StandaloneOptions options, SchedulerMetrics* metrics)
    : cache_(cache),
      hooks_(std::move(hooks)),
      options_(std::move(options)),
      metrics_(metrics != nullptr ? metrics : NoMetrics()),
      queue_(kube::WorkQueueOptions{
          .name = "scheduler",
          .clock = options_.clock,
          .rate_limiter = std::make_unique<kube::ItemExponentialFailureRateLimiter>(
              options_.initial_backoff, options_.max_backoff),
          .priority = [this](const std::string& key) { return QueuedPriority(key); }}),
      binds_(std::make_unique<WorkerPool>(options_.bind_workers)),
      preemptions_(options_.async_preemption
                       ? std::make_unique<WorkerPool>(options_.preemption_workers)
                       : nullptr),
      status_writes_(options_.async_status_writes
                         ? std::make_unique<WorkerPool>(options_.status_workers)
                         : nullptr) {}

StandaloneScheduler::~StandaloneScheduler() {
  queue_.ShutDown();
  if (preemptions_) preemptions_->Drain();
  if (status_writes_) status_writes_->Drain();
  binds_->Drain();
}

bool StandaloneScheduler::Ours(const kube::PodView& pod) const {
  return pod.scheduler_name() == options_.scheduler_name && pod.node_name().empty() &&
         !pod.terminating() && pod.phase() != kube::PodPhase::kSucceeded &&
         pod.phase() != kube::PodPhase::kFailed;
}

void StandaloneScheduler::OnPod(const PodPtr& pod) {
  if (!Ours(*pod)) return;
  std::string key = PodKey(*pod);
  {
    std::lock_guard<std::mutex> lock(priority_mu_);
    priorities_[key] = PriorityOf(*pod);
  }
  queue_.Add(key);
}

int64_t StandaloneScheduler::QueuedPriority(const std::string& key) const {
  std::lock_guard<std::mutex> lock(priority_mu_);
  auto it = priorities_.find(key);
  return it == priorities_.end() ? 0 : it->second;
}

void StandaloneScheduler::ForgetPriority(const std::string& key) {
  std::lock_guard<std::mutex> lock(priority_mu_);
  priorities_.erase(key);
}

void StandaloneScheduler::OnClusterChange() {
  std::set<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keys.swap(unschedulable_);
  }
  for (const std::string& key : keys)
    queue_.Add(key);
}

size_t StandaloneScheduler::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.Len() + queue_.NumWaiting() + unschedulable_.size();
}

void StandaloneScheduler::Run(std::stop_token stop) {
  std::stop_callback shutdown(stop, [this] { queue_.ShutDown(); });
  std::string key;
  while (queue_.Get(&key)) {
    size_t slash = key.find('/');
    PodPtr pod = hooks_.get_pod(std::string_view(key).substr(0, slash),
                                std::string_view(key).substr(slash + 1));
    if (pod == nullptr || !Ours(*pod)) {
      queue_.Forget(key);
      ForgetPriority(key);
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_reason_.erase(key);
      }
      queue_.Done(key);
      continue;
    }
    PodGroupRef group = PodGroupOf(*pod);
    if (HeldForPreemption(key, {pod})) {
      // Its victims are still being evicted; the writes queue it again.
    } else if (!group.key.empty() && group.error.empty()) {
      ScheduleGroup(group, pod);
    } else if (!group.error.empty()) {
      metrics_->Attempt("unschedulable", 0);
      Unschedulable(key, pod, group.error);
    } else {
      ScheduleOne(key, pod);
    }
    queue_.Done(key);
    metrics_->PendingPods(static_cast<double>(pending()));
  }
  if (preemptions_) preemptions_->Drain();
  if (status_writes_) status_writes_->Drain();
  binds_->Drain();
}

void StandaloneScheduler::ScheduleOne(const std::string& key, const PodPtr& pod) {
  // Its Binding is in flight (the informer has not shown it bound yet): its
  // own room would make it fit nowhere, and it must not preempt for that.
  if (cache_.Accounted(pod->ns(), pod->name())) return;
  const Clock::TimePoint start = options_.clock->Now();
  const std::string nominated = cache_.NominatedNode(pod->ns(), pod->name());
  Result<PlacementChoice> choice = Choose(*pod, nominated);
  if (!choice.ok()) {
    std::string message = choice.error().message();
    if (options_.preemption && hooks_.evict && hooks_.nominate) {
      if (std::string preemption = Preempt(pod, nominated, message); !preemption.empty()) {
        message += " " + preemption;
      }
    }
    metrics_->Attempt("unschedulable", Seconds(options_.clock->Now() - start));
    Unschedulable(key, pod, message);
    return;
  }
  Status assumed = cache_.Assume(pod, *choice);
  if (assumed.code() == StatusCode::kAlreadyExists) return;  // its Binding is in flight
  if (!assumed.ok()) {
    metrics_->Attempt("error", Seconds(options_.clock->Now() - start));
    queue_.AddRateLimited(key);
    return;
  }
  metrics_->Attempt("scheduled", Seconds(options_.clock->Now() - start));
  StartBind(key, Attempt{pod, std::move(choice).value()});
}

void StandaloneScheduler::ScheduleGroup(const PodGroupRef& group, const PodPtr& trigger) {
  const Clock::TimePoint start = options_.clock->Now();
  std::vector<PodPtr> members = hooks_.group_members(trigger->ns(), group.name);
  std::vector<PodPtr> pending;
  int bound = 0;
  for (const PodPtr& m : members) {
    if (!m->node_name().empty() || cache_.Accounted(m->ns(), m->name())) {
      ++bound;  // bound, or its Binding in flight
    } else if (Ours(*m)) {
      pending.push_back(m);
    }
  }
  if (pending.empty()) return;  // every member placed
  std::sort(pending.begin(), pending.end(),
            [](const PodPtr& a, const PodPtr& b) { return a->name() < b->name(); });
  if (HeldForPreemption(PodKey(*trigger), pending)) return;
  auto fail_all = [&](const std::string& message) {
    metrics_->Attempt("unschedulable", Seconds(options_.clock->Now() - start));
    for (const PodPtr& m : pending)
      Unschedulable(PodKey(*m), m, message);
  };
  const int need = group.min_member > 0 ? group.min_member - bound : 0;
  if (static_cast<int>(pending.size()) < need) {
    fail_all("pod group " + group.key + ": " + std::to_string(bound + pending.size()) + " of " +
             std::to_string(group.min_member) + " members exist; waiting for " +
             std::to_string(need - static_cast<int>(pending.size())) + " more");
    return;
  }
  // Assume every pending member; all or none.
  std::vector<Attempt> placed;
  for (const PodPtr& m : pending) {
    Result<PlacementChoice> choice = Choose(*m, cache_.NominatedNode(m->ns(), m->name()));
    Status assumed = choice.ok() ? cache_.Assume(m, *choice) : choice.error();
    if (assumed.code() == StatusCode::kAlreadyExists) continue;  // in flight from an earlier pass
    if (!assumed.ok()) {
      for (const Attempt& a : placed)
        cache_.Forget(a.pod->ns(), a.pod->name());
      std::string message = "pod group " + group.key + " cannot be placed all together (" +
                            std::to_string(pending.size()) +
                            " pending members): " + std::string(m->name()) + ": " +
                            assumed.message();
      if (options_.preemption && hooks_.evict && hooks_.nominate) {
        if (std::string preemption = PreemptGroup(group, pending, message); !preemption.empty()) {
          message += " " + preemption;
        }
      }
      fail_all(message);
      return;
    }
    placed.push_back(Attempt{m, std::move(choice).value()});
  }
  metrics_->Attempt("scheduled", Seconds(options_.clock->Now() - start));
  for (Attempt& a : placed) {
    std::string key = PodKey(*a.pod);
    StartBind(key, std::move(a));
  }
}

std::string StandaloneScheduler::Preempt(const PodPtr& pod, const std::string& nominated,
                                         const std::string& fit_error) {
  if (pod->never_preempts()) return "preemption: not eligible due to preemptionPolicy=Never.";
  const int32_t priority = PriorityOf(*pod);
  if (!nominated.empty() && cache_.PreemptionUnderWay(nominated, priority)) {
    metrics_->Preemption("waiting", 0);
    return "preemption: waiting for the pods it preempted on node \"" + nominated +
           "\" to terminate.";
  }
  std::vector<DisruptionBudget> budgets;
  if (hooks_.disruption_budgets) budgets = hooks_.disruption_budgets();
  Result<PreemptionPlan> plan = cache_.PlanPreemption(*pod, budgets);
  if (!plan.ok()) {
    if (plan.error().code() == StatusCode::kInvalidArgument) return "";  // the pod itself is wrong
    metrics_->Preemption("no_candidate", 0);
    if (!nominated.empty()) {
      // Its room there is no use to it any more: free it for others, as
      // kube-scheduler clears the nomination when preemption finds nothing.
      cache_.ClearNomination(pod->ns(), pod->name());
      (void)hooks_.nominate(pod->ns(), pod->name(), "");
    }
    return "preemption: " + plan.error().message();
  }
  auto planned = std::make_shared<const PreemptionPlan>(std::move(plan).value());
  // Nominated first, so that the room is kept for it from the moment the
  // victims start to go.
  PreemptionWrites writes{.plan = planned,
                          .nominations = {{pod, planned->node}},
                          .dropped = cache_.Nominate(pod, planned->node),
                          .preemptors = {pod},
                          .fit_error = fit_error};
  std::string names;
  std::set<std::string> whole_groups;
  for (const PreemptionVictim& victim : planned->victims) {
    names += (names.empty() ? "" : ", ") + PodKey(*victim.pod);
    if (!victim.pod_group.empty()) whole_groups.insert(victim.pod_group);
    writes.evictions.push_back({.victim = &victim, .preemptor = pod.get(), .node = &planned->node});
  }
  MarkEvicting(writes, true);
  if (std::string failed = StartPreemption(std::move(writes)); !failed.empty()) return failed;
  std::string text = "preemption: evicting " + std::to_string(planned->victims.size()) +
                     " pod(s) of lower priority on node \"" + planned->node + "\" (" + names + ")" +
                     WholeGroups(whole_groups);
  if (planned->budget_violations > 0) {
    text += ", " + std::to_string(planned->budget_violations) +
            " of them past their PodDisruptionBudget (no node could do without)";
  }
  return text + "; the pod is nominated there.";
}

std::string StandaloneScheduler::PreemptGroup(const PodGroupRef& group,
                                              const std::vector<PodPtr>& pending,
                                              const std::string& fit_error) {
  for (const PodPtr& m : pending) {
    if (m->never_preempts()) {
      return "preemption: not eligible due to preemptionPolicy=Never (" + PodKey(*m) + ").";
    }
    const std::string nominated = cache_.NominatedNode(m->ns(), m->name());
    if (!nominated.empty() && cache_.PreemptionUnderWay(nominated, PriorityOf(*m))) {
      metrics_->Preemption("waiting", 0);
      return "preemption: waiting for the pods the group preempted on node \"" + nominated +
             "\" to terminate.";
    }
  }
  std::vector<DisruptionBudget> budgets;
  if (hooks_.disruption_budgets) budgets = hooks_.disruption_budgets();
  Result<GangPreemptionPlan> result = cache_.PlanGangPreemption(pending, std::move(budgets));
  if (!result.ok()) {
    if (result.error().code() == StatusCode::kInvalidArgument) return "";
    metrics_->Preemption("no_candidate", 0);
    std::vector<std::string> nominated;
    for (const PodPtr& m : pending) {
      if (cache_.NominatedNode(m->ns(), m->name()).empty()) continue;
      cache_.ClearNomination(m->ns(), m->name());
      nominated.push_back(PodKey(*m));
    }
    ClearNominations(nominated);
    return "preemption: the pod group cannot be placed even by evicting pods of lower "
           "priority: " +
           result.error().message();
  }
  auto plan = std::make_shared<const GangPreemptionPlan>(std::move(result).value());
  // Every member is nominated first (so the room is kept for all of them),
  // then the victims go. Higher priorities first: a nomination drops the
  // lower ones on its node, and must not drop a member's made just before.
  std::vector<const GangPreemptionPlan::Member*> by_priority;
  std::set<std::string> members;
  for (const GangPreemptionPlan::Member& m : plan->members) {
    by_priority.push_back(&m);
    members.insert(PodKey(*m.pod));
  }
  std::stable_sort(by_priority.begin(), by_priority.end(), [](const auto* a, const auto* b) {
    return PriorityOf(*a->pod) > PriorityOf(*b->pod);
  });
  PreemptionWrites writes{.plan = plan, .preemptors = pending, .fit_error = fit_error};
  std::set<std::string> nodes;
  for (const GangPreemptionPlan::Member* m : by_priority) {
    for (std::string& key : cache_.Nominate(m->pod, m->node)) {
      if (!members.count(key)) writes.dropped.push_back(std::move(key));  // a member's stale one
    }
    nodes.insert(m->node);
  }
  for (const GangPreemptionPlan::Member& m : plan->members)
    writes.nominations.emplace_back(m.pod, m.node);
  std::string names;
  std::set<std::string> whole_groups;
  for (const GangPreemptionPlan::Victim& v : plan->victims) {
    names += (names.empty() ? "" : ", ") + PodKey(*v.victim.pod);
    if (!v.victim.pod_group.empty()) whole_groups.insert(v.victim.pod_group);
    writes.evictions.push_back(
        {.victim = &v.victim, .preemptor = v.preemptor.get(), .node = &v.node});
  }
  MarkEvicting(writes, true);
  if (std::string failed = StartPreemption(std::move(writes)); !failed.empty()) return failed;
  std::string where;
  for (const std::string& node : nodes)
    where += (where.empty() ? "\"" : ", \"") + node + "\"";
  std::string text = "preemption: evicting " + std::to_string(plan->victims.size()) +
                     " pod(s) of lower priority for pod group " + group.key + " on node(s) " +
                     where + " (" + names + ")" + WholeGroups(whole_groups);
  if (plan->budget_violations > 0) {
    text += ", " + std::to_string(plan->budget_violations) +
            " of them past their PodDisruptionBudget (no node could do without)";
  }
  return text + "; its members are nominated there.";
}

Result<PlacementChoice> StandaloneScheduler::Choose(const kube::PodView& pod,
                                                    const std::string& nominated) {
  // The room its victims left is kept for it there.
  if (!nominated.empty()) {
    Result<PlacementChoice> there = cache_.PlanOn(pod, nominated, /*predicates=*/true);
    if (there.ok()) return there;
  }
  return cache_.Select(pod, /*predicates=*/true);
}

std::string StandaloneScheduler::StartPreemption(PreemptionWrites writes) {
  if (!preemptions_) return WritePreemption(writes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const PodPtr& pod : writes.preemptors)
      preempting_.insert(PodKey(*pod));
  }
  preemptions_->Submit([this, writes = std::move(writes)] {
    const std::string failed = WritePreemption(writes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const PodPtr& pod : writes.preemptors)
        preempting_.erase(PodKey(*pod));
    }
    for (const PodPtr& pod : writes.preemptors) {
      if (!failed.empty()) {
        Unschedulable(PodKey(*pod), pod, writes.fit_error + " " + failed);
      } else {
        // Tried again after its backoff, or at once when a victim is gone
        // (it is among the unschedulable ones). Not now: the informer may
        // not show the victims terminating yet, and it would preempt again.
        queue_.AddRateLimited(PodKey(*pod));
      }
    }
  });
  return "";
}

std::string StandaloneScheduler::WritePreemption(const PreemptionWrites& writes) {
  const Clock::TimePoint start = options_.clock->Now();
  // The nominations first, as kube-scheduler writes them with the pod's
  // condition before its preemption goroutine evicts: whoever watches sees
  // where the pod is going while its victims go.
  for (const auto& [pod, node] : writes.nominations)
    (void)hooks_.nominate(pod->ns(), pod->name(), node);
  ClearNominations(writes.dropped);
  int evicted = 0;
  std::string failed = EvictAll(writes.evictions, &evicted);
  if (!failed.empty()) MarkEvicting(writes, false);  // the next attempt plans again
  metrics_->Preemption(failed.empty() ? "preempted" : "error", evicted);
  metrics_->PreemptionWrites(failed.empty() ? "success" : "error",
                             Seconds(options_.clock->Now() - start));
  return failed;
}

void StandaloneScheduler::MarkEvicting(const PreemptionWrites& writes, bool evicting) {
  std::vector<std::string> keys;
  for (const Eviction& e : writes.evictions)
    keys.push_back(PodKey(*e.victim->pod));
  cache_.MarkEvicting(keys, evicting);
}

bool StandaloneScheduler::HeldForPreemption(const std::string& key,
                                            const std::vector<PodPtr>& pods) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const PodPtr& pod : pods) {
    if (preempting_.count(PodKey(*pod))) {
      unschedulable_.insert(key);
      return true;
    }
  }
  return false;
}

std::string StandaloneScheduler::EvictAll(const std::vector<Eviction>& evictions, int* evicted) {
  // kube-scheduler's prepareCandidate deletes the victims through its
  // parallelizer, 16 at a time; so do we. Since kubernetes#135495 it deletes
  // the last victim only once the others are gone: if one of them failed, the
  // pod will not fit this time anyway, and the last victim keeps running.
  std::vector<Status> results(evictions.size());
  const size_t first = evictions.size() > 1 ? evictions.size() - 1 : evictions.size();
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < first; i = next++) {
      const Eviction& e = evictions[i];
      results[i] = Evict(*e.victim, *e.preemptor, *e.node);
    }
  };
  {
    std::vector<std::jthread> helpers;
    for (size_t i = 1; i < std::min(kEvictionWorkers, first); ++i)
      helpers.emplace_back(work);
    work();
  }  // joins
  if (first < evictions.size()) {
    const bool all_gone = std::all_of(results.begin(), results.begin() + static_cast<long>(first),
                                      [](const Status& s) { return s.ok(); });
    const Eviction& last = evictions.back();
    results.back() = all_gone ? Evict(*last.victim, *last.preemptor, *last.node)
                              : FailedPreconditionError("skipped: an earlier eviction failed");
  }
  *evicted = 0;
  std::string failed;
  for (size_t i = 0; i < evictions.size(); ++i) {
    if (results[i].ok()) {
      ++*evicted;
    } else if (failed.empty()) {
      failed = "preemption: evicting " + PodKey(*evictions[i].victim->pod) + " from node \"" +
               *evictions[i].node + "\" failed: " + results[i].message();
    }
  }
  return failed;
}

Status StandaloneScheduler::Evict(const PreemptionVictim& victim, const kube::PodView& preemptor,
                                  const std::string& node) {
  GPU_RETURN_IF_ERROR(hooks_.evict(*victim.pod, preemptor, node));
  if (hooks_.record_event) {
    // kube-scheduler's words, as recorded from a real one.
    std::string message = "Preempted by " + PodKey(preemptor) + " on node " + node;
    if (!victim.pod_group.empty()) {
      message += ", with all of pod group " + victim.pod_group +
                 ", which cannot run without "
                 "a member evicted there";
    }
    hooks_.record_event(*victim.pod, kube::EventType::kNormal, "Preempted", std::move(message));
  }
  return Status::Ok();
}

void StandaloneScheduler::ClearNominations(const std::vector<std::string>& dropped) {
  for (const std::string& key : dropped) {
    const size_t slash = key.find('/');
    (void)hooks_.nominate(std::string_view(key).substr(0, slash),
                          std::string_view(key).substr(slash + 1), "");
  }
}

void StandaloneScheduler::Unschedulable(const std::string& key, const PodPtr& pod,
                                        const std::string& message) {
  bool changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string& last = last_reason_[key];
    changed = last != message;
    last = message;
    unschedulable_.insert(key);
  }
  if (changed) {  // the same verdict again is not worth a write
    if (hooks_.mark_unschedulable) WriteUnschedulable(key, pod, message);
    if (hooks_.record_event) {
      hooks_.record_event(*pod, kube::EventType::kWarning, "FailedScheduling", message);
    }
  }
  queue_.AddRateLimited(key);
}

void StandaloneScheduler::WriteUnschedulable(const std::string& key, PodPtr pod,
                                             std::string message) {
  if (!status_writes_) {
    (void)hooks_.mark_unschedulable(*pod, "Unschedulable", message);
    return;
  }
  bool submit;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    StatusWrite& write = status_[key];
    write.pod = std::move(pod);
    write.message = std::move(message);
    write.unsent = true;
    submit = !write.queued;
    write.queued = true;
  }
  if (submit) status_writes_->Submit([this, key] { DrainStatusWrites(key); });
}

void StandaloneScheduler::DrainStatusWrites(const std::string& key) {
  std::unique_lock<std::mutex> lock(status_mu_);
  for (;;) {
    auto it = status_.find(key);
    if (it == status_.end()) return;
    if (!it->second.unsent) {
      status_.erase(it);
      return;
    }
    PodPtr pod = it->second.pod;
    const std::string message = std::move(it->second.message);
    it->second.unsent = false;
    it->second.sending = true;
    lock.unlock();
    (void)hooks_.mark_unschedulable(*pod, "Unschedulable", message);
    lock.lock();
    status_[key].sending = false;  // only this worker erases the entry
    status_sent_.notify_all();
  }
}

void StandaloneScheduler::SettleStatusWrites(const std::string& key) {
  std::unique_lock<std::mutex> lock(status_mu_);
  auto it = status_.find(key);
  if (it == status_.end()) return;
  it->second.unsent = false;
  status_sent_.wait(lock, [&] {
    auto now = status_.find(key);
    return now == status_.end() || !now->second.sending;
  });
}

void StandaloneScheduler::StartBind(const std::string& key, Attempt attempt) {
  binds_->Submit([this, key, attempt = std::move(attempt)] {
    SettleStatusWrites(key);
    const kube::PodView& pod = *attempt.pod;
    const PlacementChoice& choice = attempt.choice;
    Status status = cache_.HasNode(choice.node)
                        ? hooks_.bind(BindRequest{.ns = std::string(pod.ns()),
                                                  .name = std::string(pod.name()),
                                                  .uid = std::string(pod.uid()),
                                                  .node = choice.node,
                                                  .gpus = choice.gpus,
                                                  .placement = options_.policy_name + " score " +
                                                               std::to_string(choice.score)})
                        : NotFoundError("node \"" + choice.node + "\" was deleted before binding");
    if (status.ok()) {
      metrics_->Bind("bound");
      metrics_->FragmentationAfterBind([this] { return cache_.FragmentationRatio(); });
      queue_.Forget(key);
      ForgetPriority(key);
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_reason_.erase(key);
        unschedulable_.erase(key);
      }
      if (hooks_.record_event) {
        std::string message = "Successfully assigned " + key + " to " + choice.node;
        if (!choice.gpus.empty()) {
          message += " on GPUs " + FormatGpuIndices(choice.gpus) +
                     (choice.nvlink_island ? " (one NVLink island)" : "");
        }
        message += "; " + options_.policy_name + " score " + std::to_string(choice.score);
        if (!choice.rejected.empty()) message += "; other nodes: " + choice.rejected;
        hooks_.record_event(pod, kube::EventType::kNormal, "Scheduled", std::move(message));
      }
      return;
    }
    cache_.Forget(pod.ns(), pod.name());
    metrics_->Bind(status.code() == StatusCode::kAborted ? "conflict" : "error");
    if (hooks_.record_event) {
      hooks_.record_event(pod, kube::EventType::kWarning, "FailedBinding", status.message());
    }
    // A 409 or a vanished node: read the pod again (the informer may show it
    // bound by someone else, then the loop drops it).
    queue_.AddRateLimited(key);
  });
}

}  // namespace gpu_autoscaler::scheduler
