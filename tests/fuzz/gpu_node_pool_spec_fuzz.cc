// Fuzzes the GPUNodePool reader (controllers/gpu_node_pool_spec.h) and the
// planner behind it: any JSON must give a pool or a list of problems, never a
// crash or an exception; a pool without problems must plan a scale-up for a
// few pending pods and a scale-down of a few nodes without failing, and
// every disruption budget's schedule must parse. Non-JSON input fuzzes the
// cron matcher directly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "autoscale/cron.h"
#include "controllers/gpu_node_pool_spec.h"

namespace {

using namespace gpu_autoscaler;

void PlanWith(const controllers::ParsedNodePool& pool) {
  std::vector<autoscale::PodSpec> pending;
  for (int milli : {250, 1000}) {
    autoscale::PodSpec p;
    p.name = "ml/p" + std::to_string(milli);
    p.cpu_milli = 500;
    p.memory_mib = 512;
    p.num_gpu = 1;
    p.gpu_milli = milli;
    pending.push_back(p);
  }
  const Clock::TimePoint now(std::chrono::hours(1));
  auto up = autoscale::PlanPoolScaleUp({.pool = &pool.spec, .pending = pending, .now = now});
  if (!up.ok()) std::abort();
  std::vector<autoscale::PoolNode> nodes;
  for (int i = 0; i < 3; ++i) {
    autoscale::PoolNode n;
    n.name = "n" + std::to_string(i);
    n.instance_type = 0;
    nodes.push_back(n);
  }
  auto down = autoscale::PlanPoolScaleDown(
      {.pool = &pool.spec, .nodes = nodes, .now = now, .now_unix = 1796378400});
  if (!down.ok()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json object = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) {
    auto cron = autoscale::CronSchedule::Parse(text);
    if (cron.ok()) {
      (void)cron->Matches(1796378400);
      (void)cron->InWindow(1796378400, 3600);
    }
    return 0;
  }
  controllers::ParsedNodePool pool = controllers::ParseNodePool(object);
  if (pool.problems.empty()) {
    for (const autoscale::DisruptionBudget& b : pool.spec.budgets)
      if (!b.schedule.empty() && !autoscale::CronSchedule::Parse(b.schedule).ok()) std::abort();
    PlanWith(pool);
  }
  return 0;
}
