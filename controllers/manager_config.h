// File: controllers/manager_config.h
//
// The manager's configuration file (`--config`, YAML), for everything that is
// not a flag. The same text can come from a ConfigMap that the manager
// watches (`--config-configmap NS/NAME`, key `config.yaml`): a bad new
// version is rejected with an Event and a log line, and the last good one
// stays in force (the dynamic configuration of Katalyst's KCC).
//
//   apiVersion: gpuautoscaler.io/v1alpha1
//   kind: ManagerConfig
//   cost:
//     interval: 1s              # metering tick
//     database: /var/lib/gpu-autoscaler/cost.db   # or a postgres:// URL
//     maxBackfill: 1h           # how far back a restart fills a gap
//     shareIdleCost: false
//     metricsTopN: 100          # series per cost metric; the rest is "other"
//     attributionLabels: {team: team, project: project, experiment: experiment-id}
//     pricing: |                # overrides merged on the built-in catalogue
//       families: ...
//     prometheusURL: http://prometheus:9090   # dcgm-exporter series: usage cost, waste
//     prometheusSelector: job="dcgm-exporter"
//     idleThreshold: 0.05       # an idle GPU: allocated, under 5% ...
//     idleWindow: 30m           # ... for 30 minutes
//   budgets:
//     evaluationPeriod: 30s
//     clusterName: prod-eu
//     pagerDutyEventsURL: https://events.pagerduty.com/v2/enqueue
//   sharingPolicies:
//     resync: 30s
//   profiles:                   # ServiceProfile recommendations (docs/profiling.md)
//     interval: 1m              # usage poll and recommendation refresh
//     checkpointInterval: 1m    # histogram checkpoints (ConfigMaps)
//     updaterInterval: 1m       # Auto mode: eviction passes (VPA's --updater-interval)
//     minReplicas: 2            # VPA's --min-replicas
//     evictionTolerance: 0.5    # VPA's --eviction-tolerance
//     prometheusURL: ""         # "" = cost.prometheusURL / --prometheus-url
//
// Unknown fields are errors naming their path ("cost.intervall: unknown
// field"), like kubectl's strict field validation: a typo must not silently
// fall back to a default. A reload applies cost.pricing (repricing from the
// next metered second); every other setting needs a restart, and a reload
// that changes one says so in the log and keeps the running value.
//
//   GPU_ASSIGN_OR_RETURN(ManagerConfig cfg, ParseManagerConfig(text, "config.yaml"));
//
// Thread-safety: pure functions over values.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "cost/metering.h"

namespace gpu_autoscaler::controllers {

struct ManagerConfig {
  struct Cost {
    std::chrono::milliseconds interval{1000};
    std::string database = "";  // "" = the --cost-db flag's value
    int64_t max_backfill_seconds = 3600;
    bool share_idle_cost = false;
    size_t metrics_top_n = 100;
    cost::AttributionLabels attribution_labels{};
    std::string pricing_overrides = "";  // YAML, same schema as the catalogue
    // GPU utilisation from NVIDIA dcgm-exporter series in Prometheus ("" = none).
    std::string prometheus_url = "";
    std::string prometheus_selector = "";  // e.g. job="dcgm-exporter"
    double idle_threshold = 0.05;          // an idle GPU is under this utilisation...
    int64_t idle_window_seconds = 1800;    // ...for this long
  } cost;
  struct Budgets {
    std::chrono::milliseconds evaluation_period{30'000};
    std::string cluster_name = "";
    std::string pagerduty_events_url = "https://events.pagerduty.com/v2/enqueue";
  } budgets;
  struct SharingPolicies {
    std::chrono::milliseconds resync{30'000};
  } sharing_policies;
  struct Profiles {
    std::chrono::milliseconds interval{60'000};
    std::chrono::milliseconds checkpoint_interval{60'000};
    std::chrono::milliseconds updater_interval{60'000};
    int64_t min_replicas = 2;         // VPA updater --min-replicas
    double eviction_tolerance = 0.5;  // VPA updater --eviction-tolerance
    std::string prometheus_url = "";
  } profiles;
};

// Parses and validates. Errors name `source` and the field path.
Result<ManagerConfig> ParseManagerConfig(std::string_view yaml, std::string_view source);

// Which settings differ between `a` and `b` that only a restart applies
// (e.g. "cost.database"); empty when a reload can apply everything.
std::vector<std::string> RestartOnlyChanges(const ManagerConfig& a, const ManagerConfig& b);

}  // namespace gpu_autoscaler::controllers
