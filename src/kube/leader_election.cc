#include "kube/leader_election.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/json_read.h"
#include "kube/meta_time.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::kube {

using namespace std::chrono_literals;
using json = nlohmann::json;

LeaseDecision DecideLeaseAction(const std::optional<LeaderElectionRecord>& current,
                                const LeaseObservation& previous, Clock::TimePoint now,
                                Clock::WallTime wall_now, std::string_view identity,
                                Clock::Duration lease_duration) {
  const auto stamp = TruncateToMicros(wall_now);
  LeaderElectionRecord desired;
  desired.holder_identity = std::string(identity);
  desired.lease_duration_seconds =
      static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(lease_duration).count());
  desired.acquire_time = stamp;
  desired.renew_time = stamp;

  // Nothing observed yet: the observation changes only once the create succeeds.
  if (!current) return {LeaseAction::kCreate, desired, previous};

  // The expiry clock restarts whenever the record changes (a renewal).
  LeaseObservation observation = previous;
  if (!previous.record || *previous.record != *current) observation = {*current, now};

  const bool held_by_us = current->holder_identity == identity;
  const auto valid_until =
      observation.observed_at + std::chrono::seconds(current->lease_duration_seconds);
  if (!current->holder_identity.empty() && !held_by_us && valid_until > now) {
    return {LeaseAction::kHeldByOther, *current, observation};
  }

  if (held_by_us) {
    desired.acquire_time = current->acquire_time;
    desired.lease_transitions = current->lease_transitions;
  } else {
    desired.lease_transitions = current->lease_transitions + 1;
  }
  return {LeaseAction::kUpdate, desired, observation};
}

namespace {

json RecordToSpec(const LeaderElectionRecord& r) {
  json spec = json::object();
  spec["holderIdentity"] = r.holder_identity;
  spec["leaseDurationSeconds"] = r.lease_duration_seconds;
  if (r.acquire_time) spec["acquireTime"] = FormatMicroTime(*r.acquire_time);
  if (r.renew_time) spec["renewTime"] = FormatMicroTime(*r.renew_time);
  spec["leaseTransitions"] = r.lease_transitions;
  return spec;
}

Result<ObservedLease> LeaseFromJson(const json& lease) {
  try {
    ObservedLease out;
    const json& meta = lease.at("metadata");
    out.resource_version = json_read::String(meta, "resourceVersion");
    const json& spec = json_read::Object(lease, "spec");
    LeaderElectionRecord& r = out.record;
    if (auto it = spec.find("holderIdentity"); it != spec.end() && it->is_string()) {
      r.holder_identity = it->get<std::string>();
    }
    // int32 in the API; clamped, as a float out of int's range does not convert.
    r.lease_duration_seconds =
        json_read::Int32(spec, "leaseDurationSeconds", r.lease_duration_seconds);
    r.lease_transitions = json_read::Int32(spec, "leaseTransitions", r.lease_transitions);
    for (auto [field, slot] :
         {std::pair{"acquireTime", &r.acquire_time}, std::pair{"renewTime", &r.renew_time}}) {
      auto it = spec.find(field);
      if (it == spec.end() || !it->is_string()) continue;
      auto t = ParseRfc3339(it->get<std::string>());
      if (!t.ok())
        return Error::Decode(std::string("lease spec.") + field + ": " + t.error().message());
      *slot = *t;
    }
    return out;
  } catch (const json::exception& e) {
    return Error::Decode(std::string("malformed Lease: ") + e.what());
  }
}

class RestLeaseClient final : public LeaseClient {
 public:
  RestLeaseClient(RestClient& client, std::string ns, std::string name)
      : client_(client), ref_{resources::kLeases, std::move(ns), std::move(name), ""} {}

  Result<std::optional<ObservedLease>> Get() override {
    auto got = client_.Get(ref_);
    if (!got.ok()) {
      if (IsNotFound(got.error())) return std::optional<ObservedLease>();
      return std::move(got).error();
    }
    auto lease = LeaseFromJson(*got);
    if (!lease.ok()) return std::move(lease).error();
    last_object_ = std::move(*got);
    return std::optional<ObservedLease>(std::move(*lease));
  }

  Result<ObservedLease> Create(const LeaderElectionRecord& record) override {
    json obj = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", ref_.name}, {"namespace", ref_.ns}}},
                {"spec", RecordToSpec(record)}};
    auto created = client_.Create(ObjectRef{ref_.gvr, ref_.ns, "", ""}, obj);
    if (!created.ok()) return std::move(created).error();
    last_object_ = *created;
    return LeaseFromJson(*created);
  }

