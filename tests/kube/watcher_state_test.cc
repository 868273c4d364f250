// Every transition of the list/watch state machine.

#include "kube/watcher_state.h"

#include <gtest/gtest.h>

#include <vector>

namespace gpu_autoscaler::kube {
namespace {

using Kind = WatcherAction::Kind;
using Phase = WatcherPhase;

WatcherAction A(Kind kind, std::string token = "", std::string rv = "", int attempt = 0) {
  return {kind, std::move(token), std::move(rv), attempt};
}

WatcherState Watching(std::string rv) {
  WatcherState s;
  s.phase = Phase::kWatching;
  s.resource_version = std::move(rv);
  s.listed = true;
  return s;
}

TEST(WatcherStateTest, EmptyStartListsFirstPage) {
  WatcherStep step = Next(WatcherState(), WatcherInput::Start());
  EXPECT_EQ(step.state.phase, Phase::kListingPage);
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kBeginList), A(Kind::kListPage)}));
}

TEST(WatcherStateTest, EmptyIgnoresEverythingButStart) {
  for (const WatcherInput& in :
       {WatcherInput::PageListed("5", ""), WatcherInput::ListFailed(false),
        WatcherInput::WatchEvent("5"), WatcherInput::Bookmark("5"), WatcherInput::WatchClosed(),
        WatcherInput::WatchFailed(true), WatcherInput::BackoffElapsed()}) {
    WatcherStep step = Next(WatcherState(), in);
    EXPECT_EQ(step.state.phase, Phase::kEmpty);
    EXPECT_TRUE(step.actions.empty());
  }
}

TEST(WatcherStateTest, PageWithContinueRequestsNextPageAndKeepsFirstRv) {
  WatcherState s = Next(WatcherState(), WatcherInput::Start()).state;
  WatcherStep step = Next(s, WatcherInput::PageListed("100", "tok-1"));
  EXPECT_EQ(step.state.phase, Phase::kListingPage);
  EXPECT_EQ(step.state.continue_token, "tok-1");
  EXPECT_EQ(step.state.list_resource_version, "100");
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kListPage, "tok-1")}));

  // Later pages may report a different RV; the list's snapshot is the first.
  step = Next(step.state, WatcherInput::PageListed("130", "tok-2"));
  EXPECT_EQ(step.state.list_resource_version, "100");
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kListPage, "tok-2")}));
}

TEST(WatcherStateTest, LastPageCommitsAndWatchesFromListRv) {
  WatcherState s = Next(WatcherState(), WatcherInput::Start()).state;
  s = Next(s, WatcherInput::PageListed("100", "tok-1")).state;
  s.failures = 3;
  WatcherStep step = Next(s, WatcherInput::PageListed("100", ""));
  EXPECT_EQ(step.state.phase, Phase::kWatching);
  EXPECT_EQ(step.state.resource_version, "100");
  EXPECT_TRUE(step.state.listed);
  EXPECT_EQ(step.state.failures, 0);
  EXPECT_TRUE(step.state.continue_token.empty());
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kCommitList, "", "100"),
                                                      A(Kind::kStartWatch, "", "100")}));
}

TEST(WatcherStateTest, SinglePageListCommitsAtOnce) {
  WatcherState s = Next(WatcherState(), WatcherInput::Start()).state;
  WatcherStep step = Next(s, WatcherInput::PageListed("7", ""));
  EXPECT_EQ(step.state.phase, Phase::kWatching);
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kCommitList, "", "7"),
                                                      A(Kind::kStartWatch, "", "7")}));
}

