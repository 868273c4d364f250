#include "kube/reflector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <optional>

#include "kube/watch_decoder.h"

namespace gpu_autoscaler::kube {
namespace {

class RestListerWatcher final : public ListerWatcher {
 public:
  RestListerWatcher(RestClient* client, ObjectRef collection, std::string label_selector,
                    std::string field_selector)
      : client_(client),
        collection_(std::move(collection)),
        label_selector_(std::move(label_selector)),
        field_selector_(std::move(field_selector)) {}

  Result<std::string> List(const ListOptions& opts) override {
    return client_->ListPage(collection_, WithSelectors(opts));
  }

  Result<std::monostate> Watch(const ListOptions& opts,
                               const std::function<bool(std::string_view)>& on_chunk,
                               std::stop_token stop) override {
    return client_->WatchRaw(collection_, WithSelectors(opts), on_chunk, std::move(stop));
  }

 private:
  ListOptions WithSelectors(ListOptions opts) const {
    opts.label_selector = label_selector_;
    opts.field_selector = field_selector_;
    return opts;
  }

  RestClient* client_;
  ObjectRef collection_;
  std::string label_selector_;
  std::string field_selector_;
};

}  // namespace

std::unique_ptr<ListerWatcher> NewRestListerWatcher(RestClient* client, ObjectRef collection,
                                                    std::string label_selector,
                                                    std::string field_selector) {
  return std::make_unique<RestListerWatcher>(client, std::move(collection),
                                             std::move(label_selector), std::move(field_selector));
}

Clock::Duration BackoffPolicy::Delay(int attempt, double unit_random) const {
  double ms = static_cast<double>(initial.count()) *
              std::pow(factor, static_cast<double>(std::max(attempt, 1) - 1));
  ms = std::min(ms, static_cast<double>(max.count()));
  ms *= 1.0 + jitter * std::clamp(unit_random, 0.0, 1.0);
  return std::chrono::duration_cast<Clock::Duration>(std::chrono::duration<double, std::milli>(ms));
}

Reflector::Reflector(std::unique_ptr<ListerWatcher> lister_watcher, ReflectorSink* sink,
                     ReflectorOptions options)
    : lister_watcher_(std::move(lister_watcher)),
      sink_(sink),
      options_(std::move(options)),
      rng_(options_.seed != 0 ? options_.seed : std::random_device()()) {}

WatcherState Reflector::state() const {
  std::lock_guard<std::mutex> l(mu_);
  return state_;
}

Reflector::Stats Reflector::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

std::string Reflector::last_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_error_;
}

void Reflector::RecordError(const std::string& what) {
  spdlog::warn("{}: {}", options_.name, what);
  std::lock_guard<std::mutex> l(mu_);
  ++stats_.errors;
  last_error_ = what;
}

void Reflector::Step(const WatcherInput& input) {
  WatcherStep step;
  {
    std::lock_guard<std::mutex> l(mu_);
    step = Next(state_, input);
    if (step.state.phase == WatcherPhase::kRelisting && state_.phase != WatcherPhase::kRelisting) {
      ++stats_.relists;
    }
    state_ = std::move(step.state);
  }
  pending_.insert(pending_.end(), std::make_move_iterator(step.actions.begin()),
                  std::make_move_iterator(step.actions.end()));
}

void Reflector::Run(std::stop_token stop) {
  pending_.clear();
  {
    std::lock_guard<std::mutex> l(mu_);
    state_ = WatcherState();
  }
  Step(WatcherInput::Start());
  while (!stop.stop_requested() && !pending_.empty()) {
    WatcherAction action = std::move(pending_.front());
    pending_.erase(pending_.begin());
    switch (action.kind) {
      case WatcherAction::Kind::kBeginList:
        sink_->BeginList();
        break;
      case WatcherAction::Kind::kListPage: {
        WatcherInput input = ListPage(action.continue_token);
        if (stop.stop_requested()) return;
        Step(input);
        break;
      }
      case WatcherAction::Kind::kCommitList:
        sink_->CommitList(action.resource_version);
        {
          std::lock_guard<std::mutex> l(mu_);
          ++stats_.lists_committed;
        }
        break;
      case WatcherAction::Kind::kStartWatch: {
        std::optional<WatcherInput> input = Watch(action.resource_version, stop);
        if (!input) return;
        Step(*input);
        break;
      }
      case WatcherAction::Kind::kSleep:
        if (!Sleep(action.attempt, stop)) return;
        Step(WatcherInput::BackoffElapsed());
        break;
    }
  }
}