  Result<ObservedLease> Update(const LeaderElectionRecord& record,
                               const std::string& resource_version) override {
    // Keep whatever metadata the Lease carries (labels, owner refs...).
    json obj = last_object_.is_object()
                   ? last_object_
                   : json{{"apiVersion", "coordination.k8s.io/v1"},
                          {"kind", "Lease"},
                          {"metadata", {{"name", ref_.name}, {"namespace", ref_.ns}}}};
    obj["metadata"]["resourceVersion"] = resource_version;
    obj["spec"] = RecordToSpec(record);
    auto updated = client_.Replace(ref_, obj);
    if (!updated.ok()) return std::move(updated).error();
    last_object_ = *updated;
    return LeaseFromJson(*updated);
  }

  std::string Describe() const override { return ref_.ns + "/" + ref_.name; }

 private:
  RestClient& client_;
  const ObjectRef ref_;
  json last_object_;
};

}  // namespace

std::unique_ptr<LeaseClient> NewRestLeaseClient(RestClient& client, std::string ns,
                                                std::string name) {
  return std::make_unique<RestLeaseClient>(client, std::move(ns), std::move(name));
}

LeaderElector::LeaderElector(LeaseClient& leases, LeaderElectionConfig config)
    : leases_(leases), config_(std::move(config)), clock_(*config_.clock) {}

LeaderElector::~LeaderElector() = default;

Status LeaderElector::Validate() const {
  if (config_.identity.empty()) return InvalidArgumentError("leader election: identity is empty");
  if (config_.lease_duration <= config_.renew_deadline) {
    return InvalidArgumentError("leader election: lease duration must exceed renew deadline");
  }
  if (config_.renew_deadline <=
      std::chrono::duration_cast<Clock::Duration>(config_.retry_period * config_.jitter_factor)) {
    return InvalidArgumentError(
        "leader election: renew deadline must exceed retry period * jitter factor");
  }
  if (config_.retry_period <= Clock::Duration::zero()) {
    return InvalidArgumentError("leader election: retry period must be positive");
  }
  if (config_.lease_duration < 1s) {
    return InvalidArgumentError("leader election: lease duration must be at least 1s");
  }
  return Status::Ok();
}

bool LeaderElector::IsLeader() const {
  std::lock_guard<std::mutex> l(mu_);
  return observation_.record && observation_.record->holder_identity == config_.identity;
}

std::string LeaderElector::Leader() const {
  std::lock_guard<std::mutex> l(mu_);
  return observation_.record ? observation_.record->holder_identity : "";
}

bool LeaderElector::TryRenewOptimistically() {
  LeaderElectionRecord renewed;
  std::string resource_version;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!observation_.record || observation_.record->holder_identity != config_.identity) {
      return false;
    }
    const auto valid_until = observation_.observed_at +
                             std::chrono::seconds(observation_.record->lease_duration_seconds);
    if (valid_until <= clock_.Now() || observed_resource_version_.empty()) return false;
    renewed = *observation_.record;
    renewed.renew_time = TruncateToMicros(clock_.WallNow());
    resource_version = observed_resource_version_;
  }
  auto written = leases_.Update(renewed, resource_version);
  if (!written.ok()) {
    if (!IsConflict(written.error())) {
      spdlog::warn("leader election: renewing lease {} optimistically: {}", leases_.Describe(),
                   written.error().ToString());
    }
    return false;
  }
  std::lock_guard<std::mutex> l(mu_);
  observation_ = {written->record, clock_.Now()};
  observed_resource_version_ = written->resource_version;
  return true;
}

bool LeaderElector::TryAcquireOrRenew() {
  // Fast path (client-go >= 1.27): a leader whose lease is still valid writes
  // the renewal straight away from the version it last wrote, saving a GET per
  // renewal. Any failure falls back to read-decide-write below.
  if (TryRenewOptimistically()) return true;
  auto got = leases_.Get();
  if (!got.ok()) {
    spdlog::warn("leader election: reading lease {}: {}", leases_.Describe(),
                 got.error().ToString());
    return false;
  }
  std::optional<LeaderElectionRecord> current;
  if (*got) current = (*got)->record;

  LeaseDecision decision;
  {
    std::lock_guard<std::mutex> l(mu_);
    decision = DecideLeaseAction(current, observation_, clock_.Now(), clock_.WallNow(),
                                 config_.identity, config_.lease_duration);
    observation_ = decision.observation;
    if (*got) observed_resource_version_ = (*got)->resource_version;
  }
  MaybeReportNewLeader();
  if (decision.action == LeaseAction::kHeldByOther) return false;

  auto written = decision.action == LeaseAction::kCreate
                     ? leases_.Create(decision.record)
                     : leases_.Update(decision.record, (*got)->resource_version);
  if (!written.ok()) {
    // A conflict means someone else wrote first: re-read on the next attempt.
    if (!IsConflict(written.error()) && !IsAlreadyExists(written.error())) {
      spdlog::warn("leader election: writing lease {}: {}", leases_.Describe(),
                   written.error().ToString());
    }
    return false;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    observation_ = {written->record, clock_.Now()};
    observed_resource_version_ = written->resource_version;
  }
  MaybeReportNewLeader();
  return true;
}

