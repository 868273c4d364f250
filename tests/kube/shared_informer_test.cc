// Shared informers over a scripted ListerWatcher: sync, handler events,
// tombstones from relists, resync, and the watch/dispatch split.

#include "kube/shared_informer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "kube/fake_lister_watcher.h"

namespace gpu_autoscaler::kube {
namespace {

using namespace std::chrono_literals;
using namespace fakes;  // NOLINT
using ObjectPtr = std::shared_ptr<const GenericObject>;

// Waits (real time, generously) for `pred`.
template <typename Pred>
bool Eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Records handler calls as strings, and the adds/deletes balance.
class Recorder {
 public:
  EventHandler<GenericObject> Handler() {
    return {.on_add = [this](const ObjectPtr& o) { Add("add:" + Name(o)); },
            .on_update =
                [this](const ObjectPtr& old_obj, const ObjectPtr& new_obj) {
                  Add("update:" + Name(old_obj) + "->" + std::string(new_obj->resource_version()));
                },
            .on_delete =
                [this](const ObjectPtr& o, bool final_state_unknown) {
                  Add(std::string(final_state_unknown ? "tombstone:" : "delete:") + Name(o));
                }};
  }
  std::vector<std::string> events() {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }
  size_t count() {
    std::lock_guard<std::mutex> l(mu_);
    return events_.size();
  }

 private:
  static std::string Name(const ObjectPtr& o) {
    return std::string(o->name()) + "@" + std::string(o->resource_version());
  }
  void Add(std::string e) {
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back(std::move(e));
  }
  std::mutex mu_;
  std::vector<std::string> events_;
};

class SharedInformerTest : public ::testing::Test {
 protected:
  std::unique_ptr<SharedInformer<GenericObject>> Make(std::chrono::milliseconds resync = 0ms) {
    auto lw = std::make_unique<FakeListerWatcher>();
    lw_ = lw.get();
    InformerOptions opts;
    opts.clock = &clock_;
    opts.resync_period = resync;
    opts.seed = 7;
    return std::make_unique<SharedInformer<GenericObject>>(std::move(lw), GenericObjectCodec(),
                                                           opts, "test-informer");
  }
  FakeClock clock_;
  FakeListerWatcher* lw_ = nullptr;
};

TEST_F(SharedInformerTest, SyncsThenDeliversWatchEventsInOrder) {
  auto informer = Make();
  Recorder rec;
  informer->AddEventHandler(rec.Handler());
  lw_->AddList(ListBody("10", "", {"a", "b"}));
  lw_->AddWatch({{Event("ADDED", Obj("c", "11")), Event("MODIFIED", Obj("a", "12")),
                  Event("DELETED", Obj("b", "13"))},
                 std::monostate{},
                 /*hold=*/true});
  EXPECT_FALSE(informer->HasSynced());
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return rec.count() >= 5; }));
  EXPECT_TRUE(informer->HasSynced());
  EXPECT_TRUE(informer->WaitForSync({}, 1s));

  auto events = rec.events();
  ASSERT_EQ(events.size(), 5u);
  // The initial list's adds may come in any order; the watch's follow in order.
  EXPECT_EQ(std::multiset<std::string>(events.begin(), events.begin() + 2),
            (std::multiset<std::string>{"add:a@10", "add:b@10"}));
  EXPECT_EQ(std::vector<std::string>(events.begin() + 2, events.end()),
            (std::vector<std::string>{"add:c@11", "update:a@10->12", "delete:b@13"}));

  EXPECT_EQ(informer->store().size(), 2u);
  EXPECT_EQ(informer->store().Get("ns/a")->resource_version(), "12");
  EXPECT_EQ(informer->store().Get("ns/b"), nullptr);
  EXPECT_EQ(informer->LastSyncResourceVersion(), "13");
  auto stats = informer->stats();
  EXPECT_EQ(stats.adds, 3);
  EXPECT_EQ(stats.updates, 1);
  EXPECT_EQ(stats.deletes, 1);
  EXPECT_EQ(stats.adds - stats.deletes, static_cast<int64_t>(informer->store().size()));
}

