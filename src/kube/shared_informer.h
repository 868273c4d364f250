// File: src/kube/shared_informer.h
//
// Shared informers: one list+watch per resource (and transform) per process,
// feeding a Store and fanning out Add/Update/Delete events to handlers.
//
//   InformerFactory factory(client.get());
//   auto pods = factory.Informer(resources::kPods, PodViewCodec());
//   pods->store().AddIndex(kNodeNameIndex, PodNodeNameIndexFunc());
//   pods->AddEventHandler({
//       .on_add = [&](const auto& pod) { queue.Add(ObjectKeyOf(*pod)); },
//       .on_update = [&](const auto& old, const auto& now) { ... },
//       .on_delete = [&](const auto& last, bool final_state_unknown) { ... }});
//   factory.Start();
//   if (!factory.WaitForSync(stop, 60s)) return;  // caches are filled
//
// Threads. The reflector thread lists, watches, frames and decodes (the
// codec is the transform: PodViewCodec() caches trimmed PodViews,
// GenericObjectCodec() any resource as JSON) and only enqueues. A separate
// dispatch thread applies each change to the store and then calls the
// handlers, so slow handlers never stall the watch. The queue between them
// is unbounded, by design: blocking the watch would make the API server drop
// a slow watcher and force a full relist, which costs more than the memory;
// `stats()` reports its depth and high-water mark for alerting.
//
// Events. Add/Update/Delete are derived from the store, not from the event
// type, so each key gets exactly one Add before its Delete and updates in
// between: an ADDED for a known object is an update, a DELETED for an unknown
// one is dropped. A relist (after 410 Gone or a restart) reports objects that
// vanished while no watch was open as deletes with final_state_unknown=true
// (client-go's DeletedFinalStateUnknown tombstone). Every resync_period,
// handlers get on_update(obj, obj) for every cached object.
//
// Thread-safety: all public methods are safe from any thread. Handlers run on
// the dispatch thread, one at a time, and must not block for long.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <typeindex>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "kube/object_codec.h"
#include "kube/reflector.h"
#include "kube/resource.h"
#include "kube/store.h"

namespace gpu_autoscaler::kube {

struct InformerOptions {
  Clock* clock = &RealClock::Instance();
  std::string ns;  // "" watches all namespaces
  std::string label_selector;
  std::string field_selector;
  std::chrono::milliseconds resync_period{0};  // 0: no resync
  int64_t page_size = 500;
  std::chrono::seconds watch_timeout{300};
  BackoffPolicy backoff;
  uint64_t seed = 0;
};

template <typename T>
struct EventHandler {
  using ObjectPtr = std::shared_ptr<const T>;
  // Unset callbacks are skipped (designated initializers may name a subset).
  std::function<void(const ObjectPtr& obj)> on_add = nullptr;
  std::function<void(const ObjectPtr& old_obj, const ObjectPtr& new_obj)> on_update = nullptr;
  // `final_state_unknown`: the object vanished while no watch was open; `obj`
  // is the last state the cache knew.
  std::function<void(const ObjectPtr& obj, bool final_state_unknown)> on_delete = nullptr;
};

struct InformerStats {
  int64_t queue_depth = 0;
  int64_t queue_high_water = 0;
  int64_t adds = 0;
  int64_t updates = 0;
  int64_t deletes = 0;
  int64_t tombstones = 0;  // deletes found by a relist
  int64_t resyncs = 0;
  int64_t handler_errors = 0;  // handlers that threw
  Reflector::Stats reflector;
};

namespace informer_internal {

// The type-independent half of an informer: the reflector and dispatch
// threads, the queue between them, sync state and the resync timer.
class Runtime {
 public:
  Runtime(std::string name, Clock* clock, std::chrono::milliseconds resync_period);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Queues work for the dispatch thread (FIFO).
  void Enqueue(std::function<void()> work);
  // Starts the reflector thread (running `reflect`) and the dispatch thread,
  // which calls `resync` every resync period once synced. Idempotent.
  void Start(std::function<void(std::stop_token)> reflect, std::function<void()> resync);
  // Stops both threads; queued work that has not run is dropped. Idempotent.
  void Stop();

  void MarkSynced();  // dispatch thread
  bool HasSynced() const;
  bool WaitForSync(std::stop_token stop, Clock::Duration timeout);

  void CountHandlerError();
  void FillStats(InformerStats* stats) const;
  const std::string& name() const { return name_; }

 private:
  void DispatchLoop(std::stop_token stop);

  const std::string name_;
  Clock* clock_;
  const std::chrono::milliseconds resync_period_;
  std::function<void()> resync_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> queue_;  // guarded by mu_
  size_t queue_head_ = 0;
  int64_t high_water_ = 0;
  int64_t handler_errors_ = 0;
  int64_t resyncs_ = 0;
  bool synced_ = false;
  bool started_ = false;
  std::jthread reflector_thread_;
  std::jthread dispatch_thread_;
};

// Runs a handler callback, counting (not propagating) exceptions.
void RunHandler(Runtime* runtime, const std::function<void()>& call);

}  // namespace informer_internal

// Type-erased face of an informer, for factories and sync waits.
class InformerBase {
 public:
  virtual ~InformerBase() = default;
  virtual void Start() = 0;
  virtual void Stop() = 0;
  virtual bool HasSynced() const = 0;
  virtual bool WaitForSync(std::stop_token stop, Clock::Duration timeout) = 0;
};

template <typename T>
class SharedInformer final : public InformerBase, private ReflectorSink {
 public:
  using ObjectPtr = std::shared_ptr<const T>;

