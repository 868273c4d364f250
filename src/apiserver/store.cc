#include "apiserver/store.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace gpu_autoscaler::apiserver {
namespace {

using nlohmann::json;

kube::Error ApiError(int code, std::string reason, std::string message) {
  return kube::Error(kube::Error::Kind::kApi, code, std::move(reason), std::move(message));
}

std::string StringAt(const json& obj, const char* a, const char* b) {
  auto it = obj.find(a);
  if (it == obj.end() || !it->is_object()) return {};
  auto jt = it->find(b);
  if (jt == it->end() || !jt->is_string()) return {};
  return jt->get<std::string>();
}

}  // namespace

json StoredObject::Parse() const {
  return json::parse(this->json);
}

std::string FieldValue(const json& obj, std::string_view path) {
  if (path == "source") return FieldValue(obj, "source.component");
  if (path == "status.successful") {  // JobToSelectableFields: status.succeeded, 0 when unset
    std::string succeeded = FieldValue(obj, "status.succeeded");
    return succeeded.empty() ? "0" : succeeded;
  }
  const json* cur = &obj;
  while (!path.empty()) {
    auto dot = path.find('.');
    std::string part(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    if (!cur->is_object()) return {};
    auto it = cur->find(part);
    if (it == cur->end()) return {};
    cur = &*it;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_boolean()) return cur->get<bool>() ? "true" : "false";
  if (cur->is_number()) return cur->dump();
  return {};
}

std::string WithTypeMeta(std::string_view body, std::string_view api_version,
                         std::string_view kind) {
  std::string out;
  out.reserve(body.size() + api_version.size() + kind.size() + 32);
  out.append("{\"apiVersion\":").append(json(api_version).dump());
  out.append(",\"kind\":").append(json(kind).dump());
  if (body.size() > 2) {
    out.push_back(',');
    out.append(body.substr(1));
  } else {
    out.push_back('}');
  }
  return out;
}

namespace {

std::shared_ptr<StoredObject> BuildStoredObject(json obj,
                                                const std::vector<std::string>& selectable_fields) {
  auto stored = std::make_shared<StoredObject>();
  if (obj.is_object()) {
    obj.erase("apiVersion");
    obj.erase("kind");
  }
  stored->json = obj.dump();
  stored->ns = StringAt(obj, "metadata", "namespace");
  stored->name = StringAt(obj, "metadata", "name");
  stored->uid = StringAt(obj, "metadata", "uid");
  stored->key = stored->ns.empty() ? stored->name : stored->ns + "/" + stored->name;
  std::string rv = StringAt(obj, "metadata", "resourceVersion");
  stored->resource_version = rv.empty() ? 0 : std::strtoull(rv.c_str(), nullptr, 10);
  auto meta = obj.find("metadata");
  if (meta != obj.end() && meta->is_object()) {
    auto labels = meta->find("labels");
    if (labels != meta->end() && labels->is_object()) {
      for (const auto& [k, v] : labels->items()) {
        if (v.is_string()) stored->labels.emplace(k, v.get<std::string>());
      }
    }
  }
  stored->fields.reserve(selectable_fields.size());
  for (const auto& f : selectable_fields)
    stored->fields.push_back(FieldValue(obj, f));
  return stored;
}

}  // namespace

ObjectPtr MakeStoredObject(json obj, const std::vector<std::string>& selectable_fields) {
  return BuildStoredObject(std::move(obj), selectable_fields);
}

std::string_view EventTypeName(EventType t) {
  switch (t) {
    case EventType::kAdded:
      return "ADDED";
    case EventType::kModified:
      return "MODIFIED";
    case EventType::kDeleted:
      return "DELETED";
  }
  return "ERROR";
}

Store::Store(size_t max_history) : max_history_(std::max<size_t>(max_history, 1)) {}

uint64_t Store::current_resource_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

uint64_t Store::compacted_resource_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return compacted_rv_;
}

size_t Store::object_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return object_count_;
}