TEST(WatcherStateTest, ListErrorBacksOffThenRelistsFromScratch) {
  WatcherState s = Next(WatcherState(), WatcherInput::Start()).state;
  s = Next(s, WatcherInput::PageListed("100", "tok-1")).state;
  WatcherStep step = Next(s, WatcherInput::ListFailed(false));
  EXPECT_EQ(step.state.phase, Phase::kBackoff);
  EXPECT_TRUE(step.state.relist_after_backoff);
  EXPECT_EQ(step.state.failures, 1);
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kSleep, "", "", 1)}));

  step = Next(step.state, WatcherInput::BackoffElapsed());
  EXPECT_EQ(step.state.phase, Phase::kListingPage);  // never listed: still the initial list
  EXPECT_TRUE(step.state.continue_token.empty());
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kBeginList), A(Kind::kListPage)}));

  // Failing again grows the attempt number.
  step = Next(step.state, WatcherInput::ListFailed(false));
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kSleep, "", "", 2)}));
}

TEST(WatcherStateTest, ExpiredContinueTokenRestartsListImmediately) {
  WatcherState s = Next(WatcherState(), WatcherInput::Start()).state;
  s = Next(s, WatcherInput::PageListed("100", "tok-1")).state;
  WatcherStep step = Next(s, WatcherInput::ListFailed(/*gone=*/true));
  EXPECT_EQ(step.state.phase, Phase::kListingPage);
  EXPECT_TRUE(step.state.continue_token.empty());
  EXPECT_TRUE(step.state.list_resource_version.empty());
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kBeginList), A(Kind::kListPage)}));
}

TEST(WatcherStateTest, GoneOnFirstPageBacksOff) {
  WatcherState s = Next(WatcherState(), WatcherInput::Start()).state;
  WatcherStep step = Next(s, WatcherInput::ListFailed(/*gone=*/true));
  EXPECT_EQ(step.state.phase, Phase::kBackoff);
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kSleep, "", "", 1)}));
}

TEST(WatcherStateTest, ListingIgnoresWatchInputs) {
  WatcherState s = Next(WatcherState(), WatcherInput::Start()).state;
  for (const WatcherInput& in :
       {WatcherInput::WatchEvent("9"), WatcherInput::Bookmark("9"), WatcherInput::WatchClosed(),
        WatcherInput::WatchFailed(true), WatcherInput::BackoffElapsed(), WatcherInput::Start()}) {
    WatcherStep step = Next(s, in);
    EXPECT_EQ(step.state.phase, Phase::kListingPage);
    EXPECT_TRUE(step.state.resource_version.empty());
    EXPECT_TRUE(step.actions.empty());
  }
}

TEST(WatcherStateTest, EventsAndBookmarksAdvanceResourceVersion) {
  WatcherState s = Watching("100");
  s.failures = 2;
  WatcherStep step = Next(s, WatcherInput::WatchEvent("101"));
  EXPECT_EQ(step.state.phase, Phase::kWatching);
  EXPECT_EQ(step.state.resource_version, "101");
  EXPECT_EQ(step.state.failures, 0);
  EXPECT_TRUE(step.actions.empty());

  step = Next(step.state, WatcherInput::Bookmark("250"));
  EXPECT_EQ(step.state.resource_version, "250");
  EXPECT_TRUE(step.actions.empty());

  // An event without a resourceVersion keeps the last one.
  step = Next(step.state, WatcherInput::WatchEvent(""));
  EXPECT_EQ(step.state.resource_version, "250");
}

TEST(WatcherStateTest, ServerClosedWatchIsRenewedFromLastRv) {
  WatcherState s = Watching("100");
  s = Next(s, WatcherInput::Bookmark("180")).state;
  WatcherStep step = Next(s, WatcherInput::WatchClosed());
  EXPECT_EQ(step.state.phase, Phase::kWatching);
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kStartWatch, "", "180")}));
}

TEST(WatcherStateTest, GoneWhileWatchingRelists) {
  WatcherStep step = Next(Watching("100"), WatcherInput::WatchFailed(/*gone=*/true));
  EXPECT_EQ(step.state.phase, Phase::kRelisting);
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kBeginList), A(Kind::kListPage)}));

  // Relisting pages behave like the initial list and end in a watch.
  step = Next(step.state, WatcherInput::PageListed("500", "t"));
  EXPECT_EQ(step.state.phase, Phase::kRelisting);
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kListPage, "t")}));
  step = Next(step.state, WatcherInput::PageListed("501", ""));
  EXPECT_EQ(step.state.phase, Phase::kWatching);
  EXPECT_EQ(step.state.resource_version, "500");
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kCommitList, "", "500"),
                                                      A(Kind::kStartWatch, "", "500")}));
}

