#include "kube/leader_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "stepped_clock.h"

namespace gpu_autoscaler::kube {
namespace {

using namespace std::chrono_literals;
using testing::SteppedClock;

// One Lease in memory with resourceVersion checks, shared by candidates.
struct FakeLeaseStore {
  std::mutex mu;
  std::optional<ObservedLease> lease;
  int64_t next_rv = 1;
  int writes = 0;
};

class FakeLeaseClient final : public LeaseClient {
 public:
  explicit FakeLeaseClient(FakeLeaseStore& store) : store_(store) {}

  Result<std::optional<ObservedLease>> Get() override {
    ++gets;
    if (failing) return Error::Transport("connection refused");
    std::lock_guard<std::mutex> l(store_.mu);
    return store_.lease;
  }
  Result<ObservedLease> Create(const LeaderElectionRecord& record) override {
    if (failing) return Error::Transport("connection refused");
    std::lock_guard<std::mutex> l(store_.mu);
    if (store_.lease) return Error(Error::Kind::kApi, 409, "AlreadyExists", "exists");
    store_.lease = ObservedLease{record, std::to_string(store_.next_rv++)};
    ++store_.writes;
    return *store_.lease;
  }
  Result<ObservedLease> Update(const LeaderElectionRecord& record, const std::string& rv) override {
    if (failing) return Error::Transport("connection refused");
    std::lock_guard<std::mutex> l(store_.mu);
    if (!store_.lease) return Error(Error::Kind::kApi, 404, "NotFound", "not found");
    if (force_conflicts > 0 || store_.lease->resource_version != rv) {
      if (force_conflicts > 0) --force_conflicts;
      ++conflicts;
      return Error(Error::Kind::kApi, 409, "Conflict", "the object has been modified");
    }
    store_.lease = ObservedLease{record, std::to_string(store_.next_rv++)};
    ++store_.writes;
    return *store_.lease;
  }
  std::string Describe() const override { return "test/lease"; }

  std::atomic<bool> failing{false};
  std::atomic<int> force_conflicts{0};
  std::atomic<int> conflicts{0};
  std::atomic<int> gets{0};

