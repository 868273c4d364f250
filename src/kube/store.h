// File: src/kube/store.h
//
// The informer cache: objects keyed "namespace/name" (or "name" for
// cluster-scoped ones), with named secondary indexes. One writer (the
// informer's dispatch thread) and many readers; every read sees the store as
// it was between two writes, and an index lookup agrees with Get/List.
//
//   Store<PodView> store;
//   store.AddIndex(kNodeNameIndex, PodNodeNameIndexFunc());
//   store.Upsert(std::make_shared<const PodView>(std::move(pod)));
//   for (const auto& pod : store.ByIndex(kNodeNameIndex, "gpu-node-3")) ...
//   auto diff = store.Replace(relisted, "4242");   // diff.deleted: missed deletes
//
// Objects are immutable and shared: readers keep a shared_ptr as long as they
// like, and a write never changes an object a reader holds.
//
// Thread-safety: all methods are safe to call concurrently; writes are
// serialized (a shared_mutex: readers never block one another).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/status.h"
#include "kube/indexer.h"

namespace gpu_autoscaler::kube {

// "namespace/name", or "name" when `ns` is empty.
std::string ObjectKey(std::string_view ns, std::string_view name);
template <typename T>
std::string ObjectKeyOf(const T& obj) {
  return ObjectKey(obj.ns(), obj.name());
}

// Hash and equality for unordered containers keyed by std::string that can
// be probed with a string_view.
struct TransparentStringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

template <typename T>
class Store {
 public:
  using ObjectPtr = std::shared_ptr<const T>;

  // What a Replace changed, for event delivery.
  struct ReplaceResult {
    std::vector<ObjectPtr> added;
    std::vector<std::pair<ObjectPtr, ObjectPtr>> updated;  // (old, new): resourceVersion changed
    std::vector<ObjectPtr> deleted;  // last known state of objects missing from the relist
    size_t unchanged = 0;
  };

  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Registers an index; existing objects are indexed right away. A name may
  // be registered once.
  Status AddIndex(std::string_view name, IndexFunc<T> fn) {
    std::unique_lock lock(mu_);
    if (indexes_.count(std::string(name)) != 0) {
      return AlreadyExistsError("index \"" + std::string(name) + "\" already registered");
    }
    Index& index = indexes_[std::string(name)];
    index.fn = std::move(fn);
    for (const auto& [key, obj] : items_)
      IndexObject(&index, key, *obj);
    return Status::Ok();
  }

  // Inserts or replaces; returns the previous object (nullptr when new).
  ObjectPtr Upsert(ObjectPtr obj) {
    std::string key = ObjectKeyOf(*obj);
    std::unique_lock lock(mu_);
    auto it = items_.find(key);
    ObjectPtr old;
    if (it == items_.end()) {
      it = items_.emplace(key, obj).first;
    } else {
      old = std::move(it->second);
      it->second = obj;
    }
    for (auto& [name, index] : indexes_) {
      if (old) UnindexObject(&index, key, *old);
      IndexObject(&index, key, *obj);
    }
    return old;
  }

  // Removes `key`; returns the removed object (nullptr when absent).
  ObjectPtr Delete(std::string_view key) {
    std::unique_lock lock(mu_);
    auto it = items_.find(key);
    if (it == items_.end()) return nullptr;
    ObjectPtr old = std::move(it->second);
    for (auto& [name, index] : indexes_)
      UnindexObject(&index, it->first, *old);
    items_.erase(it);
    return old;
  }

  // Makes the store hold exactly `items` (a relist at `resource_version`)
  // and reports the difference, including objects deleted while no watch
  // was open.
  ReplaceResult Replace(std::vector<ObjectPtr> items, std::string resource_version) {
    ReplaceResult result;
    Map next;
    next.reserve(items.size());
    for (ObjectPtr& obj : items) {
      std::string key = ObjectKeyOf(*obj);
      next.insert_or_assign(std::move(key), std::move(obj));  // last duplicate wins
    }
    std::unique_lock lock(mu_);
    for (auto& [key, obj] : next) {
      auto old = items_.find(key);
      if (old == items_.end()) {
        result.added.push_back(obj);
      } else if (old->second->resource_version() != obj->resource_version()) {
        result.updated.emplace_back(old->second, obj);
      } else {
        obj = old->second;  // unchanged: keep the instance readers may hold
        ++result.unchanged;
      }
    }
    for (auto& [key, obj] : items_) {
      if (next.find(key) == next.end()) result.deleted.push_back(obj);
    }
    items_ = std::move(next);
    for (auto& [name, index] : indexes_) {
      index.values.clear();
      for (const auto& [key, obj] : items_)
        IndexObject(&index, key, *obj);
    }
    resource_version_ = std::move(resource_version);
    return result;
  }

