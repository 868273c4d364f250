// File: src/apiserver/store.h
//
// The embedded API server's storage: every object of every resource, kept as
// its serialized JSON plus the metadata that lists and selectors need, one
// global monotonic resourceVersion, and a bounded event log that serves
// watches, consistent paginated lists (continue tokens) and lists at an exact
// older resourceVersion, like etcd plus the watch cache. Objects of a resource
// given a time to live (Events: kube-apiserver's --event-ttl, an etcd lease
// attached on every write) leave the store that long after their last write.
//
//   Store store(/*history=*/10000);
//   store.SetTimeToLive("/events", std::chrono::hours(1), clock);
//   auto created = store.Create("/pods", std::move(obj), selectable_fields);
//   ListResult page = *store.List({.storage_key = "/pods", .prefix = "ns/", .limit = 500});
//   store.WaitForEvents(rv, 512, deadline, clock, should_stop, &events);  // for watches
//   store.ExpireDue();  // periodically: deletes what outlived its time to live
//
// Keys are "namespace/name" (or "name" for cluster-scoped resources), so
// iteration order equals etcd's key order. Each resource's objects sit in an
// order-statistics tree, so a page's remainingItemCount costs O(log n), not a
// walk over the rest of the list.
//
// Thread-safety: every method is thread-safe. Objects are immutable and
// shared (ObjectPtr); no lock is held while callers write to sockets.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <optional>
#include <set>
#include <tuple>

#include <ext/pb_ds/assoc_container.hpp>
#include <ext/pb_ds/tree_policy.hpp>
#include <nlohmann/json_fwd.hpp>

#include "common/clock.h"
#include "kube/error.h"

namespace gpu_autoscaler::apiserver {

// One stored version of an object.
struct StoredObject {
  // The object without apiVersion/kind (list items of built-in types carry
  // none; responses add the requested version's with WithTypeMeta).
  std::string json;
  std::string key;  // "ns/name" or "name"
  std::string ns, name, uid;
  uint64_t resource_version = 0;
  std::map<std::string, std::string> labels;
  // Values of the resource's selectable fields, in ResourceInfo order.
  std::vector<std::string> fields;
  // When the store deletes it (the etcd lease's expiry), for resources with a
  // time to live; the epoch otherwise.
  Clock::TimePoint expires_at{};

  // Parses json into a tree (without apiVersion/kind).
  nlohmann::json Parse() const;
};
using ObjectPtr = std::shared_ptr<const StoredObject>;

// Builds a StoredObject from a tree: drops apiVersion/kind, serializes it and
// extracts metadata. `selectable_fields` are dotted paths ("spec.nodeName").
ObjectPtr MakeStoredObject(nlohmann::json obj, const std::vector<std::string>& selectable_fields);
// `body` (a serialized object without type fields) with apiVersion and kind.
std::string WithTypeMeta(std::string_view body, std::string_view api_version,
                         std::string_view kind);
// The value of a dotted path for field selectors ("" when absent; bools as
// "true"/"false"). "source" on events reads source.component.
std::string FieldValue(const nlohmann::json& obj, std::string_view path);

enum class EventType { kAdded, kModified, kDeleted };
std::string_view EventTypeName(EventType t);

struct StoreEvent {
  uint64_t resource_version = 0;
  EventType type = EventType::kAdded;
  std::string storage_key;  // which resource
  ObjectPtr object;         // the new state (for kDeleted: last state at the delete's RV)
  ObjectPtr prev;           // the state before (null for kAdded)
};

struct ListRequest {
  std::string storage_key{};
  std::string prefix{};              // "ns/" for one namespace, "" for all
  std::string start_after{};         // exclusive lower bound of full keys (pagination)
  uint64_t at_resource_version = 0;  // 0: the current state
  int64_t limit = 0;                 // 0: unlimited
  std::function<bool(const StoredObject&)> filter{};  // null: everything
};

struct ListResult {
  std::vector<ObjectPtr> items;
  uint64_t resource_version = 0;  // the state the list reflects
  bool more = false;              // a further page exists
  std::string last_key;           // key of the last item returned
  int64_t remaining = 0;          // objects after this page (counted without filter)
};

// A resource's objects by key, with O(log n) rank (order_of_key): libstdc++'s
// policy-based red-black tree, a std::map plus subtree sizes.
using ObjectTree =
    __gnu_pbds::tree<std::string, ObjectPtr, std::less<std::string>, __gnu_pbds::rb_tree_tag,
                     __gnu_pbds::tree_order_statistics_node_update>;

class Store {
 public:
  explicit Store(size_t max_history);