ObjectPtr Store::Get(const std::string& storage_key, const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto r = objects_.find(storage_key);
  if (r == objects_.end()) return nullptr;
  auto it = r->second.find(key);
  return it == r->second.end() ? nullptr : it->second;
}

void Store::SetTimeToLive(const std::string& storage_key, Clock::Duration ttl, Clock& clock) {
  std::lock_guard<std::mutex> lock(mu_);
  ttl_clock_ = &clock;
  if (ttl > Clock::Duration::zero()) {
    ttl_[storage_key] = ttl;
  } else {
    ttl_.erase(storage_key);
  }
}

void Store::ScheduleExpiryLocked(const std::string& storage_key, StoredObject& obj) {
  auto ttl = ttl_.find(storage_key);
  if (ttl == ttl_.end()) return;
  obj.expires_at = ttl_clock_->Now() + ttl->second;
  expiry_queue_.emplace(obj.expires_at, storage_key, obj.key);
}

void Store::UnscheduleExpiryLocked(const std::string& storage_key, const StoredObject& obj) {
  if (expiry_queue_.empty() || obj.expires_at == Clock::TimePoint{}) return;
  expiry_queue_.erase(std::make_tuple(obj.expires_at, storage_key, obj.key));
}

size_t Store::ExpireDue() {
  std::lock_guard<std::mutex> lock(mu_);
  return ExpireDueLocked();
}

size_t Store::ExpireDueLocked() {
  if (expiry_queue_.empty()) return 0;
  const Clock::TimePoint now = ttl_clock_->Now();
  size_t expired = 0;
  while (!expiry_queue_.empty() && std::get<0>(*expiry_queue_.begin()) <= now) {
    auto due = expiry_queue_.extract(expiry_queue_.begin());
    const auto& [at, storage_key, key] = due.value();
    auto r = objects_.find(storage_key);
    if (r == objects_.end()) continue;
    auto it = r->second.find(key);
    // Every queued entry names a live object with that expiry; checked anyway.
    if (it == r->second.end() || it->second->expires_at != at) continue;
    DeleteLocked(storage_key, r->second, it);
    ++expired;
  }
  return expired;
}

std::optional<Clock::TimePoint> Store::NextExpiry() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (expiry_queue_.empty()) return std::nullopt;
  return std::get<0>(*expiry_queue_.begin());
}

void Store::AppendEventLocked(StoreEvent event) {
  log_.push_back(std::move(event));
  while (log_.size() > max_history_) {
    compacted_rv_ = log_.front().resource_version;
    log_.pop_front();
  }
  cv_.notify_all();
}

kube::Result<Store::WriteResult> Store::Create(const std::string& storage_key, json obj,
                                               const std::vector<std::string>& selectable_fields) {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireDueLocked();
  std::string ns = StringAt(obj, "metadata", "namespace");
  std::string name = StringAt(obj, "metadata", "name");
  std::string key = ns.empty() ? name : ns + "/" + name;
  auto& objects = objects_[storage_key];
  if (objects.find(key) != objects.end()) {
    return ApiError(409, "AlreadyExists", "already exists");
  }
  uint64_t rv = rv_ + 1;
  obj["metadata"]["resourceVersion"] = std::to_string(rv);
  std::shared_ptr<StoredObject> stored = BuildStoredObject(std::move(obj), selectable_fields);
  ScheduleExpiryLocked(storage_key, *stored);
  rv_ = rv;
  objects.insert(std::make_pair(key, ObjectPtr(stored)));
  ++object_count_;
  AppendEventLocked({rv, EventType::kAdded, storage_key, stored, nullptr});
  return WriteResult{stored, nullptr};
}