TEST_F(SharedInformerTest, EventsAreReconciledAgainstTheStore) {
  auto informer = Make();
  Recorder rec;
  informer->AddEventHandler(rec.Handler());
  lw_->AddList(ListBody("10", "", {"a"}));
  // ADDED for a cached object is an update; DELETED of an unknown one is dropped.
  lw_->AddWatch({{Event("ADDED", Obj("a", "11")), Event("DELETED", Obj("ghost", "12")),
                  Event("DELETED", Obj("a", "13")), Event("DELETED", Obj("a", "14"))},
                 std::monostate{},
                 true});
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return informer->stats().reflector.events >= 4; }));
  ASSERT_TRUE(Eventually([&] { return informer->stats().queue_depth == 0 && rec.count() >= 3; }));
  EXPECT_EQ(rec.events(), (std::vector<std::string>{"add:a@10", "update:a@10->11", "delete:a@13"}));
  EXPECT_EQ(informer->store().size(), 0u);
}

TEST_F(SharedInformerTest, RelistReportsMissedDeletesAsTombstones) {
  auto informer = Make();
  Recorder rec;
  informer->AddEventHandler(rec.Handler());
  lw_->AddList(ListBody("10", "", {"a", "b", "c"}));
  lw_->AddWatch({{Event("MODIFIED", Obj("a", "11"))}, Error::FromResponse(410, ExpiredStatus())});
  // While no watch was open: b was deleted, c changed, d appeared.
  lw_->AddList(R"({"metadata":{"resourceVersion":"50"},"items":[)" + Obj("a", "11") + "," +
               Obj("c", "40") + "," + Obj("d", "45") + "]}");
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return rec.count() >= 7; }));
  // The handlers can hear the relist before the reflector has counted it and
  // opened the next watch; the second watch marks the relist as finished.
  ASSERT_TRUE(lw_->WaitForWatches(2));
  auto events = rec.events();
  EXPECT_EQ(std::vector<std::string>(events.begin() + 3, events.end()),
            (std::vector<std::string>{"update:a@10->11", "tombstone:b@10", "update:c@10->40",
                                      "add:d@45"}));
  auto stats = informer->stats();
  EXPECT_EQ(stats.tombstones, 1);
  EXPECT_EQ(stats.reflector.relists, 1);
  EXPECT_EQ(stats.adds - stats.deletes, 3);
  EXPECT_EQ(informer->store().size(), 3u);
  EXPECT_EQ(lw_->watch_calls().back().resource_version, "50");
}

TEST_F(SharedInformerTest, LateHandlerGetsTheCacheAsAdds) {
  auto informer = Make();
  lw_->AddList(ListBody("10", "", {"a", "b"}));
  informer->Start();
  ASSERT_TRUE(informer->WaitForSync({}, 60s));
  ASSERT_TRUE(Eventually([&] { return informer->store().size() == 2; }));
  Recorder late;
  informer->AddEventHandler(late.Handler());
  ASSERT_TRUE(Eventually([&] { return late.count() >= 2; }));
  auto events = late.events();
  EXPECT_EQ(std::multiset<std::string>(events.begin(), events.end()),
            (std::multiset<std::string>{"add:a@10", "add:b@10"}));
}

TEST_F(SharedInformerTest, RemovedHandlerHearsNothingMore) {
  auto informer = Make();
  Recorder rec;
  int id = informer->AddEventHandler(rec.Handler());
  informer->RemoveEventHandler(id);
  lw_->AddList(ListBody("10", "", {"a"}));
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return informer->HasSynced(); }));
  EXPECT_EQ(rec.count(), 0u);
}

TEST_F(SharedInformerTest, ResyncRedeliversEveryObjectOnTheInjectedClock) {
  auto informer = Make(30s);
  Recorder rec;
  informer->AddEventHandler(rec.Handler());
  lw_->AddList(ListBody("10", "", {"a", "b"}));
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return rec.count() >= 2; }));
  EXPECT_EQ(informer->stats().resyncs, 0);
  clock_.Step(31s);
  ASSERT_TRUE(Eventually([&] { return rec.count() >= 4; }));
  auto events = rec.events();
  EXPECT_EQ(std::multiset<std::string>(events.begin() + 2, events.end()),
            (std::multiset<std::string>{"update:a@10->10", "update:b@10->10"}));
  EXPECT_EQ(informer->stats().resyncs, 1);
}

