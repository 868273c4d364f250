// Fuzzes the AWS XML reader and the Query-API response parsers built on it:
// any bytes must parse or give an error, never crash, throw or hang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cloud/aws_asg.h"
#include "cloud/aws_credentials.h"
#include "cloud/aws_query.h"
#include "cloud/aws_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler::cloud;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = ParseXml(text);
  if (doc.ok()) {
    if (doc->name.empty()) std::abort();  // a parsed element always has a name
    std::string next;
    auto groups = ParseDescribeAutoScalingGroups(*doc, &next);
    if (groups.ok()) {
      for (const auto& g : *groups)
        for (const auto& i : g.instances)
          if (i.provider_id.find(i.id) == std::string::npos) std::abort();
    }
    (void)ParseDescribeScalingActivities(*doc);
  }
  (void)ParseAwsError(400, text);
  (void)ParseAssumeRoleWithWebIdentityResponse(text);
  (void)ClassifyLaunchFailureMessage(text);
  return 0;
}
