// The reflector against a scripted ListerWatcher: paging, watch resumption,
// bookmarks, 410 relists, backoff on an injected clock, and stop.

#include "kube/reflector.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "kube/fake_lister_watcher.h"
#include "kube/object_codec.h"

namespace gpu_autoscaler::kube {
namespace {

using namespace std::chrono_literals;
using namespace fakes;  // NOLINT: fakes and JSON helpers

// Records what the reflector hands over, decoding objects generically.
class RecordingSink : public ReflectorSink {
 public:
  void BeginList() override {
    std::lock_guard<std::mutex> l(mu_);
    staged_.clear();
    log_.push_back("begin");
  }
  Result<ListMeta> StagePage(std::string_view body) override {
    auto page = DecodeGenericList(body);
    if (!page.ok()) return std::move(page).error();
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& item : page->items)
      staged_.emplace_back(item.name());
    log_.push_back("page");
    return page->meta;
  }
  void CommitList(std::string rv) override {
    std::lock_guard<std::mutex> l(mu_);
    std::string names;
    for (const auto& n : staged_)
      names += n + ",";
    log_.push_back("commit@" + rv + ":" + names);
  }
  Result<std::string> DeliverEvent(WatchEventType type, std::string_view json) override {
    auto obj = DecodeGenericObject(json);
    if (!obj.ok()) return std::move(obj).error();
    std::lock_guard<std::mutex> l(mu_);
    log_.push_back(std::string(WatchEventTypeName(type)) + ":" + std::string(obj->name()) + "@" +
                   std::string(obj->resource_version()));
    return std::string(obj->resource_version());
  }
  void OnBookmark(const std::string& rv) override {
    std::lock_guard<std::mutex> l(mu_);
    log_.push_back("bookmark@" + rv);
  }
  std::vector<std::string> log() {
    std::lock_guard<std::mutex> l(mu_);
    return log_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> staged_;
  std::vector<std::string> log_;
};

class ReflectorTest : public ::testing::Test {
 protected:
  void Start() {
    ReflectorOptions opts;
    opts.clock = &clock_;
    opts.page_size = 2;
    opts.watch_timeout = 60s;
    opts.seed = 42;
    auto lw = std::make_unique<FakeListerWatcher>();
    lw_ = lw.get();
    Script(lw_);
    reflector_ = std::make_unique<Reflector>(std::move(lw), &sink_, opts);
    thread_ = std::jthread([this](std::stop_token stop) { reflector_->Run(stop); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }
  // Steps the fake clock once the reflector is asleep in its n-th backoff.
  void ElapseBackoff(int n) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while ((reflector_->stats().backoffs < n || clock_.waiters() == 0) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(reflector_->stats().backoffs, n) << "reflector never backed off";
    clock_.Step(10min);
  }

  std::function<void(FakeListerWatcher*)> Script = [](FakeListerWatcher*) {};
  FakeClock clock_;
  RecordingSink sink_;
  FakeListerWatcher* lw_ = nullptr;
  std::unique_ptr<Reflector> reflector_;
  std::jthread thread_;
};

TEST_F(ReflectorTest, ListsPagesThenWatchesFromTheListRvWithBookmarks) {
  Script = [](FakeListerWatcher* lw) {
    lw->AddList(ListBody("100", "c1", {"a", "b"}));
    lw->AddList(ListBody("100", "", {"c"}));
    lw->AddWatch({{Event("ADDED", Obj("d", "101")) + Event("MODIFIED", Obj("a", "102")),
                   Bookmark("150"), Event("DELETED", Obj("b", "151"))},
                  std::monostate{}});  // server closes the stream (timeoutSeconds)
  };
  Start();
  ASSERT_TRUE(lw_->WaitForWatches(2));

  auto lists = lw_->list_calls();
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0].limit, 2);
  EXPECT_EQ(lists[0].continue_token, "");
  EXPECT_EQ(lists[1].continue_token, "c1");
  auto watches = lw_->watch_calls();
  EXPECT_EQ(watches[0].resource_version, "100");
  EXPECT_TRUE(watches[0].allow_watch_bookmarks);
  EXPECT_GE(watches[0].timeout_seconds, 60);
  EXPECT_LT(watches[0].timeout_seconds, 120);
  // The renewed watch resumes from the last event, not the bookmark before it.
  EXPECT_EQ(watches[1].resource_version, "151");

