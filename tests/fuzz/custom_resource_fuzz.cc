// libFuzzer target for the embedded API server's custom-resource path: a
// CRD's openAPIV3Schema (which whoever may create CRDs writes) and a custom
// resource (which any client with create rights sends).
//
// Input: the first line is the schema as JSON, the rest the object. The
// object is pruned as the server decodes it, then validated on create and on
// an update to itself. Every call must return a value or an error: no crash,
// no exception; and pruning twice must change nothing the first prune left.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "apiserver/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler::apiserver;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  if (newline == std::string_view::npos) return 0;
  const nlohmann::json schema =
      nlohmann::json::parse(input.substr(0, newline), nullptr, /*allow_exceptions=*/false);
  nlohmann::json obj =
      nlohmann::json::parse(input.substr(newline + 1), nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded() || obj.is_discarded()) return 0;

  const ValidationTarget target{
      "example.gpuautoscaler.io", "v1alpha1", "widgets", "Widget", true, ""};
  PruneUnknownFields(schema, obj);
  const nlohmann::json pruned = obj;
  PruneUnknownFields(schema, obj);
  if (obj != pruned) std::abort();  // pruning is idempotent
  (void)ValidateCreate(target, obj, &schema);
  (void)ValidateUpdate(target, obj, pruned, &schema);
  return 0;
}