 private:
  FakeLeaseStore& store_;
};

LeaderElectionRecord Held(std::string holder, int transitions = 0) {
  LeaderElectionRecord r;
  r.holder_identity = std::move(holder);
  r.lease_duration_seconds = 15;
  r.acquire_time = Clock::WallTime(100s);
  r.renew_time = Clock::WallTime(100s);
  r.lease_transitions = transitions;
  return r;
}

const Clock::TimePoint kT0 = Clock::TimePoint(1000s);
const Clock::WallTime kWall = Clock::WallTime(std::chrono::seconds(1'800'000'000));

TEST(DecideLeaseActionTest, CreatesWhenNoLeaseExists) {
  auto d = DecideLeaseAction(std::nullopt, {}, kT0, kWall, "a", 15s);
  EXPECT_EQ(d.action, LeaseAction::kCreate);
  EXPECT_EQ(d.record.holder_identity, "a");
  EXPECT_EQ(d.record.lease_duration_seconds, 15);
  EXPECT_EQ(d.record.lease_transitions, 0);
  EXPECT_EQ(d.record.acquire_time, kWall);
  EXPECT_EQ(d.record.renew_time, kWall);
  // Until the create succeeds, nothing is observed (we are not the leader).
  EXPECT_FALSE(d.observation.record);
}

TEST(DecideLeaseActionTest, WaitsWhileOtherHolderIsFresh) {
  // First sighting starts the expiry clock now, whatever the server's renewTime says.
  auto d = DecideLeaseAction(Held("b"), {}, kT0, kWall, "a", 15s);
  EXPECT_EQ(d.action, LeaseAction::kHeldByOther);
  EXPECT_EQ(d.observation.observed_at, kT0);
  // 14.9 s later, unchanged: still valid.
  auto d2 = DecideLeaseAction(Held("b"), d.observation, kT0 + 14900ms, kWall, "a", 15s);
  EXPECT_EQ(d2.action, LeaseAction::kHeldByOther);
  EXPECT_EQ(d2.observation.observed_at, kT0);
}

TEST(DecideLeaseActionTest, TakesOverExpiredLeaseAndCountsTransition) {
  LeaseObservation seen{Held("b", 3), kT0};
  auto d = DecideLeaseAction(Held("b", 3), seen, kT0 + 15s, kWall, "a", 15s);
  EXPECT_EQ(d.action, LeaseAction::kUpdate);
  EXPECT_EQ(d.record.holder_identity, "a");
  EXPECT_EQ(d.record.lease_transitions, 4);
  EXPECT_EQ(d.record.acquire_time, kWall);
}

TEST(DecideLeaseActionTest, RenewalByHolderRestartsExpiryClock) {
  LeaseObservation seen{Held("b"), kT0};
  LeaderElectionRecord renewed = Held("b");
  renewed.renew_time = Clock::WallTime(102s);
  auto d = DecideLeaseAction(renewed, seen, kT0 + 16s, kWall, "a", 15s);
  EXPECT_EQ(d.action, LeaseAction::kHeldByOther);
  EXPECT_EQ(d.observation.observed_at, kT0 + 16s);
  EXPECT_EQ(d.observation.record, renewed);
}

TEST(DecideLeaseActionTest, ExpiryUsesRecordDurationNotOurs) {
  LeaderElectionRecord short_lease = Held("b");
  short_lease.lease_duration_seconds = 1;
  LeaseObservation seen{short_lease, kT0};
  EXPECT_EQ(DecideLeaseAction(short_lease, seen, kT0 + 1s, kWall, "a", 15s).action,
            LeaseAction::kUpdate);
}

TEST(DecideLeaseActionTest, ReleasedLeaseIsTakenAtOnce) {
  LeaderElectionRecord released = Held("", 2);
  released.lease_duration_seconds = 1;
  auto d = DecideLeaseAction(released, {}, kT0, kWall, "a", 15s);
  EXPECT_EQ(d.action, LeaseAction::kUpdate);
  EXPECT_EQ(d.record.lease_transitions, 3);
  EXPECT_EQ(d.record.lease_duration_seconds, 15);
}

TEST(DecideLeaseActionTest, HolderRenewsKeepingAcquireTimeAndTransitions) {
  auto d = DecideLeaseAction(Held("a", 5), {Held("a", 5), kT0}, kT0 + 2s, kWall, "a", 15s);
  EXPECT_EQ(d.action, LeaseAction::kUpdate);
  EXPECT_EQ(d.record.acquire_time, Clock::WallTime(100s));
  EXPECT_EQ(d.record.renew_time, kWall);
  EXPECT_EQ(d.record.lease_transitions, 5);
}

TEST(MicroTimeTest, FormatsAndParses) {
  const auto t = kWall + 123456789ns;
  EXPECT_EQ(FormatMicroTime(t), "2027-01-15T08:00:00.123456Z");
  auto parsed = ParseRfc3339("2027-01-15T08:00:00.123456Z");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, TruncateToMicros(t));
  EXPECT_EQ(*ParseRfc3339("2027-01-15T08:00:00Z"), kWall);
  EXPECT_FALSE(ParseRfc3339("2027-01-15 08:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2027-13-15T08:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2027-01-15T08:00:00.Z").ok());
  EXPECT_FALSE(ParseRfc3339("garbage").ok());
  // Found by aws_xml_fuzz: years the nanosecond wall clock cannot hold are
  // refused, not overflowed (UBSan: signed integer overflow).
  auto far = ParseRfc3339("8652-01-15T09:00:00Z");
  ASSERT_FALSE(far.ok());
  EXPECT_NE(far.error().message().find("outside the years 1900 to 2189"), std::string::npos)
      << far.error().message();
  EXPECT_FALSE(ParseRfc3339("2262-12-31T23:59:59Z").ok());
  EXPECT_FALSE(ParseRfc3339("-999-01-01T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("0001-01-01T00:00:00Z").ok());  // Go's zero time
  EXPECT_TRUE(ParseRfc3339("2189-12-31T23:59:59Z").ok());
  EXPECT_FALSE(ParseRfc3339("2190-01-01T00:00:00Z").ok());
  EXPECT_TRUE(ParseRfc3339("1970-01-01T00:00:00Z").ok());
  // Found by fleet_usage_fuzz: a time the clock holds but 349 years before
  // now, whose difference from now did not fit (UBSan). Any two accepted
  // times are now under 292 years apart, so the extremes subtract safely.
  EXPECT_FALSE(ParseRfc3339("1678-06-01T00:00:00Z").ok());
  auto first = ParseRfc3339("1900-01-01T00:00:00Z");
  auto last = ParseRfc3339("2189-12-31T23:59:59.999999999Z");
  ASSERT_TRUE(first.ok() && last.ok());
  EXPECT_GT((*last - *first).count(), 0);
  EXPECT_LT((*first - *last).count(), 0);
}

// Waits in real time (no clock steps) for work on callback threads.
bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100us);
  }
  return done();
}

struct Candidate {
  Candidate(FakeLeaseStore& store, Clock& clock, std::string id, bool release = false)
      : leases(store) {
    config.identity = std::move(id);
    config.clock = &clock;
    config.jitter_factor = 0;
    config.release_on_cancel = release;
    config.on_started_leading = [this](std::stop_token stop) {
      ++started;
      while (!stop.stop_requested())
        std::this_thread::sleep_for(100us);
      ++leading_stopped;
    };
    config.on_stopped_leading = [this] { ++stopped; };
    config.on_new_leader = [this](const std::string& who) {
      std::lock_guard<std::mutex> l(mu);
      leaders_seen.push_back(who);
    };
  }
  void Start() {
    elector = std::make_unique<LeaderElector>(leases, config);
    thread = std::jthread([this](std::stop_token stop) { result = elector->Run(stop); });
  }
  void Stop() {
    thread.request_stop();
    thread.join();
  }

