#include "controllers/manager_config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <set>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/flag_duration.h"
#include "common/strict_yaml.h"
#include "cost/duration.h"

namespace gpu_autoscaler::controllers {
namespace {

// The strict reader, with the manager's durations: the flag syntax, or the
// cost module's (which adds hours).
class Parser : public StrictYamlReader {
 public:
  using StrictYamlReader::StrictYamlReader;

  Status Duration(const YAML::Node& node, const std::string& path,
                  std::chrono::milliseconds* out) const {
    if (!node.IsDefined()) return Status::Ok();
    if (!node.IsScalar()) return Error(path, "expected a duration such as 500ms, 10s, 1m or 1h");
    const std::string text = node.as<std::string>();
    if (ParseFlagDuration(text, out)) return Status::Ok();
    auto seconds = cost::ParseDurationSeconds(text);
    if (!seconds.ok() || *seconds <= 0)
      return Error(path, "\"" + text + "\" is not a duration such as 500ms, 10s, 1m or 1h");
    *out = std::chrono::seconds(*seconds);
    return Status::Ok();
  }
};

// A scalar that is a finite number as a whole; strtod alone would also take
// "nan" and "inf", which every range check lets through.
std::optional<double> Number(const YAML::Node& node) {
  const std::string text = node.IsScalar() ? node.as<std::string>() : "";
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

Result<ManagerConfig> Parse(const YAML::Node& root, const Parser& p) {
  ManagerConfig cfg;
  if (!root.IsDefined() || root.IsNull()) return cfg;  // empty file: defaults
  GPU_RETURN_IF_ERROR(
      p.Known(root, "", {"apiVersion", "kind", "cost", "budgets", "sharingPolicies", "profiles"}));
  if (auto kind = root["kind"]; kind.IsDefined() && kind.as<std::string>() != "ManagerConfig")
    return p.Error("kind", "must be ManagerConfig");
  if (const YAML::Node c = root["cost"]; c.IsDefined()) {
    GPU_RETURN_IF_ERROR(p.Known(
        c, "cost",
        {"interval", "database", "maxBackfill", "shareIdleCost", "metricsTopN", "attributionLabels",
         "pricing", "prometheusURL", "prometheusSelector", "idleThreshold", "idleWindow"}));
    GPU_RETURN_IF_ERROR(p.Duration(c["interval"], "cost.interval", &cfg.cost.interval));
    if (cfg.cost.interval < std::chrono::milliseconds(100))
      return p.Error("cost.interval", "must be at least 100ms");
    GPU_RETURN_IF_ERROR(p.String(c["database"], "cost.database", &cfg.cost.database));
    std::chrono::milliseconds backfill{cfg.cost.max_backfill_seconds * 1000};
    GPU_RETURN_IF_ERROR(p.Duration(c["maxBackfill"], "cost.maxBackfill", &backfill));
    cfg.cost.max_backfill_seconds = backfill.count() / 1000;
    GPU_RETURN_IF_ERROR(
        p.Bool(c["shareIdleCost"], "cost.shareIdleCost", &cfg.cost.share_idle_cost));
    int64_t top_n = static_cast<int64_t>(cfg.cost.metrics_top_n);
    GPU_RETURN_IF_ERROR(p.Count(c["metricsTopN"], "cost.metricsTopN", 1, 10000, &top_n));
    cfg.cost.metrics_top_n = static_cast<size_t>(top_n);
    if (const YAML::Node l = c["attributionLabels"]; l.IsDefined()) {
      GPU_RETURN_IF_ERROR(p.Known(l, "cost.attributionLabels", {"team", "project", "experiment"}));
      GPU_RETURN_IF_ERROR(
          p.String(l["team"], "cost.attributionLabels.team", &cfg.cost.attribution_labels.team));
      GPU_RETURN_IF_ERROR(p.String(l["project"], "cost.attributionLabels.project",
                                   &cfg.cost.attribution_labels.project));
      GPU_RETURN_IF_ERROR(p.String(l["experiment"], "cost.attributionLabels.experiment",
                                   &cfg.cost.attribution_labels.experiment));
    }
    GPU_RETURN_IF_ERROR(p.String(c["pricing"], "cost.pricing", &cfg.cost.pricing_overrides));
    GPU_RETURN_IF_ERROR(
        p.String(c["prometheusURL"], "cost.prometheusURL", &cfg.cost.prometheus_url));
    GPU_RETURN_IF_ERROR(p.String(c["prometheusSelector"], "cost.prometheusSelector",
                                 &cfg.cost.prometheus_selector));
    if (const YAML::Node t = c["idleThreshold"]; t.IsDefined()) {
      const std::optional<double> v = Number(t);
      if (!v || *v <= 0 || *v >= 1)
        return p.Error("cost.idleThreshold", "expected a utilisation between 0 and 1, e.g. 0.05");
      cfg.cost.idle_threshold = *v;
    }
    std::chrono::milliseconds idle_window{cfg.cost.idle_window_seconds * 1000};
    GPU_RETURN_IF_ERROR(p.Duration(c["idleWindow"], "cost.idleWindow", &idle_window));
    cfg.cost.idle_window_seconds = std::max<int64_t>(1, idle_window.count() / 1000);
  }
  if (const YAML::Node b = root["budgets"]; b.IsDefined()) {
    GPU_RETURN_IF_ERROR(
        p.Known(b, "budgets", {"evaluationPeriod", "clusterName", "pagerDutyEventsURL"}));
    GPU_RETURN_IF_ERROR(p.Duration(b["evaluationPeriod"], "budgets.evaluationPeriod",
                                   &cfg.budgets.evaluation_period));
    GPU_RETURN_IF_ERROR(
        p.String(b["clusterName"], "budgets.clusterName", &cfg.budgets.cluster_name));
    GPU_RETURN_IF_ERROR(p.String(b["pagerDutyEventsURL"], "budgets.pagerDutyEventsURL",
                                 &cfg.budgets.pagerduty_events_url));
  }
  if (const YAML::Node s = root["sharingPolicies"]; s.IsDefined()) {
    GPU_RETURN_IF_ERROR(p.Known(s, "sharingPolicies", {"resync"}));
    GPU_RETURN_IF_ERROR(
        p.Duration(s["resync"], "sharingPolicies.resync", &cfg.sharing_policies.resync));
  }
  if (const YAML::Node s = root["profiles"]; s.IsDefined()) {
    GPU_RETURN_IF_ERROR(p.Known(s, "profiles",
                                {"interval", "checkpointInterval", "updaterInterval", "minReplicas",
                                 "evictionTolerance", "prometheusURL"}));
    GPU_RETURN_IF_ERROR(p.Duration(s["interval"], "profiles.interval", &cfg.profiles.interval));
    GPU_RETURN_IF_ERROR(p.Duration(s["checkpointInterval"], "profiles.checkpointInterval",
                                   &cfg.profiles.checkpoint_interval));
    GPU_RETURN_IF_ERROR(p.Duration(s["updaterInterval"], "profiles.updaterInterval",
                                   &cfg.profiles.updater_interval));
    GPU_RETURN_IF_ERROR(
        p.Count(s["minReplicas"], "profiles.minReplicas", 1, 1000, &cfg.profiles.min_replicas));
    if (const YAML::Node t = s["evictionTolerance"]; t.IsDefined()) {
      const std::optional<double> v = Number(t);
      if (!v || *v < 0 || *v > 1)
        return p.Error("profiles.evictionTolerance", "expected a fraction from 0 to 1, e.g. 0.5");
      cfg.profiles.eviction_tolerance = *v;
    }
    GPU_RETURN_IF_ERROR(
        p.String(s["prometheusURL"], "profiles.prometheusURL", &cfg.profiles.prometheus_url));
  }
  return cfg;
}

}  // namespace

Result<ManagerConfig> ParseManagerConfig(std::string_view yaml, std::string_view source) {
  Parser p(source);
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    return Parse(root, p);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string(source) + ": line " + std::to_string(e.mark.line + 1) +
                                ": " + e.msg);
  }
}

