#include "reconcile/controller.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace gpu_autoscaler::reconcile {
namespace {

using namespace std::chrono_literals;

class FakeSource final : public EventSource {
 public:
  void Subscribe(std::function<void(const ChangedObject&)> on_change) override {
    handlers_.push_back(std::move(on_change));
  }
  bool HasSynced() const override { return synced.load(); }
  void Emit(const ChangedObject& obj) {
    for (auto& h : handlers_)
      h(obj);
  }
  std::atomic<bool> synced{true};

 private:
  std::vector<std::function<void(const ChangedObject&)>> handlers_;
};

// Returns scripted results per key (the last one repeats) and records calls.
class ScriptedReconciler final : public Reconciler {
 public:
  ReconcileResult Reconcile(const Request& req, std::stop_token) override {
    std::vector<std::function<ReconcileResult()>>* script = nullptr;
    size_t call;
    {
      std::lock_guard<std::mutex> l(mu_);
      call = calls_[req.Key()]++;
      auto it = scripts_.find(req.Key());
      if (it != scripts_.end()) script = &it->second;
    }
    if (script == nullptr) return Done{};
    return (*script)[std::min(call, script->size() - 1)]();
  }
  void Script(const std::string& key, std::vector<std::function<ReconcileResult()>> steps) {
    std::lock_guard<std::mutex> l(mu_);
    scripts_[key] = std::move(steps);
  }
  int Calls(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    return calls_[key];
  }

 private:
  std::mutex mu_;
  std::map<std::string, int> calls_;
  std::map<std::string, std::vector<std::function<ReconcileResult()>>> scripts_;
};

bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200us);
  }
  return done();
}

TEST(RequestTest, KeyRoundTrip) {
  EXPECT_EQ((Request{"ns", "a"}).Key(), "ns/a");
  EXPECT_EQ((Request{"", "node-1"}).Key(), "node-1");
  EXPECT_EQ(Request::FromKey("ns/a"), (Request{"ns", "a"}));
  EXPECT_EQ(Request::FromKey("node-1"), (Request{"", "node-1"}));
}

TEST(ResultLabelTest, NamesEveryResult) {
  EXPECT_EQ(ResultLabel(Done{}), "success");
  EXPECT_EQ(ResultLabel(RequeueAfter{1s}), "requeue_after");
  EXPECT_EQ(ResultLabel(TransientError{"x"}), "error");
  EXPECT_EQ(ResultLabel(TerminalError{"x"}), "terminal_error");
  EXPECT_EQ(ResultLabel(Requeue{"x"}), "requeue");
}

// The controller's only queue policy, one row per result kind.
TEST(ApplyResultToQueueTest, MapsEachResult) {
  struct Row {
    const char* name;
    ReconcileResult result;
    size_t ready_now;
    size_t waiting;
    int requeues_after;
    Clock::Duration ready_after;  // when the key becomes ready again (0: never)
  };
  const std::vector<Row> rows = {
      {"done forgets", Done{}, 0, 0, 0, 0s},
      {"requeue after forgets and delays", RequeueAfter{30s}, 0, 1, 0, 30s},
      {"transient backs off", TransientError{"boom"}, 0, 1, 3, 4s},
      {"terminal forgets, no retry", TerminalError{"bad spec"}, 0, 0, 0, 0s},
      {"requeue backs off like an error", Requeue{"409"}, 0, 1, 3, 4s},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    FakeClock clock;
    kube::WorkQueue queue(
        {.clock = &clock,
         .rate_limiter = std::make_unique<kube::ItemExponentialFailureRateLimiter>(1s, 60s)});
    // Two earlier failures: the next backoff is 4s.
    queue.AddRateLimited("ns/a");
    queue.AddRateLimited("ns/a");
    clock.Step(2s);
    std::string key;
    ASSERT_TRUE(queue.TryGet(&key));
    ApplyResultToQueue(queue, key, row.result);
    queue.Done(key);
    EXPECT_EQ(queue.Len(), row.ready_now);
    EXPECT_EQ(queue.NumWaiting(), row.waiting);
    EXPECT_EQ(queue.NumRequeues("ns/a"), row.requeues_after);
    if (row.ready_after > 0s) {
      clock.Step(row.ready_after - 1ms);
      EXPECT_EQ(queue.Len(), 0u);
      clock.Step(1ms);
      EXPECT_EQ(queue.Len(), 1u);
    } else {
      clock.Step(1h);
      EXPECT_EQ(queue.Len(), 0u);
    }
  }
}

