#include "scheduler/binder.h"

#include <nlohmann/json.hpp>

#include "api/annotations.h"
#include "kube/resource.h"
#include "kube/rest_client.h"
#include "scheduler/gpu_demand.h"

namespace gpu_autoscaler::scheduler {

Status Binder::Bind(const BindRequest& request) {
  nlohmann::json binding = {
      {"apiVersion", "v1"},
      {"kind", "Binding"},
      {"metadata", {{"name", request.name}, {"namespace", request.ns}}},
      {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", request.node}}}};
  if (!request.uid.empty()) binding["metadata"]["uid"] = request.uid;
  if (!request.gpus.empty()) {
    binding["metadata"]["annotations"][std::string(api::kGpuIndicesAnnotation)] =
        FormatGpuIndices(request.gpus);
  }
  if (!request.placement.empty()) {
    binding["metadata"]["annotations"][std::string(api::kPlacementAnnotation)] = request.placement;
  }
  kube::ObjectRef ref{kube::resources::kPods, request.ns, request.name, "binding"};
  kube::Result<nlohmann::json> reply = client_.Create(ref, binding);
  if (reply.ok()) return Status::Ok();
  const kube::Error& e = reply.error();
  const std::string what =
      "binding " + request.ns + "/" + request.name + " to " + request.node + ": " + e.message();
  if (e.code() == 409) return AbortedError(what);
  if (e.code() == 404) return NotFoundError(what);
  return UnavailableError(what);
}

}  // namespace gpu_autoscaler::scheduler
