// File: src/kube/watch_decoder.h
//
// Incremental decoder for a watch response body: a stream of JSON objects
// `{"type":"ADDED","object":{...}}`, normally newline-separated, arriving in
// arbitrary chunks (an event may span chunks; a chunk may hold many events).
// It frames events by tracking JSON nesting (strings and escapes included),
// so it does not depend on newlines.
//
//   WatchDecoder dec;
//   dec.Feed(chunk, [](WatchEventFrame f) { ... f.type, f.object ... });
//
// Malformed input yields an error and the decoder must be discarded (the
// watch is restarted). Frames larger than `max_frame_bytes` are an error.
//
// Thread-safety: not thread-safe; one decoder per stream.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "kube/error.h"
#include "kube/rest_client.h"

namespace gpu_autoscaler::kube {

// One framed event. `object` points into decoder memory valid only during the
// callback; copy it to keep it.
struct WatchEventFrame {
  WatchEventType type{};
  std::string_view object{};  // raw JSON of the "object" member
};

class WatchDecoder {
 public:
  explicit WatchDecoder(size_t max_frame_bytes = 64 * 1024 * 1024);

  // Decodes every complete event in `chunk` (plus buffered bytes) and calls
  // `on_frame` for each. `on_frame` returns false to stop early (remaining
  // bytes are kept). Returns a kDecode error on malformed input.
  Result<std::monostate> Feed(std::string_view chunk,
                              const std::function<bool(const WatchEventFrame&)>& on_frame);

  // Bytes of an incomplete event held back.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::string buffer_{};
  size_t consumed_ = 0;  // start of the first undecoded byte in buffer_
  size_t scan_ = 0;      // where framing resumes
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  size_t max_frame_bytes_;
};

}  // namespace gpu_autoscaler::kube
