// File: src/kube/watcher_state.h
//
// The reflector's list-then-watch protocol as an explicit state machine,
// modelled on kube-rs (kube-runtime/src/watcher.rs). `Next(state, input)` is a
// pure function returning the next state and the actions the reflector must
// perform; all I/O, decoding, sleeping and randomness live in the reflector.
//
//   kEmpty ──Start──▶ kListingPage ──PageListed(continue="")──▶ kWatching
//      ▲                 │  ▲ PageListed(continue)                │ ▲ Event/Bookmark(rv)
//      │                 │  └─────────┘                          │ └─ WatchClosed: rewatch(rv)
//      │     ListFailed  ▼                        WatchFailed(!gone)▼
//      │              kBackoff ◀────────────────────────────── kBackoff
//      │                 │ BackoffElapsed: relist or rewatch(rv)
//      │   WatchFailed(gone: 410) ──▶ kRelisting ──(pages)──▶ kWatching
//
//   WatcherState s;
//   auto step = Next(s, WatcherInput::Start());
//   s = step.state;
//   for (const WatcherAction& a : step.actions) reflector.Perform(a);
//
// A list is consistent across pages (one resourceVersion, taken from the
// first page); a 410 on a continue token restarts the list. Watches resume
// from the last resourceVersion seen, bookmarks included.
//
// Thread-safety: values and a pure function.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gpu_autoscaler::kube {

enum class WatcherPhase {
  kEmpty,        // nothing listed yet
  kListingPage,  // initial list, page by page
  kWatching,     // a watch is (being) opened from resource_version
  kBackoff,      // waiting after an error; then relist or rewatch
  kRelisting,    // listing again after 410 Gone; the commit reports missed deletes
};
std::string_view WatcherPhaseName(WatcherPhase p);

struct WatcherState {
  WatcherPhase phase = WatcherPhase::kEmpty;
  // Last resourceVersion seen (list, events, bookmarks): where watches resume.
  std::string resource_version;
  // Listing: the continue token of the next page, and the list's snapshot RV.
  std::string continue_token;
  std::string list_resource_version;
  // kBackoff: what to do when it elapses.
  bool relist_after_backoff = false;
  // Consecutive failures: the backoff attempt number. Reset by progress.
  int failures = 0;
  // True once a complete list has been committed.
  bool listed = false;
};

struct WatcherInput {
  enum class Kind {
    kStart,
    kPageListed,   // a list page arrived and was decoded (staged)
    kListFailed,   // the list request or its decoding failed
    kWatchEvent,   // ADDED/MODIFIED/DELETED delivered
    kBookmark,     // BOOKMARK: only a resourceVersion
    kWatchClosed,  // the server ended the stream normally (timeoutSeconds)
    kWatchFailed,  // HTTP/transport error, ERROR event, or undecodable event
    kBackoffElapsed,
  };
  Kind kind = Kind::kStart;
  std::string resource_version;  // kPageListed, kWatchEvent, kBookmark
  std::string continue_token;    // kPageListed
  bool gone = false;             // kListFailed/kWatchFailed: 410 Gone/Expired

  static WatcherInput Start() { return {Kind::kStart, "", "", false}; }
  static WatcherInput PageListed(std::string rv, std::string continue_token) {
    return {Kind::kPageListed, std::move(rv), std::move(continue_token), false};
  }
  static WatcherInput ListFailed(bool gone) { return {Kind::kListFailed, "", "", gone}; }
  static WatcherInput WatchEvent(std::string rv) {
    return {Kind::kWatchEvent, std::move(rv), "", false};
  }
  static WatcherInput Bookmark(std::string rv) {
    return {Kind::kBookmark, std::move(rv), "", false};
  }
  static WatcherInput WatchClosed() { return {Kind::kWatchClosed, "", "", false}; }
  static WatcherInput WatchFailed(bool gone) { return {Kind::kWatchFailed, "", "", gone}; }
  static WatcherInput BackoffElapsed() { return {Kind::kBackoffElapsed, "", "", false}; }
};

struct WatcherAction {
  enum class Kind {
    kBeginList,   // discard staged pages: a list starts from scratch
    kListPage,    // request a page with `continue_token` ("" = first page)
    kCommitList,  // replace the store with the staged items at `resource_version`
    kStartWatch,  // open a watch from `resource_version`
    kSleep,       // back off; `attempt` (1, 2, ...) picks the delay
  };
  Kind kind;
  std::string continue_token;
  std::string resource_version;
  int attempt = 0;

  friend bool operator==(const WatcherAction&, const WatcherAction&) = default;
};

struct WatcherStep {
  WatcherState state;
  std::vector<WatcherAction> actions;
};

// The transition function. An input that makes no sense in the current phase
// (a page while watching) leaves the state unchanged and asks for nothing.
WatcherStep Next(const WatcherState& state, const WatcherInput& input);

}  // namespace gpu_autoscaler::kube
