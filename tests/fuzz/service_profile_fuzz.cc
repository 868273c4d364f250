// libFuzzer target for the ServiceProfile inputs the manager and the webhook
// read back from the cluster: a histogram checkpoint (the ConfigMap's
// checkpoint.json, src/profiling/workload_profile.h) and a ServiceProfile
// object (its status, webhooks/profile_admission.h), separated by a form
// feed (\f). A checkpoint either fails with InvalidArgument or
// FailedPrecondition, or restores to a profile that saves to the same
// checkpoint and recommends without crashing; a profile either fails, or
// gives a rule whose edits make a patch that is a JSON array.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "profiling/workload_profile.h"
#include "webhooks/profile_admission.h"

namespace prof = gpu_autoscaler::profiling;
namespace wh = gpu_autoscaler::webhooks;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t ff = text.find('\f');
  const std::string_view checkpoint = text.substr(0, ff);
  const std::string_view profile = ff == std::string_view::npos ? "" : text.substr(ff + 1);

  const nlohmann::json j = nlohmann::json::parse(checkpoint, nullptr, false);
  auto restored = prof::WorkloadProfile::FromCheckpoint(j, prof::OurConfig());
  if (!restored.ok()) {
    const auto code = restored.error().code();
    if (code != gpu_autoscaler::StatusCode::kInvalidArgument &&
        code != gpu_autoscaler::StatusCode::kFailedPrecondition) {
      std::abort();
    }
  } else {
    const nlohmann::json saved = restored->Checkpoint();
    auto again = prof::WorkloadProfile::FromCheckpoint(saved, prof::OurConfig());
    if (!again.ok() || again->Checkpoint() != saved) std::abort();
    (void)restored->Recommend(
        gpu_autoscaler::gpu::GetGpu(gpu_autoscaler::gpu::GpuModel::kA100_80GB));
  }

  auto rule = wh::ParseProfileRule(profile);
  if (!rule.ok() || !rule->has_value()) return 0;
  auto pod = wh::DecodePod(
      R"({"metadata":{"name":"p","namespace":"ml","labels":{"app":"web"}},"spec":{"containers":[)"
      R"({"name":"server","resources":{"requests":{"cpu":"1","memory":"1Gi"},"limits":{"cpu":"2",)"
      R"("nvidia.com/gpu":"1"}}},{"name":"other"}]}})");
  if (!pod.ok()) std::abort();
  wh::PodResourceEdits edits = wh::PodResourceEdits::From(*pod);
  wh::ApplyProfile(*pod, **rule, &edits);
  wh::PodInfo after;
  const std::string patch = wh::ResourcePatch(*pod, edits, &after);
  if (!patch.empty() && !nlohmann::json::parse(patch, nullptr, false).is_array()) std::abort();
  return 0;
}