kube::Result<Store::WriteResult> Store::Update(const std::string& storage_key,
                                               const std::string& key, uint64_t expected_rv,
                                               json obj,
                                               const std::vector<std::string>& selectable_fields) {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireDueLocked();
  auto& objects = objects_[storage_key];
  auto it = objects.find(key);
  if (it == objects.end()) return ApiError(404, "NotFound", "not found");
  if (expected_rv != 0 && it->second->resource_version != expected_rv) {
    return ApiError(409, "Conflict", "the object has been modified");
  }
  uint64_t rv = rv_ + 1;
  obj["metadata"]["resourceVersion"] = std::to_string(rv);
  std::shared_ptr<StoredObject> stored = BuildStoredObject(std::move(obj), selectable_fields);
  ObjectPtr prev = it->second;
  // Every write attaches a fresh lease: the time to live restarts.
  UnscheduleExpiryLocked(storage_key, *prev);
  ScheduleExpiryLocked(storage_key, *stored);
  rv_ = rv;
  it->second = stored;
  AppendEventLocked({rv, EventType::kModified, storage_key, stored, prev});
  return WriteResult{stored, prev};
}

kube::Result<Store::WriteResult> Store::Delete(const std::string& storage_key,
                                               const std::string& key, uint64_t expected_rv) {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireDueLocked();
  auto& objects = objects_[storage_key];
  auto it = objects.find(key);
  if (it == objects.end()) return ApiError(404, "NotFound", "not found");
  if (expected_rv != 0 && it->second->resource_version != expected_rv) {
    return ApiError(409, "Conflict", "the object has been modified");
  }
  return DeleteLocked(storage_key, objects, it);
}

Store::WriteResult Store::DeleteLocked(const std::string& storage_key, ObjectTree& objects,
                                       ObjectTree::iterator it) {
  uint64_t rv = rv_ + 1;
  ObjectPtr prev = it->second;
  UnscheduleExpiryLocked(storage_key, *prev);
  // The DELETED event carries the last state stamped with the delete's RV.
  auto last = std::make_shared<StoredObject>(*prev);
  json tree = prev->Parse();
  tree["metadata"]["resourceVersion"] = std::to_string(rv);
  last->json = tree.dump();
  last->resource_version = rv;
  rv_ = rv;
  objects.erase(it);
  --object_count_;
  AppendEventLocked({rv, EventType::kDeleted, storage_key, last, prev});
  return WriteResult{last, prev};
}

namespace {

// The least string greater than every string that starts with `prefix`
// ("" when there is none: the scope is unbounded).
std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last != 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

// Objects of `live` with key in (after, end) ("" end: unbounded), in O(log n).
int64_t CountAfter(const ObjectTree& live, const std::string& after, const std::string& end) {
  // Keys greater than `after` are those not less than after + '\0'.
  std::string successor = after;
  successor.push_back('\0');
  size_t upto = end.empty() ? live.size() : live.order_of_key(end);
  size_t before = live.order_of_key(successor);
  return upto > before ? static_cast<int64_t>(upto - before) : 0;
}

}  // namespace