TEST(WatcherStateTest, RelistingErrorBacksOffAndRelistsAgain) {
  WatcherState s = Next(Watching("100"), WatcherInput::WatchFailed(true)).state;
  WatcherStep step = Next(s, WatcherInput::ListFailed(false));
  EXPECT_EQ(step.state.phase, Phase::kBackoff);
  step = Next(step.state, WatcherInput::BackoffElapsed());
  EXPECT_EQ(step.state.phase, Phase::kRelisting);
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kBeginList), A(Kind::kListPage)}));
}

TEST(WatcherStateTest, WatchErrorBacksOffThenRewatchesFromLastRv) {
  WatcherState s = Next(Watching("100"), WatcherInput::WatchEvent("120")).state;
  WatcherStep step = Next(s, WatcherInput::WatchFailed(/*gone=*/false));
  EXPECT_EQ(step.state.phase, Phase::kBackoff);
  EXPECT_FALSE(step.state.relist_after_backoff);
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kSleep, "", "", 1)}));

  step = Next(step.state, WatcherInput::BackoffElapsed());
  EXPECT_EQ(step.state.phase, Phase::kWatching);
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kStartWatch, "", "120")}));

  // Repeated failures without progress escalate the backoff.
  step = Next(step.state, WatcherInput::WatchFailed(false));
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kSleep, "", "", 2)}));
  step = Next(step.state, WatcherInput::BackoffElapsed());
  step = Next(step.state, WatcherInput::WatchFailed(false));
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kSleep, "", "", 3)}));
  // Progress resets it.
  step = Next(step.state, WatcherInput::BackoffElapsed());
  step = Next(step.state, WatcherInput::WatchEvent("121"));
  step = Next(step.state, WatcherInput::WatchFailed(false));
  EXPECT_EQ(step.actions, (std::vector<WatcherAction>{A(Kind::kSleep, "", "", 1)}));
}

TEST(WatcherStateTest, WatchingIgnoresListInputs) {
  WatcherState s = Watching("100");
  for (const WatcherInput& in : {WatcherInput::PageListed("5", ""), WatcherInput::ListFailed(true),
                                 WatcherInput::BackoffElapsed(), WatcherInput::Start()}) {
    WatcherStep step = Next(s, in);
    EXPECT_EQ(step.state.phase, Phase::kWatching);
    EXPECT_EQ(step.state.resource_version, "100");
    EXPECT_TRUE(step.actions.empty());
  }
}

TEST(WatcherStateTest, BackoffWaitsForItsTimer) {
  WatcherState s = Next(Watching("100"), WatcherInput::WatchFailed(false)).state;
  for (const WatcherInput& in :
       {WatcherInput::PageListed("5", ""), WatcherInput::WatchEvent("9"),
        WatcherInput::WatchClosed(), WatcherInput::WatchFailed(true), WatcherInput::Start()}) {
    WatcherStep step = Next(s, in);
    EXPECT_EQ(step.state.phase, Phase::kBackoff);
    EXPECT_TRUE(step.actions.empty());
  }
}

TEST(WatcherStateTest, PhaseNames) {
  EXPECT_EQ(WatcherPhaseName(Phase::kEmpty), "Empty");
  EXPECT_EQ(WatcherPhaseName(Phase::kListingPage), "ListingPage");
  EXPECT_EQ(WatcherPhaseName(Phase::kWatching), "Watching");
  EXPECT_EQ(WatcherPhaseName(Phase::kBackoff), "Backoff");
  EXPECT_EQ(WatcherPhaseName(Phase::kRelisting), "Relisting");
}

}  // namespace
}  // namespace gpu_autoscaler::kube
