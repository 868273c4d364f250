#include "kube/interned_string.h"

#include <array>
#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <unordered_set>

namespace gpu_autoscaler::kube {
namespace intern_internal {

namespace {

struct EntryHash {
  using is_transparent = void;
  size_t operator()(const Entry* e) const { return e->hash; }
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};
struct EntryEq {
  using is_transparent = void;
  bool operator()(const Entry* a, const Entry* b) const { return a == b; }
  bool operator()(std::string_view a, const Entry* b) const { return a == b->view(); }
  bool operator()(const Entry* a, std::string_view b) const { return a->view() == b; }
};

struct Shard {
  std::mutex mu;
  std::unordered_set<Entry*, EntryHash, EntryEq> entries;
};

constexpr size_t kShards = 64;

class Table {
 public:
  Shard& ShardFor(size_t hash) { return shards_[(hash >> 7) % kShards]; }
  size_t Count() {
    size_t n = 0;
    for (auto& s : shards_) {
      std::lock_guard<std::mutex> l(s.mu);
      n += s.entries.size();
    }
    return n;
  }

 private:
  std::array<Shard, kShards> shards_;
};

// Never destroyed: handles in static objects may be released during exit.
Table& GlobalTable() {
  static Table* table = new Table();
  return *table;
}

void Destroy(Entry* e) {
  e->~Entry();
  ::operator delete(static_cast<void*>(e));
}

}  // namespace

void Release(const Entry* ce) {
  Entry* e = const_cast<Entry*>(ce);
  // Fast path: not the last reference. The last one is dropped under the
  // shard lock so that a concurrent Make cannot revive an entry being freed.
  uint32_t refs = e->refs.load(std::memory_order_relaxed);
  while (refs > 1) {
    if (e->refs.compare_exchange_weak(refs, refs - 1, std::memory_order_acq_rel)) return;
  }
  Shard& shard = GlobalTable().ShardFor(e->hash);
  std::lock_guard<std::mutex> l(shard.mu);
  if (e->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    shard.entries.erase(e);
    Destroy(e);
  }
}

}  // namespace intern_internal

InternedString InternedString::Make(std::string_view text) {
  using intern_internal::Entry;
  if (text.empty()) return InternedString();
  const size_t hash = std::hash<std::string_view>()(text);
  auto& shard = intern_internal::GlobalTable().ShardFor(hash);
  std::lock_guard<std::mutex> l(shard.mu);
  auto it = shard.entries.find(text);
  if (it != shard.entries.end()) {
    (*it)->refs.fetch_add(1, std::memory_order_relaxed);
    return InternedString(*it);
  }
  void* mem = ::operator new(sizeof(Entry) + text.size());
  Entry* e = new (mem) Entry{{1}, static_cast<uint32_t>(text.size()), hash};
  std::memcpy(e->data(), text.data(), text.size());
  shard.entries.insert(e);
  return InternedString(e);
}

size_t InternedStringCount() {
  return intern_internal::GlobalTable().Count();
}

}  // namespace gpu_autoscaler::kube
