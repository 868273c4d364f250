// File: src/kube/interned_string.h
//
// Process-wide, reference-counted string interning for the trimmed object
// views: label keys and values, namespaces, node names and resource names
// repeat across thousands of cached objects, so each distinct value is stored
// once and a view holds an 8-byte handle. An entry is freed when its last
// handle goes away, so churn (pod-template-hash values, job names) does not
// leak.
//
//   InternedString gpu = InternedString::Make("nvidia.com/gpu");
//   if (quantity.name == gpu) ...        // pointer comparison
//   std::string_view text = gpu.view();
//
// Thread-safety: Make, copies and destruction are safe from any thread; the
// table is sharded with one mutex per shard. A handle is a value.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace gpu_autoscaler::kube {

namespace intern_internal {
// A table entry: header followed by the characters.
struct Entry {
  std::atomic<uint32_t> refs;
  uint32_t size;
  size_t hash;
  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  std::string_view view() const { return {data(), size}; }
};
inline void AddRef(const Entry* e) {
  const_cast<Entry*>(e)->refs.fetch_add(1, std::memory_order_relaxed);
}
void Release(const Entry* e);
}  // namespace intern_internal

class InternedString {
 public:
  InternedString() = default;  // the empty string
  static InternedString Make(std::string_view text);

  InternedString(const InternedString& other) : entry_(other.entry_) {
    if (entry_ != nullptr) intern_internal::AddRef(entry_);
  }
  InternedString(InternedString&& other) noexcept : entry_(other.entry_) { other.entry_ = nullptr; }
  InternedString& operator=(InternedString other) noexcept {
    std::swap(entry_, other.entry_);
    return *this;
  }
  ~InternedString() {
    if (entry_ != nullptr) intern_internal::Release(entry_);
  }

  std::string_view view() const { return entry_ == nullptr ? std::string_view() : entry_->view(); }
  operator std::string_view() const { return view(); }  // NOLINT: reads like a string
  std::string str() const { return std::string(view()); }
  bool empty() const { return entry_ == nullptr; }
  // Stable identity of the value while any handle lives (for hashing).
  const void* id() const { return entry_; }

  friend bool operator==(const InternedString& a, const InternedString& b) {
    return a.entry_ == b.entry_;
  }
  friend bool operator==(const InternedString& a, std::string_view b) { return a.view() == b; }

 private:
  explicit InternedString(const intern_internal::Entry* e) : entry_(e) {}
  const intern_internal::Entry* entry_ = nullptr;
};

// Number of distinct live strings in the table (for tests and metrics).
size_t InternedStringCount();

}  // namespace gpu_autoscaler::kube
