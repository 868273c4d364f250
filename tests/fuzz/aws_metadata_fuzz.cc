// Fuzzes the parsers of AWS instance metadata documents (spot instance-action,
// rebalance recommendation, role credentials), of the shared credentials file
// and of providerIDs: errors are values, never crashes or exceptions.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cloud/aws_asg.h"
#include "cloud/aws_credentials.h"
#include "cloud/aws_interruption.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler::cloud;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto action = ParseSpotInstanceAction(text);
  if (action.ok() && action->detail != "terminate" && action->detail != "stop" &&
      action->detail != "hibernate")
    std::abort();
  (void)ParseRebalanceRecommendation(text);
  auto creds = ParseImdsCredentials(text);
  if (creds.ok() && (creds->access_key_id.empty() || creds->secret_access_key.empty()))
    std::abort();
  (void)ParseSharedCredentialsFile(text, "default");
  auto id = AwsInstanceIdFromProviderId(text);
  if (id.ok() && !id->starts_with("i-")) std::abort();
  return 0;
}
