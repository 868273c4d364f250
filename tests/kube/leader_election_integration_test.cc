// Leader election against the test API server over HTTP: two candidates in
// one process on a stepped fake clock (expiry is judged on the candidates'
// clocks, so no real waiting is needed).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

#include "kube/leader_election.h"
#include "kube/rest_client.h"
#include "stepped_clock.h"
#include "support/api_server_fixture.h"

namespace gpu_autoscaler::kube {
namespace {

using namespace std::chrono_literals;
using testing::SteppedClock;
using testing::TestApiServer;

constexpr const char* kLeaseName = "gpu-autoscaler-test-leader";

bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

class LeaderElectionIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestApiServer::Start();
    ASSERT_TRUE(server_) << "api server did not start";
    auto client = RestClient::Create(server_->config());
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    client_ = std::move(*client);
    ns_ = server_->CreateTestNamespace("leader");
  }

  struct Candidate {
    std::unique_ptr<LeaseClient> leases;
    std::unique_ptr<LeaderElector> elector;
    std::jthread thread;
    std::atomic<int> started{0};
    std::atomic<int> stopped{0};
    void Stop() {
      thread.request_stop();
      thread.join();
    }
  };

  std::unique_ptr<Candidate> StartCandidate(const std::string& id, bool release_on_cancel) {
    auto c = std::make_unique<Candidate>();
    c->leases = NewRestLeaseClient(*client_, ns_, kLeaseName);
    LeaderElectionConfig config;
    config.identity = id;
    config.clock = &clock_;
    config.jitter_factor = 0;
    config.release_on_cancel = release_on_cancel;
    Candidate* raw = c.get();
    config.on_started_leading = [raw](std::stop_token stop) {
      ++raw->started;
      while (!stop.stop_requested())
        std::this_thread::sleep_for(1ms);
    };
    config.on_stopped_leading = [raw] { ++raw->stopped; };
    c->elector = std::make_unique<LeaderElector>(*c->leases, config);
    c->thread =
        std::jthread([raw](std::stop_token stop) { EXPECT_TRUE(raw->elector->Run(stop).ok()); });
    return c;
  }

  nlohmann::json ServerLease() {
    auto lease = client_->Get({resources::kLeases, ns_, kLeaseName, ""});
    EXPECT_TRUE(lease.ok()) << lease.error().ToString();
    return lease.ok() ? lease->at("spec") : nlohmann::json();
  }

  SteppedClock clock_;
  std::unique_ptr<TestApiServer> server_;
  std::unique_ptr<RestClient> client_;
  std::string ns_;
};

TEST_F(LeaderElectionIntegrationTest, FailoverAfterLeaderDiesWithoutReleasing) {
  auto a = StartCandidate("candidate-a", /*release_on_cancel=*/false);
  ASSERT_TRUE(clock_.StepUntil([&] { return a->elector->IsLeader(); }));
  ASSERT_TRUE(WaitFor([&] { return a->started.load() == 1; }));
  auto spec = ServerLease();
  EXPECT_EQ(spec["holderIdentity"], "candidate-a");
  EXPECT_EQ(spec["leaseDurationSeconds"], 15);
  EXPECT_EQ(spec["leaseTransitions"], 0);
  // MicroTime on the wire.
  EXPECT_EQ(spec["renewTime"].get<std::string>().size(),
            std::string("2006-01-02T15:04:05.000000Z").size());

  // From here two candidates run: time moves only while both wait on it, so
  // a renewal slowed by a loaded machine is not taken for a dead leader.
  auto b = StartCandidate("candidate-b", false);
  ASSERT_TRUE(clock_.StepUntil([&] { return b->elector->Leader() == "candidate-a"; }, 2));
  // While a renews, b keeps waiting however long it runs.
  const auto watching_since = clock_.Now();
  ASSERT_TRUE(clock_.StepUntil([&] { return clock_.Now() - watching_since >= 30s; }, 2));
  EXPECT_FALSE(b->elector->IsLeader());
  EXPECT_EQ(b->started.load(), 0);

  // a dies: it stops renewing and does not release.
  a->Stop();
  EXPECT_EQ(ServerLease()["holderIdentity"], "candidate-a");
  const auto died_at = clock_.Now();
  ASSERT_TRUE(clock_.StepUntil([&] { return b->elector->IsLeader(); }));
  const auto takeover = clock_.Now() - died_at;
  EXPECT_GE(takeover, 15s - 2s) << "took over before the lease could have expired";
  EXPECT_LE(takeover, 15s + 2s + 2s);
  ASSERT_TRUE(WaitFor([&] { return b->started.load() == 1; }));
  spec = ServerLease();
  EXPECT_EQ(spec["holderIdentity"], "candidate-b");
  EXPECT_EQ(spec["leaseTransitions"], 1);
  b->Stop();
}

TEST_F(LeaderElectionIntegrationTest, ReleaseOnShutdownHandsOverImmediately) {
  auto a = StartCandidate("candidate-a", /*release_on_cancel=*/true);
  ASSERT_TRUE(clock_.StepUntil([&] { return a->elector->IsLeader(); }));
  auto b = StartCandidate("candidate-b", false);
  ASSERT_TRUE(clock_.StepUntil([&] { return b->elector->Leader() == "candidate-a"; }, 2));

  a->Stop();
  EXPECT_EQ(a->stopped.load(), 1);
  auto spec = ServerLease();
  EXPECT_EQ(spec["holderIdentity"], "");
  EXPECT_EQ(spec["leaseDurationSeconds"], 1);

  const auto released_at = clock_.Now();
  ASSERT_TRUE(clock_.StepUntil([&] { return b->elector->IsLeader(); }));
  EXPECT_LE(clock_.Now() - released_at, 2s + 100ms) << "waited for expiry despite the release";
  spec = ServerLease();
  EXPECT_EQ(spec["holderIdentity"], "candidate-b");
  EXPECT_EQ(spec["leaseDurationSeconds"], 15);
  EXPECT_EQ(spec["leaseTransitions"], 1);
  b->Stop();
}

TEST_F(LeaderElectionIntegrationTest, ConcurrentCandidatesElectExactlyOneLeader) {
  auto a = StartCandidate("candidate-a", true);
  auto b = StartCandidate("candidate-b", true);
  ASSERT_TRUE(
      clock_.StepUntil([&] { return a->elector->IsLeader() || b->elector->IsLeader(); }, 2));
  // Let several renewal rounds pass: exactly one leads throughout.
  const auto from = clock_.Now();
  ASSERT_TRUE(clock_.StepUntil(
      [&] {
        EXPECT_FALSE(a->elector->IsLeader() && b->elector->IsLeader());
        return clock_.Now() - from >= 20s;
      },
      2));
  EXPECT_NE(a->elector->IsLeader(), b->elector->IsLeader());
  EXPECT_EQ(ServerLease()["leaseTransitions"], 0);
  a->Stop();
  b->Stop();
}

}  // namespace
}  // namespace gpu_autoscaler::kube