struct Harness {
  explicit Harness(int workers = 2) {
    ControllerOptions o;
    o.name = "test";
    o.workers = workers;
    o.clock = &clock;
    o.metrics = &registry;
    o.rate_limiter = std::make_unique<kube::ItemExponentialFailureRateLimiter>(1s, 60s);
    controller = std::make_unique<Controller>(std::move(o), reconciler);
  }
  void Start() {
    thread = std::jthread([this](std::stop_token stop) { result = controller->Run(stop); });
  }
  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry.Collect()); }

  FakeClock clock;
  prometheus::Registry registry;
  ScriptedReconciler reconciler;
  std::unique_ptr<Controller> controller;
  std::jthread thread;
  Status result;
};

TEST(ControllerTest, RoutesPrimaryOwnedAndMappedEvents) {
  Harness h;
  FakeSource pools, pods, nodes;
  h.controller->For(pools);
  h.controller->Owns(pods, "GpuPool");
  h.controller->Watches(nodes, [](const ChangedObject& node) {
    return std::vector<Request>{{"ns", "pool-of-" + node.name}};
  });
  h.Start();
  pools.Emit({"ns", "p1", {}});
  pods.Emit({"ns", "pod-1", {{"v1", "GpuPool", "p2", true}, {"v1", "GpuPool", "p9", false}}});
  pods.Emit({"ns", "pod-2", {{"apps/v1", "ReplicaSet", "rs", true}}});
  nodes.Emit({"", "n1", {}});
  ASSERT_TRUE(WaitFor([&] {
    return h.reconciler.Calls("ns/p1") == 1 && h.reconciler.Calls("ns/p2") == 1 &&
           h.reconciler.Calls("ns/pool-of-n1") == 1;
  }));
  EXPECT_EQ(h.reconciler.Calls("ns/p9"), 0);  // not the controller owner
  EXPECT_EQ(h.reconciler.Calls("ns/rs"), 0);  // another kind
  EXPECT_EQ(h.reconciler.Calls("ns/pod-1"), 0);
  h.thread.request_stop();
  h.thread.join();
  EXPECT_TRUE(h.result.ok());
}

TEST(ControllerTest, TransientErrorsAndExceptionsRetryWithBackoff) {
  Harness h(1);
  FakeSource pools;
  h.controller->For(pools);
  h.reconciler.Script("ns/a", {[]() -> ReconcileResult { return TransientError{"api down"}; },
                               []() -> ReconcileResult { throw std::runtime_error("bug"); },
                               []() -> ReconcileResult { return Done{}; }});
  h.Start();
  pools.Emit({"ns", "a", {}});
  ASSERT_TRUE(WaitFor([&] { return h.reconciler.Calls("ns/a") == 1; }));
  // First retry after 1s, not before.
  ASSERT_TRUE(WaitFor([&] { return h.controller->queue().NumWaiting() == 1; }));
  h.clock.Step(999ms);
  EXPECT_EQ(h.reconciler.Calls("ns/a"), 1);
  h.clock.Step(1ms);
  ASSERT_TRUE(WaitFor([&] { return h.reconciler.Calls("ns/a") == 2; }));
  // The exception counts as a failure: the next delay doubles to 2s.
  ASSERT_TRUE(WaitFor([&] { return h.controller->queue().NumWaiting() == 1; }));
  EXPECT_EQ(h.controller->queue().NumRequeues("ns/a"), 2);
  h.clock.Step(2s);
  ASSERT_TRUE(WaitFor([&] { return h.reconciler.Calls("ns/a") == 3; }));
  ASSERT_TRUE(WaitFor([&] { return h.controller->queue().NumRequeues("ns/a") == 0; }));
  const std::string m = h.Metrics();
  EXPECT_NE(m.find(R"(controller_runtime_reconcile_total{controller="test",result="error"} 2)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(controller_runtime_reconcile_total{controller="test",result="success"} 1)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(controller_runtime_reconcile_panics_total{controller="test"} 1)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(controller_runtime_reconcile_errors_total{controller="test"} 2)"),
            std::string::npos)
      << m;
}

// A lost optimistic-concurrency race is retried with the rate limiter, as
// controller-runtime's Result{Requeue: true}, and is not counted as an error.
TEST(ControllerTest, RequeueRetriesWithBackoffWithoutCountingAnError) {
  Harness h(1);
  FakeSource pools;
  h.controller->For(pools);
  h.reconciler.Script("ns/a", {[]() -> ReconcileResult { return Requeue{"status write: 409"}; },
                               []() -> ReconcileResult { return Done{}; }});
  h.Start();
  pools.Emit({"ns", "a", {}});
  ASSERT_TRUE(WaitFor([&] { return h.reconciler.Calls("ns/a") == 1; }));
  ASSERT_TRUE(WaitFor([&] { return h.controller->queue().NumWaiting() == 1; }));
  h.clock.Step(999ms);
  EXPECT_EQ(h.reconciler.Calls("ns/a"), 1);
  h.clock.Step(1ms);
  ASSERT_TRUE(WaitFor([&] { return h.reconciler.Calls("ns/a") == 2; }));
  ASSERT_TRUE(WaitFor([&] { return h.controller->queue().NumRequeues("ns/a") == 0; }));
  const std::string m = h.Metrics();
  EXPECT_NE(m.find(R"(controller_runtime_reconcile_total{controller="test",result="requeue"} 1)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(controller_runtime_reconcile_total{controller="test",result="error"} 0)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(controller_runtime_reconcile_errors_total{controller="test"} 0)"),
            std::string::npos)
      << m;
}

