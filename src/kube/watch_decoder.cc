#include "kube/watch_decoder.h"

#include <cctype>
#include <vector>

namespace gpu_autoscaler::kube {
namespace {

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// A small validating reader for one framed event. The framing pass already
// guarantees balanced brackets outside strings; this checks the grammar of
// the envelope and finds the raw "type" and "object" members without
// building a DOM (objects can be megabytes).
class EnvelopeReader {
 public:
  explicit EnvelopeReader(std::string_view text) : s_(text) {}

  Result<std::monostate> Read(std::string_view* type, std::string_view* object, bool* has_type,
                              bool* has_object) {
    SkipSpace();
    if (!Eat('{')) return Fail("expected '{'");
    SkipSpace();
    if (Eat('}')) return Done();
    while (true) {
      SkipSpace();
      std::string_view key;
      bool key_escaped = false;
      if (!ReadString(&key, &key_escaped)) return Fail("expected a member name");
      SkipSpace();
      if (!Eat(':')) return Fail("expected ':'");
      SkipSpace();
      size_t value_start = pos_;
      if (!SkipValue()) return Fail("malformed value");
      std::string_view value = s_.substr(value_start, pos_ - value_start);
      if (!key_escaped && key == "type") {
        if (value.size() < 2 || value.front() != '"') return Fail("\"type\" is not a string");
        *type = value.substr(1, value.size() - 2);
        *has_type = true;
      } else if (!key_escaped && key == "object") {
        *object = value;
        *has_object = true;
      }
      SkipSpace();
      if (Eat(',')) continue;
      if (Eat('}')) return Done();
      return Fail("expected ',' or '}'");
    }
  }

 private:
  Result<std::monostate> Done() {
    SkipSpace();
    if (pos_ != s_.size()) return Fail("trailing bytes after the event");
    return std::monostate{};
  }
  Result<std::monostate> Fail(std::string_view what) const {
    return Error::Decode("watch stream: " + std::string(what) + " at byte " + std::to_string(pos_) +
                         " of an event");
  }
  void SkipSpace() {
    while (pos_ < s_.size() && IsJsonSpace(s_[pos_]))
      ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool ReadString(std::string_view* out, bool* escaped) {
    if (!Eat('"')) return false;
    size_t start = pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '"') {
        *out = s_.substr(start, pos_ - start);
        ++pos_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c == '\\') {
        *escaped = true;
        if (pos_ + 1 >= s_.size()) return false;
        char e = s_[pos_ + 1];
        if (e == 'u') {
          if (pos_ + 6 > s_.size()) return false;
          for (size_t i = pos_ + 2; i < pos_ + 6; ++i) {
            if (!std::isxdigit(static_cast<unsigned char>(s_[i]))) return false;
          }
          pos_ += 6;
          continue;
        }
        if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) return false;
        pos_ += 2;
        continue;
      }
      ++pos_;
    }
    return false;
  }
  bool SkipLiteral(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  bool SkipNumber() {
    size_t start = pos_;
    Eat('-');
    size_t digits = pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_])))
      ++pos_;
    if (pos_ == digits) return false;
    if (Eat('.')) {
      size_t frac = pos_;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_])))
        ++pos_;
      if (pos_ == frac) return false;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (!Eat('+')) Eat('-');
      size_t exp = pos_;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_])))
        ++pos_;
      if (pos_ == exp) return false;
    }
    return pos_ > start;
  }
  bool SkipScalar() {
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    std::string_view ignored;
    bool esc = false;
    switch (c) {
      case '"':
        return ReadString(&ignored, &esc);
      case 't':
        return SkipLiteral("true");
      case 'f':
        return SkipLiteral("false");
      case 'n':
        return SkipLiteral("null");
      default:
        return SkipNumber();
    }
  }
  // Iterative, so deeply nested input cannot overflow the stack.
  bool SkipValue() {
    std::vector<char> stack;  // '{' or '['
    while (true) {
      SkipSpace();
      if (pos_ >= s_.size()) return false;
      char c = s_[pos_];
      if (c == '{' || c == '[') {
        ++pos_;
        SkipSpace();
        if (Eat(c == '{' ? '}' : ']')) {
          if (!AfterValue(&stack)) return false;
          if (stack.empty()) return true;
          continue;
        }
        stack.push_back(c);
        if (c == '{' && !MemberName()) return false;
        continue;
      }
      if (!SkipScalar()) return false;
      if (!AfterValue(&stack)) return false;
      if (stack.empty()) return true;
    }
  }
  bool MemberName() {
    SkipSpace();
    std::string_view ignored;
    bool esc = false;
    if (!ReadString(&ignored, &esc)) return false;
    SkipSpace();
    return Eat(':');
  }
  // After a complete value inside containers: consume ',' (and the next
  // member name) or close as many containers as end here.
  bool AfterValue(std::vector<char>* stack) {
    while (!stack->empty()) {
      SkipSpace();
      char open = stack->back();
      if (Eat(',')) return open == '{' ? MemberName() : true;
      if (Eat(open == '{' ? '}' : ']')) {
        stack->pop_back();
        continue;
      }
      return false;
    }
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

bool ParseEventType(std::string_view name, WatchEventType* type) {
  if (name == "ADDED")
    *type = WatchEventType::kAdded;
  else if (name == "MODIFIED")
    *type = WatchEventType::kModified;
  else if (name == "DELETED")
    *type = WatchEventType::kDeleted;
  else if (name == "BOOKMARK")
    *type = WatchEventType::kBookmark;
  else if (name == "ERROR")
    *type = WatchEventType::kError;
  else
    return false;
  return true;
}

}  // namespace

