#include "scheduler/label_index.h"

#include <optional>

namespace gpu_autoscaler::scheduler {

int LabelIndex::KeyIndex(std::string_view key) const {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].name == key) return static_cast<int>(i);
  }
  return -1;
}

bool LabelIndex::Indexed(std::string_view key) const {
  return KeyIndex(key) >= 0;
}

void LabelIndex::AddKey(std::string_view key) {
  if (!Indexed(key)) keys_.push_back({.name = std::string(key)});
}

void LabelIndex::Unfile(Id id, const std::vector<std::pair<int, std::string>>& filing) {
  for (const auto& [key, value] : filing) {
    auto& by_value = keys_[key].by_value;
    auto it = by_value.find(value);
    if (it == by_value.end()) continue;
    it->second.erase(id);
    if (it->second.empty()) by_value.erase(it);
  }
}

void LabelIndex::Update(Id id, std::span<const kube::Label> labels) {
  std::vector<std::pair<int, std::string>> filing;
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (std::optional<std::string_view> v = kube::FindLabel(labels, keys_[i].name)) {
      filing.emplace_back(static_cast<int>(i), std::string(*v));
    }
  }
  auto it = filed_.find(id);
  if (it != filed_.end()) {
    if (it->second == filing) return;  // the usual case: a status change
    Unfile(id, it->second);
  }
  if (filing.empty()) {
    if (it != filed_.end()) filed_.erase(it);
    return;
  }
  for (const auto& [key, value] : filing) {
    auto& by_value = keys_[key].by_value;
    auto slot = by_value.find(value);
    if (slot == by_value.end()) slot = by_value.emplace(value, Ids()).first;
    slot->second.insert(id);
  }
  filed_[id] = std::move(filing);
}

void LabelIndex::Remove(Id id) {
  auto it = filed_.find(id);
  if (it == filed_.end()) return;
  Unfile(id, it->second);
  filed_.erase(it);
}

const LabelIndex::Ids* LabelIndex::Find(std::string_view key, std::string_view value) const {
  const int k = KeyIndex(key);
  if (k < 0) return nullptr;
  auto it = keys_[k].by_value.find(value);
  return it == keys_[k].by_value.end() ? nullptr : &it->second;
}

}  // namespace gpu_autoscaler::scheduler
