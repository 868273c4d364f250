#include "support/crd_apply.h"

#include <nlohmann/json.hpp>

#include "kube/conditions.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "support/child_process.h"

namespace gpu_autoscaler::testing {

Status ApplyCrdAndWait(kube::RestClient& client, const nlohmann::json& crd) {
  const std::string name = crd["metadata"]["name"];
  const kube::ObjectRef ref{kube::resources::kCustomResourceDefinitions, "", name};
  auto applied = client.Patch(ref, kube::PatchType::kApply, crd.dump(),
                              {.field_manager = "gpu-autoscaler-tests", .force = true});
  if (!applied.ok()) return applied.error().ToStatus().WithContext("apply CRD " + name);
  const bool established = WaitFor([&] {
    auto got = client.Get(ref);
    if (!got.ok()) return false;
    auto c = kube::FindCondition((*got)["status"].value("conditions", nlohmann::json::array()),
                                 "Established");
    return c && c->status == "True";
  });
  if (!established) return DeadlineExceededError("CRD " + name + " never became Established");
  return Status::Ok();
}

}  // namespace gpu_autoscaler::testing
