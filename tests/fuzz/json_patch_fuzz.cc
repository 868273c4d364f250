// libFuzzer target for the embedded API server's patch functions.
//
// Input: the first line is the JSON document, the rest is the patch body. The
// same patch is applied as a JSON patch, a merge patch and a strategic merge
// patch (for a built-in kind and for an unknown one); each result then goes
// through managedFields bookkeeping and the built-in kinds' decode check, as
// the server does. Every call must return a value or an error: no crash, no
// exception; and a merge patch applied twice gives what it gave once.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "apiserver/builtin_decode.h"
#include "apiserver/patch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using gpu_autoscaler::apiserver::ApplyContext;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view doc_text = input.substr(0, newline);
  const std::string_view patch =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

  nlohmann::json doc = nlohmann::json::parse(doc_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) doc = nlohmann::json::object();

  const ApplyContext ctx{"2026-01-01T00:00:00Z", "v1", ""};
  auto track = [&](const gpu_autoscaler::kube::Result<nlohmann::json>& result) {
    if (!result.ok()) return;
    for (const char* kind : {"Pod", "ConfigMap", "Node", "Event"})
      (void)gpu_autoscaler::apiserver::BuiltinDecodeError("", kind, *result);
    (void)gpu_autoscaler::apiserver::BuiltinDecodeError("policy", "PodDisruptionBudget", *result);
    nlohmann::json updated = *result;
    gpu_autoscaler::apiserver::UpdateManagedFields(&doc, updated, "fuzz", ctx);
    nlohmann::json created = *result;
    gpu_autoscaler::apiserver::UpdateManagedFields(nullptr, created, "", ctx);
  };
  track(gpu_autoscaler::apiserver::ApplyJsonPatch(doc, patch));
  const auto merged = gpu_autoscaler::apiserver::ApplyMergePatch(doc, patch);
  track(merged);
  // RFC 7386 merge patches are idempotent: the same patch again changes nothing.
  if (merged.ok()) {
    const auto again = gpu_autoscaler::apiserver::ApplyMergePatch(*merged, patch);
    if (!again.ok() || *again != *merged) std::abort();
  }
  track(gpu_autoscaler::apiserver::ApplyStrategicMergePatch(doc, patch, "Pod"));
  track(gpu_autoscaler::apiserver::ApplyStrategicMergePatch(doc, patch, "Widget"));
  return 0;
}