  uint64_t current_resource_version() const;
  // Events with RV <= this are gone; a watch or list at an older RV is 410.
  uint64_t compacted_resource_version() const;

  ObjectPtr Get(const std::string& storage_key, const std::string& key) const;

  // Writes. `obj` must already carry everything but metadata.resourceVersion,
  // which the store assigns. Create fails with AlreadyExists if the key exists;
  // Update/Delete with NotFound when absent and Conflict when `expected_rv` is
  // set and differs from the stored object's.
  struct WriteResult {
    ObjectPtr object;
    ObjectPtr prev;
  };
  kube::Result<WriteResult> Create(const std::string& storage_key, nlohmann::json obj,
                                   const std::vector<std::string>& selectable_fields);
  kube::Result<WriteResult> Update(const std::string& storage_key, const std::string& key,
                                   uint64_t expected_rv, nlohmann::json obj,
                                   const std::vector<std::string>& selectable_fields);
  kube::Result<WriteResult> Delete(const std::string& storage_key, const std::string& key,
                                   uint64_t expected_rv);

  // A list of the current state, or of the state at `at_resource_version`
  // (reconstructed from the event log; 410 Expired when compacted away).
  kube::Result<ListResult> List(const ListRequest& req) const;
  // Keys (storage_key, key) of every object whose key starts with `prefix`
  // in any resource (namespace deletion).
  std::vector<std::pair<std::string, std::string>> KeysWithPrefix(const std::string& prefix) const;

  // Watch support. Copies up to `max` events with RV > `after` into `out`.
  // Returns false when `after` is older than the retained history (410).
  // Blocks (via `clock`) until an event arrives, `deadline` passes or
  // `should_stop` returns true.
  bool WaitForEvents(uint64_t after, size_t max, Clock::TimePoint deadline, Clock& clock,
                     const std::function<bool()>& should_stop, std::vector<StoreEvent>* out);
  // Waits until the current RV reaches `rv` (or the deadline passes).
  bool WaitForResourceVersion(uint64_t rv, Clock::TimePoint deadline, Clock& clock);
  // Wakes every waiter (shutdown, dropped watches).
  void NotifyAll();

  // Forgets the event history: watches and exact lists from any older RV get 410.
  void Compact();
  size_t object_count() const;

  // Objects of `storage_key` written from now on are deleted `ttl` after
  // their last write (create or update), by `clock`: what kube-apiserver's
  // --event-ttl does for Events. The deletion is an ordinary one (a DELETED
  // event at a new resourceVersion) that ignores finalizers, as an etcd lease
  // expiry does. A non-positive `ttl` turns it off for objects written later.
  // Every resource shares one clock: the last one passed.
  void SetTimeToLive(const std::string& storage_key, Clock::Duration ttl, Clock& clock);
  // Deletes every object whose time to live has passed; returns how many.
  // Writes do this first too; call it periodically so that expiry does not
  // wait for the next write. O(log n) per expired object, O(1) otherwise.
  size_t ExpireDue();
  // The earliest pending expiry (nullopt: nothing will expire).
  std::optional<Clock::TimePoint> NextExpiry() const;

 private:
  void AppendEventLocked(StoreEvent event);
  size_t ExpireDueLocked();
  // Sets the object's expiry when its resource has a time to live and queues it.
  void ScheduleExpiryLocked(const std::string& storage_key, StoredObject& obj);
  void UnscheduleExpiryLocked(const std::string& storage_key, const StoredObject& obj);
  WriteResult DeleteLocked(const std::string& storage_key, ObjectTree& objects,
                           ObjectTree::iterator it);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t rv_ = 0;
  uint64_t compacted_rv_ = 0;
  size_t max_history_;
  std::deque<StoreEvent> log_;
  std::map<std::string, ObjectTree, std::less<>> objects_;
  size_t object_count_ = 0;
  // Time to live per storage key, and the pending expiries in due order: one
  // (expires_at, storage key, key) per live object of such a resource,
  // replaced on each rewrite and removed on delete.
  Clock* ttl_clock_ = nullptr;
  std::map<std::string, Clock::Duration, std::less<>> ttl_;
  std::set<std::tuple<Clock::TimePoint, std::string, std::string>> expiry_queue_;
};

}  // namespace gpu_autoscaler::apiserver
