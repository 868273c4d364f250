// Fuzzes the termination intent reader (controllers/gpu_node_pool_scale_down.h),
// which reads a Node annotation anyone who may edit Nodes can change: any
// bytes must parse or fail with an error, never crash; what parses must
// re-encode and parse to the same intent, and drive the decision.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "controllers/gpu_node_pool_scale_down.h"

using namespace gpu_autoscaler::controllers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = ParseTerminationIntent(text);
  if (!parsed.ok()) return 0;
  auto again = ParseTerminationIntent(EncodeTerminationIntent(*parsed));
  if (!again.ok() || again->id != parsed->id || again->pool != parsed->pool ||
      again->group != parsed->group || again->instance_id != parsed->instance_id ||
      again->tier != parsed->tier || again->interrupted != parsed->interrupted ||
      again->desired_before != parsed->desired_before) {
    std::abort();
  }
  const TerminationSteps steps = DecideTermination(
      *parsed, {.group_known = true, .instance_listed = true, .group_desired = 0});
  if (steps.call_provider != (parsed->desired_before == 0) || !steps.record) std::abort();
  return 0;
}