kube::Result<ListResult> Store::List(const ListRequest& req) const {
  ListResult result;
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t at = req.at_resource_version == 0 ? rv_ : req.at_resource_version;
  if (at < compacted_rv_) {
    return ApiError(410, "Expired", "The resourceVersion for the provided list is too old.");
  }
  if (at > rv_) {
    return ApiError(504, "Timeout", "Too large resource version");
  }
  result.resource_version = at;
  static const ObjectTree kEmpty;
  auto r = objects_.find(req.storage_key);
  const ObjectTree& live = r == objects_.end() ? kEmpty : r->second;

  // The state at `at` = live state with every later change undone: the first
  // later event of each key holds the key's state at `at` in `prev`.
  std::map<std::string, ObjectPtr> overlay;
  if (at < rv_) {
    auto first =
        std::upper_bound(log_.begin(), log_.end(), at,
                         [](uint64_t v, const StoreEvent& e) { return v < e.resource_version; });
    for (auto e = first; e != log_.end(); ++e) {
      if (e->storage_key != req.storage_key) continue;
      const std::string& key = e->object->key;
      if (key.compare(0, req.prefix.size(), req.prefix) != 0) continue;
      if (!req.start_after.empty() && key <= req.start_after) continue;  // earlier pages'
      overlay.emplace(key, e->prev);  // emplace keeps the earliest
    }
  }

  std::string start = req.start_after.empty() ? req.prefix : req.start_after;
  auto in_range = [&](const std::string& key) {
    return key.compare(0, req.prefix.size(), req.prefix) == 0;
  };
  auto lit = req.start_after.empty() ? live.lower_bound(start) : live.upper_bound(start);
  auto oit = req.start_after.empty() ? overlay.lower_bound(start) : overlay.upper_bound(start);
  bool page_full = false;
  while (!page_full) {
    bool live_ok = lit != live.end() && in_range(lit->first);
    bool overlay_ok = oit != overlay.end() && in_range(oit->first);
    if (!live_ok && !overlay_ok) break;
    const ObjectPtr* candidate;
    if (overlay_ok && (!live_ok || oit->first <= lit->first)) {
      if (live_ok && oit->first == lit->first) ++lit;
      candidate = &oit->second;
      ++oit;
    } else {
      candidate = &lit->second;
      ++lit;
    }
    if (!*candidate) continue;  // absent at `at`
    if (req.filter && !req.filter(**candidate)) continue;
    result.items.push_back(*candidate);
    result.last_key = (*candidate)->key;
    if (req.limit > 0 && static_cast<int64_t>(result.items.size()) >= req.limit) {
      page_full = true;
    }
  }
  if (!page_full) return result;

  // What follows the page at `at`, without the filter: the live objects after
  // it (a rank query), corrected by the keys changed since `at` (the overlay).
  int64_t remaining = CountAfter(live, result.last_key, PrefixEnd(req.prefix));
  for (auto it = overlay.upper_bound(result.last_key); it != overlay.end() && in_range(it->first);
       ++it) {
    const bool existed_at = it->second != nullptr;
    const bool exists_now = live.find(it->first) != live.end();
    remaining += static_cast<int64_t>(existed_at) - static_cast<int64_t>(exists_now);
  }
  result.more = remaining > 0;
  // With a filter the count of what follows is unknown (the real server omits it).
  result.remaining = req.filter ? 0 : remaining;
  return result;
}

std::vector<std::pair<std::string, std::string>> Store::KeysWithPrefix(
    const std::string& prefix) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [storage_key, objects] : objects_) {
    for (auto it = objects.lower_bound(prefix);
         it != objects.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      out.emplace_back(storage_key, it->first);
    }
  }
  return out;
}

bool Store::WaitForEvents(uint64_t after, size_t max, Clock::TimePoint deadline, Clock& clock,
                          const std::function<bool()>& should_stop, std::vector<StoreEvent>* out) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (after < compacted_rv_) return false;
    if (rv_ > after || (should_stop && should_stop()) || clock.Now() >= deadline) break;
    clock.WaitUntil(lock, cv_, deadline);
  }
  if (after < compacted_rv_) return false;
  auto first =
      std::upper_bound(log_.begin(), log_.end(), after,
                       [](uint64_t v, const StoreEvent& e) { return v < e.resource_version; });
  for (auto e = first; e != log_.end() && out->size() < max; ++e)
    out->push_back(*e);
  return true;
}

bool Store::WaitForResourceVersion(uint64_t rv, Clock::TimePoint deadline, Clock& clock) {
  std::unique_lock<std::mutex> lock(mu_);
  while (rv_ < rv) {
    if (clock.Now() >= deadline) return false;
    clock.WaitUntil(lock, cv_, deadline);
  }
  return true;
}

void Store::NotifyAll() {
  std::lock_guard<std::mutex> lock(mu_);
  cv_.notify_all();
}

void Store::Compact() {
  std::lock_guard<std::mutex> lock(mu_);
  log_.clear();
  compacted_rv_ = rv_;
  cv_.notify_all();
}

}  // namespace gpu_autoscaler::apiserver