  EXPECT_EQ(sink_.log(),
            (std::vector<std::string>{"begin", "page", "page", "commit@100:a,b,c,", "ADDED:d@101",
                                      "MODIFIED:a@102", "bookmark@150", "DELETED:b@151"}));
  auto stats = reflector_->stats();
  EXPECT_EQ(stats.list_pages, 2);
  EXPECT_EQ(stats.lists_committed, 1);
  EXPECT_EQ(stats.events, 3);
  EXPECT_EQ(stats.bookmarks, 1);
  EXPECT_EQ(stats.backoffs, 0);
  EXPECT_EQ(reflector_->state().phase, WatcherPhase::kWatching);
}

TEST_F(ReflectorTest, BookmarkRvIsWhereTheNextWatchResumes) {
  Script = [](FakeListerWatcher* lw) {
    lw->AddList(ListBody("10", "", {"a"}));
    lw->AddWatch({{Event("ADDED", Obj("b", "11")), Bookmark("90")}, std::monostate{}});
  };
  Start();
  ASSERT_TRUE(lw_->WaitForWatches(2));
  EXPECT_EQ(lw_->watch_calls()[1].resource_version, "90");
  EXPECT_EQ(reflector_->state().resource_version, "90");
}

TEST_F(ReflectorTest, GoneAtWatchStartRelists) {
  Script = [](FakeListerWatcher* lw) {
    lw->AddList(ListBody("10", "", {"a", "b"}));
    lw->AddWatch({{}, Error::FromResponse(410, ExpiredStatus())});
    lw->AddList(ListBody("60", "", {"b"}));
  };
  Start();
  ASSERT_TRUE(lw_->WaitForWatches(2));
  EXPECT_EQ(lw_->watch_calls()[1].resource_version, "60");
  EXPECT_EQ(sink_.log(), (std::vector<std::string>{"begin", "page", "commit@10:a,b,", "begin",
                                                   "page", "commit@60:b,"}));
  EXPECT_EQ(reflector_->stats().relists, 1);
  EXPECT_EQ(reflector_->stats().backoffs, 0);  // 410 relists at once
}

TEST_F(ReflectorTest, ExpiredErrorEventRelists) {
  Script = [](FakeListerWatcher* lw) {
    lw->AddList(ListBody("10", "", {"a"}));
    lw->AddWatch({{Event("ADDED", Obj("b", "11")) + Event("ERROR", ExpiredStatus()) +
                   Event("ADDED", Obj("never", "12"))},
                  std::monostate{}});
    lw->AddList(ListBody("70", "", {"a", "b"}));
  };
  Start();
  ASSERT_TRUE(lw_->WaitForWatches(2));
  EXPECT_EQ(lw_->watch_calls()[1].resource_version, "70");
  EXPECT_EQ(sink_.log(), (std::vector<std::string>{"begin", "page", "commit@10:a,", "ADDED:b@11",
                                                   "begin", "page", "commit@70:a,b,"}));
}

TEST_F(ReflectorTest, TransportErrorBacksOffThenResumesWithoutRelisting) {
  Script = [](FakeListerWatcher* lw) {
    lw->AddList(ListBody("10", "", {"a"}));
    lw->AddWatch({{Event("ADDED", Obj("b", "11"))}, Error::Transport("connection reset")});
  };
  Start();
  ASSERT_TRUE(lw_->WaitForWatches(1));
  ElapseBackoff(1);
  ASSERT_TRUE(lw_->WaitForWatches(2));
  EXPECT_EQ(lw_->watch_calls()[1].resource_version, "11");
  EXPECT_EQ(lw_->list_calls().size(), 1u);
  EXPECT_EQ(reflector_->stats().backoffs, 1);
  EXPECT_NE(reflector_->last_error().find("connection reset"), std::string::npos);
}

TEST_F(ReflectorTest, ListErrorsBackOffAndRetry) {
  Script = [](FakeListerWatcher* lw) {
    lw->AddList(
        Error::FromResponse(500, R"({"kind":"Status","code":500,"reason":"InternalError"})"));
    lw->AddList(Error::Transport("refused"));
    lw->AddList(ListBody("30", "", {"a"}));
  };
  Start();
  ElapseBackoff(1);
  ElapseBackoff(2);
  ASSERT_TRUE(lw_->WaitForWatches(1));
  EXPECT_EQ(lw_->watch_calls()[0].resource_version, "30");
  EXPECT_EQ(reflector_->stats().backoffs, 2);
  EXPECT_EQ(lw_->list_calls().size(), 3u);
}

TEST_F(ReflectorTest, ExpiredContinueTokenRestartsTheListAndDropsStagedPages) {
  Script = [](FakeListerWatcher* lw) {
    lw->AddList(ListBody("10", "c1", {"a", "b"}));
    lw->AddList(Error::FromResponse(410, ExpiredStatus()));
    lw->AddList(ListBody("40", "c2", {"a", "b"}));
    lw->AddList(ListBody("40", "", {"z"}));
  };
  Start();
  ASSERT_TRUE(lw_->WaitForWatches(1));
  auto lists = lw_->list_calls();
  ASSERT_EQ(lists.size(), 4u);
  EXPECT_EQ(lists[1].continue_token, "c1");
  EXPECT_EQ(lists[2].continue_token, "");
  EXPECT_EQ(lists[3].continue_token, "c2");
  EXPECT_EQ(sink_.log(), (std::vector<std::string>{"begin", "page", "begin", "page", "page",
                                                   "commit@40:a,b,z,"}));
  EXPECT_EQ(lw_->watch_calls()[0].resource_version, "40");
}

TEST_F(ReflectorTest, UndecodableEventRestartsTheWatchAfterBackoff) {
  Script = [](FakeListerWatcher* lw) {
    lw->AddList(ListBody("10", "", {}));
    lw->AddWatch({{Event("ADDED", Obj("a", "11")), R"({"type":"ADDED","object":{"metadata":7}})"},
                  std::monostate{}});
  };
  Start();
  ASSERT_TRUE(lw_->WaitForWatches(1));
  ElapseBackoff(1);
  ASSERT_TRUE(lw_->WaitForWatches(2));
  EXPECT_EQ(lw_->watch_calls()[1].resource_version, "11");
}

TEST_F(ReflectorTest, EventsSplitAcrossChunksAreFramed) {
  Script = [](FakeListerWatcher* lw) {
    lw->AddList(ListBody("10", "", {}));
    std::string all = Event("ADDED", Obj("a", "11")) + Event("ADDED", Obj("b", "12"));
    std::vector<std::string> chunks;
    for (size_t i = 0; i < all.size(); i += 7)
      chunks.push_back(all.substr(i, 7));
    lw->AddWatch({chunks, std::monostate{}, /*hold=*/true});
  };
  Start();
  ASSERT_TRUE(lw_->WaitForWatches(1));
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (reflector_->stats().events < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(sink_.log(),
            (std::vector<std::string>{"begin", "page", "commit@10:", "ADDED:a@11", "ADDED:b@12"}));
}

TEST_F(ReflectorTest, StopEndsABlockedWatch) {
  Script = [](FakeListerWatcher* lw) { lw->AddList(ListBody("10", "", {"a"})); };
  Start();
  ASSERT_TRUE(lw_->WaitForWatches(1));
  thread_.request_stop();
  thread_.join();  // returns: the watch honoured the stop token
  EXPECT_EQ(reflector_->state().phase, WatcherPhase::kWatching);
}

TEST_F(ReflectorTest, StopEndsABackoff) {
  Script = [](FakeListerWatcher* lw) { lw->AddList(Error::Transport("down")); };
  Start();
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (clock_.waiters() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  thread_.request_stop();
  thread_.join();
  EXPECT_EQ(reflector_->state().phase, WatcherPhase::kBackoff);
}

TEST(BackoffPolicyTest, GrowsExponentiallyWithJitterUpToTheCap) {
  BackoffPolicy p{.initial = 100ms, .max = 1s, .factor = 2.0, .jitter = 0.5};
  EXPECT_EQ(p.Delay(1, 0.0), 100ms);
  EXPECT_EQ(p.Delay(2, 0.0), 200ms);
  EXPECT_EQ(p.Delay(3, 0.0), 400ms);
  EXPECT_EQ(p.Delay(5, 0.0), 1s);  // capped
  EXPECT_EQ(p.Delay(50, 0.0), 1s);
  EXPECT_EQ(p.Delay(1, 1.0), 150ms);  // full jitter adds half
  EXPECT_EQ(p.Delay(5, 0.5), 1250ms);
  EXPECT_EQ(p.Delay(0, 0.0), 100ms);  // attempts start at 1
}

}  // namespace
}  // namespace gpu_autoscaler::kube