TEST_F(SharedInformerTest, ThrowingHandlerDoesNotStopDispatch) {
  auto informer = Make();
  Recorder rec;
  informer->AddEventHandler({.on_add = [](const ObjectPtr&) { throw std::runtime_error("boom"); }});
  informer->AddEventHandler(rec.Handler());
  lw_->AddList(ListBody("10", "", {"a"}));
  lw_->AddWatch({{Event("ADDED", Obj("b", "11"))}, std::monostate{}, true});
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return rec.count() >= 2; }));
  EXPECT_EQ(informer->stats().handler_errors, 2);
}

// A handler that blocks does not stop the watch: the reflector keeps reading
// and decoding, and the events wait in the queue.
TEST_F(SharedInformerTest, SlowHandlersDoNotBlockTheWatch) {
  auto informer = Make();
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> adds{0};
  informer->AddEventHandler({.on_add = [&](const ObjectPtr&) {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return release; });
    ++adds;
  }});
  lw_->AddList(ListBody("10", "", {"first"}));
  std::vector<std::string> chunks;
  for (int i = 0; i < 50; ++i)
    chunks.push_back(Event("ADDED", Obj("p" + std::to_string(i), std::to_string(11 + i))));
  lw_->AddWatch({chunks, std::monostate{}, true});
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return informer->stats().reflector.events == 50; }));
  auto stats = informer->stats();
  EXPECT_GE(stats.queue_depth, 49);  // all waiting behind the blocked handler
  EXPECT_GE(stats.queue_high_water, 49);
  EXPECT_FALSE(informer->HasSynced());  // the list's adds are still being handled
  {
    std::lock_guard<std::mutex> l(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(Eventually([&] { return adds.load() == 51; }));
  EXPECT_TRUE(Eventually([&] { return informer->stats().queue_depth == 0; }));
  EXPECT_TRUE(informer->HasSynced());
}

TEST_F(SharedInformerTest, WaitForSyncHonoursStopAndTimeout) {
  auto informer = Make();
  lw_->AddList(Error::Transport("down"));  // then every list fails: never syncs
  informer->Start();
  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_FALSE(informer->WaitForSync(stopped.get_token(), 1h));

  std::atomic<bool> done{false};
  std::atomic<bool> result{true};
  std::thread waiter([&] {
    result = informer->WaitForSync({}, 5min);
    done = true;
  });
  ASSERT_TRUE(Eventually([&] { return clock_.waiters() > 0; }));
  while (!done) {
    clock_.Step(1min);
    std::this_thread::sleep_for(1ms);
  }
  waiter.join();
  EXPECT_FALSE(result.load());
}

TEST(InformerFactoryTest, SharesOneInformerPerResourceAndTransform) {
  InformerFactory factory(nullptr);
  auto a = factory.Informer(resources::kPods, GenericObjectCodec());
  auto b = factory.Informer(resources::kPods, GenericObjectCodec());
  EXPECT_EQ(a, b);
  auto views = factory.Informer(resources::kPods, PodViewCodec());
  ASSERT_NE(views, nullptr);
  EXPECT_NE(static_cast<void*>(views.get()), static_cast<void*>(a.get()));
  InformerOptions selected;
  selected.label_selector = "gpu=yes";
  auto filtered = factory.Informer(resources::kPods, GenericObjectCodec(), &selected);
  EXPECT_NE(filtered, a);
  // Same key, different type: refused rather than mis-cast.
  Codec<PodView> impostor = PodViewCodec();
  impostor.name = "generic";
  EXPECT_EQ(factory.Informer(resources::kPods, impostor), nullptr);
  auto nodes = factory.Informer(resources::kNodes, NodeViewCodec());
  EXPECT_NE(nodes, nullptr);
}

}  // namespace
}  // namespace gpu_autoscaler::kube