  FakeLeaseClient leases;
  LeaderElectionConfig config;
  std::unique_ptr<LeaderElector> elector;
  std::jthread thread;
  Status result;
  std::atomic<int> started{0}, leading_stopped{0}, stopped{0};
  std::mutex mu;
  std::vector<std::string> leaders_seen;
};

TEST(LeaderElectorTest, RejectsBadConfig) {
  FakeLeaseStore store;
  FakeLeaseClient leases(store);
  EXPECT_FALSE(LeaderElector(leases, {}).Validate().ok());  // no identity
  LeaderElectionConfig c;
  c.identity = "a";
  EXPECT_TRUE(LeaderElector(leases, c).Validate().ok());
  c.renew_deadline = 20s;
  EXPECT_FALSE(LeaderElector(leases, c).Validate().ok());
  c.renew_deadline = 2s;  // <= retry_period * jitter
  EXPECT_FALSE(LeaderElector(leases, c).Validate().ok());
  EXPECT_FALSE(LeaderElector(leases, c).Run({}).ok());
}

TEST(LeaderElectorTest, SingleCandidateLeadsAndRenews) {
  SteppedClock clock;
  FakeLeaseStore store;
  Candidate a(store, clock, "a");
  a.Start();
  ASSERT_TRUE(clock.StepUntil([&] { return a.elector->IsLeader(); }));
  ASSERT_TRUE(WaitFor([&] { return a.started.load() == 1; }));
  EXPECT_TRUE(a.elector->IsLeader());
  EXPECT_EQ(a.elector->Leader(), "a");
  const int writes = store.writes;
  ASSERT_TRUE(clock.StepUntil([&] { return store.writes >= writes + 3; }));
  {
    std::lock_guard<std::mutex> l(store.mu);
    EXPECT_EQ(store.lease->record.holder_identity, "a");
    EXPECT_EQ(store.lease->record.lease_transitions, 0);
    EXPECT_LT(*store.lease->record.acquire_time, *store.lease->record.renew_time);
  }
  a.Stop();
  EXPECT_TRUE(a.result.ok());
  EXPECT_EQ(a.leading_stopped.load(), 1);
  EXPECT_EQ(a.stopped.load(), 1);
  std::lock_guard<std::mutex> l(a.mu);
  EXPECT_EQ(a.leaders_seen, std::vector<std::string>{"a"});
}

TEST(LeaderElectorTest, LeaderRenewsWithoutReadingTheLease) {
  SteppedClock clock;
  FakeLeaseStore store;
  Candidate a(store, clock, "a");
  a.Start();
  ASSERT_TRUE(clock.StepUntil([&] { return a.elector->IsLeader(); }));
  const int gets = a.leases.gets.load();
  const int writes = store.writes;
  ASSERT_TRUE(clock.StepUntil([&] { return store.writes >= writes + 3; }));
  EXPECT_EQ(a.leases.gets.load(), gets);

  // Someone else wrote the lease (our version is stale): the optimistic write
  // conflicts, the elector falls back to reading, and renews from the new version.
  {
    std::lock_guard<std::mutex> l(store.mu);
    store.lease->resource_version = "999";
  }
  const int writes_before = store.writes;
  ASSERT_TRUE(clock.StepUntil([&] { return store.writes > writes_before; }));
  EXPECT_GT(a.leases.gets.load(), gets);
  EXPECT_GE(a.leases.conflicts.load(), 1);
  EXPECT_TRUE(a.elector->IsLeader());
  a.Stop();
}

TEST(LeaderElectorTest, SecondTakesOverOnlyAfterDeadLeadersLeaseExpires) {
  SteppedClock clock;
  FakeLeaseStore store;
  Candidate a(store, clock, "a");
  Candidate b(store, clock, "b");
  a.Start();
  ASSERT_TRUE(clock.StepUntil([&] { return a.elector->IsLeader(); }));
  ASSERT_TRUE(WaitFor([&] { return a.started.load() == 1; }));
  b.Start();
  ASSERT_TRUE(clock.StepUntil([&] {
    std::lock_guard<std::mutex> l(b.mu);
    return !b.leaders_seen.empty();
  }));
  EXPECT_FALSE(b.elector->IsLeader());
  EXPECT_EQ(b.elector->Leader(), "a");
  // "a" dies: stops renewing without releasing.
  a.Stop();
  const auto died_at = clock.Now();
  ASSERT_TRUE(clock.StepUntil([&] { return b.elector->IsLeader(); }));
  // Lower bound: a's last renewal was at most one retry period before it died.
  // Upper bound: b saw that renewal up to one retry period late (its expiry
  // clock starts when it observes a change, as in client-go), and polls once
  // per retry period after the expiry. The phase between the two candidates'
  // polls depends on thread timing, so both lags can be whole periods.
  EXPECT_GE(clock.Now() - died_at, 15s - 2s);
  EXPECT_LE(clock.Now() - died_at, 15s + 2s + 2s + 100ms);
  ASSERT_TRUE(WaitFor([&] { return b.started.load() == 1; }));
  std::lock_guard<std::mutex> l(store.mu);
  EXPECT_EQ(store.lease->record.holder_identity, "b");
  EXPECT_EQ(store.lease->record.lease_transitions, 1);
  b.Stop();
}

TEST(LeaderElectorTest, ReleaseOnCancelHandsOverImmediately) {
  SteppedClock clock;
  FakeLeaseStore store;
  Candidate a(store, clock, "a", /*release=*/true);
  Candidate b(store, clock, "b");
  a.Start();
  ASSERT_TRUE(clock.StepUntil([&] { return a.elector->IsLeader(); }));
  ASSERT_TRUE(WaitFor([&] { return a.started.load() == 1; }));
  b.Start();
  ASSERT_TRUE(clock.StepUntil([&] { return b.elector->Leader() == "a"; }));
  a.Stop();
  {
    std::lock_guard<std::mutex> l(store.mu);
    EXPECT_EQ(store.lease->record.holder_identity, "");
    EXPECT_EQ(store.lease->record.lease_duration_seconds, 1);
  }
  const auto released_at = clock.Now();
  ASSERT_TRUE(clock.StepUntil([&] { return b.elector->IsLeader(); }));
  // Within one retry period, not a lease duration.
  EXPECT_LE(clock.Now() - released_at, 2s + 100ms);
  ASSERT_TRUE(WaitFor([&] { return b.started.load() == 1; }));
  b.Stop();
  std::lock_guard<std::mutex> l(b.mu);
  EXPECT_EQ(b.leaders_seen, (std::vector<std::string>{"a", "b"}));
}

TEST(LeaderElectorTest, StopsLeadingWhenRenewalFailsPastDeadline) {
  SteppedClock clock;
  FakeLeaseStore store;
  Candidate a(store, clock, "a");
  a.Start();
  ASSERT_TRUE(clock.StepUntil([&] { return a.elector->IsLeader(); }));
  ASSERT_TRUE(WaitFor([&] { return a.started.load() == 1; }));
  a.leases.failing = true;
  const auto failing_since = clock.Now();
  ASSERT_TRUE(clock.StepUntil([&] { return !a.elector->IsLeader() || a.stopped.load() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return a.stopped.load() == 1; }));
  EXPECT_EQ(a.leading_stopped.load(), 1);
  // Leadership is kept through renew_deadline of failures.
  EXPECT_GE(clock.Now() - failing_since, 10s);
  a.thread.join();
  EXPECT_TRUE(a.result.ok());
}

TEST(LeaderElectorTest, ConflictIsRetried) {
  SteppedClock clock;
  FakeLeaseStore store;
  // An expired lease held by someone else: the first takeover write conflicts.
  store.lease = ObservedLease{Held("old"), "7"};
  store.next_rv = 8;
  Candidate a(store, clock, "a");
  a.leases.force_conflicts = 1;
  a.Start();
  ASSERT_TRUE(clock.StepUntil([&] { return a.elector->IsLeader(); }));
  ASSERT_TRUE(WaitFor([&] { return a.started.load() == 1; }));
  EXPECT_EQ(a.leases.conflicts.load(), 1);
  {
    std::lock_guard<std::mutex> l(store.mu);
    EXPECT_EQ(store.lease->record.lease_transitions, 1);
  }
  a.Stop();
}

}  // namespace
}  // namespace gpu_autoscaler::kube