  // The resourceVersion the store reflects (last relist or event).
  void set_resource_version(std::string rv) {
    std::unique_lock lock(mu_);
    resource_version_ = std::move(rv);
  }
  std::string resource_version() const {
    std::shared_lock lock(mu_);
    return resource_version_;
  }

  ObjectPtr Get(std::string_view key) const {
    std::shared_lock lock(mu_);
    auto it = items_.find(key);
    return it == items_.end() ? nullptr : it->second;
  }
  ObjectPtr Get(std::string_view ns, std::string_view name) const {
    return Get(ObjectKey(ns, name));
  }

  // Every object, at one instant.
  std::vector<ObjectPtr> List() const {
    std::shared_lock lock(mu_);
    std::vector<ObjectPtr> out;
    out.reserve(items_.size());
    for (const auto& [key, obj] : items_)
      out.push_back(obj);
    return out;
  }

  std::vector<std::string> ListKeys() const {
    std::shared_lock lock(mu_);
    std::vector<std::string> out;
    out.reserve(items_.size());
    for (const auto& [key, obj] : items_)
      out.push_back(key);
    return out;
  }

  // Objects filed under `value` in index `index_name` (empty when the index
  // is unknown: check with HasIndex).
  std::vector<ObjectPtr> ByIndex(std::string_view index_name, std::string_view value) const {
    std::shared_lock lock(mu_);
    std::vector<ObjectPtr> out;
    auto index = indexes_.find(index_name);
    if (index == indexes_.end()) return out;
    auto keys = index->second.values.find(value);
    if (keys == index->second.values.end()) return out;
    out.reserve(keys->second.size());
    for (const std::string& key : keys->second)
      out.push_back(items_.find(key)->second);
    return out;
  }

  // Values that have at least one object in `index_name`.
  std::vector<std::string> IndexValues(std::string_view index_name) const {
    std::shared_lock lock(mu_);
    std::vector<std::string> out;
    auto index = indexes_.find(index_name);
    if (index == indexes_.end()) return out;
    for (const auto& [value, keys] : index->second.values)
      out.push_back(value);
    return out;
  }

  bool HasIndex(std::string_view index_name) const {
    std::shared_lock lock(mu_);
    return indexes_.find(index_name) != indexes_.end();
  }

  size_t size() const {
    std::shared_lock lock(mu_);
    return items_.size();
  }

  // Calls `fn(const T&)` for every object under one read lock (no copies of
  // the pointer list). `fn` must not call back into the store's writers.
  template <typename F>
  void ForEach(F&& fn) const {
    std::shared_lock lock(mu_);
    for (const auto& [key, obj] : items_)
      fn(*obj);
  }

 private:
  using Map = std::unordered_map<std::string, ObjectPtr, TransparentStringHash, std::equal_to<>>;
  using KeySet = std::unordered_set<std::string, TransparentStringHash, std::equal_to<>>;
  struct Index {
    IndexFunc<T> fn;
    std::unordered_map<std::string, KeySet, TransparentStringHash, std::equal_to<>> values;
  };

  void IndexObject(Index* index, const std::string& key, const T& obj) {
    scratch_.clear();
    index->fn(obj, &scratch_);
    for (std::string& v : scratch_)
      index->values[std::move(v)].insert(key);
  }
  void UnindexObject(Index* index, std::string_view key, const T& obj) {
    scratch_.clear();
    index->fn(obj, &scratch_);
    for (const std::string& v : scratch_) {
      auto it = index->values.find(v);
      if (it == index->values.end()) continue;
      auto k = it->second.find(key);
      if (k != it->second.end()) it->second.erase(k);
      if (it->second.empty()) index->values.erase(it);
    }
  }

  mutable std::shared_mutex mu_;
  Map items_;
  std::unordered_map<std::string, Index, TransparentStringHash, std::equal_to<>> indexes_;
  std::string resource_version_;
  std::vector<std::string> scratch_;  // index values; used under the write lock
};

}  // namespace gpu_autoscaler::kube