void LeaderElector::MaybeReportNewLeader() {
  std::string leader;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!observation_.record) return;
    leader = observation_.record->holder_identity;
    if (leader.empty() || leader == reported_leader_) return;
    reported_leader_ = leader;
  }
  if (config_.on_new_leader) config_.on_new_leader(leader);
}

bool LeaderElector::Sleep(std::stop_token stop, Clock::Duration d, bool jitter) {
  if (jitter && config_.jitter_factor > 0) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const double extra = std::uniform_real_distribution<double>(0, config_.jitter_factor)(rng);
    d += std::chrono::duration_cast<Clock::Duration>(d * extra);
  }
  const auto deadline = clock_.Now() + d;
  // Registered before locking: it may run at once, and its destructor waits
  // for a running callback, which needs mu_.
  std::stop_callback wake_on_stop(stop, [this] {
    std::lock_guard<std::mutex> l(mu_);
    wake_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop.stop_requested() && clock_.Now() < deadline) {
    clock_.WaitUntil(lock, wake_, deadline);
  }
  return !stop.stop_requested();
}

bool LeaderElector::Acquire(std::stop_token stop) {
  spdlog::info("leader election: {} attempting to acquire lease {}", config_.identity,
               leases_.Describe());
  for (;;) {
    if (stop.stop_requested()) return false;
    if (TryAcquireOrRenew()) {
      spdlog::info("leader election: {} acquired lease {}", config_.identity, leases_.Describe());
      return true;
    }
    if (!Sleep(stop, config_.retry_period, /*jitter=*/true)) return false;
  }
}

void LeaderElector::RenewUntilLost(std::stop_token stop) {
  for (;;) {
    // One renewal round: retry every retry_period until renew_deadline.
    const auto round_deadline = clock_.Now() + config_.renew_deadline;
    bool renewed = false;
    for (;;) {
      if (stop.stop_requested()) return;
      if (TryAcquireOrRenew()) {
        renewed = true;
        break;
      }
      if (clock_.Now() >= round_deadline) break;
      const auto left = round_deadline - clock_.Now();
      if (!Sleep(stop, std::min<Clock::Duration>(config_.retry_period, left), false)) return;
    }
    if (!renewed) {
      spdlog::warn(
          "leader election: {} failed to renew lease {} within {} ms", config_.identity,
          leases_.Describe(),
          std::chrono::duration_cast<std::chrono::milliseconds>(config_.renew_deadline).count());
      return;
    }
    if (!Sleep(stop, config_.retry_period, false)) return;
  }
}

void LeaderElector::Release() {
  LeaderElectionRecord record;
  std::string rv;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!observation_.record || observation_.record->holder_identity != config_.identity) return;
    const auto stamp = TruncateToMicros(clock_.WallNow());
    record.holder_identity = "";
    record.lease_duration_seconds = 1;
    record.acquire_time = stamp;
    record.renew_time = stamp;
    record.lease_transitions = observation_.record->lease_transitions;
    rv = observed_resource_version_;
  }
  auto written = leases_.Update(record, rv);
  if (!written.ok()) {
    spdlog::warn("leader election: releasing lease {}: {}", leases_.Describe(),
                 written.error().ToString());
    return;
  }
  std::lock_guard<std::mutex> l(mu_);
  observation_ = {written->record, clock_.Now()};
  observed_resource_version_ = written->resource_version;
  spdlog::info("leader election: {} released lease {}", config_.identity, leases_.Describe());
}

Status LeaderElector::Run(std::stop_token stop) {
  GPU_RETURN_IF_ERROR(Validate());
  if (!Acquire(stop)) return Status::Ok();

  std::stop_source leading;
  std::thread leader_work;
  if (config_.on_started_leading) {
    leader_work =
        std::thread([this, token = leading.get_token()] { config_.on_started_leading(token); });
  }
  RenewUntilLost(stop);
  leading.request_stop();
  if (leader_work.joinable()) leader_work.join();
  if (config_.release_on_cancel) Release();
  if (config_.on_stopped_leading) config_.on_stopped_leading();
  return Status::Ok();
}

}  // namespace gpu_autoscaler::kube
