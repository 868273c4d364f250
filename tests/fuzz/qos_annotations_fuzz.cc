// Fuzzes what the node agent reads from pods and sysfs for the QoS pools:
// Katalyst's enhancement annotations (JSON), the qos_level value, kernel
// cpulists, and a whole pod through MakeLocalPod and the pool planner.
// Invariants: a parsed cpulist formats and parses back to itself; the plan
// never hands a CPU outside the machine to a pod.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kube/object_codec.h"
#include "node-agent/local_pods.h"
#include "node-agent/qos_pools.h"

using namespace gpu_autoscaler;
using namespace gpu_autoscaler::node_agent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ParseQosLevel(text);
  const size_t half = text.size() / 2;
  QosEnhancements e = ParseEnhancements(text.substr(0, half), text.substr(half));
  (void)e;
  auto cpus = ParseCpuList(text);
  if (cpus.ok()) {
    auto again = ParseCpuList(FormatCpuList(*cpus));
    if (!again.ok() || *again != *cpus) std::abort();
  }
  auto pod = kube::DecodePod(text);
  if (pod.ok()) {
    LocalPod local = MakeLocalPod(*pod);
    local.phase = kube::PodPhase::kRunning;
    PoolPlan plan =
        PlanPools({.numa = {{.id = 0, .cpus = "0-3", .cpu_count = 4, .memory_bytes = 1ULL << 30},
                            {.id = 1, .cpus = "4-7", .cpu_count = 4, .memory_bytes = 1ULL << 30}},
                   .reserved_cpus = {0},
                   .pods = {local}});
    for (const PodAssignment& a : plan.pods) {
      for (int c : a.cpus) {
        if (c < 0 || c > 7) std::abort();
      }
    }
  }
  return 0;
}