WatcherInput Reflector::ListPage(const std::string& continue_token) {
  ListOptions opts;
  opts.limit = options_.page_size;
  opts.continue_token = continue_token;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.list_pages;
  }
  auto body = lister_watcher_->List(opts);
  if (!body.ok()) {
    RecordError("list: " + body.error().ToString());
    return WatcherInput::ListFailed(IsGone(body.error()));
  }
  auto meta = sink_->StagePage(*body);
  if (!meta.ok()) {
    RecordError("list: " + meta.error().ToString());
    return WatcherInput::ListFailed(false);
  }
  return WatcherInput::PageListed(std::move(meta->resource_version),
                                  std::move(meta->continue_token));
}

std::optional<WatcherInput> Reflector::Watch(const std::string& resource_version,
                                             std::stop_token stop) {
  ListOptions opts;
  opts.resource_version = resource_version;
  opts.allow_watch_bookmarks = true;
  const int64_t base = options_.watch_timeout.count();
  opts.timeout_seconds = base + static_cast<int64_t>(std::uniform_int_distribution<int64_t>(
                                    0, std::max<int64_t>(base - 1, 0))(rng_));
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.watches;
  }

  WatchDecoder decoder;
  std::optional<WatcherInput> ended;  // set when an event ends the watch early
  auto on_frame = [&](const WatchEventFrame& frame) -> bool {
    switch (frame.type) {
      case WatchEventType::kBookmark: {
        auto rv = DecodeResourceVersion(frame.object);
        if (!rv.ok()) {
          RecordError("watch bookmark: " + rv.error().ToString());
          ended = WatcherInput::WatchFailed(false);
          return false;
        }
        sink_->OnBookmark(*rv);
        {
          std::lock_guard<std::mutex> l(mu_);
          ++stats_.bookmarks;
        }
        Step(WatcherInput::Bookmark(std::move(*rv)));
        break;
      }
      case WatchEventType::kError: {
        Error status = Error::FromResponse(0, frame.object);
        RecordError("watch: ERROR event: " + status.ToString());
        ended = WatcherInput::WatchFailed(IsGone(status));
        return false;
      }
      default: {
        auto rv = sink_->DeliverEvent(frame.type, frame.object);
        if (!rv.ok()) {
          RecordError("watch event: " + rv.error().ToString());
          ended = WatcherInput::WatchFailed(false);
          return false;
        }
        {
          std::lock_guard<std::mutex> l(mu_);
          ++stats_.events;
        }
        Step(WatcherInput::WatchEvent(std::move(*rv)));
        break;
      }
    }
    return !stop.stop_requested();
  };
  auto on_chunk = [&](std::string_view chunk) -> bool {
    auto fed = decoder.Feed(chunk, on_frame);
    if (!fed.ok()) {
      RecordError("watch stream: " + fed.error().ToString());
      ended = WatcherInput::WatchFailed(false);
      return false;
    }
    return !ended && !stop.stop_requested();
  };
  auto result = lister_watcher_->Watch(opts, on_chunk, stop);
  if (stop.stop_requested()) return std::nullopt;
  if (ended) return ended;
  if (!result.ok()) {
    RecordError("watch: " + result.error().ToString());
    return WatcherInput::WatchFailed(IsGone(result.error()));
  }
  return WatcherInput::WatchClosed();
}

bool Reflector::Sleep(int attempt, std::stop_token stop) {
  const Clock::Duration delay =
      options_.backoff.Delay(attempt, std::uniform_real_distribution<double>(0.0, 1.0)(rng_));
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.backoffs;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::stop_callback wake(stop, [&] {
    std::lock_guard<std::mutex> l(mu);
    cv.notify_all();
  });
  Clock& clock = *options_.clock;
  const Clock::TimePoint deadline = clock.Now() + delay;
  std::unique_lock<std::mutex> lock(mu);
  while (!stop.stop_requested() && clock.Now() < deadline)
    clock.WaitUntil(lock, cv, deadline);
  return !stop.stop_requested();
}

}  // namespace gpu_autoscaler::kube
