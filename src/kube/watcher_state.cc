#include "kube/watcher_state.h"

namespace gpu_autoscaler::kube {
namespace {

using Action = WatcherAction;
using Input = WatcherInput;
using Phase = WatcherPhase;

WatcherAction BeginList() {
  return {Action::Kind::kBeginList, "", "", 0};
}
WatcherAction ListPage(std::string token) {
  return {Action::Kind::kListPage, std::move(token), "", 0};
}
WatcherAction CommitList(std::string rv) {
  return {Action::Kind::kCommitList, "", std::move(rv), 0};
}
WatcherAction StartWatch(std::string rv) {
  return {Action::Kind::kStartWatch, "", std::move(rv), 0};
}
WatcherAction Sleep(int attempt) {
  return {Action::Kind::kSleep, "", "", attempt};
}

// Starts a list from its first page in `phase` (kListingPage or kRelisting).
WatcherStep StartList(WatcherState s, Phase phase) {
  s.phase = phase;
  s.continue_token.clear();
  s.list_resource_version.clear();
  return {std::move(s), {BeginList(), ListPage("")}};
}

WatcherStep EnterBackoff(WatcherState s, bool relist) {
  s.phase = Phase::kBackoff;
  s.relist_after_backoff = relist;
  s.continue_token.clear();
  s.failures += 1;
  int attempt = s.failures;
  return {std::move(s), {Sleep(attempt)}};
}

WatcherStep OnListing(WatcherState s, const Input& in) {
  switch (in.kind) {
    case Input::Kind::kPageListed: {
      if (s.list_resource_version.empty()) s.list_resource_version = in.resource_version;
      if (!in.continue_token.empty()) {
        s.continue_token = in.continue_token;
        std::string token = s.continue_token;
        return {std::move(s), {ListPage(std::move(token))}};
      }
      // Last page: the whole list is one snapshot at the first page's RV.
      std::string rv = s.list_resource_version;
      s.phase = Phase::kWatching;
      s.resource_version = rv;
      s.continue_token.clear();
      s.list_resource_version.clear();
      s.failures = 0;
      s.listed = true;
      return {std::move(s), {CommitList(rv), StartWatch(rv)}};
    }
    case Input::Kind::kListFailed:
      // An expired continue token (410 mid-list) restarts the list at once;
      // a 410 on the first page, or any other error, backs off first.
      if (in.gone && !s.continue_token.empty()) {
        const Phase phase = s.phase;
        return StartList(std::move(s), phase);
      }
      return EnterBackoff(std::move(s), /*relist=*/true);
    default:
      return {std::move(s), {}};
  }
}

WatcherStep OnWatching(WatcherState s, const Input& in) {
  switch (in.kind) {
    case Input::Kind::kWatchEvent:
    case Input::Kind::kBookmark:
      if (!in.resource_version.empty()) s.resource_version = in.resource_version;
      s.failures = 0;  // the watch is making progress
      return {std::move(s), {}};
    case Input::Kind::kWatchClosed: {
      std::string rv = s.resource_version;
      return {std::move(s), {StartWatch(std::move(rv))}};
    }
    case Input::Kind::kWatchFailed:
      if (in.gone) return StartList(std::move(s), Phase::kRelisting);
      return EnterBackoff(std::move(s), /*relist=*/false);
    default:
      return {std::move(s), {}};
  }
}

WatcherStep OnBackoff(WatcherState s, const Input& in) {
  if (in.kind != Input::Kind::kBackoffElapsed) return {std::move(s), {}};
  if (s.relist_after_backoff || s.resource_version.empty()) {
    s.relist_after_backoff = false;
    const Phase phase = s.listed ? Phase::kRelisting : Phase::kListingPage;
    return StartList(std::move(s), phase);
  }
  s.phase = Phase::kWatching;
  std::string rv = s.resource_version;
  return {std::move(s), {StartWatch(std::move(rv))}};
}

}  // namespace

std::string_view WatcherPhaseName(WatcherPhase p) {
  switch (p) {
    case Phase::kEmpty:
      return "Empty";
    case Phase::kListingPage:
      return "ListingPage";
    case Phase::kWatching:
      return "Watching";
    case Phase::kBackoff:
      return "Backoff";
    case Phase::kRelisting:
      return "Relisting";
  }
  return "?";
}

WatcherStep Next(const WatcherState& state, const WatcherInput& input) {
  switch (state.phase) {
    case Phase::kEmpty:
      if (input.kind == Input::Kind::kStart) return StartList(state, Phase::kListingPage);
      return {state, {}};
    case Phase::kListingPage:
    case Phase::kRelisting:
      return OnListing(state, input);
    case Phase::kWatching:
      return OnWatching(state, input);
    case Phase::kBackoff:
      return OnBackoff(state, input);
  }
  return {state, {}};
}

}  // namespace gpu_autoscaler::kube
