#include "kube/event_recorder.h"

#include <algorithm>
#include <cstdio>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/json_read.h"
#include "kube/meta_time.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::kube {

using json = nlohmann::json;

namespace {

std::string_view TypeName(EventType t) {
  return t == EventType::kWarning ? "Warning" : "Normal";
}

std::string ObjectKey(const EventObject& o) {
  // '\x1f' cannot appear in Kubernetes names, so keys cannot collide.
  return o.api_version + '\x1f' + o.kind + '\x1f' + o.ns + '\x1f' + o.name + '\x1f' + o.uid;
}

class RestEventSink final : public EventSink {
 public:
  explicit RestEventSink(RestClient& client) : client_(client) {}
  Result<std::monostate> Create(const std::string& ns, const json& event) override {
    auto r = client_.Create(ObjectRef{resources::kEvents, ns, "", ""}, event);
    if (!r.ok()) return std::move(r).error();
    return std::monostate();
  }
  Result<std::monostate> Patch(const std::string& ns, const std::string& name,
                               const json& patch) override {
    auto r =
        client_.Patch(ObjectRef{resources::kEvents, ns, name, ""}, PatchType::kMerge, patch.dump());
    if (!r.ok()) return std::move(r).error();
    return std::monostate();
  }

 private:
  RestClient& client_;
};

}  // namespace

EventObject EventObject::Of(const json& obj) {
  EventObject out;
  if (!obj.is_object()) return out;
  out.api_version = json_read::String(obj, "apiVersion");
  out.kind = json_read::String(obj, "kind");
  auto meta = obj.find("metadata");
  if (meta != obj.end() && meta->is_object()) {
    out.ns = json_read::String(*meta, "namespace");
    out.name = json_read::String(*meta, "name");
    out.uid = meta->value("uid", "");
  }
  return out;
}

std::unique_ptr<EventSink> NewRestEventSink(RestClient& client) {
  return std::make_unique<RestEventSink>(client);
}

struct EventRecorder::Metrics {
  explicit Metrics(prometheus::Registry& registry) {
    auto& family = prometheus::BuildCounter()
                       .Name("gpu_autoscaler_events_total")
                       .Help("Kubernetes Events by what happened to them")
                       .Register(registry);
    created = &family.Add({{"result", "created"}});
    patched = &family.Add({{"result", "patched"}});
    dropped_spam = &family.Add({{"result", "dropped_spam"}});
    dropped_queue_full = &family.Add({{"result", "dropped_queue_full"}});
    failed = &family.Add({{"result", "failed"}});
  }
  prometheus::Counter* created;
  prometheus::Counter* patched;
  prometheus::Counter* dropped_spam;
  prometheus::Counter* dropped_queue_full;
  prometheus::Counter* failed;
};

void EventRecorder::CountLocked(Outcome outcome) {
  auto bump = [&](int64_t& stat, prometheus::Counter* Metrics::*counter) {
    ++stat;
    if (metrics_) (metrics_.get()->*counter)->Increment();
  };
  switch (outcome) {
    case Outcome::kCreated:
      return bump(stats_.created, &Metrics::created);
    case Outcome::kPatched:
      return bump(stats_.patched, &Metrics::patched);
    case Outcome::kDroppedSpam:
      return bump(stats_.dropped_spam, &Metrics::dropped_spam);
    case Outcome::kDroppedQueueFull:
      return bump(stats_.dropped_queue_full, &Metrics::dropped_queue_full);
    case Outcome::kFailed:
      return bump(stats_.failed, &Metrics::failed);
  }
}

EventRecorder::EventRecorder(EventSink& sink, EventRecorderOptions options)
    : sink_(sink), options_(std::move(options)), clock_(*options_.clock) {
  if (options_.metrics != nullptr) metrics_ = std::make_unique<Metrics>(*options_.metrics);
  worker_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

EventRecorder::~EventRecorder() {
  worker_.request_stop();
  {
    std::lock_guard<std::mutex> l(mu_);
    cv_.notify_all();
  }
  worker_.join();
}

void EventRecorder::Record(const EventObject& object, EventType type, std::string reason,
                           std::string message) {
  Pending p{object, type, std::move(reason), std::move(message), clock_.WallNow()};
  std::lock_guard<std::mutex> l(mu_);
  if (queue_.size() >= options_.queue_capacity) {
    CountLocked(Outcome::kDroppedQueueFull);
    return;
  }
  queue_.push_back(std::move(p));
  cv_.notify_one();
}

bool EventRecorder::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [this] { return queue_.empty() && !busy_; });
}

