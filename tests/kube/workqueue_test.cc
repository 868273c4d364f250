#include "kube/workqueue.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>
#include <vector>

namespace gpu_autoscaler::kube {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> DrainReady(WorkQueue& q) {
  std::vector<std::string> out;
  std::string key;
  while (q.TryGet(&key))
    out.push_back(key);
  return out;
}

TEST(WorkQueueTest, FifoAndDeduplicated) {
  FakeClock clock;
  WorkQueue q({.clock = &clock});
  q.Add("a");
  q.Add("b");
  q.Add("a");
  q.Add("c");
  q.Add("b");
  EXPECT_EQ(q.Len(), 3u);
  EXPECT_EQ(DrainReady(q), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(q.NumProcessing(), 3u);
}

// kube-scheduler's activeQ: higher priority first, the order added among
// equals; a key re-queued by Done or a delay is ranked again by its priority then.
TEST(WorkQueueTest, WithAPriorityHigherGoesFirstAndEqualsInOrder) {
  FakeClock clock;
  std::map<std::string, int64_t> priority = {
      {"low-a", 0}, {"low-b", 0}, {"high", 1000}, {"mid", 10}};
  WorkQueue q({.clock = &clock, .priority = [&](const std::string& key) {
                 auto it = priority.find(key);
                 return it == priority.end() ? int64_t{0} : it->second;
               }});
  q.Add("low-a");
  q.Add("mid");
  q.Add("low-b");
  q.Add("high");
  q.Add("low-a");  // still deduplicated
  EXPECT_EQ(q.Len(), 4u);
  EXPECT_EQ(DrainReady(q), (std::vector<std::string>{"high", "mid", "low-a", "low-b"}));

  // Re-added while processing: ranked at Done, by the priority it has then.
  q.Add("low-a");
  priority["low-a"] = 2000;
  q.Add("new");  // unknown: 0
  q.Done("low-a");
  q.Done("high");
  q.Done("mid");
  q.Done("low-b");
  q.AddAfter("mid", 1s);
  clock.Step(1s);
  EXPECT_EQ(DrainReady(q), (std::vector<std::string>{"low-a", "mid", "new"}));
}

TEST(WorkQueueTest, StingyKeyBeingProcessedIsRequeuedAfterDone) {
  FakeClock clock;
  WorkQueue q({.clock = &clock});
  q.Add("a");
  std::string key;
  ASSERT_TRUE(q.TryGet(&key));
  EXPECT_EQ(key, "a");
  q.Add("a");  // while processing: not handed to another worker
  q.Add("a");
  EXPECT_FALSE(q.TryGet(&key));
  EXPECT_EQ(q.Len(), 0u);
  q.Done("a");
  EXPECT_EQ(q.Len(), 1u);
  ASSERT_TRUE(q.TryGet(&key));
  EXPECT_EQ(key, "a");
  q.Done("a");
  EXPECT_FALSE(q.TryGet(&key));
  EXPECT_EQ(q.NumProcessing(), 0u);
}

TEST(WorkQueueTest, DoneOfUnknownKeyIsIgnored) {
  WorkQueue q;
  q.Done("never-added");
  q.Add("a");
  q.Done("a");  // queued but not handed out: still queued
  EXPECT_EQ(q.Len(), 1u);
}

TEST(WorkQueueTest, AddAfterWaitsForClock) {
  FakeClock clock;
  WorkQueue q({.clock = &clock});
  q.AddAfter("late", 10s);
  q.AddAfter("early", 5s);
  q.AddAfter("now", 0s);
  EXPECT_EQ(DrainReady(q), std::vector<std::string>{"now"});
  EXPECT_EQ(q.NumWaiting(), 2u);
  clock.Step(5s);
  EXPECT_EQ(q.Len(), 1u);
  EXPECT_EQ(DrainReady(q), std::vector<std::string>{"early"});
  clock.Step(5s);
  EXPECT_EQ(DrainReady(q), std::vector<std::string>{"late"});
  EXPECT_EQ(q.NumWaiting(), 0u);
}

TEST(WorkQueueTest, AddAfterKeepsEarliestReadyTime) {
  FakeClock clock;
  WorkQueue q({.clock = &clock});
  q.AddAfter("a", 10s);
  q.AddAfter("a", 2s);   // earlier wins
  q.AddAfter("a", 30s);  // later is ignored
  clock.Step(2s);
  EXPECT_EQ(DrainReady(q), std::vector<std::string>{"a"});
  q.Done("a");
  clock.Step(30s);  // the superseded entries must not fire again
  EXPECT_TRUE(DrainReady(q).empty());
}

TEST(WorkQueueTest, DelayedKeyAlreadyQueuedIsNotDuplicated) {
  FakeClock clock;
  WorkQueue q({.clock = &clock});
  q.AddAfter("a", 1s);
  q.Add("a");
  clock.Step(1s);
  EXPECT_EQ(DrainReady(q), std::vector<std::string>{"a"});
}

TEST(WorkQueueTest, BlockingGetWakesWhenDelayedKeyIsDue) {
  FakeClock clock;
  WorkQueue q({.clock = &clock});
  q.AddAfter("a", 3s);
  std::atomic<bool> got{false};
  std::thread worker([&] {
    std::string key;
    if (q.Get(&key) && key == "a") got = true;
  });
  // Wait (real time, generous) until the worker blocks on the clock.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (clock.waiters() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_FALSE(got.load());
  clock.Step(3s);
  worker.join();
  EXPECT_TRUE(got.load());
}

TEST(WorkQueueTest, RateLimitedBacksOffExponentiallyAndForgetResets) {
  FakeClock clock;
  WorkQueue q({.clock = &clock});
  std::string key;
  q.AddRateLimited("a");  // 5ms
  EXPECT_FALSE(q.TryGet(&key));
  clock.Step(5ms);
  ASSERT_TRUE(q.TryGet(&key));
  q.Done("a");
  q.AddRateLimited("a");  // 10ms
  clock.Step(9ms);
  EXPECT_FALSE(q.TryGet(&key));
  clock.Step(1ms);
  ASSERT_TRUE(q.TryGet(&key));
  q.Done("a");
  EXPECT_EQ(q.NumRequeues("a"), 2);
  q.Forget("a");
  EXPECT_EQ(q.NumRequeues("a"), 0);
  q.AddRateLimited("a");
  clock.Step(5ms);
  EXPECT_TRUE(q.TryGet(&key));
}

TEST(WorkQueueTest, ShutDownStopsAddsAndReleasesGetters) {
  WorkQueue q;
  q.Add("a");
  q.ShutDown();
  q.Add("b");  // ignored
  q.AddAfter("c", 1s);
  EXPECT_TRUE(q.ShuttingDown());
  std::string key;
  ASSERT_TRUE(q.Get(&key));  // ready keys are still handed out
  EXPECT_EQ(key, "a");
  EXPECT_FALSE(q.Get(&key));
  EXPECT_EQ(q.NumWaiting(), 0u);
}

TEST(WorkQueueTest, ShutDownWakesBlockedGetters) {
  WorkQueue q;
  std::vector<std::thread> workers;
  std::atomic<int> returned{0};
  for (int i = 0; i < 3; ++i) {
    workers.emplace_back([&] {
      std::string key;
      while (q.Get(&key))
        q.Done(key);
      ++returned;
    });
  }
  q.ShutDown();
  for (auto& t : workers)
    t.join();
  EXPECT_EQ(returned.load(), 3);
}

TEST(WorkQueueTest, ShutDownWithDrainWaitsForInFlightWork) {
  WorkQueue q;
  q.Add("a");
  std::string key;
  ASSERT_TRUE(q.Get(&key));
  std::atomic<bool> drained{false};
  std::thread shutdown([&] {
    q.ShutDownWithDrain();
    drained = true;
  });
  // The drain cannot finish while "a" is processing; it finishes after Done.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!q.ShuttingDown() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_FALSE(drained.load());
  q.Done("a");
  shutdown.join();
  EXPECT_TRUE(drained.load());
}

TEST(WorkQueueTest, ConcurrentWorkersNeverShareAKey) {
  WorkQueue q;
  constexpr int kKeys = 50;
  constexpr int kAddsPerKey = 200;
  std::mutex mu;
  std::set<std::string> in_flight;
  std::atomic<bool> overlap{false};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      std::string key;
      while (q.Get(&key)) {
        {
          std::lock_guard<std::mutex> l(mu);
          if (!in_flight.insert(key).second) overlap = true;
        }
        std::this_thread::yield();
        {
          std::lock_guard<std::mutex> l(mu);
          in_flight.erase(key);
        }
        ++processed;
        q.Done(key);
      }
    });
  }
  std::thread producer([&] {
    for (int i = 0; i < kAddsPerKey; ++i) {
      for (int k = 0; k < kKeys; ++k)
        q.Add("ns/k" + std::to_string(k));
    }
  });
  producer.join();
  q.ShutDownWithDrain();
  for (auto& t : workers)
    t.join();
  EXPECT_FALSE(overlap.load());
  // Deduplication: at least one pass per key, at most one per add.
  EXPECT_GE(processed.load(), kKeys);
  EXPECT_LE(processed.load(), kKeys * kAddsPerKey);
}

TEST(WorkQueueTest, ExportsMetrics) {
  FakeClock clock;
  prometheus::Registry registry;
  WorkQueue q({.name = "nodes", .clock = &clock, .metrics = &registry});
  q.Add("a");
  q.Add("b");
  clock.Step(2s);
  std::string key;
  ASSERT_TRUE(q.TryGet(&key));
  clock.Step(3s);
  q.UpdateUnfinishedWorkMetrics();
  q.AddRateLimited("c");
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("workqueue_adds_total{name=\"nodes\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("workqueue_depth{name=\"nodes\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("workqueue_retries_total{name=\"nodes\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("workqueue_longest_running_processor_seconds{name=\"nodes\"} 3"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("workqueue_queue_duration_seconds_sum{name=\"nodes\"} 2"), std::string::npos)
      << text;
  q.Done(key);
  const std::string after = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(after.find("workqueue_work_duration_seconds_sum{name=\"nodes\"} 3"), std::string::npos)
      << after;
}

}  // namespace
}  // namespace gpu_autoscaler::kube
