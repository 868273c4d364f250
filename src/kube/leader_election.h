// File: src/kube/leader_election.h
//
// Leader election on a coordination.k8s.io/v1 Lease, with client-go's
// semantics and defaults (LeaseDuration 15 s, RenewDeadline 10 s,
// RetryPeriod 2 s). Expiry is judged from when *this* candidate last saw the
// record change, on the injected monotonic Clock, never from the server's
// timestamps (clocks of different machines disagree).
//
//   auto leases = NewRestLeaseClient(client, "kube-system", "gpu-autoscaler");
//   LeaderElector elector(*leases, {.identity = hostname,
//                                   .release_on_cancel = true,
//                                   .on_started_leading = [&](std::stop_token s) { Run(s); }});
//   elector.Run(stop);  // returns when stopped or leadership is lost
//
// The decision is pure (`DecideLeaseAction`) and separate from the apply
// layer (LeaderElector), which reads and writes through a LeaseClient.
//
// Thread-safety: Decide* and the time helpers are pure. LeaderElector::Run
// runs on one thread; IsLeader()/Leader() may be called from any thread.
// LeaseClient implementations are thread-compatible (one elector each).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "kube/error.h"
#include "kube/meta_time.h"

namespace gpu_autoscaler::kube {

class RestClient;

// The Lease spec fields the election uses.
struct LeaderElectionRecord {
  std::string holder_identity{};
  int lease_duration_seconds = 0;
  std::optional<Clock::WallTime> acquire_time{};
  std::optional<Clock::WallTime> renew_time{};
  int lease_transitions = 0;
  friend bool operator==(const LeaderElectionRecord&, const LeaderElectionRecord&) = default;
};

// A Lease as read from the server.
struct ObservedLease {
  LeaderElectionRecord record{};
  std::string resource_version{};
};

// Reads and writes one Lease. Errors are kube::Error: Get's NotFound is
// reported as an empty optional, Update's stale resourceVersion as Conflict.
class LeaseClient {
 public:
  virtual ~LeaseClient() = default;
  virtual Result<std::optional<ObservedLease>> Get() = 0;
  virtual Result<ObservedLease> Create(const LeaderElectionRecord& record) = 0;
  virtual Result<ObservedLease> Update(const LeaderElectionRecord& record,
                                       const std::string& resource_version) = 0;
  // "namespace/name", for logs.
  virtual std::string Describe() const = 0;
};

// A LeaseClient over the REST API (`client` must outlive it).
std::unique_ptr<LeaseClient> NewRestLeaseClient(RestClient& client, std::string ns,
                                                std::string name);

// What a candidate remembers between attempts: the last record it saw and
// when (on its own monotonic clock) it first saw that record.
struct LeaseObservation {
  std::optional<LeaderElectionRecord> record{};
  Clock::TimePoint observed_at{};
};

enum class LeaseAction {
  kCreate,       // no Lease exists: create it holding `record`
  kUpdate,       // acquire (expired / released) or renew: write `record`
  kHeldByOther,  // another holder's lease is still valid: wait
};

struct LeaseDecision {
  LeaseAction action{};
  LeaderElectionRecord record;     // the record to write (kCreate/kUpdate)
  LeaseObservation observation{};  // what to remember afterwards
};

// client-go's tryAcquireOrRenew as a pure function. `current` is the
// server's record (nullopt when the Lease does not exist).
LeaseDecision DecideLeaseAction(const std::optional<LeaderElectionRecord>& current,
                                const LeaseObservation& previous, Clock::TimePoint now,
                                Clock::WallTime wall_now, std::string_view identity,
                                Clock::Duration lease_duration);

struct LeaderElectionConfig {
  std::string identity{};  // unique per candidate, e.g. "<hostname>_<uuid>"
  Clock::Duration lease_duration = std::chrono::seconds(15);
  Clock::Duration renew_deadline = std::chrono::seconds(10);
  Clock::Duration retry_period = std::chrono::seconds(2);
  // Waits are retry_period * (1 + jitter * U[0,1)), like wait.JitterUntil.
  double jitter_factor = 1.2;
  // On a requested stop, give the lease up (holder "", duration 1 s) so a
  // successor need not wait for it to expire.
  bool release_on_cancel = false;
  Clock* clock = &RealClock::Instance();
  // Runs on its own thread while leading; `stop` fires when leadership ends.
  // Run() waits for it to return before releasing the lease.
  std::function<void(std::stop_token stop)> on_started_leading{};
  std::function<void()> on_stopped_leading{};
  // Called on the elector thread whenever a different holder is observed.
  std::function<void(const std::string& identity)> on_new_leader{};
};

class LeaderElector {
 public:
  // `leases` must outlive the elector.
  LeaderElector(LeaseClient& leases, LeaderElectionConfig config);
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Checks the configuration (identity set, renew_deadline < lease_duration,
  // retry_period < renew_deadline...).
  Status Validate() const;

  // Campaigns until elected, leads until `stop` or until renewal fails for
  // renew_deadline, then returns. Invalid configuration returns at once.
  Status Run(std::stop_token stop);

  bool IsLeader() const;
  // The last observed holder ("" when none).
  std::string Leader() const;

 private:
  bool TryAcquireOrRenew();
  // A leader's renewal without the GET; false when not applicable or it failed.
  bool TryRenewOptimistically();
  void MaybeReportNewLeader();
  bool Acquire(std::stop_token stop);
  void RenewUntilLost(std::stop_token stop);
  void Release();
  // Sleeps about `d` (jittered if asked) on the clock; false when stopped.
  bool Sleep(std::stop_token stop, Clock::Duration d, bool jitter);

  LeaseClient& leases_;
  const LeaderElectionConfig config_;
  Clock& clock_;

  mutable std::mutex mu_;  // guards the fields below
  LeaseObservation observation_;
  std::string observed_resource_version_;
  std::string reported_leader_;
  std::condition_variable wake_;  // stop requests
};

}  // namespace gpu_autoscaler::kube