  SharedInformer(std::unique_ptr<ListerWatcher> lister_watcher, Codec<T> codec,
                 InformerOptions options = {}, std::string name = "informer")
      : codec_(std::move(codec)),
        options_(std::move(options)),
        runtime_(name, options_.clock, options_.resync_period),
        reflector_(std::move(lister_watcher), this,
                   ReflectorOptions{.clock = options_.clock,
                                    .name = name,
                                    .page_size = options_.page_size,
                                    .watch_timeout = options_.watch_timeout,
                                    .backoff = options_.backoff,
                                    .seed = options_.seed}) {}
  ~SharedInformer() override { runtime_.Stop(); }

  // Registers a handler. If objects are already cached, it first gets an
  // on_add for each (on the dispatch thread, before any later event).
  // Returns an id for RemoveEventHandler.
  int AddEventHandler(EventHandler<T> handler) {
    int id;
    {
      std::lock_guard<std::mutex> l(handlers_mu_);
      id = next_handler_id_++;
    }
    runtime_.Enqueue([this, id, handler = std::move(handler)]() mutable {
      if (handler.on_add) {
        for (const ObjectPtr& obj : store_.List()) {
          informer_internal::RunHandler(&runtime_, [&] { handler.on_add(obj); });
        }
      }
      handlers_.emplace_back(id, std::move(handler));
    });
    return id;
  }

  void RemoveEventHandler(int id) {
    runtime_.Enqueue(
        [this, id] { std::erase_if(handlers_, [id](const auto& h) { return h.first == id; }); });
  }

  void Start() override {
    runtime_.Start([this](std::stop_token stop) { reflector_.Run(stop); }, [this] { Resync(); });
  }
  void Stop() override { runtime_.Stop(); }
  bool HasSynced() const override { return runtime_.HasSynced(); }
  bool WaitForSync(std::stop_token stop, Clock::Duration timeout) override {
    return runtime_.WaitForSync(std::move(stop), timeout);
  }

  // The cache. Add indexes before Start().
  Store<T>& store() { return store_; }
  const Store<T>& store() const { return store_; }
  std::string LastSyncResourceVersion() const { return store_.resource_version(); }
  WatcherState watcher_state() const { return reflector_.state(); }

  InformerStats stats() const {
    InformerStats s;
    {
      std::lock_guard<std::mutex> l(handlers_mu_);
      s = counts_;
    }
    runtime_.FillStats(&s);
    s.reflector = reflector_.stats();
    return s;
  }

 private:
  // ReflectorSink: reflector thread. Decode here, apply on the dispatch thread.
  void BeginList() override { staged_.clear(); }

  Result<ListMeta> StagePage(std::string_view body) override {
    auto page = codec_.decode_list(body);
    if (!page.ok()) return std::move(page).error();
    staged_.reserve(staged_.size() + page->items.size());
    for (T& item : page->items)
      staged_.push_back(std::make_shared<const T>(std::move(item)));
    return std::move(page->meta);
  }

  void CommitList(std::string resource_version) override {
    runtime_.Enqueue(
        [this, items = std::move(staged_), rv = std::move(resource_version)]() mutable {
          ApplyReplace(std::move(items), std::move(rv));
        });
    staged_ = {};
  }

  Result<std::string> DeliverEvent(WatchEventType type, std::string_view json) override {
    auto decoded = codec_.decode(json);
    if (!decoded.ok()) return std::move(decoded).error();
    ObjectPtr obj = std::make_shared<const T>(std::move(decoded).value());
    std::string rv(obj->resource_version());
    runtime_.Enqueue(
        [this, type, obj = std::move(obj)]() mutable { ApplyEvent(type, std::move(obj)); });
    return rv;
  }

  void OnBookmark(const std::string& resource_version) override {
    runtime_.Enqueue(
        [this, rv = resource_version]() mutable { store_.set_resource_version(std::move(rv)); });
  }

  // Dispatch thread.
  void ApplyReplace(std::vector<ObjectPtr> items, std::string rv) {
    auto diff = store_.Replace(std::move(items), std::move(rv));
    Count(static_cast<int64_t>(diff.added.size()), static_cast<int64_t>(diff.updated.size()),
          static_cast<int64_t>(diff.deleted.size()), static_cast<int64_t>(diff.deleted.size()));
    for (auto& id_and_handler : handlers_) {
      auto& h = id_and_handler.second;
      if (h.on_delete) {
        for (const ObjectPtr& gone : diff.deleted) {
          informer_internal::RunHandler(&runtime_, [&] { h.on_delete(gone, true); });
        }
      }
      if (h.on_update) {
        for (const auto& old_and_new : diff.updated) {
          informer_internal::RunHandler(
              &runtime_, [&] { h.on_update(old_and_new.first, old_and_new.second); });
        }
      }
      if (h.on_add) {
        for (const ObjectPtr& added : diff.added) {
          informer_internal::RunHandler(&runtime_, [&] { h.on_add(added); });
        }
      }
    }
    runtime_.MarkSynced();
  }

