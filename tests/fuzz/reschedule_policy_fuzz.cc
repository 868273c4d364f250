// Fuzzes the ReschedulePolicy reader (controllers/reschedule_policy_spec.h)
// and the rescheduler's decision behind it: any JSON must give a policy or a
// list of problems, never a crash or an exception; a policy without problems
// must decide on a small fragmented cluster (with and without usage) without
// planning more moves than its limits allow.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "controllers/reschedule_controller.h"
#include "kube/object_codec.h"

namespace {

using namespace gpu_autoscaler;
using nlohmann::json;

std::shared_ptr<const kube::NodeView> Node(const std::string& name) {
  json node = {{"metadata", {{"name", name}}},
               {"status",
                {{"allocatable",
                  {{"cpu", "16"}, {"memory", "64Gi"}, {"pods", "110"}, {"nvidia.com/gpu", "2"}}}}}};
  auto view = kube::DecodeNode(node.dump());
  if (!view.ok()) std::abort();
  return std::make_shared<const kube::NodeView>(std::move(*view));
}

std::shared_ptr<const kube::PodView> Pod(const std::string& name, const std::string& node,
                                         const std::string& gpu, int gpus) {
  json pod = {{"metadata",
               {{"name", name},
                {"namespace", "ml"},
                {"labels", {{"app", "infer"}}},
                {"ownerReferences",
                 {{{"apiVersion", "apps/v1"},
                   {"kind", "ReplicaSet"},
                   {"name", "r"},
                   {"uid", "u"},
                   {"controller", true}}}}}},
              {"spec",
               {{"containers",
                 {{{"name", "m"},
                   {"resources", {{"requests", {{"cpu", "1"}, {"nvidia.com/gpu", gpus}}}}}}}}}},
              {"status", {{"phase", node.empty() ? "Pending" : "Running"}}}};
  if (!node.empty()) {
    pod["spec"]["nodeName"] = node;
    pod["metadata"]["annotations"] = {{"gpuautoscaler.io/gpu-indices", gpu}};
  }
  auto view = kube::DecodePod(pod.dump());
  if (!view.ok()) std::abort();
  return std::make_shared<const kube::PodView>(std::move(*view));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) return 0;
  controllers::RescheduleInput in;
  in.policy = controllers::ParseReschedulePolicy(object);
  if (!object.is_object()) return 0;
  in.status = object.value("status", json::object());
  in.now = 1800000000;
  in.nodes = {Node("a"), Node("b")};
  in.pods = {Pod("p0", "a", "0", 1), Pod("p1", "b", "1", 1), Pod("t", "", "", 2)};
  for (bool with_usage : {false, true}) {
    if (with_usage) in.gpu_usage = std::map<std::string, double>{{"ml/p0", 0.9}, {"ml/p1", 0.1}};
    controllers::ReschedulePlan plan = controllers::DecideReschedule(in);
    if (!plan.status.is_object()) std::abort();
    if (!in.policy.problems.empty() && !plan.moves.empty()) std::abort();
    int planned = 0;
    for (const auto& m : plan.moves)
      planned += m.result != "Skipped";
    const auto& spec = in.policy.spec;
    if (spec.per_hour > 0 && planned > spec.per_hour) std::abort();
    std::vector<std::string> results(plan.moves.size(), "Evicted");
    (void)controllers::StatusAfterApply(plan, results, spec.dry_run, in.now);
  }
  return 0;
}
