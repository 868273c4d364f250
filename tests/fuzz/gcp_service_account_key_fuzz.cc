// Fuzzes the service-account key file parser; a key that parses is also
// handed to the RS256 signer, which must fail cleanly on a bad PEM.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cloud/gcp_auth.h"

using namespace gpu_autoscaler::cloud;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto key = ParseGcpServiceAccountKey(text);
  if (!key.ok()) return 0;
  if (key->client_email.empty() || key->token_uri.empty()) std::abort();
  auto jwt = MakeGcpJwtAssertion(*key, kGcpComputeScope,
                                 gpu_autoscaler::Clock::WallTime(std::chrono::seconds(1)));
  if (jwt.ok() && jwt->find('.') == std::string::npos) std::abort();
  return 0;
}
