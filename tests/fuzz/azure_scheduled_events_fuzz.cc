// Fuzzes the Azure Scheduled Events document parser (IMDS
// /metadata/scheduledevents) and the RFC 1123 NotBefore dates it carries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cloud/azure_interruption.h"

using namespace gpu_autoscaler::cloud;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = ParseAzureScheduledEvents(text);
  if (doc.ok()) {
    for (const auto& ev : doc->events) {
      if (ev.event_id.empty() || ev.event_type.empty()) std::abort();
      (void)ParseHttpDate(ev.not_before);
    }
  }
  (void)ParseHttpDate(text);
  return 0;
}