EventRecorder::Stats EventRecorder::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void EventRecorder::Loop(std::stop_token stop) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop.stop_requested() || !queue_.empty(); });
    if (stop.stop_requested()) return;
    Pending event = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    Send(event);
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

bool EventRecorder::AllowBySpamFilter(const Pending& event) {
  const auto now = clock_.Now();
  const std::string key = options_.component + '\x1f' + ObjectKey(event.object);
  auto [it, inserted] = buckets_.try_emplace(key);
  Bucket& b = it->second;
  if (inserted) {
    b.tokens = options_.spam_burst;
    b.last = now;
  } else if (now > b.last) {
    const double refill = std::chrono::duration<double>(now - b.last).count() /
                          std::chrono::duration<double>(options_.spam_refill_interval).count();
    b.tokens = std::min<double>(options_.spam_burst, b.tokens + refill);
    b.last = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

void EventRecorder::PruneAggregates(Clock::TimePoint now) {
  if (aggregates_.size() < options_.max_cached_events) return;
  std::erase_if(aggregates_, [&](const auto& entry) {
    return now - entry.second.last_seen > options_.aggregation_window;
  });
  // Still full of recent entries: forget them all rather than grow without bound.
  if (aggregates_.size() >= options_.max_cached_events) aggregates_.clear();
}

void EventRecorder::Send(const Pending& event) {
  bool allowed = AllowBySpamFilter(event);
  if (!allowed) {
    std::lock_guard<std::mutex> l(mu_);
    CountLocked(Outcome::kDroppedSpam);
    return;
  }
  const auto now = clock_.Now();
  const std::string stamp = FormatTime(event.when);
  // Events live in the involved object's namespace ("default" for cluster-scoped objects).
  const std::string ns = event.object.ns.empty() ? "default" : event.object.ns;
  const std::string key = ObjectKey(event.object) + '\x1f' + std::string(TypeName(event.type)) +
                          '\x1f' + event.reason + '\x1f' + event.message;

  auto it = aggregates_.find(key);
  if (it != aggregates_.end() && now - it->second.last_seen <= options_.aggregation_window) {
    Aggregate& agg = it->second;
    json patch = {{"count", agg.count + 1}, {"lastTimestamp", stamp}};
    auto patched = sink_.Patch(agg.ns, agg.name, patch);
    if (patched.ok()) {
      ++agg.count;
      agg.last_seen = now;
      std::lock_guard<std::mutex> l(mu_);
      CountLocked(Outcome::kPatched);
      return;
    }
    if (!IsNotFound(patched.error())) {
      spdlog::warn("event recorder: patching event {}/{}: {}", agg.ns, agg.name,
                   patched.error().ToString());
      std::lock_guard<std::mutex> l(mu_);
      CountLocked(Outcome::kFailed);
      return;
    }
    // The Event expired on the server (events have a TTL): create a new one.
    aggregates_.erase(it);
  }

  PruneAggregates(now);
  char suffix[32];
  // client-go names events "<object>.<hex nanos>"; a counter keeps names
  // unique when the clock does not move (tests) or moves coarsely.
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(event.when.time_since_epoch()).count();
  std::snprintf(
      suffix, sizeof suffix, "%llx",
      static_cast<unsigned long long>(nanos) + static_cast<unsigned long long>(name_counter_++));
  const std::string name = (event.object.name.empty() ? "event" : event.object.name) + "." + suffix;
  json involved = {{"apiVersion", event.object.api_version},
                   {"kind", event.object.kind},
                   {"name", event.object.name}};
  if (!event.object.ns.empty()) involved["namespace"] = event.object.ns;
  if (!event.object.uid.empty()) involved["uid"] = event.object.uid;
  json source = {{"component", options_.component}};
  if (!options_.host.empty()) source["host"] = options_.host;
  json body = {{"apiVersion", "v1"},
               {"kind", "Event"},
               {"metadata", {{"name", name}, {"namespace", ns}}},
               {"involvedObject", involved},
               {"reason", event.reason},
               {"message", event.message},
               {"type", TypeName(event.type)},
               {"source", source},
               {"firstTimestamp", stamp},
               {"lastTimestamp", stamp},
               {"count", 1}};
  auto created = sink_.Create(ns, body);
  std::lock_guard<std::mutex> l(mu_);
  if (!created.ok()) {
    spdlog::warn("event recorder: creating event {}/{}: {}", ns, name, created.error().ToString());
    CountLocked(Outcome::kFailed);
    return;
  }
  CountLocked(Outcome::kCreated);
  aggregates_[key] = Aggregate{name, ns, 1, now};
}

}  // namespace gpu_autoscaler::kube