std::vector<std::string> RestartOnlyChanges(const ManagerConfig& a, const ManagerConfig& b) {
  std::vector<std::string> out;
  if (a.cost.interval != b.cost.interval) out.push_back("cost.interval");
  if (a.cost.database != b.cost.database) out.push_back("cost.database");
  if (a.cost.max_backfill_seconds != b.cost.max_backfill_seconds) out.push_back("cost.maxBackfill");
  if (a.cost.share_idle_cost != b.cost.share_idle_cost) out.push_back("cost.shareIdleCost");
  if (a.cost.metrics_top_n != b.cost.metrics_top_n) out.push_back("cost.metricsTopN");
  if (a.cost.prometheus_url != b.cost.prometheus_url ||
      a.cost.prometheus_selector != b.cost.prometheus_selector)
    out.push_back("cost.prometheusURL");
  if (a.cost.idle_threshold != b.cost.idle_threshold ||
      a.cost.idle_window_seconds != b.cost.idle_window_seconds)
    out.push_back("cost.idleThreshold");
  if (a.cost.attribution_labels.team != b.cost.attribution_labels.team ||
      a.cost.attribution_labels.project != b.cost.attribution_labels.project ||
      a.cost.attribution_labels.experiment != b.cost.attribution_labels.experiment)
    out.push_back("cost.attributionLabels");
  if (a.budgets.evaluation_period != b.budgets.evaluation_period)
    out.push_back("budgets.evaluationPeriod");
  if (a.budgets.cluster_name != b.budgets.cluster_name) out.push_back("budgets.clusterName");
  if (a.budgets.pagerduty_events_url != b.budgets.pagerduty_events_url)
    out.push_back("budgets.pagerDutyEventsURL");
  if (a.sharing_policies.resync != b.sharing_policies.resync)
    out.push_back("sharingPolicies.resync");
  if (a.profiles.interval != b.profiles.interval ||
      a.profiles.checkpoint_interval != b.profiles.checkpoint_interval ||
      a.profiles.updater_interval != b.profiles.updater_interval ||
      a.profiles.min_replicas != b.profiles.min_replicas ||
      a.profiles.eviction_tolerance != b.profiles.eviction_tolerance ||
      a.profiles.prometheus_url != b.profiles.prometheus_url)
    out.push_back("profiles");
  return out;
}

}  // namespace gpu_autoscaler::controllers