TEST(ControllerTest, TerminalErrorIsNotRetriedUntilNextEvent) {
  Harness h(1);
  FakeSource pools;
  h.controller->For(pools);
  h.reconciler.Script("ns/bad", {[]() -> ReconcileResult { return TerminalError{"invalid"}; }});
  h.Start();
  pools.Emit({"ns", "bad", {}});
  ASSERT_TRUE(WaitFor([&] { return h.reconciler.Calls("ns/bad") == 1; }));
  ASSERT_TRUE(WaitFor([&] { return h.controller->queue().NumProcessing() == 0; }));
  EXPECT_EQ(h.controller->queue().NumWaiting(), 0u);
  h.clock.Step(1h);
  pools.Emit({"ns", "bad", {}});  // a new event does reconcile again
  ASSERT_TRUE(WaitFor([&] { return h.reconciler.Calls("ns/bad") == 2; }));
}

TEST(ControllerTest, RequeueAfterRunsAgainAfterDelay) {
  Harness h(1);
  FakeSource pools;
  h.controller->For(pools);
  h.reconciler.Script("ns/a", {[]() -> ReconcileResult { return RequeueAfter{10s}; },
                               []() -> ReconcileResult { return Done{}; }});
  h.Start();
  pools.Emit({"ns", "a", {}});
  ASSERT_TRUE(WaitFor([&] { return h.controller->queue().NumWaiting() == 1; }));
  EXPECT_EQ(h.reconciler.Calls("ns/a"), 1);
  h.clock.Step(10s);
  ASSERT_TRUE(WaitFor([&] { return h.reconciler.Calls("ns/a") == 2; }));
}

TEST(ControllerTest, WaitsForSourcesToSync) {
  Harness h(1);
  FakeSource pools;
  pools.synced = false;
  h.controller->For(pools);
  h.Start();
  pools.Emit({"ns", "a", {}});  // queued while the cache syncs
  EXPECT_FALSE(h.controller->HasSynced());
  EXPECT_EQ(h.reconciler.Calls("ns/a"), 0);
  pools.synced = true;
  ASSERT_TRUE(WaitFor([&] { return h.reconciler.Calls("ns/a") == 1; }));
}

TEST(ControllerTest, SyncTimeoutIsAnError) {
  FakeClock clock;
  ScriptedReconciler reconciler;
  FakeSource never;
  never.synced = false;
  ControllerOptions o;
  o.clock = &clock;
  o.cache_sync_timeout = 50ms;
  Controller c(std::move(o), reconciler);
  c.For(never);
  Status s = c.Run({});
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
}

class BlockingReconciler final : public Reconciler {
 public:
  ReconcileResult Reconcile(const Request&, std::stop_token) override {
    ++started;
    while (!release.load())
      std::this_thread::sleep_for(100us);
    ++finished;
    return Done{};
  }
  std::atomic<bool> release{false};
  std::atomic<int> started{0}, finished{0};
};

TEST(ControllerTest, StopFinishesInFlightWorkAndDropsQueued) {
  BlockingReconciler reconciler;
  FakeSource pools;
  ControllerOptions o;
  o.workers = 1;
  Controller c(std::move(o), reconciler);
  c.For(pools);
  std::atomic<bool> returned{false};
  std::jthread run([&](std::stop_token stop) {
    EXPECT_TRUE(c.Run(stop).ok());
    returned = true;
  });
  pools.Emit({"ns", "a", {}});
  ASSERT_TRUE(WaitFor([&] { return reconciler.started.load() == 1; }));
  pools.Emit({"ns", "b", {}});  // queued behind the single worker
  run.request_stop();
  std::this_thread::sleep_for(20ms);  // give Run a chance to (wrongly) return early
  EXPECT_FALSE(returned.load());
  reconciler.release = true;
  run.join();
  EXPECT_TRUE(returned.load());
  EXPECT_EQ(reconciler.finished.load(), 1);  // "a" finished, "b" was dropped
}

}  // namespace
}  // namespace gpu_autoscaler::reconcile
