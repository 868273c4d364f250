// Fuzzes the manager's configuration parser (controllers/manager_config.h),
// which reads `--config` and the watched ConfigMap's config.yaml: any bytes
// must give a configuration or an InvalidArgument error, never a crash, an
// exception or a hang; what parses keeps the ranges the parser promises
// (a tick of at least 100 ms, thresholds and tolerances that are numbers in
// range, positive periods), and a configuration compared with itself needs no
// restart.
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "controllers/manager_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpu_autoscaler;
  using namespace gpu_autoscaler::controllers;
  using std::chrono::milliseconds;
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto cfg = ParseManagerConfig(yaml, "fuzz");
  if (!cfg.ok()) {
    if (cfg.error().code() != StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  const ManagerConfig& c = *cfg;
  if (c.cost.interval < milliseconds(100) || c.cost.max_backfill_seconds < 0 ||
      c.cost.metrics_top_n < 1 || c.cost.metrics_top_n > 10000 ||
      !(c.cost.idle_threshold > 0 && c.cost.idle_threshold < 1) || c.cost.idle_window_seconds < 1) {
    std::abort();
  }
  for (milliseconds period :
       {c.budgets.evaluation_period, c.sharing_policies.resync, c.profiles.interval,
        c.profiles.checkpoint_interval, c.profiles.updater_interval}) {
    if (period <= milliseconds(0)) std::abort();
  }
  if (c.profiles.min_replicas < 1 || c.profiles.min_replicas > 1000 ||
      !(c.profiles.eviction_tolerance >= 0 && c.profiles.eviction_tolerance <= 1)) {
    std::abort();
  }
  if (!RestartOnlyChanges(c, c).empty()) std::abort();
  return 0;
}
