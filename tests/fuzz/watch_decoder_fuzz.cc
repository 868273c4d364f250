// Fuzzes the watch stream decoder. The first byte picks a chunk size; the
// rest is the stream. Properties checked: no crash; errors are kDecode; and
// decoding in chunks yields exactly the frames of decoding in one piece.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kube/watch_decoder.h"

namespace {

using gpu_autoscaler::kube::Error;
using gpu_autoscaler::kube::WatchDecoder;
using gpu_autoscaler::kube::WatchEventFrame;

struct Decoded {
  std::vector<std::pair<int, std::string>> frames;
  bool failed = false;
};

Decoded Decode(std::string_view stream, size_t chunk) {
  Decoded out;
  WatchDecoder decoder(/*max_frame_bytes=*/1 << 20);
  for (size_t i = 0; i < stream.size() && !out.failed; i += chunk) {
    auto r = decoder.Feed(stream.substr(i, chunk), [&](const WatchEventFrame& f) {
      out.frames.emplace_back(static_cast<int>(f.type), std::string(f.object));
      return true;
    });
    if (!r.ok()) {
      if (r.error().kind() != Error::Kind::kDecode) std::abort();
      out.failed = true;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = size_t{data[0]} % 32 + 1;
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  Decoded whole = Decode(stream, stream.size() + 1);
  Decoded pieces = Decode(stream, chunk);
  if (whole.failed != pieces.failed) std::abort();
  if (!whole.failed && whole.frames != pieces.frames) std::abort();
  return 0;
}
