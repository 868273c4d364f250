// Fuzzes what `gpu-autoscaler fleet` reads from outside: the fleet-usage pod
// annotation (src/fleet/usage_annotation.h) and, when the input is JSON, a
// Node, Lease and Pod as the fleet decodes them (src/fleet/fleet_objects.h),
// then one decision and one metrics rendering over them. Invariants: a parse
// error is InvalidArgument; parsed usage is finite and not negative; nothing
// throws; the plan never starts a pod that is not on a managed node.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fleet/container_metrics.h"
#include "fleet/fleet_objects.h"
#include "fleet/fleet_plan.h"
#include "fleet/usage_annotation.h"

using namespace gpu_autoscaler;
using namespace gpu_autoscaler::fleet;

namespace {

void CheckUsage(const ContainerUsage& u) {
  if (!std::isfinite(u.cpu_cores) || u.cpu_cores < 0 || u.memory_bytes < 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = ParseUsageAnnotation(text);
  if (!spec.ok() && spec.error().code() != StatusCode::kInvalidArgument) std::abort();
  if (spec.ok()) {
    CheckUsage(UsageFor(*spec, "", {}));
    for (const auto& [name, usage] : spec->containers)
      CheckUsage(UsageFor(*spec, name, {}));
  }

  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  static const NodeSelection selection = *NodeSelection::Parse("kwok.x-k8s.io/node=fake", "");
  FleetSnapshot snapshot{.now = Clock::WallTime(std::chrono::seconds(1'800'000'000))};
  snapshot.nodes.push_back(NodeStateFromJson(doc, selection));
  snapshot.nodes.push_back({.name = "n", .managed = true});
  snapshot.leases.push_back(LeaseStateFromJson(doc));
  PodState pod = PodStateFromJson(doc);
  snapshot.pods.push_back(pod);
  // The same pod bound to the managed node (a std::string: GCC 12's -Wrestrict
  // misfires on assigning a short literal here).
  static const std::string kManagedNode = "n";
  pod.node = kManagedNode;
  pod.uid += "-copy";
  snapshot.pods.push_back(pod);
  const FleetPlan plan = DecideFleet(snapshot, {});
  for (const PodStatusWrite& w : plan.start_pods) {
    if (w.pod_ip.empty()) std::abort();
  }
  (void)plan.node_status.size();
  ContainerMetrics metrics;
  metrics.Observe(RunningContainers(snapshot, {.cpu_cores = 0.1}, nullptr), {});
  (void)metrics.Render();
  return 0;
}
