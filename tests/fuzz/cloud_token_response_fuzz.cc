// Fuzzes what the cloud HTTP layer reads from token endpoints and response
// headers: OAuth token responses, Retry-After values, base64url.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cloud/cloud_http.h"
#include "common/base64.h"

using namespace gpu_autoscaler;
using namespace gpu_autoscaler::cloud;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto grant = ParseTokenResponse(text);
  if (grant.ok() && (grant->access_token.empty() || grant->expires_in.count() <= 0)) std::abort();
  auto delay = ParseRetryAfter(text, gpu_autoscaler::Clock::WallTime(std::chrono::seconds(1)));
  if (delay && delay->count() < 0) std::abort();
  auto decoded = Base64UrlDecode(text);
  if (decoded && Base64UrlEncode(*decoded) != text) {
    // Only canonical encodings round-trip; others must at least re-decode equal.
    if (Base64UrlDecode(Base64UrlEncode(*decoded)) != decoded) std::abort();
  }
  return 0;
}