WatchDecoder::WatchDecoder(size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

Result<std::monostate> WatchDecoder::Feed(
    std::string_view chunk, const std::function<bool(const WatchEventFrame&)>& on_frame) {
  // Drop what earlier calls consumed before appending, so `object` views
  // handed out during this call stay valid for the whole call.
  if (consumed_ > 0) {
    buffer_.erase(0, consumed_);
    scan_ -= consumed_;
    consumed_ = 0;
  }
  buffer_.append(chunk);

  while (true) {
    if (depth_ == 0) {
      // Between events: skip whitespace up to the next '{'.
      while (consumed_ < buffer_.size() && IsJsonSpace(buffer_[consumed_]))
        ++consumed_;
      if (consumed_ == buffer_.size()) break;
      if (buffer_[consumed_] != '{') {
        return Error::Decode("watch stream: expected '{' to start an event, got byte 0x" +
                             [](unsigned char c) {
                               static constexpr char kHex[] = "0123456789abcdef";
                               return std::string{kHex[c >> 4], kHex[c & 0xF]};
                             }(static_cast<unsigned char>(buffer_[consumed_])));
      }
      scan_ = consumed_;
    }
    // Track nesting from scan_ until the event's closing brace.
    size_t end = std::string::npos;
    for (size_t i = scan_; i < buffer_.size(); ++i) {
      char c = buffer_[i];
      if (in_string_) {
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
        continue;
      }
      if (c == '"') {
        in_string_ = true;
      } else if (c == '{' || c == '[') {
        ++depth_;
      } else if (c == '}' || c == ']') {
        if (--depth_ == 0) {
          end = i + 1;
          break;
        }
        if (depth_ < 0) return Error::Decode("watch stream: unbalanced brackets");
      }
    }
    if (end == std::string::npos) {
      scan_ = buffer_.size();
      if (buffered() > max_frame_bytes_) {
        return Error::Decode("watch stream: event larger than " + std::to_string(max_frame_bytes_) +
                             " bytes");
      }
      break;
    }
    if (end - consumed_ > max_frame_bytes_) {
      return Error::Decode("watch stream: event larger than " + std::to_string(max_frame_bytes_) +
                           " bytes");
    }
    std::string_view frame(buffer_.data() + consumed_, end - consumed_);
    std::string_view type_name, object;
    bool has_type = false, has_object = false;
    auto read = EnvelopeReader(frame).Read(&type_name, &object, &has_type, &has_object);
    if (!read.ok()) return read;
    if (!has_type) return Error::Decode("watch stream: event without \"type\"");
    if (!has_object) return Error::Decode("watch stream: event without \"object\"");
    WatchEventFrame ev{WatchEventType::kError, object};
    if (!ParseEventType(type_name, &ev.type)) {
      return Error::Decode("watch stream: unknown event type \"" + std::string(type_name) + "\"");
    }
    consumed_ = end;
    scan_ = end;
    if (!on_frame(ev)) break;
  }
  return std::monostate{};
}

}  // namespace gpu_autoscaler::kube