  void ApplyEvent(WatchEventType type, ObjectPtr obj) {
    std::string rv(obj->resource_version());
    if (type == WatchEventType::kDeleted) {
      ObjectPtr old = store_.Delete(ObjectKeyOf(*obj));
      store_.set_resource_version(std::move(rv));
      if (!old) return;  // already gone (removed by a relist)
      Count(0, 0, 1, 0);
      for (auto& id_and_handler : handlers_) {
        auto& h = id_and_handler.second;
        if (h.on_delete) informer_internal::RunHandler(&runtime_, [&] { h.on_delete(obj, false); });
      }
      return;
    }
    ObjectPtr old = store_.Upsert(obj);
    store_.set_resource_version(std::move(rv));
    if (old) {
      Count(0, 1, 0, 0);
      for (auto& id_and_handler : handlers_) {
        auto& h = id_and_handler.second;
        if (h.on_update) informer_internal::RunHandler(&runtime_, [&] { h.on_update(old, obj); });
      }
    } else {
      Count(1, 0, 0, 0);
      for (auto& id_and_handler : handlers_) {
        auto& h = id_and_handler.second;
        if (h.on_add) informer_internal::RunHandler(&runtime_, [&] { h.on_add(obj); });
      }
    }
  }

  void Resync() {
    std::vector<ObjectPtr> all = store_.List();
    for (auto& id_and_handler : handlers_) {
      auto& h = id_and_handler.second;
      if (!h.on_update) continue;
      for (const ObjectPtr& obj : all) {
        informer_internal::RunHandler(&runtime_, [&] { h.on_update(obj, obj); });
      }
    }
  }

  void Count(int64_t adds, int64_t updates, int64_t deletes, int64_t tombstones) {
    std::lock_guard<std::mutex> l(handlers_mu_);
    counts_.adds += adds;
    counts_.updates += updates;
    counts_.deletes += deletes;
    counts_.tombstones += tombstones;
  }

  Codec<T> codec_;
  InformerOptions options_;
  Store<T> store_;
  std::vector<ObjectPtr> staged_;                          // reflector thread
  std::vector<std::pair<int, EventHandler<T>>> handlers_;  // dispatch thread
  mutable std::mutex handlers_mu_;                         // next_handler_id_, counts_
  int next_handler_id_ = 1;
  InformerStats counts_;
  // The destructor stops runtime_'s threads before any member is destroyed.
  informer_internal::Runtime runtime_;
  Reflector reflector_;
};

// Hands out one shared informer per (resource, namespace, selectors,
// transform) and starts and syncs them together.
class InformerFactory {
 public:
  explicit InformerFactory(RestClient* client, InformerOptions defaults = {})
      : client_(client), defaults_(std::move(defaults)) {}
  ~InformerFactory() { Stop(); }

  // The informer for `gvr` decoded by `codec`, created on first use with
  // `options` (or the factory defaults). Returns nullptr when the same key
  // was already registered with a different object type.
  template <typename T>
  std::shared_ptr<SharedInformer<T>> Informer(const GroupVersionResource& gvr, Codec<T> codec,
                                              const InformerOptions* options = nullptr) {
    const InformerOptions& opts = options != nullptr ? *options : defaults_;
    std::string key = gvr.ToString() + "|" + codec.name + "|" + opts.ns + "|" +
                      opts.label_selector + "|" + opts.field_selector;
    std::lock_guard<std::mutex> l(mu_);
    auto it = informers_.find(key);
    if (it != informers_.end()) {
      if (it->second.type != std::type_index(typeid(T))) return nullptr;
      return std::static_pointer_cast<SharedInformer<T>>(it->second.informer);
    }
    auto lw = NewRestListerWatcher(client_, ObjectRef{gvr, opts.ns, "", ""}, opts.label_selector,
                                   opts.field_selector);
    auto informer = std::make_shared<SharedInformer<T>>(std::move(lw), std::move(codec), opts,
                                                        "informer " + key);
    informers_.emplace(key, Entry{std::type_index(typeid(T)), informer});
    if (started_) informer->Start();
    return informer;
  }

  // Starts every informer created so far, and later ones as they are created.
  void Start();
  void Stop();
  // True when every informer synced before `timeout` and `stop`.
  bool WaitForSync(std::stop_token stop, Clock::Duration timeout);

 private:
  struct Entry {
    std::type_index type;
    std::shared_ptr<InformerBase> informer;
  };
  RestClient* client_;
  InformerOptions defaults_;
  std::mutex mu_;
  std::map<std::string, Entry> informers_;
  bool started_ = false;
};

}  // namespace gpu_autoscaler::kube
